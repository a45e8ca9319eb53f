// Blob refs: "<namespace>/<request>/<id>" for values and uploads, "<namespace>/<request>/state/<key>"
// for request state, so that deleting the prefix of a request removes all of its blobs.
import { randomUUID } from "node:crypto";

const REF = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Why a ref is not acceptable, or undefined when it is. */
export function checkRef(ref: string): string | undefined {
  if (ref.length > 512) return "must be at most 512 characters";
  if (ref.split("/").some((s) => s === "." || s === "..")) return "must not contain '.' or '..' segments";
  if (!REF.test(ref)) return "must be '/'-separated segments of letters, digits, '.', '_' and '-', none empty";
  return undefined;
}

export const newBlobRef = (namespace: string, request: string): string => `${namespace}/${request}/${randomUUID()}`;
export const requestPrefix = (namespace: string, request: string): string => `${namespace}/${request}`;
export const stateRef = (namespace: string, request: string, key: string): string =>
  `${namespace}/${request}/state/${key}`;

/** Whether `ref` is a blob of `namespace` (its first segment). */
export const inNamespace = (ref: string, namespace: string): boolean => ref.startsWith(`${namespace}/`);

/** The request a ref is filed under (its second segment). */
export const requestOfRef = (ref: string): string => ref.split("/")[1] ?? "";
