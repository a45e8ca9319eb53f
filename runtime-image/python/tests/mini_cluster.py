"""A reference orchestrator in protocol terms: what the sidecar + operator do, in one loop.

It keeps the call graph of one request (PROTOCOL.md §6-§8): dependencies, map/reduce
expansion with durable ids, delegation of tail calls, watches, retries, state. It
assigns every ready call back to the same worker process. Used to run whole apps
through `python -m trellis.worker` in tests.
"""

import time

from trellis._core.ids import child_id

FINAL = ("Succeeded", "Failed")


class MiniCluster:
    def __init__(self, sidecar, request: str = "rmini") -> None:
        self.sc = sidecar
        self.request = request
        self.calls: dict[str, dict] = {}
        self.watchers: dict[str, set] = {}
        self.state: dict[str, dict] = {}
        self.retry_budget: dict[str, int] = {}
        self.retries = {f["name"]: f.get("retries") or f.get("application_retries") for f in sidecar.hello["functions"]}

    # -- the graph -----------------------------------------------------------------
    def add(self, spec: dict) -> None:
        if spec["id"] in self.calls:
            return  # durable: re-attach
        call = {"spec": spec, "phase": "Pending", "attempt": 0, "delegated_to": None, "output": None, "error": None}
        self.calls[spec["id"]] = call
        if spec["kind"] in ("map", "reduce") and isinstance(spec["items"], list):
            self.expand(call, spec["items"])

    def ref(self, form):
        return form.get("call") if isinstance(form, dict) and len(form) == 1 else None

    def expand(self, call: dict, items: list) -> None:
        spec = call["spec"]
        if spec["kind"] == "map":
            call["items"] = []
            for i, item in enumerate(items):
                cid = child_id(self.request, spec["id"], i)
                call["items"].append(cid)
                self.add({"id": cid, "kind": "call", "function": spec["function"], "args": [item], "kwargs": {}})
            call["phase"] = "Collecting"
            return
        acc, rest = spec.get("initial"), list(items)
        if acc is None:
            if not rest:
                self.fail(call, {"type": "SDKUsageError", "message": "reduce() of an empty list with no initial value",
                                 "reason": "function_error", "request_error": False, "function": spec["function"]})
                return
            acc = rest.pop(0)
        for k, item in enumerate(rest):
            cid = child_id(self.request, spec["id"], k)
            self.add({"id": cid, "kind": "call", "function": spec["function"], "args": [acc, item], "kwargs": {}})
            acc = {"call": cid}
        if self.ref(acc):
            call["phase"], call["delegated_to"] = "Delegated", acc["call"]
        else:
            self.succeed(call, acc)

    def succeed(self, call: dict, output: dict) -> None:
        call["phase"], call["output"] = "Succeeded", output
        self.notify(call["spec"]["id"])

    def fail(self, call: dict, error: dict) -> None:
        call["phase"], call["error"] = "Failed", error
        self.notify(call["spec"]["id"])

    def step(self) -> None:
        """Moves every call as far as it can go (level-based, like a reconciler)."""
        changed = True
        while changed:
            changed = False
            for call in list(self.calls.values()):
                before = call["phase"]
                spec = call["spec"]
                if before == "Pending":
                    inputs = self.inputs_of(spec)
                    failed = [self.calls[r] for r in inputs if self.calls[r]["phase"] == "Failed"]
                    if failed:
                        self.fail(call, dict(failed[0]["error"], cause=failed[0]["spec"]["id"]))
                    elif all(self.calls[r]["phase"] == "Succeeded" for r in inputs):
                        if spec["kind"] == "call":
                            self.assign(call)
                        else:
                            self.expand_from_ref(call)
                elif before == "Collecting":
                    items = [self.calls[i] for i in call["items"]]
                    failed = [i for i in items if i["phase"] == "Failed"]
                    if failed:
                        self.fail(call, failed[0]["error"])
                    elif all(i["phase"] == "Succeeded" for i in items):
                        self.succeed(call, {"list": [i["output"] for i in items]})
                elif before == "Delegated":
                    target = self.calls[call["delegated_to"]]
                    if target["phase"] == "Succeeded":
                        self.succeed(call, target["output"])
                    elif target["phase"] == "Failed":
                        self.fail(call, target["error"])
                if call["phase"] != before:
                    changed = True

    def inputs_of(self, spec: dict) -> list:
        if spec["kind"] == "call":
            forms = list(spec["args"]) + list(spec["kwargs"].values())
        else:
            forms = [spec["items"]] if not isinstance(spec["items"], list) else []
            forms += [spec["initial"]] if "initial" in spec else []
        return [self.ref(f) for f in forms if self.ref(f)]

    def expand_from_ref(self, call: dict) -> None:
        spec = call["spec"]
        src = self.calls[spec["items"]["call"]]["output"]
        if "initial" in spec and self.ref(spec["initial"]):
            spec["initial"] = self.calls[spec["initial"]["call"]]["output"]
        if "list" in src:
            self.expand(call, src["list"])
        elif isinstance(src.get("json"), list):
            self.expand(call, [{"json": v} for v in src["json"]])
        else:
            self.fail(call, {"type": "SDKUsageError", "message": "items must be a list", "reason": "function_error",
                             "request_error": False, "function": spec["function"]})

    def resolve_form(self, form: dict) -> dict:
        return self.calls[form["call"]]["output"] if self.ref(form) else form

    def assign(self, call: dict) -> None:
        spec = call["spec"]
        call["phase"] = "Running"
        call["attempt"] += 1
        self.sc.send({"type": "assign", "call": spec["id"], "attempt": call["attempt"], "request": self.request,
                      "function": spec["function"], "args": [self.resolve_form(f) for f in spec["args"]],
                      "kwargs": {k: self.resolve_form(f) for k, f in spec["kwargs"].items()}, "headers": {}})

    def notify(self, cid: str) -> None:
        for _ in self.watchers.pop(cid, set()):
            self.send_resolved(cid)

    def send_resolved(self, cid: str) -> None:
        call = self.calls[cid]
        if call["phase"] == "Succeeded":
            self.sc.send({"type": "resolved", "id": cid, "output": call["output"]})
        else:
            self.sc.send({"type": "resolved", "id": cid, "error": call["error"]})

    # -- the worker's messages ----------------------------------------------------------
    def handle(self, msg: dict) -> None:
        kind = msg["type"]
        call = self.calls.get(msg.get("call"))
        if kind == "calls":
            for spec in msg["calls"]:
                self.add(spec)
        elif kind == "watch":
            for cid in msg["ids"]:
                if self.calls[cid]["phase"] in FINAL:
                    self.send_resolved(cid)
                else:
                    self.watchers.setdefault(cid, set()).add(msg["call"])
        elif kind == "result":
            self.succeed(call, msg["output"])
        elif kind == "tail":
            call["phase"], call["delegated_to"] = "Delegated", msg["target"]
        elif kind == "failure":
            error = msg["error"]
            policy = self.retries.get(call["spec"]["function"]) or {"max_retries": 0}
            if error.get("retryable") and call["attempt"] <= policy["max_retries"]:
                self.assign(call)  # backoff omitted: tests use tiny delays
            else:
                self.fail(call, error)
        elif kind == "state_get":
            self.sc.send({"type": "reply", "rid": msg["rid"], "ok": True, "value": self.state.get(msg["key"])})
        elif kind == "state_set":
            self.state[msg["key"]] = msg["value"]
            self.sc.send({"type": "reply", "rid": msg["rid"], "ok": True})

    def run(self, function: str, args: list, timeout: float = 30.0) -> dict:
        self.add({"id": self.request, "kind": "call", "function": function,
                  "args": [{"json": a} for a in args], "kwargs": {}})
        deadline = time.monotonic() + timeout
        while True:
            self.step()
            root = self.calls[self.request]
            if root["phase"] in FINAL:
                return root
            self.handle(self.sc.recv(timeout=max(0.01, deadline - time.monotonic())))
