import { z } from "zod";

type JsonSchema = { [key: string]: unknown };

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CrdSource {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  /** CEL rules on the whole object (they may read metadata.name). */
  rootValidations?: { rule: string; message: string }[];
}

// JSON-Schema keywords that a structural schema may not hold, or that carry no meaning for Kubernetes.
const DROP_KEYS = new Set(["$schema", "id", "$id", "definitions", "$defs"]);
const JS_SAFE_INT = 9007199254740991;

/** Rewrites zod's JSON Schema into a Kubernetes structural schema. */
export function toStructural(node: unknown): JsonSchema {
  if (Array.isArray(node) || node === null || typeof node !== "object") {
    throw new Error(`expected a schema object, got ${JSON.stringify(node)}`);
  }
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (!isDropped(key, value, node as JsonSchema)) out[key] = structuralValue(key, value);
  }
  // An arbitrary JSON value (unknown fields kept, no properties) needs no type: it is kept as given.
  const anyValue = out["x-kubernetes-preserve-unknown-fields"] === true && out.properties === undefined;
  if (out.type === undefined && !anyValue) throw new Error(`schema without a type: ${JSON.stringify(node)}`);
  return out;
}

function isDropped(key: string, value: unknown, node: JsonSchema): boolean {
  if (DROP_KEYS.has(key)) return true;
  if (key === "additionalProperties") {
    // An object that keeps unknown fields needs no schema for them.
    return typeof value === "boolean" || node["x-kubernetes-preserve-unknown-fields"] === true;
  }
  // zod's bounds of a safe integer say nothing a Kubernetes integer needs.
  return (key === "maximum" && value === JS_SAFE_INT) || (key === "minimum" && value === -JS_SAFE_INT);
}

const UNIONS = new Set(["anyOf", "oneOf", "allOf"]);

/** A keyword's value in the structural schema: nested schemas rewritten, the rest as is. */
function structuralValue(key: string, value: unknown): unknown {
  if (key === "properties") {
    const props: JsonSchema = {};
    for (const [name, sub] of Object.entries(value as JsonSchema)) props[name] = toStructural(sub);
    return props;
  }
  if (key === "items" || key === "additionalProperties") return toStructural(value);
  if (UNIONS.has(key)) {
    throw new Error(`unions (${key}) are not structural; model them as optional fields plus a CEL rule`);
  }
  return value;
}

export function schemaOf(t: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(t, { target: "openapi-3.0", io: "input", unrepresentable: "throw" }));
}

export function buildCrd(src: CrdSource): JsonSchema {
  const openAPIV3Schema: JsonSchema = {
    type: "object",
    description: src.description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "APIVersion of this object." },
      kind: { type: "string", description: "Kind of this object." },
      metadata: { type: "object" },
      spec: schemaOf(src.spec),
      status: schemaOf(src.status),
    },
  };
  if (src.rootValidations?.length) openAPIV3Schema["x-kubernetes-validations"] = src.rootValidations;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${src.plural}.${src.group}`, labels: { "app.kubernetes.io/part-of": "trellis" } },
    spec: {
      group: src.group,
      scope: "Namespaced",
      names: {
        kind: src.kind,
        listKind: `${src.kind}List`,
        plural: src.plural,
        singular: src.singular,
        shortNames: src.shortNames,
        categories: src.categories,
      },
      versions: [
        {
          name: src.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: src.printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
