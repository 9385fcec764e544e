export { type EventListener, EventsService, type MessageEvent, type MessageEventType } from "./events.service.js";
