// The engine's floor for bench:send: the lean message lifecycle with no project code. Start, a local
// activity, one signal, a local activity, one search-attribute update, end (12 history events, two
// workflow tasks).
import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import {
  condition,
  defineSignal,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from "@temporalio/workflow";

export const reportSignal = defineSignal("report");
const status = defineSearchAttributeKey("SmsStatus", SearchAttributeType.KEYWORD);
const local = proxyLocalActivities<{ step(n: number): Promise<number> }>({ startToCloseTimeout: "10 seconds" });

export async function leanMessage(): Promise<void> {
  let reported = false;
  setHandler(reportSignal, () => {
    reported = true;
  });
  await local.step(1);
  await condition(() => reported);
  await local.step(2);
  upsertSearchAttributes([{ key: status, value: "delivered" }]);
}
