// Which request headers reach the functions (`spec.headers`, the RequestContext's headers). Only an
// allowlist: the FunctionCall is readable by anyone who may get FunctionCalls in the namespace and
// by the application's code, so gateway tokens, API keys and cookies must never be stored there.

/** Names (lower case) and prefixes (ending in `*`) forwarded by default (TRELLIS_HTTP_FORWARD_HEADERS). */
export const DEFAULT_FORWARDED_HEADERS = [
  "accept",
  "accept-language",
  "content-type",
  "user-agent",
  "x-request-id",
  "x-correlation-id",
  "traceparent",
  "tracestate",
  "baggage",
  "x-trellis-*",
];

/** Never forwarded, whatever the allowlist says: credentials by name or by shape. */
const CREDENTIAL = /^(authorization|proxy-authorization|cookie|set-cookie|forwarded)$/;
const CREDENTIAL_PART = /token|secret|key|auth|password|passwd|session|credential|signature|cookie/;
/** Framing headers describe the HTTP message, not the request's context. */
const FRAMING = new Set(["content-length", "transfer-encoding", "connection", "host", "expect", "upgrade"]);

/** At most 64 headers of at most 8 KiB each: the request context is stored in the FunctionCall. */
export const MAX_FORWARDED_HEADERS = 64;
export const MAX_FORWARDED_HEADER_BYTES = 8192;

export type HeaderFilter = (name: string) => boolean;

/** A filter from allowlist entries: exact names, or prefixes ending in `*`; credentials never pass. */
export function headerFilter(allow: readonly string[] = DEFAULT_FORWARDED_HEADERS): HeaderFilter {
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const raw of allow) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    if (e.endsWith("*")) prefixes.push(e.slice(0, -1));
    else names.add(e);
  }
  return (name) => {
    const n = name.toLowerCase();
    if (CREDENTIAL.test(n) || CREDENTIAL_PART.test(n) || FRAMING.has(n)) return false;
    return names.has(n) || prefixes.some((p) => n.startsWith(p));
  };
}

/** The allowlisted headers of a request, capped in count and size. */
export function forwardedHeaders(reqHeaders: Record<string, unknown>, allowed: HeaderFilter): Record<string, string> {
  const headers: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of Object.entries(reqHeaders)) {
    if (n >= MAX_FORWARDED_HEADERS) break;
    if (typeof v !== "string" || !allowed(k)) continue;
    headers[k.toLowerCase()] = v.slice(0, MAX_FORWARDED_HEADER_BYTES);
    n++;
  }
  return headers;
}
