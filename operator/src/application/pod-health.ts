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
  const waiting = cs.state?.waiting;
  const term = lastTermination(cs);
  if (term?.reason === "OOMKilled" && (waiting?.reason === "CrashLoopBackOff" || cs.state?.terminated)) {
    return {
      reason: "OOMKilled",
      container: cs.name,
      message: `container ${cs.name} was killed for exceeding its memory limit (restarted ${cs.restartCount} times)`,
    };
  }
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

export function observePod(pod: Pod, now: number, configErrorGraceSeconds: number): ObservedPod {
  const name = pod.metadata.name ?? "";
  const createdAt = toMs(pod.metadata.creationTimestamp) ?? now;
  const phase = pod.status?.phase;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const graceMs = configErrorGraceSeconds * 1000;

  let problem: PodProblem | undefined;
  for (const cs of statuses) {
    problem = containerProblem(cs, createdAt, now, graceMs);
    if (problem) break;
  }
  if (!problem) {
    const unschedulable = pod.status?.conditions?.find(
      (c) => c.type === "PodScheduled" && c.status === "False" && c.reason === "Unschedulable",
    );
    if (unschedulable) problem = { reason: "Unschedulable", message: unschedulable.message ?? "no node fits the pod" };
  }

  const worker = statuses.find((cs) => cs.name === CONTAINER.worker);
  const wt = worker && lastTermination(worker);
  const loadError =
    wt?.exitCode === WORKER_EXIT_CODE_LOAD_FAILED
      ? tail(wt.message || `the worker exited with code ${WORKER_EXIT_CODE_LOAD_FAILED} (code failed to load)`)
      : undefined;

  const secret = podSecretName(name);
  const missingTokenSecret = statuses.some(
    (cs) =>
      cs.state?.waiting?.reason === "CreateContainerConfigError" &&
      (cs.state.waiting.message ?? "").includes(`"${secret}" not found`),
  );

  const inGrace =
    !problem &&
    statuses.some((cs) => cs.state?.waiting?.reason === "CreateContainerConfigError") &&
    now - createdAt < graceMs;
  const failed = phase === "Failed" || phase === "Succeeded";
  return {
    name,
    function: podFunction(pod) ?? "",
    templateHash: pod.metadata.labels?.[LABEL.podTemplateHash],
    createdAt,
    terminating: pod.metadata.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
    failed,
    ...(failed ? { failedReason: [pod.status?.reason, pod.status?.message].filter(Boolean).join(": ") || phase } : {}),
    podReady: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    ...(problem ? { problem } : {}),
    ...(loadError ? { loadError } : {}),
    missingTokenSecret,
    ...(inGrace ? { recheckAt: createdAt + graceMs } : {}),
  };
}
