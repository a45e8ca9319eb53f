import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { application, functionCall } from "../../../protocol/index.js";
import { buildCrd, schemaOf } from "./crd-from-zod.js";
import { crdSources } from "./sources.js";
import { renderCrds } from "./render.js";

const crdDir = join(dirname(fileURLToPath(import.meta.url)), "../../../crds");

function walk(node: unknown, path: string, visit: (n: Record<string, unknown>, p: string) => void): void {
  if (node === null || typeof node !== "object") return;
  const n = node as Record<string, unknown>;
  visit(n, path);
  for (const [k, v] of Object.entries((n.properties as Record<string, unknown>) ?? {})) walk(v, `${path}.${k}`, visit);
  if (n.items) walk(n.items, `${path}[]`, visit);
  if (n.additionalProperties && typeof n.additionalProperties === "object") walk(n.additionalProperties, `${path}{}`, visit);
}

describe("generated CRDs", () => {
  it("match the files in crds/ (run npm run crds after changing a schema)", () => {
    for (const [name, text] of renderCrds()) {
      expect(readFileSync(join(crdDir, name), "utf8"), name).toBe(text);
    }
  });

  it("name no field with a word YAML 1.1 reads as a boolean (the API server would drop the field)", () => {
    const bad: string[] = [];
    for (const src of crdSources) {
      const crd = buildCrd(src) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
      walk(crd.spec.versions[0]!.schema.openAPIV3Schema, src.kind, (_n, p) => {
        const key = p.split(".").pop()!.replace(/[[\]{}]/g, "");
        if (/^(y|n|yes|no|on|off|true|false)$/i.test(key)) bad.push(p);
      });
    }
    expect(bad).toEqual([]);
  });

  it("are structural: every node has a type or keeps unknown fields, every field a description", () => {
    const missing: string[] = [];
    for (const src of crdSources) {
      const props = (buildCrd(src) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } }).spec.versions[0]
        ?.schema.openAPIV3Schema;
      walk(props, src.kind, (n, p) => {
        if (n.type === undefined && n["x-kubernetes-preserve-unknown-fields"] !== true) missing.push(`${p}: no type`);
        if (n.additionalProperties === false || n.anyOf !== undefined) missing.push(`${p}: not structural`);
        if (n.description === undefined && p !== `${src.kind}.metadata`) missing.push(`${p}: no description`);
      });
    }
    expect(missing, missing.join("; ")).toEqual([]);
  });

  it("refuses unions, which are not structural", () => {
    expect(() => schemaOf(z.object({ u: z.union([z.string(), z.number()]) }))).toThrow(/not structural/);
  });
});

describe("zod validation names the field and the rule", () => {
  const fc = (spec: unknown) => ({ apiVersion: "trellis.dev/v1alpha1", kind: "FunctionCall", metadata: { name: "x" }, spec });

  it("accepts a request with inline and referenced inputs", () => {
    const r = functionCall.safeParse(fc({ application: "greet", function: "greet", args: [{ value: "Ada" }, { call: "greet-1" }] }));
    expect(r.success).toBe(true);
  });

  it("rejects a value with two forms", () => {
    const r = functionCall.safeParse(fc({ application: "a", function: "f", args: [{ value: 1, call: "b" }] }));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["spec", "args", 0]);
    expect(r.error?.issues[0]?.message).toMatch(/exactly one of value, pickle, list, call, blob or raw/);
  });

  it("accepts raw bytes with a MIME type and names the rule for a bad one", () => {
    const ok = functionCall.safeParse(
      fc({ application: "a", function: "f", args: [{ raw: { contentType: "application/pdf", data: "JVBERg==" } }] }),
    );
    expect(ok.success).toBe(true);
    const bad = functionCall.safeParse(
      fc({ application: "a", function: "f", args: [{ raw: { contentType: "pdf", data: "JVBERg==" } }] }),
    );
    expect(bad.error?.issues[0]?.path).toEqual(["spec", "args", 0, "raw", "contentType"]);
    expect(bad.error?.issues[0]?.message).toMatch(/MIME type/);
    const notB64 = functionCall.safeParse(
      fc({ application: "a", function: "f", args: [{ raw: { contentType: "text/plain", data: "%%%" } }] }),
    );
    expect(notB64.error?.issues[0]?.message).toMatch(/base64/);
  });

  it("rejects a function name that is not a Python identifier", () => {
    const r = functionCall.safeParse(fc({ application: "a", function: "not-python" }));
    expect(r.error?.issues[0]?.path).toEqual(["spec", "function"]);
    expect(r.error?.issues[0]?.message).toMatch(/Python identifier/);
  });

  it("rejects an application with bad container bounds and names the rule in the CRD too", () => {
    const r = application.safeParse({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      metadata: { name: "a" },
      spec: { entrypoint: "main", module: "app", functions: [{ name: "f", minContainers: -1 }] },
    });
    expect(r.error?.issues[0]?.path).toEqual(["spec", "functions", 0, "minContainers"]);
    const crd = renderCrds().get("trellis.dev_applications.yaml") ?? "";
    expect(crd).toContain("minContainers must be <= maxContainers");
  });
});
