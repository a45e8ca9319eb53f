// What a pod may read and where: /wait, request state and blobs are limited to the requests the
// pod runs a call of (pure checks; the runtime API moves the bytes).
import { checkRef, inNamespace, requestOfRef, stateRef } from "../blobs/index.js";
import type { ValueRef } from "../../../protocol/index.js";
import type { CallView } from "./actions.js";
import { type Call, requestOf } from "./calls.js";
import { currentAttempt } from "./decide-report.js";
import { type Rejection, reject, rejections } from "./rejections.js";
import { jsonBytes } from "./values.js";

export type AccessView = Pick<CallView, "namespace" | "call" | "maxCallSpecBytes"> & {
  /** Names of the calls the pod runs now. */
  runningOn(pod: string): string[];
  /** The request of a child created through the runtime API that the graph does not show yet. */
  announced?(name: string): string | undefined;
  /** Names of the calls of a request (the graph's index). */
  callsOfRequest?(request: string): string[];
};

/** Requests the pod runs a call of. */
function requestsOf(v: AccessView, pod: string): Set<string> {
  const out = new Set<string>();
  for (const n of v.runningOn(pod)) {
    const c = v.call(n);
    if (c) out.add(requestOf(c));
  }
  return out;
}

/**
 * Whether the pod runs a call of `request`: by what it reported (runningOn) or, right after a
 * failover before the new leader has heard from the pod, by the persisted assignment (a Running
 * call whose status names the pod).
 */
export const podRunsRequest = (v: AccessView, pod: string, request: string): boolean =>
  requestsOf(v, pod).has(request) ||
  (v.callsOfRequest?.(request) ?? []).some((n) => {
    const s = v.call(n)?.status;
    return s?.phase === "Running" && s.pod === pod;
  });

/**
 * /wait: calls of one request, which the pod works on. A child created but not yet in the graph
 * counts as of the request it was created in (the caller holds the wait until the graph sees it).
 */
export function decideWait(v: AccessView, pod: string, calls: string[]): Rejection | undefined {
  let request: string | undefined;
  for (const [i, n] of calls.entries()) {
    const c = v.call(n);
    const r = c ? requestOf(c) : v.announced?.(n);
    if (r === undefined)
      return reject(
        "call_not_found",
        `body.calls[${i}]: no FunctionCall named ${n} (neither in the operator's view nor a child created recently)`,
      );
    if (request === undefined) request = r;
    else if (r !== request)
      return reject(
        "not_in_request",
        `body.calls[${i}]: ${n} belongs to request ${r}, not ${request}; wait on one request at a time`,
      );
  }
  if (request === undefined || !podRunsRequest(v, pod, request))
    return rejections.notInRequest("body.calls", request ?? "", pod);
  return undefined;
}

export function decideStateRead(v: AccessView, pod: string, request: string, key: string): string | Rejection {
  if (!podRunsRequest(v, pod, request)) return rejections.notInRequest("path.request", request, pod);
  return stateRef(v.namespace, request, key);
}

export function decideStateWrite(
  v: AccessView,
  pod: string,
  request: string,
  key: string,
  body: { value?: ValueRef },
): string | Rejection {
  if (!podRunsRequest(v, pod, request)) return rejections.notInRequest("path.request", request, pod);
  const n = jsonBytes(body);
  if (n > v.maxCallSpecBytes)
    return reject(
      "value_too_large",
      `body.value: ${n} bytes, over the limit of ${v.maxCallSpecBytes}; store it as a blob`,
    );
  if (body.value?.blob !== undefined && !inNamespace(body.value.blob, v.namespace))
    return reject("invalid_body", `body.value.blob: must be a blob of namespace ${v.namespace}`);
  return stateRef(v.namespace, request, key);
}

/** The request an upload is filed under: that of `call` (assigned to the pod), or of the pod's only request. */
export function decideBlobRequest(v: AccessView, pod: string, call: string | undefined): string | Rejection {
  if (call !== undefined) {
    const cur = v.call(call);
    const c = currentAttempt(cur, { pod, name: call, attempt: cur?.status?.attempts ?? 0 });
    if (c !== "duplicate" && "rejected" in c) return c;
    return requestOf(cur as Call);
  }
  const requests = requestsOf(v, pod);
  if (requests.size !== 1)
    return reject(
      "invalid_body",
      "query.call: required (the running call the blob belongs to) when the pod runs calls of several requests or none",
    );
  return [...requests][0]!;
}

/** `ref` when the pod may read it: a valid ref of its namespace, of a request it runs a call of. */
export function decideBlobRead(v: AccessView, pod: string, ref: string): string | Rejection {
  const why = checkRef(ref);
  if (why) return reject("invalid_body", `path: blob ref ${why}`);
  if (!inNamespace(ref, v.namespace))
    return reject("forbidden_blob", `path: blob ${ref} is not in namespace ${v.namespace}`);
  const request = requestOfRef(ref);
  if (!podRunsRequest(v, pod, request))
    return reject(
      "forbidden_blob",
      `path: blob ${ref} belongs to request ${request}, which pod ${pod} runs no call of`,
    );
  return ref;
}
