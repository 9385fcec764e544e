export { type FleetGatewayView, type FleetSources, FleetWatch } from "./fleet.js";
export { type Gateway, GatewayEntity, type GatewayMetadata } from "./gateway.entity.js";
export { type GatewayFigures, GatewayRepository } from "./gateway.repository.js";
export { createGatewayActivities, type GatewayActivities } from "./gateways.activities.js";
export { GatewayRegistry, type HeartbeatInput, type ToggledGateway } from "./gateways.service.js";
