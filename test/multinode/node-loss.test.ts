// Node loss: 30 requests of the ~55-call graph run while the node holding the operator leader and
// about half the function pods is stopped (frozen and cut off, as a node that loses power or its
// network). Every request finishes with the right output, the calls that ran on the lost node run
// again elsewhere, and no call that had finished runs again. Then the node comes back: its stale
// pods are cleaned up and nothing they report late changes a result.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";
import {
  type ClusterNode,
  type PodPlace,
  clusterNodes,
  countByNode,
  podPlaces,
  setSchedulable,
  startNode,
  stopNode,
  waitNodeReady,
} from "../support/nodes.js";
import { invoke } from "../e2e/support/trellis.js";
import { GRAPH_APP, callsByRequest, checkRequest, deployGraph, sumFigures } from "../e2e/support/workload.js";
import {
  type Snapshot,
  changedFinished,
  followLostCalls,
  isFinished,
  answersSince,
  runtimeAnswers,
  snapshot,
} from "./support/calls.js";
import { type MultiNodeOperator, installMultiNodeOperator } from "./support/operator.js";

const REQUESTS = 30;
const DEADLINE_MS = 600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

let op: MultiNodeOperator | undefined;
let ns = "";
let nodes: ClusterNode[] = [];
let oldLeader = { pod: "", node: "" };
let newLeader = "";
let stopped: string | undefined;
const cordoned = new Set<string>();

/** Where every function pod seen during the run was (pods idle out and vanish before the end). */
const podNode = new Map<string, string>();
const remember = (pods: PodPlace[]) => pods.forEach((p) => p.node && podNode.set(p.name, p.node));

// What the first test leaves for the second.
let lostPods: PodPlace[] = [];
let final: Snapshot | undefined;

beforeAll(async () => {
  nodes = await clusterNodes();
  if (nodes.length !== 3 || !nodes.every((n) => n.ready)) {
    throw new Error(`three Ready nodes expected: ${JSON.stringify(nodes)} (TRELLIS_NODES=3 npm run cluster:up)`);
  }
  op = await installMultiNodeOperator();
  const leader = await op.waitLeader();
  oldLeader = { pod: leader.pod, node: leader.node ?? "" };
  const standby = (await op.replicas()).find((r) => r.name !== leader.pod);
  // Function pods go to the two operator nodes only, so the leader's node runs about half of them;
  // the third node opens just before the stop, for the pods that replace the lost ones.
  const spare = nodes.find((n) => n.name !== oldLeader.node && n.name !== standby?.node);
  if (spare) {
    await setSchedulable(spare.name, false);
    cordoned.add(spare.name);
  }
  ns = await createNamespace("nodeloss");
  await deployGraph(ns);
});

afterAll(async () => {
  if (stopped) await startNode(stopped).catch((e) => console.log(`[multinode] could not restart ${stopped}: ${e}`));
  for (const n of cordoned) await setSchedulable(n, true).catch(() => undefined);
  // Before the operator goes: function pods drain through it on their way out.
  await deleteNamespace(ns, 180_000);
  await op?.uninstall();
});

/** Waits until the graph is under way on both operator nodes: pods and running calls on the leader's. */
async function waitUnderWay(): Promise<void> {
  await waitFor(
    "function pods and running calls on the leader's node, and calls finished",
    async () => {
      await sleep(1_500); // each look lists every call: not too often
      const pods = await podPlaces(ns);
      remember(pods);
      const onLeader = new Set(
        pods.filter((p) => p.node === oldLeader.node && p.phase === "Running").map((p) => p.name),
      );
      const others = pods.filter((p) => p.node !== oldLeader.node && p.phase === "Running").length;
      const calls = [...snapshot(await callsByRequest(ns)).values()];
      const running = calls.filter((c) => c.status.phase === "Running" && onLeader.has(c.status.pod ?? "")).length;
      const finished = calls.filter(isFinished).length;
      return onLeader.size >= 3 && others >= 3 && running >= 5 && finished >= 60 ? true : undefined;
    },
    300_000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${op?.logs(30)}`);
  });
}

/** Polls until every request's root finished (3 s apart: each poll lists some 1,600 calls). */
async function waitAllDone(names: string[], deadline: number): Promise<void> {
  for (;;) {
    const byRequest = await callsByRequest(ns);
    remember(await podPlaces(ns));
    const roots = names.map((n) => byRequest.get(n)?.find((c) => c.name === n));
    if (roots.every((r) => r && ["Succeeded", "Failed", "Cancelled"].includes(r.status.phase ?? ""))) {
      return;
    }
    if (Date.now() > deadline) {
      const open = roots.filter((r) => !r || !isFinished(r)).map((r) => `${r?.name} ${r?.status.phase}`);
      throw new Error(`requests not finished by the deadline: ${open.join(", ")}\n${op?.logs(40)}`);
    }
    await sleep(3_000);
  }
}

describe("node loss", () => {
  it(
    `${REQUESTS} requests finish right when the node of the operator leader and half the function pods stops`,
    { timeout: DEADLINE_MS + 360_000 },
    async () => {
      const t0 = Date.now();
      const seeds = Array.from({ length: REQUESTS }, (_, i) => i + 1);
      const names = await Promise.all(seeds.map((s) => invoke(ns, GRAPH_APP, "graph", [s])));
      await waitUnderWay();

      for (const n of cordoned) await setSchedulable(n, true);
      cordoned.clear();
      const podsAtStop = await podPlaces(ns);
      const atStop = snapshot(await callsByRequest(ns));
      const stopAt = Date.now();
      stopped = oldLeader.node;
      await stopNode(oldLeader.node);
      // Pods bound to the node between the listing and the stop are lost with it too.
      const podsAfter = await podPlaces(ns);
      remember([...podsAtStop, ...podsAfter]);
      const lostNames = new Set(
        [...podsAtStop, ...podsAfter].filter((p) => p.node === oldLeader.node).map((p) => p.name),
      );
      lostPods = [...podsAtStop, ...podsAfter].filter(
        (p, i, all) => lostNames.has(p.name) && all.findIndex((q) => q.name === p.name) === i,
      );
      const perNode = countByNode(podsAtStop.filter((p) => !p.deleting));

      // Watched meanwhile; settled into values, so a failure here cannot go unhandled while the
      // requests are awaited.
      const notReadyMs = waitNodeReady(oldLeader.node, false, 120_000).then(
        () => Date.now() - stopAt,
        (e: Error) => e,
      );
      const failover = op!.waitLeader(oldLeader.pod, 180_000).then(
        (l) => ({ ...l, ms: Date.now() - stopAt }),
        (e: Error) => e,
      );
      await waitAllDone(names, t0 + DEADLINE_MS);
      const doneAt = Date.now();
      const leader = await failover;
      if (leader instanceof Error) throw leader;
      newLeader = leader.pod;
      const notReady = await notReadyMs;
      if (notReady instanceof Error) throw notReady;

      const byRequest = await callsByRequest(ns);
      final = snapshot(byRequest);
      const checked = names.map((name, i) => {
        const calls = byRequest.get(name) ?? [];
        const root = calls.find((c) => c.name === name);
        return checkRequest(name, seeds[i]!, root?.status.output?.value, calls, undefined);
      });
      const total = sumFigures(checked);
      const lastCompletion = Math.max(
        ...names.map((n) => Date.parse(final!.get(n)?.status.completionTime ?? "") || doneAt),
      );
      const lost = followLostCalls(atStop, final, lostNames, podNode);
      const finishedAtStop = [...atStop.values()].filter(isFinished).length;
      const changed = changedFinished(atStop, final);
      const rerunByFn = new Map<string, number>();
      for (const c of lost.rerunElsewhere) rerunByFn.set(c.fn, (rerunByFn.get(c.fn) ?? 0) + 1);
      const fnPodsAtStop = podsAtStop.filter((p) => !p.deleting).length;

      console.log(
        `[multinode] node-loss: stopped ${oldLeader.node} (operator leader ${oldLeader.pod}) ` +
          `${secs(stopAt - t0)} after the first request; function pods per node at the stop ` +
          `${JSON.stringify(Object.fromEntries(perNode))}, ${lostNames.size} of ${fnPodsAtStop} on the lost node\n` +
          `[multinode] node-loss: calls at the stop: ${atStop.size} known, ${finishedAtStop} finished, ` +
          `${lost.running.length} running on the lost node -> ${lost.rerunElsewhere.length} re-ran elsewhere ` +
          `${JSON.stringify(Object.fromEntries(rerunByFn))}, ${lost.finishedBeforeStop.length} finished before the cut\n` +
          `[multinode] node-loss: node NotReady after ${secs(notReady)}, new leader ${leader.pod} on ${leader.node} ` +
          `after ${secs(leader.ms)}; last request completed ${secs(lastCompletion - stopAt)} after the stop ` +
          `(observed ${secs(doneAt - stopAt)}); wall ${secs(doneAt - t0)}\n` +
          `[multinode] node-loss: requests ${REQUESTS}, calls ${total.calls}, executions ${total.executions}, ` +
          `re-runs ${total.reruns} (lost attempts ${total.infrastructureFailures}), finished calls changed ${changed.length}`,
      );
      expect(total.problems).toEqual([]);
      // Every request made the same calls: a call created twice would show here.
      expect(new Set(checked.map((c) => c.calls)).size).toBe(1);
      // The node held the leader and a fair share of the function pods.
      expect(lostNames.size).toBeGreaterThanOrEqual(Math.ceil(fnPodsAtStop / 4));
      expect(leader.node).not.toBe(oldLeader.node);
      // The calls running there ran again on other nodes; finished ones did not run again.
      expect(lost.problems).toEqual([]);
      expect(lost.rerunElsewhere.length).toBeGreaterThan(0);
      expect(changed).toEqual([]);
    },
  );

  it("the node comes back: its stale pods are cleaned up and their late reports change nothing", async () => {
    if (!final || !stopped) throw new Error("the node-loss test did not get to the end");
    const refusalCodes = ["401", "403", "409"];
    const refusalsBefore = runtimeAnswers(await op!.metrics(newLeader), refusalCodes);
    const node = stopped;
    // Every pod bound to the node while it was away is stale too (bound before it went NotReady).
    const stale = new Set([...lostPods, ...(await podPlaces(ns)).filter((p) => p.node === node)].map((p) => p.uid));
    const t0 = Date.now();
    await startNode(node);
    stopped = undefined;
    const readyMs = await waitNodeReady(node, true, 180_000);
    await waitFor(
      `the stale pods of ${node} removed or ended`,
      async () => {
        const left = (await podPlaces(ns)).filter(
          (p) => stale.has(p.uid) && p.phase !== "Succeeded" && p.phase !== "Failed",
        );
        return left.length === 0 ? true : undefined;
      },
      240_000,
    );
    const cleanMs = Date.now() - t0;
    // Reports sent by the thawed sidecars before the kubelet stopped them have landed by now.
    await sleep(15_000);

    const after = snapshot(await callsByRequest(ns));
    const changed = changedFinished(final, after);
    const leader = await op!.leader();
    // Counters of the replica that led throughout (another leader would have counters of its own).
    const refusals =
      leader?.pod === newLeader
        ? JSON.stringify(
            Object.fromEntries(
              answersSince(refusalsBefore, runtimeAnswers(await op!.metrics(newLeader), refusalCodes)),
            ),
          )
        : "unknown (the leader changed)";
    const events = JSON.parse(await kubectl(["get", "events", "-n", ns, "-o", "json"])) as {
      items: { reason?: string; count?: number }[];
    };
    const reasons = new Map<string, number>();
    for (const e of events.items) reasons.set(e.reason ?? "?", (reasons.get(e.reason ?? "?") ?? 0) + (e.count ?? 1));
    const logs = op!.logs(5_000);
    const refusedInLog = (logs.match(/stale_attempt|not_assigned|not the running one|call_not_found/g) ?? []).length;
    console.log(
      `[multinode] node-back: ${node} Ready after ${secs(readyMs)}, its ${stale.size} stale pods gone after ` +
        `${secs(cleanMs)}; runtime API refusals by the leader meanwhile ${refusals}, ` +
        `refusals in the operator logs ${refusedInLog}; leader ${leader?.pod}; events ` +
        `${JSON.stringify(Object.fromEntries(reasons))}; finished calls changed ${changed.length}`,
    );
    expect(after.size).toBe(final.size);
    expect(changed).toEqual([]);
    // The thawed replica gives up the leadership it lost: one leader, labelled alone for the Service.
    await waitFor(
      "one operator replica labelled leader",
      async () => {
        const labelled = (await op!.replicas()).filter((r) => r.labels["trellis.dev/leader"] === "true");
        return labelled.length === 1 && labelled[0]!.name === leader?.pod ? true : undefined;
      },
      120_000,
    );
    expect(leader?.pod).toBe(newLeader);
  });
});
