import type { V1ContainerStatus } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { observePod } from "./pod-health.js";
import type { Pod } from "./types.js";

const NOW = Date.parse("2026-01-01T00:10:00Z");

function pod(
  statuses: Partial<V1ContainerStatus>[],
  over: Partial<Pod["status"]> = {},
  created = "2026-01-01T00:00:00Z",
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "shop-main-abcde",
      namespace: "ns1",
      creationTimestamp: created,
      labels: { "trellis.dev/function": "main", "trellis.dev/pod-template-hash": "h1" },
      annotations: { "trellis.dev/function-name": "main" },
    },
    status: {
      phase: "Running",
      containerStatuses: statuses.map((s) => ({
        name: "worker",
        image: "i",
        imageID: "",
        ready: false,
        restartCount: 0,
        ...s,
      })),
      ...over,
    },
  };
}

describe("observePod", () => {
  it("reads a healthy ready pod", () => {
    const o = observePod(
      pod([{ ready: true, state: { running: {} } }], { conditions: [{ type: "Ready", status: "True" }] }),
      NOW,
      20,
    );
    expect(o).toMatchObject({
      name: "shop-main-abcde",
      function: "main",
      templateHash: "h1",
      podReady: true,
      failed: false,
    });
    expect(o.problem).toBeUndefined();
    expect(o.createdAt).toBe(Date.parse("2026-01-01T00:00:00Z"));
  });

  it.each([
    [
      { state: { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image x" } } },
      "ImagePullBackOff",
      "x",
    ],
    [
      { state: { waiting: { reason: "ErrImageNeverPull", message: "image not present" } } },
      "ErrImageNeverPull",
      "not present",
    ],
    [
      { state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "hf" not found' } } },
      "CreateContainerConfigError",
      '"hf"',
    ],
    [
      {
        restartCount: 4,
        state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" } },
        lastState: { terminated: { exitCode: 1, message: "Traceback ...\nValueError: boom" } },
      },
      "CrashLoopBackOff",
      "ValueError: boom",
    ],
    [
      {
        state: { waiting: { reason: "CrashLoopBackOff" } },
        lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } },
      },
      "OOMKilled",
      "memory limit",
    ],
  ])("reports %o as %s", (status, reason, fragment) => {
    const o = observePod(pod([status]), NOW, 20);
    expect(o.problem?.reason).toBe(reason);
    expect(o.problem?.message).toContain(fragment);
    expect(o.problem?.container).toBe("worker");
  });

  it("gives the token Secret a grace period and flags it when missing", () => {
    const waiting = {
      state: {
        waiting: {
          reason: "CreateContainerConfigError",
          message: 'secret "shop-main-abcde.trellis-pod-token" not found',
        },
      },
    };
    const young = observePod(pod([{ ...waiting, name: "sidecar" }], {}, "2026-01-01T00:09:55Z"), NOW, 20);
    expect(young.problem).toBeUndefined();
    expect(young.missingTokenSecret).toBe(true);
    expect(young.recheckAt).toBe(Date.parse("2026-01-01T00:09:55Z") + 20_000);
    const old = observePod(pod([{ ...waiting, name: "sidecar" }]), NOW, 20);
    expect(old.problem?.reason).toBe("CreateContainerConfigError");
  });

  it("reads a load failure of the worker from its exit code and log tail", () => {
    const o = observePod(
      pod([
        {
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: {
            terminated: { exitCode: 3, message: "cannot load app.py: Traceback\nSyntaxError: invalid syntax" },
          },
        },
      ]),
      NOW,
      20,
    );
    expect(o.loadError).toContain("SyntaxError: invalid syntax");
    expect(observePod(pod([{ lastState: { terminated: { exitCode: 1 } } }]), NOW, 20).loadError).toBeUndefined();
  });

  it("reads failed, terminating and unschedulable pods", () => {
    const failed = observePod(pod([], { phase: "Failed", reason: "Evicted", message: "low on memory" }), NOW, 20);
    expect(failed).toMatchObject({ failed: true, failedReason: "Evicted: low on memory" });
    const p = pod([]);
    p.metadata.deletionTimestamp = "2026-01-01T00:09:00Z";
    expect(observePod(p, NOW, 20).terminating).toBe(true);
    const u = observePod(
      pod([], {
        phase: "Pending",
        conditions: [
          { type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes: nvidia.com/gpu" },
        ],
      }),
      NOW,
      20,
    );
    expect(u.problem).toEqual({ reason: "Unschedulable", message: "0/1 nodes: nvidia.com/gpu" });
  });
});
