// Pure scaling decision for the pods of one function.
//
//   desired = clamp(ceil((queued + running) / concurrency), min, max)
//
// Scale up at once; scale down only pods idle longer than idleTimeout, longest idle first, never
// busy ones, never below desired (so never below min). Failed pods are replaced. Pods built from
// an older template are replaced: idle ones at once, busy ones once a current pod is ready (they
// drain their calls in the termination grace period).

export interface ScalePod {
  name: string;
  /** Built from the current pod template. */
  current: boolean;
  terminating: boolean;
  /** Phase Failed/Succeeded. */
  failed: boolean;
  /** Registered with the operator and able to take calls. */
  ready: boolean;
  /** Calls running on it. */
  running: number;
  /** Since when it has run nothing (ms since epoch): last busy time, else creation. */
  idleSince: number;
  /** Stuck: crash-looping, image not pullable, ... (reaped first when idle). */
  unhealthy: boolean;
}

export interface ScaleInput {
  queued: number;
  running: number;
  concurrency: number;
  minContainers: number;
  maxContainers: number;
  /** A lower bound besides min (one pod to load new code and report its function table). */
  floor?: number;
  pods: ScalePod[];
  now: number;
  idleTimeoutMs: number;
}

export type DeleteReason = "failed" | "outdated" | "idle";

export interface ScaleDecision {
  desired: number;
  create: number;
  delete: { name: string; reason: DeleteReason }[];
  /** When an idle pod beyond `desired` becomes old enough to reap (ms since epoch). */
  nextCheckAt?: number;
}

export function desiredContainers(
  i: Pick<ScaleInput, "queued" | "running" | "concurrency" | "minContainers" | "maxContainers" | "floor">,
): number {
  const max = Math.max(1, i.maxContainers);
  const wanted = Math.ceil(Math.max(0, i.queued + i.running) / Math.max(1, i.concurrency));
  return Math.min(max, Math.max(wanted, i.minContainers, i.floor ?? 0));
}

export function decideScale(i: ScaleInput): ScaleDecision {
  const desired = desiredContainers(i);
  const del: ScaleDecision["delete"] = [];
  const live = i.pods.filter((p) => !p.terminating);

  for (const p of live) if (p.failed) del.push({ name: p.name, reason: "failed" });
  const running = live.filter((p) => !p.failed);
  const current = running.filter((p) => p.current);
  const currentReady = current.some((p) => p.ready);
  for (const p of running) {
    if (!p.current && (p.running === 0 || currentReady)) del.push({ name: p.name, reason: "outdated" });
  }

  const create = Math.max(0, desired - current.length);
  let nextCheckAt: number | undefined;
  const excess = current.length - desired;
  if (excess > 0) {
    const idle = current.filter((p) => p.running === 0);
    const reapable = idle
      .filter((p) => i.now - p.idleSince >= i.idleTimeoutMs)
      .sort(
        (a, b) =>
          Number(b.unhealthy) - Number(a.unhealthy) ||
          Number(a.ready) - Number(b.ready) ||
          a.idleSince - b.idleSince ||
          a.name.localeCompare(b.name),
      );
    for (const p of reapable.slice(0, excess)) del.push({ name: p.name, reason: "idle" });
    if (reapable.length < excess) {
      const waiting = idle.filter((p) => i.now - p.idleSince < i.idleTimeoutMs).map((p) => p.idleSince);
      if (waiting.length) nextCheckAt = Math.min(...waiting) + i.idleTimeoutMs;
    }
  }
  return { desired, create, delete: del, ...(nextCheckAt !== undefined ? { nextCheckAt } : {}) };
}
