// What the engine tells the rest of the operator (main.ts wires metrics and the Application controller).
export interface EngineHooks {
  /** A call was assigned to a pod after waiting `queuedMs` ready in its queue. */
  dispatched?(namespace: string, application: string, fn: string, queuedMs: number): void;
  /** A call reached Succeeded, Failed or Cancelled. */
  finished?(namespace: string, application: string, fn: string, phase: string): void;
  /** A passed tail link was settled: its chain's head took its outcome, and it left the graph. */
  settled?(namespace: string, application: string, fn: string): void;
  /** Queued or running counts of an application changed: ApplicationController.onBacklogChanged. */
  backlogChanged?(namespace: string, application: string): void;
  /** A pod registered, went busy or idle: ApplicationController.onPodActivityChanged. */
  podActivityChanged?(namespace: string, pod: string): void;
}
