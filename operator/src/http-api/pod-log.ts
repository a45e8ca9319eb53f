// The web view's logs route reads a pod's log through the operator's client: the API server's
// log endpoint answers text/plain, so the stream is read raw (as `kubectl trellis logs` does).
import type { KubeClient } from "../kube/client.js";
import { KubeApiError } from "../kube/errors.js";
import type { HttpApiDeps } from "./types.js";

/** A log read must not hold a connection longer than this (the pod's node may be slow). */
const LOG_TIMEOUT_MS = 10_000;

export function kubePodLog(client: Pick<KubeClient, "stream">): NonNullable<HttpApiDeps["podLog"]> {
  return async (namespace, pod, { tailLines, limitBytes }) => {
    let res;
    try {
      res = await client.stream(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`,
        { container: "worker", tailLines, limitBytes },
        AbortSignal.timeout(LOG_TIMEOUT_MS),
      );
    } catch (e) {
      if (e instanceof KubeApiError && e.statusCode === 404) return { gone: true };
      // "container worker in pod P is waiting to start: PodInitializing": also right after a
      // quick call, before the kubelet reported the container running.
      if (e instanceof KubeApiError && e.statusCode === 400 && /waiting to start/.test(e.message))
        return { waiting: e.message };
      throw e;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size > limitBytes) break; // the API server cuts at limitBytes; never hold more
    }
    res.destroy();
    return { text: Buffer.concat(chunks).subarray(-limitBytes).toString("utf8") };
  };
}
