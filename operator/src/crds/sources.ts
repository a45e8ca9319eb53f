import {
  applicationSpec,
  applicationStatus,
  functionCallRootValidations,
  functionCallSpec,
  functionCallStatus,
  GROUP,
  VERSION,
} from "../../../protocol/index.js";

import type { CrdSource } from "./crd-from-zod.js";

// Short names avoid Argo CD's app/apps and Argo Workflows' wf/cwf.
export const applicationCrd: CrdSource = {
  group: GROUP,
  version: VERSION,
  kind: "Application",
  plural: "applications",
  singular: "application",
  shortNames: ["tapp", "tapps"],
  categories: ["trellis"],
  description: "A Trellis Application: Python functions that can be called; each call becomes a FunctionCall.",
  spec: applicationSpec,
  status: applicationStatus,
  // The name is the trellis.dev/application label of every object of the application (pods,
  // Secrets, ConfigMaps, FunctionCalls) and is read back from it, so it must be a label value.
  rootValidations: [
    {
      rule: "self.metadata.name.size() <= 63",
      message: "metadata.name: an Application name is at most 63 characters (it is a label value of its objects)",
    },
  ],
  printerColumns: [
    { name: "Entrypoint", type: "string", jsonPath: ".spec.entrypoint", description: "The @application function." },
    { name: "Ready", type: "string", jsonPath: ".status.conditions[?(@.type==\"Ready\")].status", description: "Ready condition." },
    { name: "Containers", type: "integer", jsonPath: ".status.readyContainers", description: "Ready containers." },
    { name: "Image", type: "string", jsonPath: ".spec.image", priority: 1, description: "Runtime image." },
    { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  ],
};

export const functionCallCrd: CrdSource = {
  group: GROUP,
  version: VERSION,
  kind: "FunctionCall",
  plural: "functioncalls",
  singular: "functioncall",
  shortNames: ["fc", "fcs"],
  categories: ["trellis"],
  description: "One invocation of one function of an Application. A FunctionCall without a parent is a request.",
  spec: functionCallSpec,
  status: functionCallStatus,
  rootValidations: functionCallRootValidations,
  printerColumns: [
    { name: "Application", type: "string", jsonPath: ".spec.application" },
    { name: "Function", type: "string", jsonPath: ".spec.function" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Attempts", type: "integer", jsonPath: ".status.attempts" },
    { name: "Pod", type: "string", jsonPath: ".status.pod" },
    { name: "Items", type: "integer", jsonPath: ".status.itemCounts.total", description: "A shard's map items." },
    { name: "Succeeded", type: "integer", jsonPath: ".status.itemCounts.succeeded", description: "A shard's items that Succeeded." },
    { name: "Failed", type: "integer", jsonPath: ".status.itemCounts.failed", description: "A shard's items that Failed or were Cancelled." },
    { name: "Running", type: "integer", jsonPath: ".status.itemCounts.running", description: "A shard's items Running or Delegated." },
    { name: "Parent", type: "string", jsonPath: ".spec.parent", priority: 1 },
    { name: "Request", type: "string", jsonPath: ".spec.request", priority: 1 },
    { name: "Started", type: "date", jsonPath: ".status.startTime", priority: 1 },
    { name: "Completed", type: "date", jsonPath: ".status.completionTime", priority: 1 },
    { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  ],
};

export const crdSources = [applicationCrd, functionCallCrd];
