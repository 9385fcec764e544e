import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from "@temporalio/client";
import { otpVerifiedSignal } from "../../workflows/otp.workflow.js";
import { otpId } from "../../workflows/search-attributes.js";
import type { OtpWorkflows } from "../modules/otp/index.js";

/** OTP workflows over the Temporal client. */
export function createOtpWorkflows(client: Client, taskQueue: string): OtpWorkflows {
  return {
    async start(input) {
      try {
        await client.workflow.start("otpWorkflow", {
          workflowId: `otp/${input.otpId}`,
          taskQueue,
          args: [input],
          workflowIdConflictPolicy: "USE_EXISTING",
          typedSearchAttributes: [{ key: otpId, value: input.otpId }],
        });
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      }
    },
    async verified(id) {
      try {
        await client.workflow.getHandle(`otp/${id}`).signal(otpVerifiedSignal);
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError) && !String(error).includes("already completed")) throw error;
      }
    },
  };
}
