import { describe, expect, it } from "vitest";
import { KubeApiError } from "./errors.js";
import { type EventWriter, KubeEventRecorder } from "./events.js";
import type { KubeObject } from "./types.js";

const call: KubeObject = {
  apiVersion: "trellis.dev/v1alpha1",
  kind: "FunctionCall",
  metadata: { namespace: "ns", name: "req-1", uid: "u1", resourceVersion: "7" },
};

class RecordingWriter implements EventWriter {
  writes: { op: string; body: Record<string, unknown> }[] = [];
  fail: unknown;
  async create<T extends KubeObject>(obj: T): Promise<T> {
    if (this.fail) throw this.fail;
    this.writes.push({ op: "create", body: obj as unknown as Record<string, unknown> });
    return obj;
  }
  async patch<T extends KubeObject>(ref: { name: string }, patch: Record<string, unknown>): Promise<T> {
    if (this.fail) throw this.fail;
    this.writes.push({ op: `patch ${ref.name}`, body: patch });
    return {} as T;
  }
}

function recorder(w: RecordingWriter, clock: { t: number }, maxQueue = 1000) {
  return new KubeEventRecorder({ writer: w, now: () => clock.t, reportingInstance: "op-0", maxQueue });
}

describe("KubeEventRecorder", () => {
  it("writes a core/v1 Event naming the object", async () => {
    const w = new RecordingWriter();
    const r = recorder(w, { t: Date.UTC(2026, 0, 1) });
    r.record(call, "Warning", "Failed", "ValueError: boom");
    await r.flush();
    expect(w.writes.length).toBe(1);
    const ev = w.writes[0]!.body;
    expect(ev).toMatchObject({
      apiVersion: "v1",
      kind: "Event",
      metadata: { namespace: "ns" },
      involvedObject: { kind: "FunctionCall", name: "req-1", uid: "u1", resourceVersion: "7", namespace: "ns" },
      type: "Warning",
      reason: "Failed",
      message: "ValueError: boom",
      count: 1,
      firstTimestamp: "2026-01-01T00:00:00Z",
      reportingComponent: "trellis.dev/operator",
      reportingInstance: "op-0",
      source: { component: "trellis-operator" },
    });
    expect((ev.metadata as { name: string }).name).toMatch(/^req-1\.[0-9a-f]+$/);
  });

  it("folds a burst into one write and patches count for later repeats in the window", async () => {
    const w = new RecordingWriter();
    const clock = { t: 1_000_000 };
    const r = recorder(w, clock);
    for (let i = 0; i < 5; i++) r.record(call, "Warning", "Retry", "attempt failed");
    await r.flush();
    expect(w.writes.map((x) => x.op)).toEqual(["create"]);
    expect(w.writes[0]!.body.count).toBe(5);
    const name = (w.writes[0]!.body.metadata as { name: string }).name;
    clock.t += 60_000;
    r.record(call, "Warning", "Retry", "attempt failed");
    await r.flush();
    expect(w.writes[1]).toEqual({ op: `patch ${name}`, body: { count: 6, lastTimestamp: expect.any(String) } });
    // a different message is a different event
    r.record(call, "Warning", "Retry", "other");
    await r.flush();
    expect(w.writes[2]!.op).toBe("create");
  });

  it("starts a new Event after the aggregation window", async () => {
    const w = new RecordingWriter();
    const clock = { t: 0 };
    const r = recorder(w, clock);
    r.record(call, "Normal", "Started", "running");
    await r.flush();
    clock.t += 11 * 60_000;
    r.record(call, "Normal", "Started", "running");
    await r.flush();
    expect(w.writes.map((x) => x.op)).toEqual(["create", "create"]);
  });

  it("creates again when the aggregated Event is gone", async () => {
    const w = new RecordingWriter();
    const clock = { t: 0 };
    const r = recorder(w, clock);
    r.record(call, "Normal", "Started", "running");
    await r.flush();
    w.patch = async () => {
      throw new KubeApiError(404, "NotFound", "gone", "PATCH", "/");
    };
    r.record(call, "Normal", "Started", "running");
    await r.flush();
    expect(w.writes.map((x) => x.op)).toEqual(["create", "create"]);
    expect(w.writes[1]!.body.count).toBe(1);
  });

  it("never throws into the caller and bounds its queue", async () => {
    const w = new RecordingWriter();
    w.fail = new Error("apiserver down");
    const r = recorder(w, { t: 0 }, 3);
    for (let i = 0; i < 10; i++) r.record(call, "Normal", "R", `m${i}`);
    r.record({ metadata: { name: "x" } }, "Normal", "R", "no kind");
    await r.flush();
    expect(r.stats.failed).toBe(3);
    expect(r.stats.dropped).toBe(8);
  });
});
