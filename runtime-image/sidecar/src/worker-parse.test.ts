// The socket boundary (worker-parse.ts) against the protocol's shared examples
// (protocol/fixtures/worker-messages.json, which the Python worker checks too).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { WorkerMessage } from "./framing.js";
import { parseFatal, parseHello, parseWorkerMessage } from "./worker-parse.js";

interface Example {
  name: string;
  direction: "worker" | "sidecar";
  message: WorkerMessage;
  field?: string;
}
const fixtures = JSON.parse(
  readFileSync(new URL("../../../protocol/fixtures/worker-messages.json", import.meta.url), "utf8"),
) as { valid: Example[]; invalid: Example[] };
const fromWorker = (list: Example[]) => list.filter((e) => e.direction === "worker").map((e) => [e.name, e] as const);

describe("messages from the worker", () => {
  it.each(fromWorker(fixtures.valid))("accepts %s", (_name, e) => {
    expect(parseWorkerMessage(e.message)).toEqual({
      kind: "ok",
      msg: expect.objectContaining({ type: e.message.type }),
    });
  });

  it.each(fromWorker(fixtures.invalid).filter(([, e]) => e.field !== "type"))(
    "rejects %s, naming the field",
    (_n, e) => {
      const parsed = parseWorkerMessage(e.message);
      expect(parsed.kind).toBe("invalid");
      const problems = parsed.kind === "invalid" ? parsed.problems : [];
      expect(problems.some((p) => p.startsWith(`${e.message.type}.${e.field}: `))).toBe(true);
    },
  );

  it("tells a type it does not know from a broken message", () => {
    expect(parseWorkerMessage({ type: "cancel", call: "r1" })).toEqual({ kind: "unknown", type: "cancel" });
    expect(parseWorkerMessage({ type: "tail", call: "r1", attempt: 0 })).toEqual({
      kind: "invalid",
      type: "tail",
      problems: ["tail.attempt: Too small: expected number to be >=1", expect.stringMatching(/^tail\.target: /)],
    });
  });

  it("names every branch's rule for a value that fits no branch of a union", () => {
    const parsed = parseWorkerMessage({
      type: "calls",
      call: "r1",
      attempt: 1,
      calls: [{ id: "r1-aaaaaaaaaaaaaaaa", kind: "map", function: "f", items: "abc" }],
    });
    expect(parsed).toMatchObject({ kind: "invalid" });
    expect(parsed.kind === "invalid" && parsed.problems.every((p) => p.startsWith("calls.calls[0].items"))).toBe(true);
  });

  it("lists a few problems, not all of them", () => {
    const calls = Array.from({ length: 20 }, () => ({ kind: "call" }));
    const parsed = parseWorkerMessage({ type: "calls", call: "r1", attempt: 1, calls });
    expect(parsed.kind === "invalid" && parsed.problems.length).toBe(6);
    expect(parsed.kind === "invalid" && parsed.problems.at(-1)).toMatch(/^… \d+ more$/);
  });
});

describe("hello", () => {
  const valid = fixtures.valid.find((e) => e.message.type === "hello")!.message;

  it("keeps the function entries that check out and names the others", () => {
    const functions = valid.functions as object[];
    const { hello, problems } = parseHello({ ...valid, functions: [...functions, { name: "x", async: false }] });
    expect(hello?.functions).toHaveLength(functions.length);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^hello\\.functions\\[${functions.length}\\]\\.application: `));
  });

  it.each(fromWorker(fixtures.invalid).filter(([, e]) => e.message.type === "hello"))("%s", (_name, e) => {
    const { hello, problems } = parseHello(e.message);
    // A bad entry of the table costs that entry; a bad envelope costs the hello.
    expect(hello === undefined).toBe(!e.field!.startsWith("functions["));
    expect(problems.some((p) => p.startsWith(`hello.${e.field}: `))).toBe(true);
  });
});

describe("fatal", () => {
  it("reads what it can of a broken one: the code did not load either way", () => {
    expect(parseFatal({ type: "fatal", error: { message: "No module named x" } })).toEqual({
      fatal: { type: "fatal", protocol: 0, error: { type: "Error", message: "No module named x" } },
      problems: [expect.stringMatching(/^fatal\.protocol: /), expect.stringMatching(/^fatal\.error\.type: /)],
    });
  });
});
