// One server-sent event stream: counted against its client's cap (streams.ts; 429 past it), kept
// alive by comments, ended after the maximum duration with "stream_timeout" (the client
// reconnects), and closed once: by the route, the client or the timeout. The routes say what
// goes on it (sse.ts: a request's status; ui/routes.ts: a request's call graph).
import type { FastifyReply } from "fastify";
import { acquireStream } from "./streams.js";
import type { HttpApiDeps } from "./types.js";

export interface EventStream {
  send(event: string, data: unknown): void;
  /** An event whose data is already JSON text. */
  sendJson(event: string, json: string): void;
  close(): void;
  readonly closed: boolean;
}

/**
 * Opens the stream (undefined when the client's cap answered 429). `onClose` runs once when it
 * ends, for whatever reason; `slot` is a stream slot the caller already holds.
 */
export function openEventStream(
  reply: FastifyReply,
  deps: Pick<HttpApiDeps, "sseKeepAliveMs">,
  opts: { timeoutMessage: (maxSeconds: number) => string; onClose: () => void; slot?: () => void },
): EventStream | undefined {
  const release = opts.slot ?? acquireStream(reply.request, reply);
  if (!release) return undefined;
  const { maxDurationMs } = reply.server.sseStreams.limits;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let closed = false;
  const sendJson = (event: string, json: string) => {
    if (!closed) res.write(`event: ${event}\ndata: ${json}\n\n`);
  };
  const send = (event: string, data: unknown) => sendJson(event, JSON.stringify(data));
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.sseKeepAliveMs ?? 15_000);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    clearTimeout(expire);
    opts.onClose();
    release();
    res.end();
  };
  const expire = setTimeout(() => {
    send("stream_timeout", { message: opts.timeoutMessage(Math.round(maxDurationMs / 1000)) });
    close();
  }, maxDurationMs);
  res.on("close", close);
  return {
    send,
    sendJson,
    close,
    get closed() {
      return closed;
    },
  };
}
