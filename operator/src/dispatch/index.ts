// Dispatch: ready queues per (namespace, application, function) ↔ pod leases, and the pods
// (liveness, running calls, cancellations, the function table their runtime reported).
//
//   const dispatcher = new Dispatcher({ clock, config, start, runningAttempt, onLost });
//   dispatcher.enqueue({ namespace, name, application, function });   // a ready call
//   await dispatcher.leaseAnswer(pod, capacity, waitMs, signal);       // a sidecar's long poll: {assignments, epoch, seq}
//   dispatcher.pods.heartbeat(pod, calls, draining, lease);            // lease: {epoch, seq} of the last answer it took
export { Dispatcher, type DispatcherDeps } from "./dispatcher.js";
export { PodRegistry, type PodRegistryDeps } from "./pod-registry.js";
export { podIdentityFromCache } from "./pod-identity.js";
export type {
  CallRef,
  DispatchConfig,
  LeaseWaiter,
  PodIdentity,
  PodState,
  RunningAttempt,
  StartCall,
  StartResult,
} from "./pods.js";
