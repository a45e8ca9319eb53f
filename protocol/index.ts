// The contract package: everything that crosses a process boundary between the operator, the
// sidecar, the CLI, the HTTP API's clients and the Python worker. Other parts import this file
// only (the dependency rules in .dependency-cruiser.cjs keep it so). protocol/README.md has the map.
export * from "./src/api/v1alpha1/index.js";
export * from "./src/labels.js";
export * from "./src/pod-contract.js";
export * from "./src/child-names.js";
export * from "./src/runtime-api.js";
export * from "./src/failures.js";
export * from "./src/requests.js";
export * from "./src/log.js";
export * from "./src/worker-messages.js";
export * from "./src/shards.js";
export * from "./src/assigned-at-create.js";
