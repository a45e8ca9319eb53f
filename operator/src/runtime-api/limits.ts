// Limits on what a sidecar may send, checked before a handler sees the body: its size per route
// (a JSON body is read whole before it is parsed) and its nesting (a deep value would overflow
// the stack of whatever walks it later, e.g. JSON.stringify when it is stored).
import type { RouteOptions as FastifyRouteOptions } from "fastify";
import { ApiError } from "./errors.js";

export interface BodyLimits {
  /** Bytes of a JSON body that carries values: results, children, request state. */
  valueBodyBytes: number;
  /** Bytes of any other JSON body (register, lease, heartbeat, failure, tail, progress, wait). */
  otherBodyBytes: number;
  /** Nesting of arrays and objects in a JSON body. */
  maxJsonDepth: number;
}

export const BODY_LIMITS: BodyLimits = {
  // As before the limits were split: the sidecar sends up to 10000 children in one request.
  valueBodyBytes: 256 * 1024 * 1024,
  otherBodyBytes: 8 * 1024 * 1024,
  maxJsonDepth: 512,
};

const VALUE_ROUTES = [/\/calls\/:name\/(result|children)$/, /\/requests\/:request\/state\/:key$/];

/** The body limit of a route (blob uploads stream past it: the blob store counts their bytes). */
export function bodyLimitOf(route: Pick<FastifyRouteOptions, "url">, limits: BodyLimits): number {
  return VALUE_ROUTES.some((r) => r.test(route.url)) ? limits.valueBodyBytes : limits.otherBodyBytes;
}

interface Entry {
  v: unknown;
  level: number;
  up?: Entry;
  key?: string | number;
}

const pathOf = (e: Entry, root: string): string => {
  const keys: (string | number)[] = [];
  for (let x: Entry | undefined = e; x?.up; x = x.up) keys.push(x.key!);
  return (
    root +
    keys
      .reverse()
      .map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`))
      .join("")
  );
};

/** A body the JSON parser made (not an upload's stream). */
const isParsedJson = (b: unknown): boolean =>
  Array.isArray(b) ||
  (typeof b === "object" && b !== null && [Object.prototype, null].includes(Object.getPrototypeOf(b) as object));

/** Throws invalid_body naming the first array or object nested deeper than `maxDepth` (no recursion). */
export function assertJsonDepth(body: unknown, maxDepth: number, where = "body"): void {
  if (!isParsedJson(body)) return;
  const stack: Entry[] = [{ v: body, level: 1 }];
  for (let e = stack.pop(); e; e = stack.pop()) {
    if (typeof e.v !== "object" || e.v === null) continue;
    if (e.level > maxDepth)
      throw new ApiError(
        "invalid_body",
        `${pathOf(e, where)}: nested deeper than ${maxDepth} levels of arrays and objects`,
      );
    const entries: [string | number, unknown][] = Array.isArray(e.v) ? e.v.map((x, i) => [i, x]) : Object.entries(e.v);
    for (const [key, v] of entries)
      if (typeof v === "object" && v !== null) stack.push({ v, level: e.level + 1, up: e, key });
  }
}
