"""One request's call graph with the cluster's rules (PROTOCOL.md §6-§7).

Calls wait for their {call} inputs; a failed input fails the call. Map and reduce expand into
child calls with durable ids; a reduce and a tail call delegate, and chains of delegation
resolve in a loop, never by recursion. A spec whose id was seen before re-attaches to that call
instead of running it again. Starting a ready call is left to the `start` callback.
"""

import threading
from typing import Callable

from .._core import execute, values
from .._core.board import OutcomeBoard
from .._core.ids import child_id
from ..interface.exceptions import SDKUsageError


class Call:
    __slots__ = (
        "id", "kind", "fn", "spec", "pending", "dependents", "delegators",
        "outcome", "attempt", "token", "cancel", "items", "started",
    )

    def __init__(self, spec: dict) -> None:
        self.id = spec["id"]
        self.kind = spec["kind"]
        self.fn = spec["_fn"]
        self.spec = spec
        self.pending = 0
        self.dependents: list[str] = []
        self.delegators: list[str] = []
        self.outcome = None
        self.attempt = 0
        self.token = None
        self.cancel = None
        self.items: list[str] | None = None  # map: item call ids once expanded
        self.started = False


class CallGraph:
    def __init__(self, request_id: str, board: OutcomeBoard, lock: threading.RLock,
                 start: Callable[[Call], None]) -> None:
        self.request_id = request_id
        self.board = board
        self.lock = lock
        self.calls: dict[str, Call] = {}
        self._start = start

    def submit(self, specs: list[dict]) -> None:
        ready: list[Call] = []
        finished: list[tuple] = []
        with self.lock:
            for spec in specs:
                if spec["id"] in self.calls:
                    continue  # durable id seen before: re-attach, never run twice
                self._add(spec, ready, finished)
        self.drain(ready, finished)

    def _add(self, spec: dict, ready: list, finished: list) -> Call:
        call = Call(spec)
        self.calls[call.id] = call
        if call.kind == "call":
            forms = list(spec["args"]) + list(spec["kwargs"].values())
            deps = [values.ref_of(f) for f in forms if values.ref_of(f)]
        elif isinstance(spec["items"], list):
            deps = []
            self._expand(call, spec["items"], ready, finished)
            if call.outcome is not None or call.kind == "reduce":
                return call
            deps = list(call.items)
        else:
            deps = [values.ref_of(spec["items"])]
            if spec.get("initial") is not None and values.ref_of(spec["initial"]):
                deps.append(values.ref_of(spec["initial"]))
        self._depend(call, deps, ready, finished)
        return call

    def _depend(self, call: Call, deps: list[str], ready: list, finished: list) -> None:
        for dep_id in dict.fromkeys(deps):
            dep = self.calls.get(dep_id)
            if dep is None:
                finished.append((call.id, ("error", _internal(call, f"input call {dep_id} does not exist"))))
                return
            if dep.outcome is None:
                call.pending += 1
                dep.dependents.append(call.id)
            elif dep.outcome[0] == "error":
                finished.append((call.id, ("error", _caused(dep.outcome[1], dep_id))))
                return
        if call.pending == 0:
            ready.append(call)

    def _expand(self, call: Call, items: list[dict], ready: list, finished: list) -> None:
        """Map: one child call per item. Reduce: a chain of steps; the reduce delegates to the last."""
        fn, spec = call.fn, call.spec
        if call.kind == "map":
            call.items = []
            for i, item in enumerate(items):
                cid = child_id(self.request_id, call.id, i)
                call.items.append(cid)
                if cid not in self.calls:
                    self._add({"id": cid, "kind": "call", "function": spec["function"], "args": [item],
                               "kwargs": {}, "_fn": fn}, ready, finished)
            if not items:
                finished.append((call.id, ("ok", {"list": []})))
            return
        acc = spec.get("initial")
        rest = list(items)
        if acc is None:
            if not rest:
                finished.append((call.id, ("error", _usage(call, "reduce() of an empty list with no initial value"))))
                return
            acc = rest.pop(0)
        for k, item in enumerate(rest):
            cid = child_id(self.request_id, call.id, k)
            if cid not in self.calls:
                self._add({"id": cid, "kind": "call", "function": spec["function"], "args": [acc, item],
                           "kwargs": {}, "_fn": fn}, ready, finished)
            acc = {"call": cid}
        self.delegate(call, acc, finished)

    def delegate(self, call: Call, form: dict, finished: list) -> None:
        """The call's outcome becomes `form`'s: a value now, or a call's once it is final (lock held)."""
        target_id = values.ref_of(form)
        if target_id is None:
            finished.append((call.id, ("ok", form)))
            return
        target = self.calls.get(target_id)
        if target is None:
            finished.append((call.id, ("error", _internal(call, f"tail call target {target_id} does not exist"))))
        elif target.outcome is not None:
            finished.append((call.id, target.outcome))
        else:
            target.delegators.append(call.id)

    def drain(self, ready: list, finished: list) -> None:
        """Finishes calls and starts ready ones, iteratively (deep chains never recurse)."""
        while ready or finished:
            with self.lock:
                while finished:
                    call_id, outcome = finished.pop()
                    call = self.calls[call_id]
                    if call.outcome is not None:
                        continue
                    call.outcome = outcome
                    call.token = None
                    self.board.resolve(call_id, outcome)
                    if outcome[0] == "error" and outcome[1].get("request_error") and call_id != self.request_id:
                        # A RequestError anywhere fails the whole request with its message (the
                        # operator's rule too); a parent that catches it cannot undo that.
                        finished.append((self.request_id, outcome))
                    for d in call.delegators:
                        finished.append((d, outcome))
                    call.delegators = []
                    for dep_id in call.dependents:
                        dep = self.calls[dep_id]
                        if dep.outcome is not None:
                            continue
                        if outcome[0] == "error":
                            finished.append((dep_id, ("error", _caused(outcome[1], call_id))))
                        else:
                            dep.pending -= 1
                            if dep.pending == 0:
                                ready.append(dep)
                    call.dependents = []
                starting = []
                while ready:
                    call = ready.pop()
                    if call.outcome is not None or call.started:
                        continue
                    if call.kind == "call":
                        call.started = True
                        starting.append(call)
                    elif call.kind == "map" and call.items is not None:
                        outs = [self.calls[i].outcome[1] for i in call.items]
                        finished.append((call.id, ("ok", {"list": outs})))
                    else:
                        self._expand_from_ref(call, ready, finished)
            for call in starting:
                self._start(call)

    def _expand_from_ref(self, call: Call, ready: list, finished: list) -> None:
        src = self.calls[values.ref_of(call.spec["items"])].outcome[1]
        # Only what the operator can split without unpickling: a list form or a JSON array.
        if "list" in src:
            items = list(src["list"])
        elif "json" in src and isinstance(src["json"], list):
            items = [{"json": v} for v in src["json"]]
        elif "json" in src and isinstance(src["json"], str):
            items = [{"json": ch} for ch in src["json"]]  # a str is iterated, as list(items) does
        else:
            err = SDKUsageError(f"{call.spec['function']}.{call.kind}() items must be a list, "
                                f"got a non-list output of call {values.ref_of(call.spec['items'])}")
            finished.append((call.id, ("error", execute.error_info(err, call.spec["function"], call.id))))
            return
        if call.kind == "reduce" and call.spec.get("initial") is not None:
            init_ref = values.ref_of(call.spec["initial"])
            if init_ref:
                call.spec = dict(call.spec, initial=self.calls[init_ref].outcome[1])
        self._expand(call, items, ready, finished)
        if call.kind == "map" and call.items:
            self._depend(call, call.items, ready, finished)


def _caused(info: dict, cause: str) -> dict:
    out = dict(info)
    out.setdefault("cause", cause)
    return out


def _internal(call: Call, message: str) -> dict:
    return {"type": "InternalError", "module": "trellis", "message": message, "traceback": "",
            "function": call.spec["function"], "call": call.id, "request_error": False,
            "reason": "internal", "retryable": False}


def _usage(call: Call, message: str) -> dict:
    return dict(_internal(call, message), type="SDKUsageError", reason="function_error")
