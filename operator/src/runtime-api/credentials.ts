// Per-pod credentials: token = hex(HMAC-SHA256(operatorKey, "<namespace>/<pod>")). The operator
// verifies any pod's token without state (and across restarts); the Application controller puts
// the token in the pod's Secret with `podToken`.
import { createHmac, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.js";
import { POD_HEADER } from "../../../protocol/index.js";

export function podToken(operatorKey: string | Uint8Array, namespace: string, pod: string): string {
  return createHmac("sha256", operatorKey).update(`${namespace}/${pod}`, "utf8").digest("hex");
}

export function verifyPodToken(
  operatorKey: string | Uint8Array,
  namespace: string,
  pod: string,
  token: string,
): boolean {
  const want = Buffer.from(podToken(operatorKey, namespace, pod), "utf8");
  const got = Buffer.from(token, "utf8");
  return got.length === want.length && timingSafeEqual(got, want);
}

const POD_ID = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/** Checks the two headers every sidecar request carries; returns the pod they authenticate. */
export function authenticate(
  operatorKey: string | Uint8Array,
  headers: Record<string, string | string[] | undefined>,
): { namespace: string; pod: string } {
  const id = headers[POD_HEADER];
  if (typeof id !== "string" || id === "")
    throw new ApiError("unauthenticated", `header ${POD_HEADER}: required, "<namespace>/<pod name>"`);
  const m = POD_ID.exec(id);
  if (!m)
    throw new ApiError(
      "unauthenticated",
      `header ${POD_HEADER}: must be "<namespace>/<pod name>", got ${JSON.stringify(id)}`,
    );
  const auth = headers.authorization;
  if (typeof auth !== "string" || !auth.startsWith("Bearer "))
    throw new ApiError("unauthenticated", 'header authorization: required, "Bearer <pod token>"');
  const namespace = m[1]!;
  const pod = m[3]!;
  if (!verifyPodToken(operatorKey, namespace, pod, auth.slice("Bearer ".length).trim()))
    throw new ApiError("bad_credentials", `header authorization: not the token issued to pod ${id}`);
  return { namespace, pod };
}
