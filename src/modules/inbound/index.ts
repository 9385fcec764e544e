export { InboundRepository } from "./inbound.repository.js";
export { type InboundPage, InboundService, type InboundView, type ReportedSms } from "./inbound.service.js";
export { InboundMessageEntity } from "./inbound-message.entity.js";
