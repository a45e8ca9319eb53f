// One informer per watched namespace, seen as one: the operator limited to a list of namespaces.
import type { Informer, KubeObject, ObjectKey, WatchEventType } from "./types.js";

export class MultiNamespaceInformer<T extends KubeObject> implements Informer<T> {
  private readonly byNamespace: Map<string, Informer<T>>;

  constructor(informers: Map<string, Informer<T>>) {
    if (informers.size === 0) throw new Error("MultiNamespaceInformer: at least one namespace is required");
    this.byNamespace = informers;
  }

  get(key: ObjectKey): T | undefined {
    return this.byNamespace.get(key.slice(0, key.indexOf("/")))?.get(key);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return this.byNamespace.get(namespace)?.list(namespace) ?? [];
    return [...this.byNamespace.values()].flatMap((i) => i.list());
  }

  byIndex(indexName: string, value: string): T[] {
    return [...this.byNamespace.values()].flatMap((i) => i.byIndex(indexName, value));
  }

  synced(): boolean {
    return [...this.byNamespace.values()].every((i) => i.synced());
  }

  onEvent(handler: (type: WatchEventType, obj: T, old: T | undefined) => void): void {
    for (const i of this.byNamespace.values()) i.onEvent(handler);
  }

  async start(): Promise<void> {
    await Promise.all([...this.byNamespace.values()].map((i) => i.start()));
  }

  stop(): void {
    for (const i of this.byNamespace.values()) i.stop();
  }
}
