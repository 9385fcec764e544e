export { type FleetGatewayView, type FleetSources, FleetWatch } from "./fleet.js";
export { GatewayEntity, type GatewayMetadata, type GatewayRecord } from "./gateway.entity.js";
export { counting, type GatewayCounts, GatewayRepository } from "./gateway.repository.js";
export { createGatewayActivities, type GatewayActivities } from "./gateways.activities.js";
export { GatewayRegistry, type GatewayToggle, type HeartbeatInput } from "./gateways.service.js";
export { appSettings, type StoredSmsGateSettings } from "./smsgate-settings.js";
