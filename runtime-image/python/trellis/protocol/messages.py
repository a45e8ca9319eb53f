"""Every message of the worker protocol (PROTOCOL.md §3, §5, §9) as a check.

The same rules as protocol/src/worker-messages.ts; protocol/fixtures/worker-messages.json holds
examples both sides must accept or reject at the same field. Unknown fields are ignored.
"""

from typing import Any

from .failures import FAILURE_REASONS
from .forms import ATTEMPT, CALL_ID, FUNCTION_NAME, call_spec, value
from .rules import MessageError, array, boolean, integer, join, nullable, number, obj, one_of, record, string

_STR = string()
_NON_EMPTY = string(non_empty=True)
_COUNT = integer(minimum=0)
_SECONDS = number(minimum=0)
_POSITIVE = number(minimum=0, exclusive=True)
_STRINGS = array(_STR)

_ERROR_FIELDS = {
    "module": _STR, "traceback": _STR, "function": nullable(_STR), "call": _STR,
    "request_error": boolean, "retryable": boolean, "cause": _STR,
}
# An Error as the sidecar relays it: the operator may add reasons of its own (e.g. cancelled).
ERROR = obj({"type": _NON_EMPTY, "message": _STR}, dict(_ERROR_FIELDS, reason=_STR))
# An Error the worker reports: its own reason, or a failed child's it relays (any of the table's).
WORKER_ERROR = obj({"type": _NON_EMPTY, "message": _STR, "reason": one_of(*FAILURE_REASONS)},
                   _ERROR_FIELDS)

def _gpu(v: Any, path: str) -> None:
    if v is not None and type(v) is not str:
        _STRINGS(v, path)


RETRIES = obj({"max_retries": _COUNT, "initial_delay": _SECONDS, "max_delay": _SECONDS,
               "delay_multiplier": number(minimum=1)})

FUNCTION_INFO = obj(
    {"name": FUNCTION_NAME, "async": boolean, "application": boolean},
    {
        "description": nullable(_STR), "parameters": _STRINGS, "timeout": _POSITIVE,
        "retries": nullable(RETRIES), "application_retries": nullable(RETRIES), "tags": record(_STR),
        "cpu": nullable(_POSITIVE), "memory": nullable(_POSITIVE), "ephemeral_disk": nullable(_POSITIVE),
        "gpu": _gpu, "secrets": _STRINGS, "image": nullable(_STR),
        "min_containers": nullable(_COUNT), "max_containers": nullable(_COUNT),
        "warm_containers": nullable(_COUNT), "max_concurrency": integer(minimum=1),
        "class_name": nullable(_STR), "init_timeout": nullable(_POSITIVE),
    },
)


def _one_outcome(v: dict, path: str) -> None:
    if ("output" in v) == ("error" in v):
        raise MessageError(join(path, "output"), "exactly one of output and error must be set")


def _counter_is_integer(v: dict, path: str) -> None:
    if v["kind"] == "counter" and v["value"] != int(v["value"]):
        raise MessageError(join(path, "value"), "must be an integer >= 0 for a counter")


_OF_ATTEMPT = {"call": CALL_ID, "attempt": ATTEMPT}

WORKER_MESSAGES = {
    "hello": obj({"protocol": integer(minimum=1), "sdk": _STR, "python": _STR, "pid": _COUNT, "module": _STR,
                  "concurrency": integer(minimum=1), "functions": array(FUNCTION_INFO)},
                 {"spill": boolean}),
    "fatal": obj({"protocol": integer(minimum=1),
                  "error": obj({"type": _NON_EMPTY, "message": _STR}, {"module": _STR, "traceback": _STR})}),
    "calls": obj(dict(_OF_ATTEMPT, calls=array(call_spec))),
    "watch": obj(dict(_OF_ATTEMPT, ids=array(CALL_ID))),
    "result": obj(dict(_OF_ATTEMPT, output=value)),
    "tail": obj(dict(_OF_ATTEMPT, target=CALL_ID)),
    "failure": obj(dict(_OF_ATTEMPT, error=WORKER_ERROR)),
    "cancelled": obj(_OF_ATTEMPT),
    "progress": obj(dict(_OF_ATTEMPT, current=_SECONDS, total=_SECONDS, message=nullable(_STR),
                         attributes=nullable(record(_STR)))),
    "metric": obj(dict(_OF_ATTEMPT, kind=one_of("counter", "timer"), name=_NON_EMPTY, value=_SECONDS),
                  refine=_counter_is_integer),
    "state_get": obj({"rid": _NON_EMPTY, "call": CALL_ID, "request": CALL_ID, "key": _STR}),
    "state_set": obj({"rid": _NON_EMPTY, "call": CALL_ID, "request": CALL_ID, "key": _STR, "value": value}),
    "heartbeat_ack": obj({
        "seq": _COUNT,
        "running": array(obj({"call": CALL_ID, "attempt": ATTEMPT, "function": FUNCTION_NAME,
                              "seconds": _SECONDS})),
        "queued": _COUNT, "capacity": integer(minimum=1), "abandoned": _COUNT, "loop_stalled": _SECONDS,
    }),
    "bye": obj({"unfinished": array(CALL_ID)}),
}

SIDECAR_MESSAGES = {
    "welcome": obj({"protocol": integer(minimum=1)},
                   {"spill": obj({"dir": _NON_EMPTY, "threshold": integer(minimum=1)})}),
    "assign": obj(
        dict(_OF_ATTEMPT, request=CALL_ID, function=FUNCTION_NAME, args=array(value), kwargs=record(value)),
        {"headers": record(_STR), "timeout": _POSITIVE},
    ),
    "resolved": obj({"id": CALL_ID}, {"output": value, "error": ERROR}, refine=_one_outcome),
    "reply": obj({"rid": _NON_EMPTY, "ok": boolean}, {"value": nullable(value), "error": _STR}),
    "heartbeat": obj({"seq": _COUNT}),
    "cancel": obj({"call": CALL_ID}),
    "shutdown": obj({}, {"drain": boolean, "deadline": _SECONDS}),
}

_BY_DIRECTION = {"worker": WORKER_MESSAGES, "sidecar": SIDECAR_MESSAGES,
                 None: {**WORKER_MESSAGES, **SIDECAR_MESSAGES}}


def validate_message(msg: Any, direction: str | None = None) -> None:
    """Raises MessageError naming the first field that breaks PROTOCOL.md.

    direction: "worker" (worker → sidecar), "sidecar" (sidecar → worker) or None (either).
    """
    if type(msg) is not dict:
        raise MessageError("", "must be a JSON object")
    table = _BY_DIRECTION[direction]
    kind = msg.get("type")
    check = table.get(kind) if type(kind) is str else None
    if check is None:
        raise MessageError("type", f"must be one of {'|'.join(table)}")
    try:
        check(msg, "")
    except MessageError as e:
        e.message_type = kind
        e.args = (str(e),)
        raise

