export { defaultPageSize, type InboundPage, InboundService, type InboundView, maxPageSize } from "./inbound.service.js";
