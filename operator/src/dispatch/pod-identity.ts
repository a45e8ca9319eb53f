// Which application and function a pod serves, from the labels the Application controller puts
// on function pods (the exact Python name is in an annotation: label values cannot start with _).
import { ANNOTATION, LABEL } from "../../../protocol/index.js";
import type { Cache, KubeObject } from "../kube/index.js";

export function podIdentityFromCache(
  pods: Pick<Cache<KubeObject>, "get">,
): (namespace: string, pod: string) => { application: string; function: string } | undefined {
  return (namespace, pod) => {
    const p = pods.get(`${namespace}/${pod}`);
    const application = p?.metadata.labels?.[LABEL.application];
    const fn = p?.metadata.annotations?.[ANNOTATION.functionName] ?? p?.metadata.labels?.[LABEL.function];
    if (!p || p.metadata.deletionTimestamp || !application || !fn) return undefined;
    return { application, function: fn };
  };
}
