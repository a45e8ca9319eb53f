// Building child FunctionCall objects: for map items and reduce steps (the engine) and for the
// calls a running function makes (the runtime API). Pure.
import { API_VERSION, type FunctionCallSpec, functionLabelValue, LABEL, labelValue } from "../../../protocol/index.js";
import { type Call, nameOf, namespaceOf, requestOf } from "./calls.js";

export interface ChildRequest {
  name: string;
  sequence: number;
  function: string;
  args?: FunctionCallSpec["args"];
  kwargs?: FunctionCallSpec["kwargs"];
  map?: FunctionCallSpec["map"];
  reduce?: FunctionCallSpec["reduce"];
  /** run_later: the call starts no earlier than this (ISO time). */
  startAfter?: string;
}

/** The child's spec inherits application, request and headers; it is owned by the root call. */
export function buildChild(parent: Call, root: Pick<Call, "metadata">, c: ChildRequest): Call {
  const request = requestOf(parent);
  const spec: FunctionCallSpec = {
    application: parent.spec.application,
    function: c.function,
    parent: nameOf(parent),
    request,
    sequence: c.sequence,
  };
  if (c.args && c.args.length > 0) spec.args = c.args;
  if (c.kwargs && Object.keys(c.kwargs).length > 0) spec.kwargs = c.kwargs;
  if (c.map) spec.map = c.map;
  if (c.reduce) spec.reduce = c.reduce;
  if (parent.spec.headers) spec.headers = parent.spec.headers;
  if (c.startAfter) spec.startAfter = c.startAfter;
  return {
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: {
      name: c.name,
      namespace: namespaceOf(parent),
      labels: {
        // A child's name is its request's + 17 characters, so a parent's often exceeds 63.
        [LABEL.application]: labelValue(parent.spec.application),
        [LABEL.request]: labelValue(request),
        [LABEL.function]: functionLabelValue(c.function),
        [LABEL.parent]: labelValue(nameOf(parent)),
      },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: "FunctionCall",
          name: root.metadata.name ?? request,
          uid: root.metadata.uid ?? "",
        },
      ],
    },
    spec,
  } as Call;
}

/** Whether an existing object is the child described (a name reused for another call is an error). */
export function sameChild(existing: Call, parent: Call, c: ChildRequest): boolean {
  return (
    existing.spec.parent === nameOf(parent) &&
    existing.spec.sequence === c.sequence &&
    existing.spec.function === c.function
  );
}
