// In-memory fakes of the kube-edge interfaces (kube/types.ts) for the engine's unit tests: an
// object store that assigns resourceVersions, answers writes and delivers watch events a little
// later (as a real watch does). Not an API server: no admission, no GC.
import {
  type EventRecorder,
  type Informer,
  KubeApiError,
  type KubeObject,
  type ObjectWriter,
  type WatchEventType,
} from "../kube/index.js";
import { LABEL } from "../../../protocol/index.js";
import type { Call } from "./calls.js";

type Handler = (type: WatchEventType, obj: Call, old: Call | undefined) => void;

function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (
      typeof v === "object" &&
      !Array.isArray(v) &&
      typeof out[k] === "object" &&
      out[k] !== null &&
      !Array.isArray(out[k])
    )
      out[k] = mergePatch(out[k] as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = structuredClone(v);
  }
  return out;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The apiserver's checks of a name and label values (422 Invalid), as its message words them. */
function invalidMeta(c: Call): KubeApiError | undefined {
  const name = c.metadata.name ?? "";
  const bad: string[] = [];
  if (name.length > 253) bad.push(`metadata.name: Invalid value: "${name}": must be no more than 253 characters`);
  for (const [k, v] of Object.entries(c.metadata.labels ?? {})) {
    if (v.length > 63) bad.push(`metadata.labels: Invalid value: "${v}": must be no more than 63 characters`);
    else if (!LABEL_VALUE.test(v)) bad.push(`metadata.labels: Invalid value: "${v}": a valid label must be ... (${k})`);
  }
  if (bad.length === 0) return undefined;
  const message = `FunctionCall.trellis.dev "${name}" is invalid: ${bad.join(", ")}`;
  return new KubeApiError(422, "Invalid", `POST functioncalls: ${message}`, "POST", "functioncalls", {
    message,
    reason: "Invalid",
    code: 422,
  });
}

export class FakeCalls implements ObjectWriter, Informer<Call> {
  private readonly objects = new Map<string, Call>();
  private readonly handlers: Handler[] = [];
  private rv = 100;
  private uid = 0;
  /** Names whose next status write fails with 500 (an API hiccup). */
  readonly failNextStatus = new Set<string>();
  /** Creates (by name) answered with this error instead, as admission would refuse them. */
  readonly refuseCreate = new Map<string, KubeApiError>();
  /** Status writes (by name) answered with this error for as long as it is set. */
  readonly refuseStatus = new Map<string, (status: Record<string, unknown>) => KubeApiError | undefined>();
  /** Status writes of these names wait for the promise (to hold a write in flight). */
  readonly statusGates = new Map<string, Promise<void>>();
  readonly writes: {
    verb: "create" | "patchStatus" | "patchMeta" | "delete";
    name: string;
    patch?: Record<string, unknown>;
  }[] = [];

  get(key: string): Call | undefined {
    return this.objects.get(key);
  }
  /** As the operator's informer lists: settled tail links left out. */
  list(): Call[] {
    return [...this.objects.values()].filter((c) => !(LABEL.settled in (c.metadata.labels ?? {})));
  }
  byIndex(): Call[] {
    throw new Error("FakeCalls: no indexes");
  }
  synced(): boolean {
    return true;
  }
  onEvent(h: Handler): void {
    this.handlers.push(h);
  }
  async start(): Promise<void> {}
  stop(): void {}

  private emit(type: WatchEventType, obj: Call, old: Call | undefined) {
    const copy = structuredClone(obj);
    setImmediate(() => this.handlers.forEach((h) => h(type, copy, old)));
  }

  async create<T extends KubeObject>(obj: T): Promise<T> {
    const c = structuredClone(obj) as unknown as Call;
    const key = `${c.metadata.namespace}/${c.metadata.name}`;
    this.writes.push({ verb: "create", name: c.metadata.name! });
    const refused = this.refuseCreate.get(c.metadata.name!) ?? invalidMeta(c);
    if (refused) throw refused;
    if (this.objects.has(key)) throw new KubeApiError(409, "AlreadyExists", `${key} exists`, "POST", key);
    c.metadata.uid = `uid-${++this.uid}`;
    c.metadata.resourceVersion = String(++this.rv);
    c.metadata.creationTimestamp = new Date().toISOString();
    delete c.status;
    this.objects.set(key, c);
    this.emit("ADDED", c, undefined);
    return structuredClone(c) as unknown as T;
  }

  async patchStatus<T extends KubeObject>(
    ref: { namespace: string; name: string },
    status: Record<string, unknown>,
  ): Promise<T> {
    return this.writeStatus(ref, status, (cur) => mergePatch(cur, status));
  }

  /** Recorded as the patch that leads from the current status to `status`. */
  async replaceStatus<T extends KubeObject>(
    ref: { namespace: string; name: string },
    status: Record<string, unknown>,
  ): Promise<T> {
    const cur = (this.objects.get(`${ref.namespace}/${ref.name}`)?.status ?? {}) as Record<string, unknown>;
    const patch: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(status)) if (JSON.stringify(cur[k]) !== JSON.stringify(v)) patch[k] = v;
    for (const k of Object.keys(cur)) if (!(k in status)) patch[k] = null;
    return this.writeStatus(ref, patch, () => structuredClone(status));
  }

  private async writeStatus<T extends KubeObject>(
    ref: { namespace: string; name: string },
    status: Record<string, unknown>,
    nextStatus: (cur: Record<string, unknown>) => unknown,
  ): Promise<T> {
    const key = `${ref.namespace}/${ref.name}`;
    this.writes.push({ verb: "patchStatus", name: ref.name, patch: status });
    const gate = this.statusGates.get(ref.name);
    if (gate) await gate;
    if (this.failNextStatus.delete(ref.name)) throw new KubeApiError(500, "InternalError", "etcd hiccup", "PATCH", key);
    const refused = this.refuseStatus.get(ref.name)?.(status);
    if (refused) throw refused;
    const cur = this.objects.get(key);
    if (!cur) throw new KubeApiError(404, "NotFound", `${key} not found`, "PATCH", key);
    const next = structuredClone(cur);
    next.status = nextStatus((cur.status ?? {}) as Record<string, unknown>) as Call["status"];
    next.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, next);
    this.emit("MODIFIED", next, cur);
    return structuredClone(next) as unknown as T;
  }

  /** Labels only (the engine's one use: settling a tail link). As the operator's watch selects
   * unsettled calls, a call that gains the settled label is reported DELETED. */
  async patchMeta<T extends KubeObject>(
    ref: { namespace: string; name: string },
    meta: { labels?: Record<string, string | null> },
  ): Promise<T> {
    const key = `${ref.namespace}/${ref.name}`;
    this.writes.push({ verb: "patchMeta", name: ref.name, patch: meta });
    const cur = this.objects.get(key);
    if (!cur) throw new KubeApiError(404, "NotFound", `${key} not found`, "PATCH", key);
    const next = structuredClone(cur);
    const labels = { ...(next.metadata.labels ?? {}) };
    for (const [k, v] of Object.entries(meta.labels ?? {})) {
      if (v === null) delete labels[k];
      else labels[k] = v;
    }
    next.metadata.labels = labels;
    next.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, next);
    this.emit(LABEL.settled in labels ? "DELETED" : "MODIFIED", next, cur);
    return structuredClone(next) as unknown as T;
  }

  async delete(ref: { namespace: string; name: string }): Promise<void> {
    const key = `${ref.namespace}/${ref.name}`;
    this.writes.push({ verb: "delete", name: ref.name });
    const cur = this.objects.get(key);
    if (!cur) throw new KubeApiError(404, "NotFound", `${key} not found`, "DELETE", key);
    this.objects.delete(key);
    const gone = structuredClone(cur);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit("DELETED", gone, cur);
  }

  writesOf(name: string): string[] {
    return this.writes
      .filter((w) => w.name === name)
      .map((w) => (w.verb === "patchStatus" ? `status:${String(w.patch?.phase ?? "-")}` : w.verb));
  }
}

export class FakeEvents implements EventRecorder {
  readonly events: { name: string; type: string; reason: string; message: string }[] = [];
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    this.events.push({ name: obj.metadata.name ?? "", type, reason, message });
  }
}
