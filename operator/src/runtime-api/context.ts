// What the route plugins share: the deps of the runtime API, the pod of a request, body parsing.
import type { FastifyRequest } from "fastify";
import type { z } from "zod";
import type { Logger } from "../../../protocol/index.js";
import type { BlobStore } from "../blobs/index.js";
import { fromZod } from "./errors.js";
import type { PodIdentity, RuntimePort } from "./port.js";

export interface RuntimeApiDeps {
  /** Secret key of the per-pod credentials (token = HMAC-SHA256(key, "<namespace>/<pod>")). */
  operatorKey: string | Uint8Array;
  /** Application and function of a function pod (from its labels), undefined for other pods. */
  podIdentity: (namespace: string, pod: string) => { application: string; function: string } | undefined;
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
