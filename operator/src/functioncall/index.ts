// The FunctionCall engine: what the rest of the operator uses.
//
//   const engine = createEngine({ calls, applications, writer, events, queue, blobs });
//   queue.run(engine.reconciler, workers);      // FunctionCall keys
//   await calls.start(); engine.start();         // load the synced cache, queue every call
//   const api = buildRuntimeApi(engine.runtimePort, { operatorKey, podIdentity, blobs });
//   podInformer.onEvent((t, pod) => t === "DELETED" && engine.podGone(ns, name));
//   podsGoneAtStart(calls.list(), podExists) → engine.podGone: pods deleted while nobody led.
//   applicationController uses engine.dispatcher as its DispatcherView (queued/running counts).
export { type Engine, type EngineDeps, type EngineStats, createEngine } from "./engine.js";
export type { EngineHooks } from "./hooks.js";
export { type EngineConfig, defaultEngineConfig, engineConfig } from "./config.js";
export { CallGraph, FUNCTION_CALL_INDEXERS } from "./graph.js";
export { type Call, isRoot, isTerminal, phaseOf } from "./calls.js";
export { buildChild } from "./children.js";
export { podsGoneAtStart } from "./adoption.js";
export { decideCall } from "./decide-call.js";
export { decideAssignment } from "./decide-assignment.js";
export { decideChildren } from "./decide-children.js";
export { decideGraphChange } from "./decide-graph.js";
export { currentAttempt, decideFailure, decideResult, decideTail } from "./decide-report.js";
export { decideWaitingWrite } from "./decide-waiting.js";
export type { Action, CallView, Effect, Write } from "./actions.js";
