// Which application and function a pod serves, from the labels the Application controller puts
// on function pods (the exact Python name is in an annotation: label values cannot start with _).
// The same check decides whether a pod may hold a runtime token at all: only pods this operator
// created (its labels and the controller reference to their Application), alive, with a uid.
import { ANNOTATION, API_VERSION, LABEL, MANAGED_BY } from "../../../protocol/index.js";
import type { Cache, KubeObject } from "../kube/index.js";

/** A live function pod the operator created: the token of a request must be bound to `uid`. */
export interface FunctionPodIdentity {
  application: string;
  function: string;
  uid: string;
}

/** The identity of a function pod, or the reason the pod is not one (naming the rule). */
export function functionPodIdentity(p: KubeObject | undefined): FunctionPodIdentity | string {
  if (!p) return "not a pod known to the operator";
  const labels = p.metadata.labels ?? {};
  if (labels[LABEL.managedBy] !== MANAGED_BY)
    return `not created by the operator (label ${LABEL.managedBy}=${MANAGED_BY} missing)`;
  const application = labels[LABEL.application];
  const fn = p.metadata.annotations?.[ANNOTATION.functionName] ?? labels[LABEL.function];
  if (!application || !fn) return `not a function pod (labels ${LABEL.application} and ${LABEL.function} required)`;
  const owner = p.metadata.ownerReferences?.find((o) => o.controller);
  if (owner?.apiVersion !== API_VERSION || owner.kind !== "Application" || owner.name !== application)
    return `not created by the operator (no controller reference to Application ${application})`;
  if (p.metadata.deletionTimestamp) return "being deleted";
  if (!p.metadata.uid) return "has no uid";
  return { application, function: fn, uid: p.metadata.uid };
}

/** Looks a pod up in the operator's pod cache (`<namespace>/<name>` keys). */
export function podIdentityFromCache(
  pods: Pick<Cache<KubeObject>, "get">,
): (namespace: string, pod: string) => FunctionPodIdentity | string {
  return (namespace, pod) => functionPodIdentity(pods.get(`${namespace}/${pod}`));
}
