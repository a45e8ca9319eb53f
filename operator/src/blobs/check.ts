// Blob refs inside values: every ref a value names (at the top or nested in `list` items, at any
// depth) must be a blob of the value's own request, "<namespace>/<request>/<id>". One checker for
// every entry (reports, child calls, state writes) and every place the operator follows refs
// (output serving, map/reduce items): a pod must never reach another request's or namespace's
// blobs through a value, and no value may nest or chain without bound.
import { checkRef } from "./refs.js";

/** The request a value belongs to. */
export interface RefScope {
  namespace: string;
  request: string;
}

export interface RefLimits {
  /** Deepest nesting of `list` values (and, when following, of blob documents). */
  maxDepth: number;
  /** Most blob refs one value may name (when following: blobs read in all). */
  maxRefs: number;
}

export const REF_LIMITS: RefLimits = { maxDepth: 32, maxRefs: 100_000 };

export type RefRule = "shape" | "ref" | "scope" | "depth" | "count" | "cycle";

/** The first bad ref: where it is (e.g. "body.output.list[3].blob"), the rule, and a message naming both. */
export interface BadRef {
  path: string;
  rule: RefRule;
  message: string;
}

const bad = (path: string, rule: RefRule, why: string): BadRef => ({ path, rule, message: `${path}: ${why}` });

/** Why `ref` is not a blob of `scope` (a malformed ref, or another namespace or request), or undefined. */
export function refOutsideScope(ref: string, scope: RefScope): { rule: "ref" | "scope"; why: string } | undefined {
  const malformed = checkRef(ref);
  if (malformed) return { rule: "ref", why: `blob ref ${malformed}` };
  const prefix = `${scope.namespace}/${scope.request}/`;
  if (ref.startsWith(prefix)) return undefined;
  const owner = ref.startsWith(`${scope.namespace}/`) ? `request ${scope.request}` : `namespace ${scope.namespace}`;
  return { rule: "scope", why: `must be a blob of ${owner} (under "${prefix}"), got ${JSON.stringify(ref)}` };
}

const outside = (ref: string, scope: RefScope, path: string): BadRef | undefined => {
  const o = refOutsideScope(ref, scope);
  return o && bad(path, o.rule, o.why);
};

/** The namespace and request a ref is filed under (its first two segments). */
export function scopeOfRef(ref: string): RefScope | undefined {
  if (checkRef(ref)) return undefined;
  const [namespace, request, ...rest] = ref.split("/");
  return namespace && request && rest.length > 0 ? { namespace, request } : undefined;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Counts what a walk has seen, across the blob documents it follows. */
export interface RefBudget {
  refs: number;
}

/**
 * The first bad ref of `value` (a value in one of the protocol's forms), or undefined. Inline
 * JSON ({value}) is data, never refs; `list` items are values again, walked to `maxDepth`.
 * `scope` may be a getter, asked at the first ref (a value without refs needs no request).
 */
export function checkValueRefs(
  value: unknown,
  scope: RefScope | (() => RefScope),
  limits: RefLimits = REF_LIMITS,
  path = "value",
  depth = 0,
  budget: RefBudget = { refs: 0 },
): BadRef | undefined {
  if (!isObject(value))
    return bad(path, "shape", "must be an object holding one of value, pickle, list, call, blob or raw");
  if (value.blob !== undefined) {
    const b = checkOneRef(value.blob, scope, limits, `${path}.blob`, budget);
    if (b) return b;
  }
  if (!("list" in value)) return undefined;
  const list = value.list;
  if (!Array.isArray(list)) return bad(`${path}.list`, "shape", "must be an array of values");
  if (depth + 1 > limits.maxDepth)
    return bad(`${path}.list`, "depth", `lists nested deeper than ${limits.maxDepth} levels`);
  for (const [i, item] of list.entries()) {
    const b = checkValueRefs(item, scope, limits, `${path}.list[${i}]`, depth + 1, budget);
    if (b) return b;
  }
  return undefined;
}

function checkOneRef(
  ref: unknown,
  scope: RefScope | (() => RefScope),
  limits: RefLimits,
  path: string,
  budget: RefBudget,
): BadRef | undefined {
  if (typeof ref !== "string") return bad(path, "shape", "must be a string");
  if (++budget.refs > limits.maxRefs) return bad(path, "count", `more than ${limits.maxRefs} blob refs in one value`);
  return outside(ref, typeof scope === "function" ? scope() : scope, path);
}

/** A value that cannot be followed: a bad ref, a cycle, a chain too deep, a missing or unreadable blob. */
export class BlobRefError extends Error {
  constructor(readonly bad: BadRef) {
    super(bad.message);
  }
}

/**
 * Where a follower of blob refs is: the blobs on the way here (a ref among them is a cycle), the
 * depth, and the budget of blobs read in all. `enter` checks a ref before it is read.
 */
export class RefTrail {
  private constructor(
    readonly scope: RefScope,
    readonly limits: RefLimits,
    readonly depth: number,
    private readonly chain: readonly string[],
    private readonly budget: RefBudget,
  ) {}

  static start(scope: RefScope, limits: RefLimits = REF_LIMITS): RefTrail {
    return new RefTrail(scope, limits, 0, [], { refs: 0 });
  }

  /** The trail inside blob `ref` (found at `path`), or throws BlobRefError. */
  enter(ref: unknown, path: string): RefTrail {
    if (typeof ref !== "string") throw new BlobRefError(bad(path, "shape", "must be a string"));
    const o = outside(ref, this.scope, path);
    if (o) throw new BlobRefError(o);
    if (this.chain.includes(ref))
      throw new BlobRefError(
        bad(path, "cycle", `blob ${ref} refers back to itself (through ${this.chain.join(" -> ")})`),
      );
    if (this.chain.length + 1 > this.limits.maxDepth)
      throw new BlobRefError(bad(path, "depth", `blobs chained deeper than ${this.limits.maxDepth} levels`));
    if (++this.budget.refs > this.limits.maxRefs)
      throw new BlobRefError(bad(path, "count", `more than ${this.limits.maxRefs} blobs read for one value`));
    return new RefTrail(this.scope, this.limits, this.depth, [...this.chain, ref], this.budget);
  }

  /** The trail one `list` deeper, or throws BlobRefError. */
  nest(path: string): RefTrail {
    if (this.depth + 1 > this.limits.maxDepth)
      throw new BlobRefError(bad(path, "depth", `lists nested deeper than ${this.limits.maxDepth} levels`));
    return new RefTrail(this.scope, this.limits, this.depth + 1, this.chain, this.budget);
  }
}
