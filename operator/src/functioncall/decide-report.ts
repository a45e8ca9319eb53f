// What a pod reports about a call it runs: result, failure, tail call. Each is checked against
// the current attempt and applied under the call's lock through the same actions as decisions.
import type { ValueRef } from "../../../protocol/index.js";
import { type AttemptError, type FailureKind, decideAttemptFailure, delegate, succeed } from "../engine/attempts.js";
import { type Call, callKey, isTerminal, phaseOf, requestOf } from "../engine/calls.js";
import type { EngineCore } from "../engine/engine.js";
import type { PodIdentity } from "../engine/pods.js";
import { ApiError, errors } from "./errors.js";

/**
 * The call if `attempt` is its running attempt on this pod; "duplicate" if that attempt already
 * ended (a retried report); throws otherwise. With `lateSuccess`, an attempt the operator gave up
 * on as lost (re-queued, not started again) still counts: its work is done, so it is kept.
 */
export function currentAttempt(
  core: EngineCore,
  id: PodIdentity,
  name: string,
  attempt: number,
  lateSuccess = false,
): Call | "duplicate" {
  const cur = core.graph.get(id.namespace, name);
  if (!cur) throw errors.callNotFound(name);
  if (cur.status?.pod !== id.pod) throw errors.notAssigned(name, id.pod);
  const current = cur.status?.attempts ?? 0;
  const phase = phaseOf(cur);
  if (current !== attempt) throw errors.staleAttempt(name, attempt, current, phase);
  if (phase === "Running") return cur;
  if (isTerminal(cur) || phase === "Delegated") return "duplicate";
  if (lateSuccess && phase === "Queued" && cur.status?.retryAfter === undefined) return cur;
  throw errors.staleAttempt(name, attempt, current, phase);
}

function checkBlobRef(v: ValueRef, namespace: string, field: string): void {
  if (v.blob !== undefined && !v.blob.startsWith(`${namespace}/`))
    throw new ApiError("invalid_body", `${field}.blob: must be a blob of namespace ${namespace} (got ${v.blob})`);
}

export async function reportResult(core: EngineCore, id: PodIdentity, name: string, attempt: number, output: ValueRef) {
  checkBlobRef(output, id.namespace, "body.output");
  await core.store.withLock(callKey(id.namespace, name), async () => {
    const cur = currentAttempt(core, id, name, attempt, true);
    if (cur === "duplicate") return;
    await core.controller.apply(cur, [{ type: "dequeue" }, succeed(output, core.clock.now())]);
  });
}

export async function reportFailure(
  core: EngineCore,
  id: PodIdentity,
  name: string,
  attempt: number,
  kind: FailureKind,
  error: AttemptError,
  retryable = true,
) {
  await core.store.withLock(callKey(id.namespace, name), async () => {
    const cur = currentAttempt(core, id, name, attempt);
    if (cur === "duplicate") return;
    const actions = decideAttemptFailure(
      cur,
      core.policy(cur),
      kind,
      error,
      core.clock.now(),
      core.config.infrastructureRetries,
      retryable,
    );
    await core.controller.apply(cur, actions);
  });
}

export async function reportTail(core: EngineCore, id: PodIdentity, name: string, attempt: number, tailCall: string) {
  await core.store.withLock(callKey(id.namespace, name), async () => {
    const cur = currentAttempt(core, id, name, attempt, true);
    if (cur === "duplicate") return;
    const tail = core.graph.get(id.namespace, tailCall);
    if (!tail || tailCall === name || requestOf(tail) !== requestOf(cur))
      throw new ApiError(
        "unknown_tail_call",
        `body.tailCall: ${tailCall} is not a call of request ${requestOf(cur)} (create it with /children first)`,
      );
    await core.controller.apply(cur, [{ type: "dequeue" }, delegate(tailCall)]);
  });
}
