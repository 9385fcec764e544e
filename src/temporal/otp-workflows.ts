import type { Client } from "@temporalio/client";
import { otpVerifiedSignal, otpWorkflow } from "../../workflows/otp.workflow.js";
import { otpId } from "../../workflows/search-attributes.js";
import type { OtpWorkflows } from "../modules/otp/index.js";
import { signalIfRunning, startOnce } from "./workflow-calls.js";

/** OTP workflows over the Temporal client. */
export function createOtpWorkflows(client: Client, taskQueue: string): OtpWorkflows {
  return {
    start: async (input) => {
      await startOnce(client, otpWorkflow, {
        workflowId: `otp/${input.otpId}`,
        taskQueue,
        args: [input],
        typedSearchAttributes: [{ key: otpId, value: input.otpId }],
      });
    },
    verified: (id) => signalIfRunning(client, `otp/${id}`, otpVerifiedSignal),
  };
}
