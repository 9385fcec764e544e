// Every workflow the worker runs. Deterministic code only: no I/O, no Node built-ins.
export { gatewayHealthWorkflow } from "./gateway-health.workflow.js";
export { messageSweeperWorkflow, resetDailyCountersWorkflow } from "./maintenance.workflow.js";
export { messageWorkflow } from "./message.workflow.js";
export { messageLifecycle } from "./message-lifecycle.workflow.js";
export { otpCleanupWorkflow, otpWorkflow } from "./otp.workflow.js";
export { webhookDeliveryWorkflow } from "./webhook.workflow.js";
