export { isPrivateAddress, resolveTarget, TargetRefused } from "./target-guard.js";
export { WebhookAttemptEntity, WebhookDeliveryEntity, WebhookEntity } from "./webhook.entity.js";
export { WebhookRepository } from "./webhook.repository.js";
export { type AttemptResult, sendWebhook, signatureHeaders } from "./webhook-sender.js";
export { createWebhookActivities, type WebhookActivities } from "./webhooks.activities.js";
export { type DeliveryView, WebhookDispatcher, type WebhookView, type WebhookWorkflows } from "./webhooks.service.js";
