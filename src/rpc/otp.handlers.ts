import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { OtpService } from "../../gen/smsgw/v1/otp_pb.js";
import { invalidCode, type OneTimePasswords } from "../modules/otp/index.js";
import { missing } from "../shared/errors.js";
import { callingClient } from "./principal.js";

/** OtpService on the OTP module. */
export function otpHandlers(deps: { otp: OneTimePasswords }): ServiceImpl<typeof OtpService> {
  return {
    async sendOtp(req, ctx) {
      const client = callingClient(ctx);
      const sent = await deps.otp.send(
        { keyId: client.keyId, admin: client.scope === "admin" },
        {
          phoneNumber: req.phoneNumber,
          purpose: req.purpose,
          expiryMinutes: req.expiryMinutes,
          codeLength: req.codeLength,
        },
      );
      return { success: true, expiresAt: timestampFromDate(sent.expiresAt), messageId: sent.messageId };
    },

    async verifyOtp(req, ctx) {
      callingClient(ctx);
      if (req.code.trim() === "") throw missing("code");
      const verdict = await deps.otp.verify({ phoneNumber: req.phoneNumber, code: req.code, purpose: req.purpose });
      if (verdict.verified) return { success: true, verified: true };
      return { success: false, verified: false, error: invalidCode, attemptsRemaining: verdict.attemptsRemaining };
    },
  };
}
