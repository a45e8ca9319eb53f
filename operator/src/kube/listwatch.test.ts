import { describe, expect, it } from "vitest";
import type { KubeClient } from "./client.js";
import { KubeApiError } from "./errors.js";
import { kubeListWatch } from "./listwatch.js";
import type { KubeObject } from "./types.js";

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: "ns", resourceVersion: rv } });

/** A client answering list requests page by page (the apiserver itself is in the integration suite). */
function pagedClient(pages: { items: KubeObject[]; continue?: string }[], log: string[]) {
  let i = 0;
  return {
    request: async (_method: string, _path: string, opts: { query?: Record<string, unknown> }) => {
      log.push(`GET limit=${String(opts.query?.limit)} continue=${String(opts.query?.continue)}`);
      const p = pages[i++]!;
      return { items: p.items, metadata: { resourceVersion: "9", continue: p.continue } };
    },
  } as unknown as KubeClient;
}

describe("kubeListWatch list", () => {
  it("passes each item through `each` as its page arrives, before the next page is asked for", async () => {
    const log: string[] = [];
    const client = pagedClient(
      [{ items: [obj("a", "1"), obj("b", "2")], continue: "t1" }, { items: [obj("c", "3")] }],
      log,
    );
    const lw = kubeListWatch<KubeObject>(client, {
      apiVersion: "trellis.dev/v1alpha1",
      kind: "FunctionCall",
      pageSize: 2,
    });
    const held = obj("b", "2");
    const res = await lw.list(new AbortController().signal, (o) => {
      log.push(`each ${o.metadata.name}`);
      return o.metadata.name === "b" ? held : o;
    });
    expect(log).toEqual(["GET limit=2 continue=undefined", "each a", "each b", "GET limit=2 continue=t1", "each c"]);
    expect(res.items.map((o) => o.metadata.name)).toEqual(["a", "b", "c"]);
    expect(res.items[1]).toBe(held);
    expect(res.items[0]!.kind).toBe("FunctionCall");
    expect(res.resourceVersion).toBe("9");
  });

  it("starts over unpaged when the continue token expired, without keeping the first pages", async () => {
    const log: string[] = [];
    let i = 0;
    const client = {
      request: async (_m: string, _p: string, opts: { query?: Record<string, unknown> }) => {
        log.push(`GET limit=${String(opts.query?.limit)} continue=${String(opts.query?.continue)}`);
        i++;
        if (i === 1) return { items: [obj("a", "1")], metadata: { resourceVersion: "5", continue: "t1" } };
        if (i === 2) throw new KubeApiError(410, "Expired", "too old resource version", "GET", "/api/v1/pods");
        return { items: [obj("a", "4"), obj("b", "6")], metadata: { resourceVersion: "7" } };
      },
    } as unknown as KubeClient;
    const lw = kubeListWatch<KubeObject>(client, { apiVersion: "v1", kind: "Pod", pageSize: 1 });
    const res = await lw.list(new AbortController().signal);
    expect(res.items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`)).toEqual(["a@4", "b@6"]);
    expect(log[2]).toBe("GET limit=undefined continue=undefined");
  });
});
