// What a new leader learns at start: a pod deleted while no operator was leading sent no DELETED
// event to anyone, so the calls it was running would wait for a heartbeat timeout, and a leader
// that lives shorter than that timeout (repeated failovers) would never re-run them. The synced
// pod cache is authoritative: a running call's pod missing from it is gone.
import type { Call } from "./calls.js";

export interface PodRef {
  namespace: string;
  pod: string;
}

/** Pods named by Running calls that the synced pod cache no longer holds (each once). Pure. */
export function podsGoneAtStart(
  calls: readonly Call[],
  podExists: (namespace: string, pod: string) => boolean,
): PodRef[] {
  const seen = new Set<string>();
  const out: PodRef[] = [];
  for (const c of calls) {
    const pod = c.status?.pod;
    if (c.status?.phase !== "Running" || !pod) continue;
    const namespace = c.metadata.namespace ?? "";
    const k = `${namespace}/${pod}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (!podExists(namespace, pod)) out.push({ namespace, pod });
  }
  return out;
}
