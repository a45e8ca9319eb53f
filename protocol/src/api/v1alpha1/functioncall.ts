import { z } from "zod";
import { CHILD_SUFFIX_LEN } from "../../child-names.js";
import { CALL_FAILURE_REASONS } from "../../failures.js";
import { API_VERSION, condition, objectMeta, objectName, pythonIdentifier, retryPolicy, valueRef } from "./common.js";

/** Most positional arguments and map/reduce items one FunctionCall may carry inline. */
export const MAX_ARGS = 64;
export const MAX_COLLECTION_ITEMS = 10000;
/** Most map items one shard FunctionCall holds (its status keeps one compact entry per item). */
export const SHARD_MAX_ITEMS = 500;

export const PHASES = [
  "Pending",
  "Blocked",
  "Queued",
  "Running",
  "Delegated",
  "Succeeded",
  "Failed",
  "Cancelled",
] as const;
export const phase = z.enum(PHASES);
export type Phase = z.infer<typeof phase>;
export const TERMINAL_PHASES: readonly Phase[] = ["Succeeded", "Failed", "Cancelled"];

const collectionItems = z.array(valueRef).max(MAX_COLLECTION_ITEMS).optional().meta({
  description: "The items, each a value or a reference; futures among them are dependencies.",
});
const collectionFrom = objectName.optional().meta({
  description: "A FunctionCall whose output (a list) supplies the items: a future of a list.",
});

export const functionCallSpec = z
  .object({
    // An Application's name is at most 63 characters (a label value): a longer reference names nothing.
    application: objectName.max(63).meta({ description: "Name of the Application in this namespace." }),
    function: pythonIdentifier.meta({ description: "Function to call." }),
    args: z.array(valueRef).max(MAX_ARGS).optional().meta({ description: "Positional arguments, in order." }),
    kwargs: z
      .record(z.string(), valueRef)
      .optional()
      .meta({ description: "Keyword arguments by name.", maxProperties: MAX_ARGS }),
    map: z
      .object({ items: collectionItems, itemsFrom: collectionFrom })
      .optional()
      .meta({
        description: "Call the function once per item; the output is the list of outputs in input order.",
        "x-kubernetes-validations": [
          { rule: "has(self.items) != has(self.itemsFrom)", message: "exactly one of items or itemsFrom must be set" },
        ],
      }),
    reduce: z
      .object({
        items: collectionItems,
        itemsFrom: collectionFrom,
        initial: valueRef.optional().meta({ description: "Initial accumulator." }),
      })
      .optional()
      .meta({
        description: "Left fold: function(accumulator, item) for each item, each step depending on the previous.",
        "x-kubernetes-validations": [
          { rule: "has(self.items) != has(self.itemsFrom)", message: "exactly one of items or itemsFrom must be set" },
        ],
      }),
    shard: z
      .object({
        offset: z.number().int().min(0).meta({ description: "Index in the map of the first item." }),
        items: z.array(valueRef).min(1).max(SHARD_MAX_ITEMS).meta({
          description: "The items, in order: item offset+i is a call of the function with items[i] as its argument.",
        }),
      })
      .optional()
      .meta({
        description:
          "A shard of the map spec.parent: its items run as calls of their own (named as the map's children with sequence offset+i) whose states are in status.items.",
      }),
    parent: objectName
      .optional()
      .meta({ description: "The FunctionCall that made this call; absent for a request (root call)." }),
    request: objectName
      .optional()
      .meta({ description: "The root FunctionCall of the request; absent on the root itself." }),
    sequence: z.number().int().min(0).optional().meta({
      description: "Position of this call among its parent's operations; with parent it fixes the name.",
    }),
    headers: z
      .record(z.string(), z.string().max(8192).meta({ description: "Header value." }))
      .optional()
      .meta({
        description: "Request headers given to the request's functions.",
        maxProperties: 64,
      }),
    startAfter: z.string().optional().meta({
      description: "Do not start before this time (Future.run_later).",
      format: "date-time",
    }),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(86400)
      .optional()
      .meta({ description: "Overrides the function's timeout per attempt." }),
    retries: retryPolicy.optional().meta({ description: "Overrides the function's retry policy." }),
  })
  .meta({
    description: "One invocation of one function. Immutable after creation.",
    "x-kubernetes-validations": [
      { rule: "self == oldSelf", message: "spec is immutable" },
      { rule: "!(has(self.map) && has(self.reduce))", message: "map and reduce cannot both be set" },
      {
        rule: "!(has(self.map) || has(self.reduce)) || (!has(self.args) || size(self.args) == 0) && (!has(self.kwargs) || size(self.kwargs) == 0)",
        message: "args and kwargs must be empty when map or reduce is set",
      },
      { rule: "!has(self.parent) || has(self.request)", message: "request is required when parent is set" },
      { rule: "!has(self.parent) || has(self.sequence)", message: "sequence is required when parent is set" },
      {
        rule: "!has(self.shard) || has(self.parent) && !has(self.map) && !has(self.reduce) && (!has(self.args) || size(self.args) == 0) && (!has(self.kwargs) || size(self.kwargs) == 0)",
        message: "a shard (spec.shard) needs spec.parent, its map, and no args, kwargs, map or reduce",
      },
    ],
  });
export type FunctionCallSpec = z.infer<typeof functionCallSpec>;

export const callError = z
  .object({
    type: z.string().max(1024).meta({ description: "Exception type, e.g. ValueError or FunctionError." }),
    message: z.string().max(32768).meta({ description: "Exception message, kept exactly." }),
    traceback: z.string().max(65536).optional().meta({ description: "Python traceback of the failure." }),
    reason: z.enum(CALL_FAILURE_REASONS).optional().meta({ description: "Why the call failed." }),
    cause: objectName.optional().meta({ description: "The FunctionCall whose failure caused this one." }),
  })
  .meta({ description: "Why the call failed." });
export type CallError = z.infer<typeof callError>;

/** Phase letters of shard items (status.items[].p): the first letter of each phase. */
export const ITEM_PHASE_LETTERS = ["P", "B", "Q", "R", "D", "S", "F", "C"] as const;

const msOffset = (what: string) =>
  z
    .number()
    .int()
    .optional()
    .meta({ description: `${what}, in milliseconds after status.epoch.` });

/** One map item's state in its shard's status, in a compact form (a shard holds hundreds). */
export const shardItemStatus = z
  .object({
    p: z.enum(ITEM_PHASE_LETTERS).optional().meta({
      description:
        "Phase: Pending (absent), Blocked, Queued, Running, Delegated, Succeeded, Failed or Cancelled, by its first letter.",
    }),
    a: z.number().int().min(0).optional().meta({ description: "Attempts started, retries included." }),
    i: z.number().int().min(0).optional().meta({ description: "Attempts lost to a worker or container crash." }),
    d: z.number().int().min(0).optional().meta({ description: "Attempts lost because their pod went away." }),
    w: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: "Pod running or last running the item: index in status.pods." }),
    q: msOffset("When the item became ready"),
    s: msOffset("When the current attempt started"),
    c: msOffset("When the item finished"),
    r: msOffset("The next attempt starts no earlier than this"),
    o: valueRef.optional().meta({ description: "The output: inline when small, else a blob reference." }),
    t: objectName.optional().meta({ description: "The call this item delegated its output to (tail call)." }),
    e: callError.optional(),
  })
  .meta({ description: "A map item's state (compact: one letter per field)." });
export type ShardItemStatus = z.infer<typeof shardItemStatus>;

export const functionCallStatus = z
  .object({
    phase: phase
      .optional()
      .meta({ description: "Pending, Blocked, Queued, Running, Delegated, Succeeded, Failed or Cancelled." }),
    attempts: z.number().int().min(0).optional().meta({ description: "Attempts started, retries included." }),
    infrastructureFailures: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: "Attempts lost to a worker or container crash." }),
    disruptions: z.number().int().min(0).optional().meta({
      description:
        "Attempts lost because their pod went away (deleted, evicted, preempted, its node lost); they spend no retries.",
    }),
    pod: z.string().max(253).optional().meta({ description: "Pod running or last running the call." }),
    queuedTime: z.string().optional().meta({ description: "When the call became ready.", format: "date-time" }),
    startTime: z.string().optional().meta({ description: "When the current attempt started.", format: "date-time" }),
    completionTime: z.string().optional().meta({ description: "When the call finished.", format: "date-time" }),
    retryAfter: z
      .string()
      .optional()
      .meta({ description: "The next attempt starts no earlier than this.", format: "date-time" }),
    output: valueRef.optional().meta({ description: "The output: inline value or blob reference." }),
    tailCall: objectName.optional().meta({ description: "The call this one delegated its output to (tail call)." }),
    error: callError.optional(),
    progress: z
      .object({
        current: z.number().meta({ description: "Work done so far." }),
        total: z.number().meta({ description: "Total work." }),
        message: z.string().max(1024).optional().meta({ description: "Progress message." }),
      })
      .optional()
      .meta({ description: "Last progress update reported by the function." }),
    conditions: z
      .array(condition)
      .optional()
      .meta({
        description: "Conditions of the call.",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      }),
    observedGeneration: z.number().int().optional().meta({ description: "Generation last reconciled." }),
    epoch: z.number().int().min(0).optional().meta({
      description: "A shard's time origin (milliseconds since 1970); its items' times are offsets from it.",
    }),
    pods: z
      .array(z.string().max(253).meta({ description: "A pod's name." }))
      .max(4096)
      .optional()
      .meta({ description: "A shard's pods: its items name theirs by index (status.items[].w)." }),
    items: z
      .array(shardItemStatus)
      .max(SHARD_MAX_ITEMS)
      .optional()
      .meta({ description: "A shard's items, in order (item spec.shard.offset + i); a missing entry is Pending." }),
    itemCounts: z
      .object({
        total: z.number().int().min(0).meta({ description: "Items in the shard." }),
        succeeded: z.number().int().min(0).meta({ description: "Items that Succeeded." }),
        failed: z.number().int().min(0).meta({ description: "Items that Failed or were Cancelled." }),
        running: z.number().int().min(0).meta({ description: "Items Running in a pod or Delegated." }),
      })
      .optional()
      .meta({ description: "A shard's progress: counts of its items by phase." }),
  })
  .meta({ description: "Observed state of the call; written only by the operator." });
export type FunctionCallStatus = z.infer<typeof functionCallStatus>;

/** Longest request (root call) name: its children are "<request>-<16 chars>" and must fit in 253. */
export const REQUEST_NAME_MAX = 253 - 1 - CHILD_SUFFIX_LEN;

/**
 * CEL rules on the whole FunctionCall object (they read metadata.name): a request's name leaves
 * room for its children's names, and a call never waits on itself (it would block forever).
 */
export const functionCallRootValidations = [
  {
    rule: `has(self.spec.parent) || size(self.metadata.name) <= ${REQUEST_NAME_MAX}`,
    message: `metadata.name of a request (a call without parent) must be at most ${REQUEST_NAME_MAX} characters, so that its children's names fit`,
  },
  {
    rule: "(!has(self.spec.parent) || self.spec.parent != self.metadata.name) && (!has(self.spec.request) || self.spec.request != self.metadata.name)",
    message: "spec.parent and spec.request must not name the call itself",
  },
  {
    rule: "(!has(self.spec.args) || self.spec.args.all(a, !has(a.call) || a.call != self.metadata.name)) && (!has(self.spec.kwargs) || self.spec.kwargs.all(k, !has(self.spec.kwargs[k].call) || self.spec.kwargs[k].call != self.metadata.name))",
    message: "an argument must not be the call's own output (spec.args[].call, spec.kwargs[].call)",
  },
  {
    rule: "(!has(self.spec.map) || !has(self.spec.map.itemsFrom) || self.spec.map.itemsFrom != self.metadata.name) && (!has(self.spec.reduce) || !has(self.spec.reduce.itemsFrom) || self.spec.reduce.itemsFrom != self.metadata.name)",
    message: "spec.map.itemsFrom and spec.reduce.itemsFrom must not name the call itself",
  },
];

/** The root rules in zod, so that a parse names the same rule as admission. */
function rootProblems(name: string, spec: FunctionCallSpec): string[] {
  const [long, selfRef, selfArg, selfItems] = functionCallRootValidations.map((r) => r.message);
  const out: string[] = [];
  if (spec.parent === undefined && name.length > REQUEST_NAME_MAX) out.push(long!);
  if (spec.parent === name || spec.request === name) out.push(selfRef!);
  const inputs = [...(spec.args ?? []), ...Object.values(spec.kwargs ?? {})];
  if (inputs.some((v) => v.call === name)) out.push(selfArg!);
  if (spec.map?.itemsFrom === name || spec.reduce?.itemsFrom === name) out.push(selfItems!);
  return out;
}

export const functionCall = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal("FunctionCall"),
    metadata: objectMeta,
    spec: functionCallSpec,
    status: functionCallStatus.optional(),
  })
  .superRefine((c, ctx) => {
    for (const message of rootProblems(c.metadata.name ?? "", c.spec)) ctx.addIssue({ code: "custom", message });
  });
export type FunctionCall = z.infer<typeof functionCall>;
