// The plugin's pure parts: shell completion, the request table, which applications deploy takes,
// and --output handling.
import { describe, expect, it } from "vitest";
import { CliError } from "../../cli/cluster.js";
import { type Lookup, complete, completionScript } from "../../cli/completion.js";
import { chooseApplications } from "../../cli/deploy.js";
import { graphDocument, treeRows } from "../../cli/graph.js";
import { age, formatDocument, humanDuration, outputFormat } from "../../cli/output.js";
import { requestRows, requestTable } from "../../cli/request-list.js";
import type { FunctionCall } from "../../protocol/index.js";

const lookups: Parameters<Lookup>[] = [];
const lookup: Lookup = async (kind, namespace) => {
  lookups.push([kind, namespace]);
  if (kind === "application") return ["calc", "chain", "other"];
  if (kind === "request") return ["calc-a1", "calc-b2", "chain-c3"];
  if (kind === "namespace") return ["default", "team-a", "team-b"];
  return ["calc-a1-x"];
};

describe("completion", () => {
  it("completes commands, flags, flag values and names from the cluster", async () => {
    expect((await complete([""], lookup)).candidates).toContain("requests");
    expect(await complete(["re"], lookup)).toEqual({ candidates: ["requests"], directive: 4 });
    expect((await complete(["invoke", "c"], lookup)).candidates).toEqual(["calc", "chain"]);
    expect((await complete(["requests", "calc", "--phase", "F"], lookup)).candidates).toEqual(["Failed"]);
    expect((await complete(["graph", "x", "-o", ""], lookup)).candidates).toEqual(["table", "json", "yaml"]);
    expect((await complete(["cancel", "--"], lookup)).candidates).toContain("--namespace");
    expect((await complete(["-n", "team"], lookup)).candidates).toEqual(["team-a", "team-b"]);
  });

  it("passes -n to the lookup, skips flag values as positionals, and stops after the argument", async () => {
    lookups.length = 0;
    expect((await complete(["output", "-n", "team-a", "--api", "http://x", "calc-"], lookup)).candidates).toEqual([
      "calc-a1",
      "calc-b2",
    ]);
    expect(lookups).toEqual([["request", "team-a"]]);
    expect(await complete(["output", "calc-a1", ""], lookup)).toEqual({ candidates: [], directive: 4 });
    expect(await complete(["invoke", "calc", "--input", ""], lookup)).toEqual({ candidates: [], directive: 4 });
    expect(await complete(["nope", ""], lookup)).toEqual({ candidates: [], directive: 4 });
  });

  it("lets the shell complete files for deploy, and shows nothing when the cluster fails", async () => {
    expect(await complete(["deploy", ""], lookup)).toEqual({ candidates: [], directive: 0 });
    const failing: Lookup = () => Promise.reject(new Error("no cluster"));
    expect(await complete(["invoke", ""], failing)).toEqual({ candidates: [], directive: 4 });
  });

  it("prints a bash script and refuses an unknown shell", () => {
    expect(completionScript("bash")).toContain("complete -F _kubectl_trellis kubectl-trellis");
    expect(() => completionScript("fish")).toThrow(/unknown shell "fish" \(bash or zsh\)/);
  });
});

const described = (names: [string, boolean][]) => names.map(([name, application]) => ({ name, application }));

describe("deploy's choice of applications", () => {
  const file = "apps.py";
  const two = described([
    ["helper", false],
    ["ingest_docs", true],
    ["summarize", true],
  ]);

  it("takes every @application() in the file, each named after its entrypoint", () => {
    expect(chooseApplications(file, two, {})).toEqual([
      { entrypoint: "ingest_docs", name: "ingest-docs" },
      { entrypoint: "summarize", name: "summarize" },
    ]);
  });

  it("narrows to --entrypoint, which --name may rename", () => {
    expect(chooseApplications(file, two, { entrypoint: "summarize", name: "sum" })).toEqual([
      { entrypoint: "summarize", name: "sum" },
    ]);
  });

  it("refuses what it cannot do, naming the flag and the rule", () => {
    expect(() => chooseApplications(file, two, { name: "x" })).toThrow(
      /--name: apps.py defines several applications \(ingest_docs, summarize\); --name needs one/,
    );
    expect(() => chooseApplications(file, two, { entrypoint: "helper" })).toThrow(
      /--entrypoint helper: not an @application\(\) in apps.py \(found: ingest_docs, summarize\)/,
    );
    expect(() => chooseApplications(file, described([["f", false]]), {})).toThrow(/defines no @application\(\)/);
    const clash = described([
      ["a_b", true],
      ["a__b", true],
    ]);
    expect(() => chooseApplications(file, clash, {})).toThrow(
      "applications a_b and a__b would both be named a-b: deploy them one at a time with --entrypoint and --name",
    );
  });
});

function call(
  name: string,
  o: Partial<{ parent: string; phase: string; created: string; start: string; end: string }>,
) {
  return {
    metadata: { name, creationTimestamp: o.created ?? "2026-12-01T10:00:00Z" },
    spec: { application: "calc", function: "f", request: "r", ...(o.parent ? { parent: o.parent } : {}) },
    status: {
      ...(o.phase ? { phase: o.phase } : {}),
      ...(o.start ? { startTime: o.start } : {}),
      ...(o.end ? { completionTime: o.end } : {}),
      ...(o.phase === "Failed" ? { error: { type: "ValueError", message: "bad\n input" } } : {}),
    },
  } as unknown as FunctionCall;
}

describe("requests", () => {
  const now = Date.parse("2026-12-01T10:10:00Z");
  const calls = [
    call("r1", {
      phase: "Succeeded",
      created: "2026-12-01T10:00:00Z",
      start: "2026-12-01T10:00:01Z",
      end: "2026-12-01T10:00:03.5Z",
    }),
    call("r2", {
      phase: "Failed",
      created: "2026-12-01T10:05:00Z",
      start: "2026-12-01T10:05:00Z",
      end: "2026-12-01T10:05:00.2Z",
    }),
    call("r3", { created: "2026-12-01T10:09:00Z" }),
    call("r1-child", { parent: "r1", phase: "Succeeded", created: "2026-12-01T10:00:02Z" }),
  ];

  it("lists roots only, newest first, filtered by phase and limited", () => {
    expect(requestRows(calls, { now }).map((r) => [r.name, r.phase])).toEqual([
      ["r3", "Pending"],
      ["r2", "Failed"],
      ["r1", "Succeeded"],
    ]);
    expect(requestRows(calls, { now, phase: "Failed" }).map((r) => r.name)).toEqual(["r2"]);
    expect(requestRows(calls, { now, limit: 1 }).map((r) => r.name)).toEqual(["r3"]);
    const r1 = requestRows(calls, { now, phase: "Succeeded" })[0]!;
    expect(r1.durationMs).toBe(2500);
  });

  it("prints a table with age, duration and the error on one line", () => {
    const lines = requestTable(requestRows(calls, { now }), now).split("\n");
    expect(lines[0]).toMatch(/^REQUEST\s+PHASE\s+AGE\s+DURATION\s+ERROR$/);
    expect(lines[1]).toMatch(/^r3\s+Pending\s+60s\s+1m0s\s*$/);
    expect(lines[2]).toMatch(/^r2\s+Failed\s+5m\s+200ms\s+ValueError: bad input$/);
    expect(lines[3]).toMatch(/^r1\s+Succeeded\s+10m\s+2\.5s/);
  });

  it("gives the graph as a document with depth and parent for -o json|yaml", () => {
    const doc = graphDocument(calls, "r1", now);
    expect(doc.calls.map((c) => [c.name, c.depth, c.parent ?? null])).toEqual([
      ["r1", 0, null],
      ["r1-child", 1, "r1"],
    ]);
    expect(formatDocument(doc, "yaml")).toMatch(/^request: r1\ncalls:\n {2}- name: r1\n/);
    expect(JSON.parse(formatDocument(doc, "json"))).toEqual(doc);
  });
  it("shows a settled tail link with its tail, marked settled, and no duration that grows", () => {
    const link = (name: string, parent: string, tail: string, settled: boolean) => {
      const c = call(name, { parent, phase: "Delegated", start: "2026-12-01T10:00:01Z" });
      (c.status as Record<string, unknown>).tailCall = tail;
      if (settled) c.metadata.labels = { "trellis.dev/settled": "true" };
      return c;
    };
    const chain = [
      link("t", "", "t-2", false),
      link("t-1", "t", "t-2", true),
      call("t-2", { parent: "t-1", phase: "Running", start: "2026-12-01T10:00:02Z" }),
    ];
    delete (chain[0]!.spec as { parent?: string }).parent;
    const doc = graphDocument(chain, "t", now);
    expect(doc.calls.map((c) => [c.name, c.duration, "settled" in c])).toEqual([
      ["t", "9m59s", false], // the head waits on its chain: its time runs on
      ["t-1", "-", true],
      ["t-2", "9m58s", false],
    ]);
    expect(treeRows(chain, "t", now)[1]!.slice(1, 4)).toEqual(["f → t-2 (settled)", "Delegated", "-"]);
  });
});

describe("--output and durations", () => {
  it("accepts the formats a command prints and names the rule otherwise", () => {
    expect(outputFormat(undefined, ["table", "json", "yaml"])).toBe("table");
    expect(outputFormat("yaml", ["json", "yaml"])).toBe("yaml");
    expect(() => outputFormat("table", ["json", "yaml"])).toThrow(CliError);
    expect(() => outputFormat("wide", ["table", "json", "yaml"])).toThrow(
      '--output "wide": must be one of table, json, yaml',
    );
  });

  it("prints durations and ages as kubectl does", () => {
    expect([humanDuration(850), humanDuration(12_340), humanDuration(245_000), humanDuration(7_380_000)]).toEqual([
      "850ms",
      "12.3s",
      "4m5s",
      "2h3m",
    ]);
    expect([age(5_000), age(150_000), age(1_800_000), age(4 * 3600_000 + 60_000), age(3 * 86400_000)]).toEqual([
      "5s",
      "2m30s",
      "30m",
      "4h1m",
      "3d",
    ]);
  });
});
