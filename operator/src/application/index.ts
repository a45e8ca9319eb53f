// The Application controller: what main.ts wires and what the engine reads.
export { ApplicationController, APPLICATION_INDEX, applicationIndexers } from "./controller.js";
export type { ApplicationControllerDeps, ApplicationControllerStats } from "./controller.js";
export { applicationSettings, defaultApplicationSettings, effectiveFunctionSettings } from "./settings.js";
export type { ApplicationSettings, EffectiveFunctionSettings } from "./settings.js";
export { MANAGED_SELECTOR, LABEL, ANNOTATION, SIDECAR_ENV, POD_PATHS, POD_TOKEN_KEY, CONTAINER } from "./names.js";
export type { ApplicationObject, Backlog, DiscoveredFunction, DispatcherView, Pod, PodActivity } from "./types.js";
