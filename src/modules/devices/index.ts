export { CommandQueue } from "./command-queue.js";
export type {
  ConnectedGateway,
  DeviceChannel,
  DeviceCommand,
  DeviceFrame,
  InboundSink,
  SmsGateStreamEvent,
} from "./device.types.js";
export { type CloseReason, DeviceConnection, LiveDevices } from "./device-connections.js";
export { type DeviceControlEvent, publishDeviceControl, startDeviceControl } from "./device-control.js";
export { DeviceHub } from "./device-hub.js";
export {
  createDeviceActivities,
  type DeviceActivities,
  pushToConnected,
  type SealedTexts,
} from "./devices.activities.js";
export { Presence } from "./presence.js";
