import type { MessagesService } from "../messages/index.js";
import type { OneTimePasswords } from "./otp.service.js";

/** The OTP activities: plain JSON in and out, each safe to retry. */
export function createOtpActivities(deps: { otp: OneTimePasswords; messages: MessagesService }) {
  return {
    /** Starts the workflow of the SMS carrying the code (starting it twice changes nothing). */
    sendOtpMessage: (input: { messageId: string }): Promise<void> => deps.messages.startWorkflows([input.messageId]),
    /** Marks the code expired if it is still pending; true when it was. */
    expireOtp: (input: { otpId: string }): Promise<boolean> => deps.otp.expire(input.otpId),
    /** Deletes codes past their retention; returns how many. */
    cleanUpOtps: (): Promise<number> => deps.otp.cleanUp(),
  };
}

/** The OTP activities' types, for workflow code. */
export type OtpActivities = ReturnType<typeof createOtpActivities>;
