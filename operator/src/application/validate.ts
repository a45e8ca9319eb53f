// Validation of an Application beyond what admission checked: the zod schema (the same source
// as the CRD) plus the cross-field rules, each error naming the field and the rule.
import {
  POD_TOKEN_SECRET_SUFFIX,
  type ApplicationSpec,
  applicationSpec,
  isPodTokenSecretName,
} from "../../../protocol/index.js";
import type { ApplicationObject } from "./types.js";

export type Validated = { ok: true; spec: ApplicationSpec } | { ok: false; errors: string[] };

const fieldPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : `${acc}.${String(k)}`), "spec");

export function validateApplication(
  app: Pick<ApplicationObject, "metadata" | "spec">,
  reservedSecrets: readonly string[] = [],
): Validated {
  const errors: string[] = [];
  const name = app.metadata.name ?? "";
  if (name.length > 63) errors.push("metadata.name: must be at most 63 characters (it is used as a label value)");
  const parsed = applicationSpec.safeParse(app.spec);
  if (!parsed.success) {
    for (const i of parsed.error.issues) errors.push(`${fieldPath(i.path)}: ${i.message}`);
    return { ok: false, errors };
  }
  const spec = parsed.data;
  errors.push(...crossFieldErrors(spec), ...secretErrors(spec, app.metadata.namespace ?? "", reservedSecrets));
  return errors.length ? { ok: false, errors } : { ok: true, spec };
}

/** Rules across fields, which the zod schema does not check. */
function crossFieldErrors(spec: ApplicationSpec): string[] {
  const errors: string[] = [];
  const src = spec.source;
  if (src && (src.inline === undefined) === (src.configMapRef === undefined)) {
    errors.push("spec.source: exactly one of inline or configMapRef must be set");
  }
  if (!spec.module && !spec.source && !spec.image) errors.push("spec: one of module, source or image must be set");
  const seen = new Set<string>();
  spec.functions?.forEach((f, i) => {
    if (seen.has(f.name)) errors.push(`spec.functions[${i}].name: duplicate function name ${JSON.stringify(f.name)}`);
    seen.add(f.name);
    if (f.minContainers !== undefined && f.maxContainers !== undefined && f.minContainers > f.maxContainers) {
      errors.push(`spec.functions[${i}]: minContainers must be <= maxContainers`);
    }
  });
  const d = spec.defaults;
  if (d?.minContainers !== undefined && d.maxContainers !== undefined && d.minContainers > d.maxContainers) {
    errors.push("spec.defaults: minContainers must be <= maxContainers");
  }
  return errors;
}

/**
 * `secrets` become the environment of the function containers: they may not name another pod's
 * runtime token Secret (that would let this app act as that pod) nor the operator's key Secret.
 * The admission policy of the chart says the same; this covers clusters without it.
 */
function secretErrors(spec: ApplicationSpec, namespace: string, reserved: readonly string[]): string[] {
  const errors: string[] = [];
  const check = (where: string, names: readonly string[] | undefined) =>
    names?.forEach((n, j) => {
      if (isPodTokenSecretName(n))
        errors.push(
          `${where}.secrets[${j}]: ${JSON.stringify(n)} is a pod runtime token Secret (name ends with ${POD_TOKEN_SECRET_SUFFIX}); Applications may not name them`,
        );
      else if (reserved.includes(`${namespace}/${n}`))
        errors.push(
          `${where}.secrets[${j}]: ${JSON.stringify(n)} is the operator's key Secret; Applications may not name it`,
        );
    });
  spec.functions?.forEach((f, i) => check(`spec.functions[${i}]`, f.secrets));
  check("spec.defaults", spec.defaults?.secrets);
  return errors;
}
