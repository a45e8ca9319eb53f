import { describe, expect, it } from "vitest";
import { ASSIGNED_ANNOTATION, assignedAnnotation, assignmentOfCreate, callAsShown, statusOfCall } from "./index.js";

const at = "2026-12-04T10:00:00.000Z";
const good = assignedAnnotation({ pod: "app-g-abc12", attempt: 1, startTime: at, queuedTime: at });
const child = (annotation: string | undefined, status?: { phase?: "Succeeded" | "Running" }) => {
  const annotations: Record<string, string> = annotation === undefined ? {} : { [ASSIGNED_ANNOTATION]: annotation };
  return {
    metadata: { name: "r-x", annotations },
    spec: { application: "app", function: "g", parent: "r", request: "r" },
    ...(status ? { status } : {}),
  };
};

describe("a call created assigned (trellis.dev/assigned)", () => {
  it("reads as Running on its pod, attempt 1, until a status is written", () => {
    expect(statusOfCall(child(good))).toEqual({
      phase: "Running",
      pod: "app-g-abc12",
      attempts: 1,
      startTime: at,
      queuedTime: at,
    });
    const shown = callAsShown(child(good));
    expect(shown.status?.phase).toBe("Running");
    // A written status is the truth from then on; a call without the annotation is left as it is.
    const written = child(good, { phase: "Succeeded" });
    expect(callAsShown(written)).toBe(written);
    const plain = child(undefined);
    expect(callAsShown(plain)).toBe(plain);
  });

  it.each([
    ["not JSON", "pod=x"],
    ["no times", JSON.stringify({ pod: "p", attempt: 1 })],
    ["a later attempt", JSON.stringify({ pod: "p", attempt: 2, startTime: at, queuedTime: at })],
    ["an empty pod", JSON.stringify({ pod: "", attempt: 1, startTime: at, queuedTime: at })],
    ["a time that is not one", JSON.stringify({ pod: "p", attempt: 1, startTime: "soon", queuedTime: at })],
    ["an unknown field", JSON.stringify({ pod: "p", attempt: 1, startTime: at, queuedTime: at, phase: "Succeeded" })],
    ["a list", "[]"],
  ])("is no assignment when malformed: %s", (_what, annotation) => {
    expect(assignmentOfCreate(child(annotation))).toBeUndefined();
    expect(statusOfCall(child(annotation))).toBeUndefined();
  });

  it("is no assignment on a root call (anyone may create one)", () => {
    const root = { ...child(good), spec: { application: "app", function: "g" } };
    expect(assignmentOfCreate(root)).toBeUndefined();
  });
});
