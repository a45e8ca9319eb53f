// Server-sent events of one request, from the informer's updates of its root FunctionCall:
// "status" when the phase changes, "progress" on each progress update, then "completed" (the
// final request view) and the stream ends.
import type { FastifyReply } from "fastify";
import type { CallObject, HttpApiDeps } from "./types.js";
import { finished, requestView } from "./views.js";

export function streamRequest(
  reply: FastifyReply,
  deps: HttpApiDeps,
  key: string,
  initial: CallObject | undefined,
  first: { event: string; data: unknown }[] = [],
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  for (const e of first) send(e.event, e.data);

  let lastPhase: string | undefined;
  let lastProgress: string | undefined;
  let done = false;
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.sseKeepAliveMs ?? 15_000);
  const close = () => {
    if (done) return;
    done = true;
    clearInterval(keepAlive);
    unsubscribe();
    res.end();
  };
  const onCall = (c: CallObject | undefined) => {
    if (done) return;
    if (!c) {
      send("deleted", { id: key.slice(key.indexOf("/") + 1) });
      return close();
    }
    const view = requestView(c);
    const p = c.status?.progress ? JSON.stringify(c.status.progress) : undefined;
    if (p && p !== lastProgress) send("progress", c.status?.progress);
    lastProgress = p;
    if (view.phase !== lastPhase) send("status", { id: view.id, status: view.status, phase: view.phase });
    lastPhase = view.phase;
    if (finished(c)) {
      send("completed", view);
      close();
    }
  };
  const unsubscribe = deps.watchCall(key, onCall);
  res.on("close", close);
  onCall(deps.calls.get(key) ?? initial);
}
