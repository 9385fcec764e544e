import { condition, defineSignal, proxyLocalActivities, setHandler } from "@temporalio/workflow";
import type { OtpActivities } from "../src/modules/otp/otp.activities.js";

/** The code was verified: the workflow ends early. */
export const otpVerifiedSignal = defineSignal("verified");

const otp = proxyLocalActivities<OtpActivities>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", maximumInterval: "30 seconds" },
});

/**
 * The lifecycle of one code (workflow id `otp/<otp_id>`): send the SMS carrying it, hold the expiry
 * timer, end early when verified, and mark it expired (cancelling an SMS not yet sent) when it runs
 * out. Verification itself reads and writes the database only.
 */
export async function otpWorkflow(input: {
  otpId: string;
  messageId: string;
  expiresAtMs: number;
}): Promise<{ status: "verified" | "expired" }> {
  let verified = false;
  setHandler(otpVerifiedSignal, () => {
    verified = true;
  });
  await otp.sendOtpMessage({ messageId: input.messageId });
  if (await condition(() => verified, Math.max(1, input.expiresAtMs - Date.now()))) return { status: "verified" };
  const expired = await otp.expireOtp({ otpId: input.otpId });
  return { status: expired ? "expired" : "verified" };
}

/** Deletes codes past their retention; scheduled every 15 minutes, as the original `CleanupExpiredOtpsJob`. */
export async function otpCleanupWorkflow(): Promise<{ deleted: number }> {
  return { deleted: await otp.cleanUpOtps() };
}
