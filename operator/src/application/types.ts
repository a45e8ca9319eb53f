// Shapes the Application controller reads and writes, and the narrow view of the dispatcher it
// needs. The dispatcher (operator/src/dispatch/) implements DispatcherView; main.ts wires it.
import type { V1ConfigMap, V1PodSpec, V1PodStatus, V1Secret } from "@kubernetes/client-node";
import type { Application, TensorlakeEntrypoint } from "../../../protocol/index.js";
import type { KubeObject } from "../kube/types.js";

export type ApplicationObject = Application & KubeObject;

/** A Pod as the watch layer keeps it (plain JSON: times may be strings). */
export type Pod = KubeObject & { spec?: V1PodSpec; status?: V1PodStatus };
export type ConfigMap = KubeObject & Omit<V1ConfigMap, "metadata">;
export type Secret = KubeObject & Omit<V1Secret, "metadata">;

/** One entry of the function table the worker found in the code (decorator values). */
export interface DiscoveredFunction {
  name: string;
  async?: boolean;
  application?: boolean;
  timeoutSeconds?: number;
  maxConcurrency?: number;
  minContainers?: number;
  maxContainers?: number;
  retries?: { maxRetries: number; initialDelaySeconds: number; maxDelaySeconds: number; delayMultiplier: number };
  parameters?: string[];
  tensorlake?: TensorlakeEntrypoint;
}

/** What the dispatcher knows of one pod (from its sidecar's register, leases and heartbeats). */
export interface PodActivity {
  /** The sidecar registered (its worker loaded the code) since the operator started. */
  registered: boolean;
  /** Calls assigned to the pod and not yet finished. */
  running: number;
  /** When `running` last dropped to 0 (ms since epoch); undefined if it never ran a call. */
  lastBusyAt?: number;
  /** The function table the sidecar reported at register. */
  functions?: DiscoveredFunction[];
}

export interface Backlog {
  /** Ready calls waiting for a container (retry backoff included). */
  queued: number;
  /** Calls assigned to a pod and not finished. */
  running: number;
}

/** The narrow view of the dispatcher the Application controller reads. */
export interface DispatcherView {
  queuedAndRunning(namespace: string, app: string, fn: string): Backlog;
  /** `pod` is the pod name in `namespace`; undefined when the pod never talked to this operator. */
  podActivity(namespace: string, pod: string): PodActivity | undefined;
  /** Functions of `app` with queued or running calls (a call may name a function no spec lists). */
  functionsWithBacklog(namespace: string, app: string): string[];
}
