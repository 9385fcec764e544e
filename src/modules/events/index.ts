export { EventEntity } from "./event.entity.js";
export { EventRepository, type RecordedEvent, recordingEvents } from "./event.repository.js";
export {
  type EventPayload,
  type EventType,
  eventTypes,
  type MessageEventType,
  smsGateOnlyEventTypes,
} from "./event.types.js";
export { type EventListener, EventsService } from "./events.service.js";
