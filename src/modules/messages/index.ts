export { Backlog, type BacklogLimits } from "./backlog.js";
export { GatewayPicker, type Pick } from "./gateway-picker.js";
export { MessageAttemptEntity, MessageEntity } from "./message.entity.js";
export { type GroupFilters, type GroupRecipientRow, MessageRepository, transitions } from "./message.repository.js";
export {
  type AttemptStart,
  type DeviceReport,
  type DeviceReportStatus,
  finalStatuses,
  type ListedMessageView,
  type MessageView,
  type MessageWorkflows,
  type OutboundStatus,
  type PushCommand,
  type SendInput,
} from "./message.types.js";
export { MessageLifecycle, type MessagePlan, type UnacknowledgedCommand } from "./message-lifecycle.js";
export { type MessageFigures, type SystemStats, statsOf } from "./message-stats.js";
export { createMessageActivities, type MessageActivities } from "./messages.activities.js";
export { type Caller, type GroupSendInput, groupLimits, MessagesService } from "./messages.service.js";
