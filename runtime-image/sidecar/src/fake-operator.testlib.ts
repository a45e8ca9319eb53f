// A stand-in for the operator's runtime API, for the sidecar's own tests: the routes of
// protocol/src/runtime-api.ts over HTTP on 127.0.0.1, every body checked with the shared zod schemas, and just
// enough call semantics (readiness on {call} inputs, long-polled lease and wait, tail calls,
// infrastructure re-runs) to run real graphs through the sidecar and the Python worker.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { z } from "zod";
import {
  childName,
  childrenRequest,
  codeLoadFailureRequest,
  failureRequest,
  heartbeatRequest,
  leaseRequest,
  type Outcome,
  POD_HEADER,
  progressRequest,
  registerRequest,
  resultRequest,
  RUNTIME_API_PREFIX,
  stateValue,
  tailRequest,
  type ValueRef,
  waitRequest,
} from "../../../protocol/index.js";

import { Notifier } from "./notifier.js";

export interface FakeCall {
  name: string;
  function: string;
  request: string;
  parent?: string;
  args: ValueRef[];
  kwargs: Record<string, ValueRef>;
  phase: "Queued" | "Running" | "Succeeded" | "Failed" | "Cancelled" | "Delegated";
  attempt: number;
  timeoutSeconds: number;
  output?: ValueRef;
  error?: { type: string; message: string; traceback?: string; reason?: string; cause?: string };
  tailCall?: string;
  failures: z.infer<typeof failureRequest>[];
  infraRuns: number;
}

export interface Received {
  method: string;
  path: string;
  body: unknown;
  status: number;
}

const REASON = {
  user: "function_error",
  request_error: "request_error",
  timeout: "function_timeout",
  infrastructure: "infrastructure",
};
const FINAL = new Set(["Succeeded", "Failed", "Cancelled"]);

export class FakeOperator {
  readonly calls = new Map<string, FakeCall>();
  readonly received: Received[] = [];
  readonly state = new Map<string, unknown>();
  readonly blobs = new Map<string, Buffer>();
  readonly registrations: z.infer<typeof registerRequest>[] = [];
  readonly loadFailures: z.infer<typeof codeLoadFailureRequest>[] = [];
  readonly heartbeats: z.infer<typeof heartbeatRequest>[] = [];
  readonly progress: { call: string; body: z.infer<typeof progressRequest> }[] = [];
  /** Statuses to answer instead of handling, per route name ("result", "lease", ...). */
  readonly inject = new Map<string, number[]>();
  /** Outcomes a child call ends with as soon as it is created (e.g. a failure of any reason). */
  readonly presetOutcomes = new Map<string, Pick<FakeCall, "phase" | "error">>();
  /** Calls to list in the next heartbeat answer's `cancel`. */
  cancelNext: string[] = [];
  settings = { heartbeatIntervalMs: 200, leaseWaitMs: 2_000, inlineValueLimitBytes: 64 * 1024 };
  token = "pod-token";
  private draining = false;
  private leaseGen = 0;
  /** As the operator: answers with assignments are numbered, empty ones repeat the last. */
  private leaseSeq = 0;
  readonly epoch = "fake-operator";
  private readonly changed = new Notifier();
  private server: http.Server | undefined;
  url = "";

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  addRoot(
    name: string,
    fn: string,
    args: ValueRef[],
    opts: { kwargs?: Record<string, ValueRef>; timeoutSeconds?: number } = {},
  ): void {
    this.addCall({
      name,
      function: fn,
      request: name,
      args,
      kwargs: opts.kwargs ?? {},
      timeoutSeconds: opts.timeoutSeconds ?? 60,
    });
  }

  /**
   * Resolves once `cond` holds, or rejects after `timeoutMs`. Checked on every change of the
   * fake, and every 50 ms for conditions outside it (files, processes).
   */
  async until<T>(what: string, cond: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = cond();
      if (v) return v;
      if (Date.now() >= end) throw new Error(`timed out waiting for ${what}`);
      await this.changed.wait(Math.min(50, end - Date.now()));
    }
  }

  routes(name: string): Received[] {
    return this.received.filter((r) => routeName(r.method, r.path) === name);
  }

  private addCall(c: Omit<FakeCall, "phase" | "attempt" | "failures" | "infraRuns">): void {
    this.calls.set(c.name, { ...c, phase: "Queued", attempt: 0, failures: [], infraRuns: 0 });
    this.changed.notify();
  }

  private inputs(c: FakeCall): ValueRef[] {
    return [...c.args, ...Object.values(c.kwargs)];
  }

  /** Ready: every {call} input Succeeded. An input that failed fails the call. */
  private ready(c: FakeCall): boolean {
    for (const v of this.inputs(c)) {
      if (v.call === undefined) continue;
      const dep = this.calls.get(v.call);
      if (dep?.phase === "Failed") {
        this.settle(c, { phase: "Failed", error: { ...dep.error!, reason: "input_failed", cause: dep.name } });
        return false;
      }
      if (dep?.phase !== "Succeeded") return false;
    }
    return true;
  }

  private resolve(v: ValueRef): ValueRef {
    return v.call === undefined ? v : this.calls.get(v.call)!.output!;
  }

  /** A call's final outcome, then every call delegating to it (iteratively). */
  private settle(c: FakeCall, o: Pick<FakeCall, "phase" | "output" | "error">): void {
    let cur: FakeCall | undefined = c;
    while (cur) {
      cur.phase = o.phase;
      cur.output = o.output;
      cur.error = o.error;
      const name: string = cur.name;
      cur = [...this.calls.values()].find((d) => d.phase === "Delegated" && d.tailCall === name);
    }
    this.changed.notify();
  }

  private outcome(c: FakeCall): Outcome {
    const o: Outcome = { call: c.name, phase: c.phase as Outcome["phase"] };
    if (c.output) o.output = c.output;
    if (c.error) o.error = c.error;
    return o;
  }

  private running(c: FakeCall | undefined, attempt: number): c is FakeCall {
    return c !== undefined && c.phase === "Running" && c.attempt === attempt;
  }

  // -- HTTP ---------------------------------------------------------------------------------------
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.startsWith(RUNTIME_API_PREFIX)
      ? url.pathname.slice(RUNTIME_API_PREFIX.length)
      : url.pathname;
    const method = req.method ?? "GET";
    const isJson = (req.headers["content-type"] ?? "").startsWith("application/json");
    const body: unknown = isJson && raw.length ? JSON.parse(raw.toString("utf8")) : raw;
    const send = (status: number, answer: unknown) => {
      this.received.push({ method, path, body, status });
      if (Buffer.isBuffer(answer)) {
        res.writeHead(status, { "content-type": "application/octet-stream" }).end(answer);
      } else res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
      this.changed.notify();
    };
    const fail = (status: number, code: string, message: string) => send(status, { code, message });
    if (req.headers.authorization !== `Bearer ${this.token}` || !req.headers[POD_HEADER]) {
      return fail(401, "unauthenticated", "missing or wrong pod credentials");
    }
    const name = routeName(method, path);
    const injected = this.inject.get(name)?.shift();
    if (injected) return fail(injected, "injected", `injected ${injected}`);
    const check = <T>(schema: z.ZodType<T>): T | undefined => {
      const r = schema.safeParse(body);
      if (r.success) return r.data;
      fail(400, "invalid", r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      return undefined;
    };
    const callName = decodeURIComponent(path.split("/")[2] ?? "");
    const c = this.calls.get(callName);
    switch (name) {
      case "register": {
        const b = check(registerRequest);
        if (!b) return;
        this.registrations.push(b);
        this.draining = false;
        return send(200, this.settings);
      }
      case "code-load-failure": {
        const b = check(codeLoadFailureRequest);
        if (!b) return;
        this.loadFailures.push(b);
        return send(200, {});
      }
      case "heartbeat": {
        const b = check(heartbeatRequest);
        if (!b) return;
        this.heartbeats.push(b);
        if (b.draining) this.draining = true;
        const cancel = this.cancelNext;
        this.cancelNext = [];
        return send(200, { cancel });
      }
      case "lease": {
        const b = check(leaseRequest);
        if (!b) return;
        const end = Date.now() + b.waitMs;
        const gen = ++this.leaseGen; // as the operator: a new lease answers the parked one
        for (;;) {
          if (gen !== this.leaseGen) return send(200, { assignments: [], epoch: this.epoch, seq: this.leaseSeq });
          const picked = this.draining
            ? []
            : [...this.calls.values()].filter((x) => x.phase === "Queued" && this.ready(x)).slice(0, b.capacity);
          if (picked.length || Date.now() >= end || this.draining) {
            const assignments = picked.map((x) => {
              x.phase = "Running";
              x.attempt++;
              return {
                call: x.name,
                attempt: x.attempt,
                function: x.function,
                request: x.request,
                args: x.args.map((v) => this.resolve(v)),
                kwargs: Object.fromEntries(Object.entries(x.kwargs).map(([k, v]) => [k, this.resolve(v)])),
                headers: {},
                timeoutSeconds: x.timeoutSeconds,
                isRoot: x.name === x.request,
              };
            });
            if (assignments.length > 0) this.leaseSeq++;
            return send(200, { assignments, epoch: this.epoch, seq: this.leaseSeq });
          }
          await this.changed.wait(end - Date.now());
        }
      }
      case "result": {
        const b = check(resultRequest);
        if (!b) return;
        if (!this.running(c, b.attempt))
          return fail(409, "stale_attempt", `${callName} attempt ${b.attempt} is not current`);
        this.settle(c, { phase: "Succeeded", output: b.output });
        return send(200, {});
      }
      case "tail": {
        const b = check(tailRequest);
        if (!b) return;
        if (!this.running(c, b.attempt))
          return fail(409, "stale_attempt", `${callName} attempt ${b.attempt} is not current`);
        c.phase = "Delegated";
        c.tailCall = b.tailCall;
        const t = this.calls.get(b.tailCall);
        if (t && FINAL.has(t.phase)) this.settle(c, t);
        return send(200, {});
      }
      case "failure": {
        const b = check(failureRequest);
        if (!b) return;
        if (!this.running(c, b.attempt))
          return fail(409, "stale_attempt", `${callName} attempt ${b.attempt} is not current`);
        c.failures.push(b);
        if (b.kind === "infrastructure" && b.retryable && c.infraRuns++ < 3) {
          c.phase = "Queued";
          this.changed.notify();
        } else this.settle(c, { phase: "Failed", error: { ...b.error, reason: REASON[b.kind] } });
        return send(200, {});
      }
      case "children": {
        const b = check(childrenRequest);
        if (!b) return;
        if (!c) return fail(404, "not_found", `no call ${callName}`);
        const finished: Outcome[] = [];
        for (const k of b.calls) {
          if (k.name !== childName(c.request, c.name, k.sequence)) {
            return fail(400, "child_name_mismatch", `${k.name} is not child ${k.sequence} of ${c.name}`);
          }
          const existing = this.calls.get(k.name);
          if (existing) {
            if (FINAL.has(existing.phase)) finished.push(this.outcome(existing));
            continue;
          }
          if (k.map || k.reduce) return fail(400, "unsupported", "the fake operator runs no map/reduce");
          this.addCall({
            name: k.name,
            function: k.function,
            request: c.request,
            parent: c.name,
            args: k.args,
            kwargs: k.kwargs,
            timeoutSeconds: 60,
          });
          const preset = this.presetOutcomes.get(k.name);
          if (preset) this.settle(this.calls.get(k.name)!, preset);
        }
        return send(200, { finished });
      }
      case "wait": {
        const b = check(waitRequest);
        if (!b) return;
        const requests = new Set(b.calls.map((n) => this.calls.get(n)?.request));
        if (requests.has(undefined)) return fail(404, "call_not_found", "body.calls: an unknown call");
        if (requests.size > 1) return fail(400, "not_in_request", "body.calls: wait on one request at a time");
        const end = Date.now() + b.waitMs;
        for (;;) {
          const done = b.calls.map((n) => this.calls.get(n)).filter((x): x is FakeCall => !!x && FINAL.has(x.phase));
          const met = b.mode === "any" ? done.length > 0 : done.length === b.calls.length;
          if (met || Date.now() >= end) return send(200, { outcomes: done.map((x) => this.outcome(x)) });
          await this.changed.wait(end - Date.now());
        }
      }
      case "progress": {
        const b = check(progressRequest);
        if (!b) return;
        this.progress.push({ call: callName, body: b });
        return send(200, {});
      }
      case "state": {
        const [, , request, , key] = path.split("/");
        const k = `${decodeURIComponent(request!)}/${decodeURIComponent(key!)}`;
        if (method === "GET") return send(200, this.state.has(k) ? { value: this.state.get(k) } : {});
        const b = check(stateValue);
        if (!b) return;
        this.state.set(k, b.value);
        return send(200, {});
      }
      case "blob-put": {
        const call = url.searchParams.get("call") ?? "";
        const ref = `ns/${call}/${randomUUID()}`;
        this.blobs.set(ref, raw);
        return send(200, { blob: ref });
      }
      case "blob-get": {
        const ref = path.slice("/blobs/".length).split("/").map(decodeURIComponent).join("/");
        const data = this.blobs.get(ref);
        return data ? send(200, data) : fail(404, "not_found", `no blob ${ref}`);
      }
      default:
        return fail(404, "not_found", `no route ${method} ${path}`);
    }
  }
}

export function routeName(method: string, path: string): string {
  const p = path.split("?")[0]!;
  if (p.startsWith("/calls/")) return p.split("/")[3] ?? "";
  if (p.startsWith("/requests/")) return "state";
  if (p === "/blobs") return "blob-put";
  if (p.startsWith("/blobs/")) return method === "GET" ? "blob-get" : "blob-put";
  return p.slice(1);
}
