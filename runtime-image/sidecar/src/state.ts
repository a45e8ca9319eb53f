// Request state for the worker (state_get / state_set → the state routes → `reply`).
import type { Logger } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { Blobs } from "./blobs.js";
import type { Session } from "./worker-link.js";
import type { Msg } from "./worker-parse.js";

export async function handleState(
  api: RuntimeApi,
  blobs: Blobs,
  session: Session,
  msg: Msg<"state_get" | "state_set">,
  log: Logger,
): Promise<void> {
  const { rid, request, key, call } = msg;
  try {
    if (msg.type === "state_get") {
      const r = await api.stateGet(request, key);
      if (!r.ok) return void session.send({ type: "reply", rid, ok: false, error: `${r.code}: ${r.message}` });
      const value =
        r.body.value === undefined
          ? null
          : await blobs.inbound(r.body.value, `state ${key}`, {
              spill: session.spill,
              files: session.spillFiles,
            });
      session.send({ type: "reply", rid, ok: true, value });
    } else {
      const value = await blobs.outbound(msg.value, call, `state ${key}`);
      const r = await api.statePut(request, key, { value });
      session.send(
        r.ok ? { type: "reply", rid, ok: true } : { type: "reply", rid, ok: false, error: `${r.code}: ${r.message}` },
      );
    }
  } catch (e) {
    log.error("request state failed", { type: msg.type, request, key, error: e });
    session.send({ type: "reply", rid, ok: false, error: (e as Error).message });
  }
}
