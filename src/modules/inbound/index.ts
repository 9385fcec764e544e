export { InboundRepository } from "./inbound.repository.js";
export { type InboundPage, InboundService, type InboundView } from "./inbound.service.js";
export { InboundMessageEntity } from "./inbound-message.entity.js";
