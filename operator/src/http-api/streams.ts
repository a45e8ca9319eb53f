// Caps on server-sent event streams: each holds a connection and a watch for as long as the request
// runs, so one client may hold only so many at once, and none lasts longer than a maximum (the
// client reconnects; the progress route answers at once for a finished request).
import type { FastifyReply, FastifyRequest } from "fastify";

export const DEFAULT_SSE_MAX_PER_CLIENT = 16;
export const DEFAULT_SSE_MAX_DURATION_MS = 60 * 60 * 1000;
/** Seconds a refused client is told to wait: a stream slot frees when any of its streams ends. */
export const SSE_RETRY_AFTER_SECONDS = 5;

export interface StreamLimits {
  /** Concurrent streams per client identity (authenticated user, else remote address). */
  maxPerClient: number;
  /** A stream ends after this long; the client reconnects to keep following. */
  maxDurationMs: number;
}

export class StreamLimiter {
  private readonly open = new Map<string, number>();

  constructor(readonly limits: StreamLimits) {}

  /** A slot for `client`, or undefined when it holds maxPerClient streams already; release once. */
  acquire(client: string): (() => void) | undefined {
    const n = this.open.get(client) ?? 0;
    if (n >= this.limits.maxPerClient) return undefined;
    this.open.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(client) ?? 1) - 1;
      if (left > 0) this.open.set(client, left);
      else this.open.delete(client);
    };
  }

  count(client: string): number {
    return this.open.get(client) ?? 0;
  }
}

declare module "fastify" {
  interface FastifyRequest {
    /** Who the caller is: set by the auth hook (the authenticated user; undefined without auth). */
    trellisUser?: string;
  }
  interface FastifyInstance {
    sseStreams: StreamLimiter;
  }
}

/** The identity streams are counted by: the authenticated user, else the remote address. */
export function clientIdentity(req: FastifyRequest): string {
  return req.trellisUser ? `user:${req.trellisUser}` : `addr:${req.ip}`;
}

/** A stream slot for the request's client, or undefined after answering 429. */
export function acquireStream(req: FastifyRequest, reply: FastifyReply): (() => void) | undefined {
  const limiter = req.server.sseStreams;
  const release = limiter.acquire(clientIdentity(req));
  if (release) return release;
  void reply
    .code(429)
    .header("retry-after", String(SSE_RETRY_AFTER_SECONDS))
    .send({
      code: "too_many_streams",
      message: `Accept: text/event-stream: at most ${limiter.limits.maxPerClient} concurrent event streams per client (TRELLIS_HTTP_SSE_MAX_PER_CLIENT); close one or retry later`,
    });
  return undefined;
}
