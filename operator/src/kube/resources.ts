// Where each kind lives on the API server: (apiVersion, kind) → plural and scope, and the URL
// paths built from them. A fixed table of the kinds the operator touches; others are registered.

export interface ResourceInfo {
  apiVersion: string; // "v1" or "group/version"
  kind: string;
  plural: string;
  namespaced: boolean;
}

export const TRELLIS_GROUP = "trellis.dev";
export const TRELLIS_VERSION = "v1alpha1";
export const TRELLIS_API_VERSION = `${TRELLIS_GROUP}/${TRELLIS_VERSION}`;

const table = new Map<string, ResourceInfo>();
const id = (apiVersion: string, kind: string) => `${apiVersion}|${kind}`;

export function registerResource(info: ResourceInfo): void {
  table.set(id(info.apiVersion, info.kind), info);
}

for (const [apiVersion, kind, plural, namespaced] of [
  [TRELLIS_API_VERSION, "Application", "applications", true],
  [TRELLIS_API_VERSION, "FunctionCall", "functioncalls", true],
  ["v1", "Pod", "pods", true],
  ["v1", "Secret", "secrets", true],
  ["v1", "ConfigMap", "configmaps", true],
  ["v1", "Event", "events", true],
  ["v1", "Service", "services", true],
  ["v1", "ServiceAccount", "serviceaccounts", true],
  ["v1", "Namespace", "namespaces", false],
  ["v1", "Node", "nodes", false],
  ["events.k8s.io/v1", "Event", "events", true],
  ["coordination.k8s.io/v1", "Lease", "leases", true],
  ["apps/v1", "Deployment", "deployments", true],
  ["apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", false],
] as const) {
  registerResource({ apiVersion, kind, plural, namespaced });
}

export function resourceInfo(apiVersion: string, kind: string): ResourceInfo {
  const info = table.get(id(apiVersion, kind));
  if (!info) {
    throw new Error(
      `kind ${kind} in ${apiVersion}: not a known resource (register it with registerResource({apiVersion, kind, plural, namespaced}))`,
    );
  }
  return info;
}

/** "/api/v1" or "/apis/group/version". */
export function apiPrefix(apiVersion: string): string {
  return apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name?: string;
}

/** Path of a collection (no name) or an object, optionally a subresource such as "status". */
export function resourcePath(ref: ObjectRef, subresource?: string): string {
  const info = resourceInfo(ref.apiVersion, ref.kind);
  let p = apiPrefix(ref.apiVersion);
  if (info.namespaced) {
    if (ref.namespace) p += `/namespaces/${encodeURIComponent(ref.namespace)}`;
    else if (ref.name) throw new Error(`${ref.kind} ${ref.name}: namespace is required for a namespaced kind`);
  }
  p += `/${info.plural}`;
  if (ref.name) p += `/${encodeURIComponent(ref.name)}`;
  if (subresource) {
    if (!ref.name) throw new Error(`${ref.kind}: subresource ${subresource} needs an object name`);
    p += `/${subresource}`;
  }
  return p;
}
