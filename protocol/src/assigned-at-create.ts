// A child call assigned to a pod as it is created (DESIGN.md: "assignment is written before the
// sidecar starts the call"): the create itself carries the assignment in an annotation, so a call
// that a parked lease takes at once costs no Running write of its own (create → Succeeded). Until
// the operator writes the call's status, every reader takes the status from the annotation.
import { z } from "zod";
import type { FunctionCall, FunctionCallStatus } from "./api/v1alpha1/functioncall.js";

/** On a FunctionCall the operator created already assigned: JSON of `AssignedAtCreate`. */
export const ASSIGNED_ANNOTATION = "trellis.dev/assigned";

const instant = z.iso.datetime({ offset: true });

/** The first attempt of the call: the pod running it, when it started and when the call was ready. */
export const assignedAtCreate = z
  .object({
    pod: z.string().min(1).max(253),
    attempt: z.literal(1),
    startTime: instant,
    queuedTime: instant,
  })
  .strict();
export type AssignedAtCreate = z.infer<typeof assignedAtCreate>;

type Annotated = Pick<FunctionCall, "spec" | "status"> & { metadata?: { annotations?: Record<string, string> } };

export const assignedAnnotation = (a: AssignedAtCreate): string => JSON.stringify(a);

/**
 * The assignment a call was created with, if it has one and no status was written since. Only a
 * child call counts (the operator creates children; a root is anyone's), and only a well-formed
 * annotation: anything else reads as no assignment (admission lets only the operator set it).
 */
export function assignmentOfCreate(c: Annotated): AssignedAtCreate | undefined {
  if (c.status?.phase !== undefined || c.spec.parent === undefined) return undefined;
  const raw = c.metadata?.annotations?.[ASSIGNED_ANNOTATION];
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const r = assignedAtCreate.safeParse(parsed);
  return r.success ? r.data : undefined;
}

/** The status readers show: the written one, or Running on the pod the call was created assigned to. */
export function statusOfCall(c: Annotated): FunctionCallStatus | undefined {
  const a = assignmentOfCreate(c);
  if (!a) return c.status;
  return {
    ...c.status,
    phase: "Running",
    pod: a.pod,
    attempts: a.attempt,
    startTime: a.startTime,
    queuedTime: a.queuedTime,
  };
}

/** The call as readers show it (kubectl trellis, the HTTP API, the web view): `statusOfCall` applied. */
export function callAsShown<C extends Annotated>(c: C): C {
  const status = statusOfCall(c);
  return status === c.status ? c : { ...c, status };
}
