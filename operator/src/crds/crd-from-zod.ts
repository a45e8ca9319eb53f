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
    if (DROP_KEYS.has(key)) continue;
    if (key === "additionalProperties" && typeof value === "boolean") continue;
    // An object that keeps unknown fields needs no schema for them.
    if (key === "additionalProperties" && (node as JsonSchema)["x-kubernetes-preserve-unknown-fields"] === true) continue;
    if ((key === "maximum" && value === JS_SAFE_INT) || (key === "minimum" && value === -JS_SAFE_INT)) continue;
    if (key === "properties") {
      const props: JsonSchema = {};
      for (const [name, sub] of Object.entries(value as JsonSchema)) props[name] = toStructural(sub);
      out.properties = props;
    } else if (key === "items" || key === "additionalProperties") {
      out[key] = toStructural(value);
    } else if (key === "anyOf" || key === "oneOf" || key === "allOf") {
      throw new Error(`unions (${key}) are not structural; model them as optional fields plus a CEL rule`);
    } else {
      out[key] = value;
    }
  }
  if (out["x-kubernetes-preserve-unknown-fields"] === true && out.type === undefined && out.properties === undefined) {
    // An arbitrary JSON value: any type, kept as given.
    return out;
  }
  if (out.type === undefined) throw new Error(`schema without a type: ${JSON.stringify(node)}`);
  return out;
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
