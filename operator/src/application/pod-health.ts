// Pure reading of a function pod's status: is it ready, failed, terminating, stuck, and did its
// worker fail to load the user's code.
import type { V1ContainerStatus } from "@kubernetes/client-node";
import { CONTAINER, LABEL } from "../../../protocol/index.js";
import { podSecretName } from "./names.js";
import { WORKER_EXIT_CODE_LOAD_FAILED, podFunction } from "./pod-builder.js";
import type { Pod } from "./types.js";

export interface PodProblem {
  /** CrashLoopBackOff, ImagePullBackOff, ErrImageNeverPull, OOMKilled, CreateContainerConfigError, ... */
  reason: string;
  message: string;
  container?: string;
}

export interface ObservedPod {
  name: string;
  function: string;
  templateHash: string | undefined;
  createdAt: number;
  terminating: boolean;
  /** Phase Failed or Succeeded: the pod will not run again and is replaced. */
  failed: boolean;
  failedReason?: string;
  /** The pod's Ready condition (the sidecar passed its startup probe, the worker runs). */
  podReady: boolean;
  problem?: PodProblem;
  /** The worker exited with the load-failure code; the tail of its log (the traceback). */
  loadError?: string;
  /** The sidecar cannot start because its token Secret is missing (lost between two writes). */
  missingTokenSecret: boolean;
  /** A problem is held back by a grace period ending then (ms since epoch): look again. */
  recheckAt?: number;
}

/** Reasons a container waits that need a human (the rest are normal start-up states). */
const STUCK_WAITING = new Set([
  "CrashLoopBackOff",
  "ImagePullBackOff",
  "ErrImagePull",
  "ErrImageNeverPull",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);
const MESSAGE_TAIL = 2000;

export const toMs = (t: string | Date | undefined): number | undefined => {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
};

/** The end of a message: tracebacks end with the exception, so the tail is what matters. */
export const tail = (s: string, n = MESSAGE_TAIL): string => {
  const t = s.trim();
  return t.length <= n ? t : `…${t.slice(t.length - n)}`;
};

function lastTermination(cs: V1ContainerStatus) {
  return cs.state?.terminated ?? cs.lastState?.terminated;
}

function containerProblem(
  cs: V1ContainerStatus,
  createdAt: number,
  now: number,
  graceMs: number,
): PodProblem | undefined {
  const term = lastTermination(cs);
  return oomProblem(cs, term) ?? stuckWaitingProblem(cs, term, createdAt, now, graceMs);
}

type Termination = ReturnType<typeof lastTermination>;

/** An OOM kill explains a crash loop better than the loop itself does. */
function oomProblem(cs: V1ContainerStatus, term: Termination): PodProblem | undefined {
  if (term?.reason !== "OOMKilled") return undefined;
  if (cs.state?.waiting?.reason !== "CrashLoopBackOff" && !cs.state?.terminated) return undefined;
  return {
    reason: "OOMKilled",
    container: cs.name,
    message: `container ${cs.name} was killed for exceeding its memory limit (restarted ${cs.restartCount} times)`,
  };
}

function stuckWaitingProblem(
  cs: V1ContainerStatus,
  term: Termination,
  createdAt: number,
  now: number,
  graceMs: number,
): PodProblem | undefined {
  const waiting = cs.state?.waiting;
  if (!waiting?.reason || !STUCK_WAITING.has(waiting.reason)) return undefined;
  // The token Secret is created right after the pod: give the kubelet's first attempt some slack.
  if (waiting.reason === "CreateContainerConfigError" && now - createdAt < graceMs) return undefined;
  let message = `container ${cs.name}: ${waiting.message ?? waiting.reason}`;
  if (waiting.reason === "CrashLoopBackOff" && term) {
    message = `container ${cs.name} keeps exiting (code ${term.exitCode}, restarted ${cs.restartCount} times)`;
    if (term.message) message += `: ${tail(term.message)}`;
  }
  return { reason: waiting.reason, container: cs.name, message };
}

/** The first stuck container, else an unschedulable pod. */
function podProblem(
  pod: Pod,
  statuses: V1ContainerStatus[],
  createdAt: number,
  now: number,
  graceMs: number,
): PodProblem | undefined {
  for (const cs of statuses) {
    const problem = containerProblem(cs, createdAt, now, graceMs);
    if (problem) return problem;
  }
  const unschedulable = pod.status?.conditions?.find(
    (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
  );
  return unschedulable
    ? { reason: "Unschedulable", message: unschedulable.message ?? "no node fits the pod" }
    : undefined;
}

function workerLoadError(statuses: V1ContainerStatus[]): string | undefined {
  const worker = statuses.find((cs) => cs.name === CONTAINER.worker);
  const wt = worker && lastTermination(worker);
  return wt?.exitCode === WORKER_EXIT_CODE_LOAD_FAILED
    ? tail(wt.message || `the worker exited with code ${WORKER_EXIT_CODE_LOAD_FAILED} (code failed to load)`)
    : undefined;
}

function isMissingTokenSecret(statuses: V1ContainerStatus[], podName: string): boolean {
  const secret = podSecretName(podName);
  return statuses.some(
    (cs) =>
      cs.state?.waiting?.reason === "CreateContainerConfigError" &&
      (cs.state.waiting.message ?? "").includes(`"${secret}" not found`),
  );
}

const failedReason = (pod: Pod): string | undefined =>
  [pod.status?.reason, pod.status?.message].filter(Boolean).join(": ") || pod.status?.phase;

const isTerminating = (pod: Pod): boolean =>
  pod.metadata.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;

const isPodReady = (pod: Pod): boolean =>
  pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

const containerStatuses = (pod: Pod): V1ContainerStatus[] => [
  ...(pod.status?.initContainerStatuses ?? []),
  ...(pod.status?.containerStatuses ?? []),
];

/** A config error inside the grace period is not a problem yet, but must be looked at again. */
const inConfigErrorGrace = (statuses: V1ContainerStatus[], createdAt: number, now: number, graceMs: number) =>
  statuses.some((cs) => cs.state?.waiting?.reason === "CreateContainerConfigError") && now - createdAt < graceMs;

export function observePod(pod: Pod, now: number, configErrorGraceSeconds: number): ObservedPod {
  const name = pod.metadata.name ?? "";
  const createdAt = toMs(pod.metadata.creationTimestamp) ?? now;
  const phase = pod.status?.phase;
  const statuses = containerStatuses(pod);
  const graceMs = configErrorGraceSeconds * 1000;

  const problem = podProblem(pod, statuses, createdAt, now, graceMs);
  const loadError = workerLoadError(statuses);
  const missingTokenSecret = isMissingTokenSecret(statuses, name);
  const inGrace = !problem && inConfigErrorGrace(statuses, createdAt, now, graceMs);
  const failed = phase === "Failed" || phase === "Succeeded";
  return {
    name,
    function: podFunction(pod) ?? "",
    templateHash: pod.metadata.labels?.[LABEL.podTemplateHash],
    createdAt,
    terminating: isTerminating(pod),
    failed,
    ...(failed ? { failedReason: failedReason(pod) } : {}),
    podReady: isPodReady(pod),
    ...(problem ? { problem } : {}),
    ...(loadError ? { loadError } : {}),
    missingTokenSecret,
    ...(inGrace ? { recheckAt: createdAt + graceMs } : {}),
  };
}
