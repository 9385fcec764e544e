import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";

/** The message id a workflow is about, so operators find it in the Temporal UI. */
export const smsMessageId = defineSearchAttributeKey("SmsMessageId", SearchAttributeType.KEYWORD);
/** The device id of the gateway a message is assigned to. */
export const smsGatewayId = defineSearchAttributeKey("SmsGatewayId", SearchAttributeType.KEYWORD);
/** The message's current status. */
export const smsStatus = defineSearchAttributeKey("SmsStatus", SearchAttributeType.KEYWORD);
/** The OTP id an OTP workflow is about. */
export const otpId = defineSearchAttributeKey("OtpId", SearchAttributeType.KEYWORD);

/** Every custom search attribute the workflows use; registered on start-up. */
export const allSearchAttributes = [smsMessageId, smsGatewayId, smsStatus, otpId] as const;
