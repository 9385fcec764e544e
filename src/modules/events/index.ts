export { EventEntity } from "./event.entity.js";
export {
  dispatchedAtSql,
  type EventListener,
  type EventPayload,
  EventsService,
  type EventType,
  eventTypes,
  type MessageEventType,
} from "./events.service.js";
