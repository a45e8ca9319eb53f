// The FunctionCall engine: what the rest of the operator uses.
//
//   const engine = createEngine({ calls, applications, writer, events, queue, blobs, operatorKey, podIdentity });
//   queue.run(engine.reconciler, workers);      // FunctionCall keys
//   await calls.start(); engine.start();         // load the synced cache, queue every call
//   await engine.runtimeApi.listen({ host, port });
//   podInformer.onEvent((t, pod) => t === "DELETED" && engine.podGone(ns, name));
//   applicationController uses engine.dispatcher as its DispatcherView (queued/running counts).
export {
  type Engine,
  type EngineCore,
  type EngineDeps,
  type EngineHooks,
  type EngineStats,
  createEngine,
} from "./engine.js";
export { type EngineConfig, defaultEngineConfig, engineConfig } from "./config.js";
export { FUNCTION_CALL_INDEXERS } from "./graph.js";
export { podIdentityFromCache } from "./pod-identity.js";
export { decideCall } from "./decide-call.js";
export type { Action, CallView } from "./actions.js";
