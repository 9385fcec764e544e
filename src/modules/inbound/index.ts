export { type InboundPage, InboundService, type InboundView } from "./inbound.service.js";
