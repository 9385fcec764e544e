// Everything SMSGate-specific in one room: the mobile API its Android app speaks, and the
// third-party API its client libraries speak, each behind the domain's ports (the modules'
// services and the devices' hub), split per resource; SMSGate's names of states in `states.ts`.

export { registerSmsGateMobile, type SmsGateMobileServices, smsGateMobilePrefixes } from "./mobile/index.js";
export { registerSmsGateApi, type SmsGateApiServices, smsGateApiPrefixes } from "./third-party/index.js";
