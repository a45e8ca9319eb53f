// Readiness of a call's `{call}` inputs (semantics rule 1).
import type { CallError } from "../../../protocol/index.js";
import { type Call, argumentInputs, phaseOf } from "./calls.js";

export type Readiness = { ready: true } | { ready: false; failed?: { name: string; call: Call } };

export function readiness(call: Call, lookup: (name: string) => Call | undefined): Readiness {
  let waiting = false;
  for (const name of argumentInputs(call)) {
    const input = lookup(name);
    const p = input ? phaseOf(input) : undefined;
    if (input && (p === "Failed" || p === "Cancelled")) return { ready: false, failed: { name, call: input } };
    if (p !== "Succeeded") waiting = true;
  }
  return waiting ? { ready: false } : { ready: true };
}

/** The error of a call whose input failed: the input's error, with the input as cause. */
export function inputFailure(name: string, input: Call): CallError {
  const e = input.status?.error;
  const err: CallError = {
    type: e?.type ?? "FunctionError",
    message: e?.message ?? `${name} ${phaseOf(input) === "Cancelled" ? "was cancelled" : "failed"}`,
    reason: "input_failed",
    cause: name,
  };
  if (e?.traceback !== undefined) err.traceback = e.traceback;
  return err;
}
