// The Application controller: what main.ts wires and what the engine reads.
export { ApplicationController, APPLICATION_INDEX, applicationIndexers } from "./controller.js";
export type { ApplicationControllerDeps, ApplicationControllerStats } from "./controller.js";
export { applicationSettings, defaultApplicationSettings, effectiveFunctionSettings } from "./settings.js";
export type { ApplicationSettings, EffectiveFunctionSettings } from "./settings.js";
/** The Python function a pod serves: use this, not the label (names like `_x` are encoded there). */
export { podFunction } from "./pod-builder.js";
export type { ApplicationObject, Backlog, DiscoveredFunction, DispatcherView, Pod, PodActivity } from "./types.js";
