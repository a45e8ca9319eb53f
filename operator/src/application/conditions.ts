// The one way conditions are written: lastTransitionTime moves only when the status changes.
import type { Condition } from "../../../protocol/index.js";

export type ConditionStatus = Condition["status"];
export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

export const findCondition = (list: readonly Condition[] | undefined, type: string): Condition | undefined =>
  list?.find((c) => c.type === type);

/** A copy of `list` with `next` set; existing order is kept and new types are appended. */
export function setCondition(
  list: readonly Condition[] | undefined,
  next: ConditionInput,
  nowIso: string,
): Condition[] {
  const prev = findCondition(list, next.type);
  const c: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message: next.message,
    lastTransitionTime:
      prev && prev.status === next.status && prev.lastTransitionTime ? prev.lastTransitionTime : nowIso,
    ...(next.observedGeneration !== undefined ? { observedGeneration: next.observedGeneration } : {}),
  };
  const out = (list ?? []).map((x) => (x.type === next.type ? c : x));
  if (!prev) out.push(c);
  return out;
}
