// Per-pod credentials, bound to one pod object:
//   token = "t2." + hex(HMAC-SHA256(operatorKey, "trellis-pod-token/v2\n<namespace>/<pod>/<pod uid>"))
// The operator verifies a token without stored state (and across restarts) but only for a pod in
// its pod cache that it created and that is not being deleted, with the same uid: a pod recreated
// under the same name gets a new token, and a deleted pod's token stops working at once.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { POD_HEADER } from "../../../protocol/index.js";
import { ApiError } from "./errors.js";
import type { PodIdentity } from "./port.js";

/** Version of the token format; part of both the MAC input and the token. */
export const TOKEN_VERSION = "t2";
const MAC_DOMAIN = "trellis-pod-token/v2";

export function podToken(operatorKey: string | Uint8Array, namespace: string, pod: string, uid: string): string {
  const mac = createHmac("sha256", operatorKey).update(`${MAC_DOMAIN}\n${namespace}/${pod}/${uid}`, "utf8");
  return `${TOKEN_VERSION}.${mac.digest("hex")}`;
}

export function verifyPodToken(
  operatorKey: string | Uint8Array,
  namespace: string,
  pod: string,
  uid: string,
  token: string,
): boolean {
  const want = Buffer.from(podToken(operatorKey, namespace, pod, uid), "utf8");
  const got = Buffer.from(token, "utf8");
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * Changes with the key and with the token format, so that pods holding tokens of another key or
 * format are replaced (it is part of the pod template hash).
 */
export function credentialKeyId(operatorKey: string | Uint8Array): string {
  return `${TOKEN_VERSION}-${createHash("sha256").update(operatorKey).digest("hex").slice(0, 12)}`;
}

const POD_ID = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/** A live function pod the operator created (see dispatch/pod-identity). */
export interface FunctionPodIdentity {
  application: string;
  function: string;
  uid: string;
}

export interface Authenticator {
  operatorKey: string | Uint8Array;
  /** The pod from the operator's pod cache: its identity, or why it may not hold a token. */
  podIdentity: (namespace: string, pod: string) => FunctionPodIdentity | string;
}

/** Checks the two headers every sidecar request carries; returns the function pod they authenticate. */
export function authenticate(auth: Authenticator, headers: Record<string, string | string[] | undefined>): PodIdentity {
  const id = headers[POD_HEADER];
  if (typeof id !== "string" || id === "")
    throw new ApiError("unauthenticated", `header ${POD_HEADER}: required, "<namespace>/<pod name>"`);
  const m = POD_ID.exec(id);
  if (!m)
    throw new ApiError(
      "unauthenticated",
      `header ${POD_HEADER}: must be "<namespace>/<pod name>", got ${JSON.stringify(id)}`,
    );
  const bearer = headers.authorization;
  if (typeof bearer !== "string" || !bearer.startsWith("Bearer "))
    throw new ApiError("unauthenticated", 'header authorization: required, "Bearer <pod token>"');
  const namespace = m[1]!;
  const pod = m[3]!;
  const ident = auth.podIdentity(namespace, pod);
  if (typeof ident === "string") throw new ApiError("pod_unknown", `pod ${id}: ${ident}; it holds no valid token`);
  const token = bearer.slice("Bearer ".length).trim();
  if (!token.startsWith(`${TOKEN_VERSION}.`))
    throw new ApiError("bad_credentials", `header authorization: not a pod token of format ${TOKEN_VERSION}`);
  if (!verifyPodToken(auth.operatorKey, namespace, pod, ident.uid, token))
    throw new ApiError(
      "bad_credentials",
      `header authorization: not the token issued to pod ${id} (uid ${ident.uid}) with the operator's key`,
    );
  return { namespace, pod, application: ident.application, function: ident.function };
}
