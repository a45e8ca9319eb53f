// Fans the FunctionCall informer's events out to per-request subscribers (SSE streams).
import type { WatchEventType } from "../kube/index.js";
import type { CallObject } from "./types.js";

export class CallWatch {
  private readonly subs = new Map<string, Set<(c: CallObject | undefined) => void>>();

  /** Feed from the informer: `informer.onEvent(watch.onEvent)`. */
  readonly onEvent = (type: WatchEventType, c: CallObject): void => {
    const key = `${c.metadata.namespace ?? ""}/${c.metadata.name ?? ""}`;
    const s = this.subs.get(key);
    if (!s) return;
    for (const fn of [...s]) fn(type === "DELETED" ? undefined : c);
  };

  readonly watch = (key: string, fn: (c: CallObject | undefined) => void): (() => void) => {
    let s = this.subs.get(key);
    if (!s) this.subs.set(key, (s = new Set()));
    s.add(fn);
    return () => {
      s.delete(fn);
      if (s.size === 0) this.subs.delete(key);
    };
  };

  size(): number {
    return this.subs.size;
  }
}
