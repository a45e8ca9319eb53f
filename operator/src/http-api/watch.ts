// Fans the FunctionCall informer's events out to per-call subscribers (SSE streams), and to
// per-request ones (any call of the request changed: the web view's live graph).
import type { WatchEventType } from "../kube/index.js";
import type { CallObject } from "./types.js";

export class CallWatch {
  private readonly subs = new Map<string, Set<(c: CallObject | undefined) => void>>();
  private readonly requestSubs = new Map<string, Set<() => void>>();

  /** Feed from the informer: `informer.onEvent(watch.onEvent)`. */
  readonly onEvent = (type: WatchEventType, c: CallObject): void => {
    const key = `${c.metadata.namespace ?? ""}/${c.metadata.name ?? ""}`;
    const r = this.requestSubs.get(`${c.metadata.namespace ?? ""}/${c.spec.request ?? c.metadata.name ?? ""}`);
    if (r) for (const fn of [...r]) fn();
    const s = this.subs.get(key);
    if (!s) return;
    for (const fn of [...s]) fn(type === "DELETED" ? undefined : c);
  };

  /** Calls `fn` after any call of the request "ns/root" changed (the root included). */
  readonly watchRequest = (key: string, fn: () => void): (() => void) => subscribe(this.requestSubs, key, fn);

  readonly watch = (key: string, fn: (c: CallObject | undefined) => void): (() => void) =>
    subscribe(this.subs, key, fn);

  size(): number {
    return this.subs.size + this.requestSubs.size;
  }
}

function subscribe<F>(subs: Map<string, Set<F>>, key: string, fn: F): () => void {
  let s = subs.get(key);
  if (!s) subs.set(key, (s = new Set()));
  s.add(fn);
  return () => {
    s.delete(fn);
    if (s.size === 0) subs.delete(key);
  };
}
