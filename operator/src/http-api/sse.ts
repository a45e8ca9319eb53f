// Server-sent events of one request, from the informer's updates of its root FunctionCall. Every
// event's data is a JSON object. Tensorlake's client reads the events keyed by their kind
// (`{"RequestProgressUpdated": …}`, and stops at `{"RequestFinished": …}`); Trellis' own named
// events stay: "status" when the phase changes, "progress" on each progress update, "completed"
// (the final request view) last, then the stream ends. A stream counts against its client's cap
// (streams.ts) and ends with "stream_timeout" after the maximum duration; the client reconnects.
import type { FastifyReply } from "fastify";
import { requestMetadata } from "./manifest.js";
import { acquireStream } from "./streams.js";
import type { CallObject, HttpApiDeps } from "./types.js";
import { finished } from "./views.js";

export function streamRequest(
  reply: FastifyReply,
  deps: HttpApiDeps,
  key: string,
  initial: CallObject | undefined,
  first: { event: string; data: unknown }[] = [],
  slot?: () => void,
): void {
  const release = slot ?? acquireStream(reply.request, reply);
  if (!release) return; // answered 429
  const { maxDurationMs } = reply.server.sseStreams.limits;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  /** Tensorlake's shape: the event's name is also the data's one key. */
  const tagged = (kind: string, body: object) => send(kind, { [kind]: body });
  for (const e of first) send(e.event, e.data);

  let lastPhase: string | undefined;
  let lastProgress: string | undefined;
  let done = false;
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.sseKeepAliveMs ?? 15_000);
  const expire = setTimeout(() => {
    send("stream_timeout", {
      message: `the stream reached its maximum duration of ${Math.round(maxDurationMs / 1000)} s (TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS); reconnect to keep following the request`,
    });
    close();
  }, maxDurationMs);
  const close = () => {
    if (done) return;
    done = true;
    clearInterval(keepAlive);
    clearTimeout(expire);
    unsubscribe();
    release();
    res.end();
  };
  const onCall = (c: CallObject | undefined) => {
    if (done) return;
    if (!c) {
      send("deleted", { id: key.slice(key.indexOf("/") + 1) });
      return close();
    }
    const view = requestMetadata(deps, c);
    const progress = c.status?.progress;
    const p = progress ? JSON.stringify(progress) : undefined;
    if (progress && p !== lastProgress) {
      send("progress", progress);
      tagged("RequestProgressUpdated", { request_id: view.id, function_name: view.function, ...progress });
    }
    lastProgress = p;
    if (view.phase !== lastPhase) send("status", { id: view.id, status: view.status, phase: view.phase });
    lastPhase = view.phase;
    if (finished(c)) {
      tagged("RequestFinished", {
        request_id: view.id,
        outcome: view.outcome,
        application_version: view.application_version,
        request_error: view.request_error,
      });
      send("completed", view);
      close();
    }
  };
  const unsubscribe = deps.watchCall(key, onCall);
  res.on("close", close);
  onCall(deps.calls.get(key) ?? initial);
}
