// Server-sent events of one request, from the informer's updates of its root FunctionCall. Every
// event's data is a JSON object. Tensorlake's client reads the events keyed by their kind
// (`{"RequestProgressUpdated": …}`, and stops at `{"RequestFinished": …}`); Trellis' own named
// events stay: "status" when the phase changes, "progress" on each progress update, "completed"
// (the final request view) last, then the stream ends. A stream counts against its client's cap
// (streams.ts) and ends with "stream_timeout" after the maximum duration; the client reconnects.
import type { FastifyReply } from "fastify";
import { requestMetadata } from "./manifest.js";
import { openEventStream } from "./event-stream.js";
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
  let unsubscribe = () => {};
  const stream = openEventStream(reply, deps, {
    slot,
    onClose: () => unsubscribe(),
    timeoutMessage: (max) =>
      `the stream reached its maximum duration of ${max} s (TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS); reconnect to keep following the request`,
  });
  if (!stream) return; // answered 429
  const { send, close } = stream;
  /** Tensorlake's shape: the event's name is also the data's one key. */
  const tagged = (kind: string, body: object) => send(kind, { [kind]: body });
  for (const e of first) send(e.event, e.data);

  let lastPhase: string | undefined;
  let lastProgress: string | undefined;
  const onCall = (c: CallObject | undefined) => {
    if (stream.closed) return;
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
  unsubscribe = deps.watchCall(key, onCall);
  onCall(deps.calls.get(key) ?? initial);
}
