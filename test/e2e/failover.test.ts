// Failover with the API up: two operator replicas (leader and standby), 20 requests in flight that
// carry values over the inline limit between functions and write request state; the leader is
// force-killed twice. Every request finishes with the right output, and every poll, sent to the
// replica that was not killed (as a Service over all replicas would route it), is answered 2xx:
// a standby serves the HTTP API from its own caches while the leader is gone.
//
// Like the chaos suite, the replicas are two processes from the source tree on their own HTTP
// ports (the chart's cannot share the one node's host ports): from-source pass only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, serviceAccountToken } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp } from "./support/trellis.js";

const PORTS = [Number(process.env.TRELLIS_E2E_HTTP_PORT ?? 18080), 18082];
const REQUESTS = 20;
const SOURCE = `
import time
from tensorlake.applications import RequestContext, application, function


@function()
def pad(n: int) -> str:
    return "v" * (100_000 + n)


@function()
def measure(s: str) -> int:
    time.sleep(1)
    return len(s)


@application()
@function()
def carry(n: int) -> dict:
    ctx = RequestContext.get()
    ctx.state.set("asked", n)
    total = 0
    for i in range(4):
        total += measure(pad(n + i))
    return {"n": n, "total": total, "asked": ctx.state.get("asked")}
`;
const expected = (n: number) => ({ n, total: 4 * 100_000 + 4 * n + 6, asked: n });

const replicas: OperatorProcess[] = [];
let ns = "";
let token = "";
const answers = { ok: 0, bad: [] as string[] };

beforeAll(async () => {
  replicas.push(await startOperator("failover-a", {}, { httpPort: PORTS[0], freshIdentity: true }));
  replicas.push(await startOperator("failover-b", {}, { httpPort: PORTS[1], freshIdentity: true }));
  ns = await createNamespace("failover");
  await deployApp(ns, "carry", SOURCE, "carry");
  token = await serviceAccountToken(ns, "client", [
    { verbs: "create,get,list", resource: "functioncalls.trellis.dev" },
  ]);
});
afterAll(async () => {
  await deleteNamespace(ns);
  for (const r of replicas) await r.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function leaderIndex(): Promise<number | undefined> {
  for (const [i, port] of PORTS.entries()) {
    const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    if (r?.ok && ((await r.json()) as { leading?: boolean }).leading) return i;
  }
  return undefined;
}

/** The replica that is not being killed: every call goes there, and every answer counts. */
let serving = 1;
async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const port = PORTS[serving]!;
  let r: Response;
  try {
    r = await fetch(`http://127.0.0.1:${port}/v1/namespaces/${ns}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    });
  } catch (err) {
    // Sent just before the switch to the replica about to be killed: a client behind a Service
    // would be reset too and try again (creates carry an Idempotency-Key). A connection error
    // from the replica that is not being killed fails the test.
    if (port !== PORTS[serving]) return api(path, init);
    throw err;
  }
  if (r.ok) answers.ok++;
  else
    answers.bad.push(
      `${init.method ?? "GET"} ${path} on :${port}: ${r.status} ${(await r.clone().text()).slice(0, 200)}`,
    );
  return r;
}

async function runRequest(n: number): Promise<unknown> {
  const created = await api("/applications/carry", {
    method: "POST",
    body: JSON.stringify(n),
    headers: { "content-type": "application/json", "idempotency-key": `failover-${n}` },
  });
  const { request_id: id } = (await created.json()) as { request_id: string };
  for (;;) {
    const r = (await (await api(`/applications/carry/requests/${id}`)).json()) as { outcome: unknown };
    if (r.outcome !== null) {
      if (r.outcome !== "success") throw new Error(`request ${id}: outcome ${JSON.stringify(r)}`);
      return (await api(`/applications/carry/requests/${id}/output`)).json();
    }
    await sleep(500);
  }
}

describe("operator failover with the HTTP API up", () => {
  it("force-killing the leader twice: every request finishes right and every poll is answered", async () => {
    let lead = await leaderIndex();
    expect(lead).toBeDefined();
    serving = 1 - lead!;
    const runs = Array.from({ length: REQUESTS }, (_, n) => runRequest(n));
    const all = Promise.all(runs);
    for (let kill = 0; kill < 2; kill++) {
      await sleep(4_000);
      lead = await leaderIndex();
      expect(lead, "a replica leads before the kill").toBeDefined();
      serving = 1 - lead!;
      // SIGKILL: no Lease release, as on a lost pod; the standby takes over when the Lease expires.
      await replicas[lead!]!.stop("SIGKILL");
      const t0 = Date.now();
      while ((await leaderIndex()) !== serving) {
        if (Date.now() - t0 > 90_000) throw new Error("the standby did not take over within 90 s");
        await sleep(500);
      }
      // The killed replica comes back as the new standby (a new pod would).
      await replicas[lead!]!.restart();
    }
    const outputs = await all;
    expect(outputs).toEqual(Array.from({ length: REQUESTS }, (_, n) => expected(n)));
    expect(answers.bad).toEqual([]);
    expect(answers.ok).toBeGreaterThan(REQUESTS * 3);
  }, 600_000);
});
