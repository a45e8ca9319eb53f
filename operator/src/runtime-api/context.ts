// What the route plugins share: the deps of the runtime API, the pod of a request, body parsing.
import type { FastifyRequest } from "fastify";
import type { z } from "zod";
import type { Logger } from "../../../protocol/index.js";
import type { BlobStore } from "../blobs/index.js";
import type { FunctionPodIdentity } from "./credentials.js";
import { fromZod } from "./errors.js";
import type { PodIdentity, RuntimePort } from "./port.js";

export interface RuntimeApiDeps {
  /** Secret key of the per-pod credentials (see credentials.ts: HMAC over namespace, pod and pod uid). */
  operatorKey: string | Uint8Array;
  /** Application, function and uid of a function pod the operator created, else why it is refused. */
  podIdentity: (namespace: string, pod: string) => FunctionPodIdentity | string;
  /** Where request state and uploaded blobs live. */
  blobs: BlobStore;
  logger?: Logger;
}

/** What every route plugin gets. */
export interface RouteOptions {
  port: RuntimePort;
  deps: RuntimeApiDeps;
}

declare module "fastify" {
  interface FastifyRequest {
    trellisPod: PodIdentity;
  }
}

/** Parses `data` with `schema` or throws invalid_body naming the field and the rule. */
export function parse<S extends z.ZodType>(schema: S, data: unknown, where = "body"): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw fromZod(r.error, where);
  return r.data;
}

export const podOf = (req: FastifyRequest): PodIdentity => req.trellisPod;
