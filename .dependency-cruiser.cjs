// Import rules between the parts of Trellis (npm run deps:check; part of npm test). The parts are
// protocol/ (the contract package), operator/, runtime-image/sidecar/, cli/, and the tests and
// benchmarks in test/ and bench/. Across part boundaries the operator, the sidecar and the CLI
// import only protocol/index.ts, so that each part can be restructured, built and shipped alone.
// Paths are regular expressions on repository-relative paths.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "A cycle makes its modules one unit that cannot be understood, tested or moved piecemeal. Type-only " +
        "imports count: erased at runtime, they are still the coupling (a domain type leaking into an edge " +
        "module); a type both sides need belongs in a third module (kube/types.ts, protocol/).",
      from: { path: "^(protocol|operator|runtime-image/sidecar|cli)/" },
      to: { circular: true },
    },
    {
      name: "no-operator-internals-outside-operator",
      severity: "error",
      comment:
        "operator/src is the operator's inside; other parts share only the contract in protocol/. Tests and " +
        "benchmarks in test/ and bench/ may reach into the part they test (integration tests of the Kubernetes " +
        "edge, the e2e operator launcher, write benchmarks).",
      from: { pathNot: "^(operator|test|bench)/" },
      to: { path: "^operator/src/" },
    },
    {
      name: "sidecar-imports-only-the-contract",
      severity: "error",
      comment:
        "The sidecar ships alone in the runtime image: from other parts it imports only protocol/index.ts (the " +
        "contract), never operator or CLI code. Its tests and benches (*.test.ts, *.testlib.ts, *.bench.ts) " +
        "are exempt from this rule (not from no-operator-internals-outside-operator).",
      from: { path: "^runtime-image/sidecar/src/", pathNot: "\\.(test|testlib|bench)\\.ts$" },
      to: {
        path: "^(protocol|operator|runtime-image|cli|test|bench|scripts)/",
        pathNot: ["^runtime-image/sidecar/", "^protocol/index\\.ts$"],
      },
    },
    {
      name: "cli-imports-only-the-contract",
      severity: "error",
      comment:
        "kubectl trellis is bundled and shipped on its own: from other parts it imports only protocol/index.ts " +
        "(its Kubernetes access is cli/kube.ts, not the operator's client).",
      from: { path: "^cli/" },
      to: {
        path: "^(protocol|operator|runtime-image|test|bench|scripts)/",
        pathNot: "^protocol/index\\.ts$",
      },
    },
    {
      name: "protocol-is-a-leaf",
      severity: "error",
      comment:
        "protocol/ is the contract every part depends on; it depends on no part (only on libraries such as zod), " +
        "or every part would depend on every other through it.",
      from: { path: "^protocol/" },
      to: { path: "^(operator|runtime-image|cli|test|bench|scripts)/" },
    },
    {
      name: "kube-edge-imports-no-domain",
      severity: "error",
      comment:
        "operator/src/kube is the Kubernetes edge (client, informers, work queue, leader election, writer): the " +
        "domain folders build on it, never the other way, so it stays generic and testable without Trellis " +
        "semantics. It may import protocol/ (the logger, the CRD group).",
      from: { path: "^operator/src/kube/" },
      to: { path: "^operator/src/", pathNot: "^operator/src/kube/" },
    },
    {
      name: "apis-do-not-reach-into-the-engine",
      severity: "error",
      comment:
        "The runtime API and the HTTP API are adapters: the runtime API is built from the narrow RuntimePort " +
        "(runtime-api/port.ts) that the engine implements, and the HTTP API reads FunctionCalls from its cache, " +
        "so neither imports the call semantics (functioncall/) or the dispatcher (dispatch/). Their tests may " +
        "drive the real engine through its test harness.",
      from: { path: "^operator/src/(runtime-api|http-api)/", pathNot: "\\.test\\.ts$" },
      to: { path: "^operator/src/(functioncall|dispatch)/" },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment:
        "An import that does not resolve is either a bug or a resolution problem of this configuration; " +
        "either way the rules above cannot judge it, so it must not pass silently.",
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["(^|/)dist/", "^bench/results/"] },
    // Type-only imports are dependencies too (see no-circular).
    tsPreCompilationDeps: true,
    // Resolution as tsc does it (NodeNext: "./x.js" in source names ./x.ts).
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".mts", ".js", ".mjs", ".cjs", ".json"],
      mainFields: ["module", "main", "types", "typings"],
    },
    skipAnalysisNotInRules: true,
  },
};
