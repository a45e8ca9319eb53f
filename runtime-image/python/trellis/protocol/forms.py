"""Value forms (PROTOCOL.md §4) and call specs (§6) as checks.

A form is an object with exactly one key. The worker sends and receives only resolved forms
({json}, {pickle}, {list} of resolved forms, {raw} bytes with a MIME type at the application
boundary); a child call's inputs may also be {call} references. {blob} never crosses the socket.
"""

import re
from typing import Any

from .rules import Check, MessageError, array, integer, join, number, obj, one_of, pattern, record, string

CALL_ID = pattern(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                  "must be a call id (a lowercase RFC 1123 name)", 253)
FUNCTION_NAME = pattern(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?",
                        "must be a function name (a Python identifier or Class.method)", 127)
ATTEMPT = integer(minimum=1)

VALUE_RULE = "must be a value form ({json}|{pickle}|{list}|{raw})"
INPUT_RULE = "must be a value form ({json}|{pickle}|{list}|{raw}) or a {call} reference"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}").fullmatch


def _pickle(v: Any, path: str) -> None:
    if type(v) is not str or len(v) % 4 or not _BASE64(v):
        raise MessageError(path, "must be standard base64 with padding")


def _form(allow_call: bool) -> Check:
    rule = INPUT_RULE if allow_call else VALUE_RULE

    def check(v: Any, path: str) -> None:
        if type(v) is not dict or len(v) != 1:
            raise MessageError(path, rule)
        (tag, payload), = v.items()
        if tag == "json":
            return  # any JSON: json.loads produced it
        if tag == "pickle":
            _pickle(payload, join(path, "pickle"))
        elif tag == "list":
            # A list holds resolved items only, even among a child call's inputs.
            _list(payload, join(path, "list"))
        elif tag == "raw":
            _RAW(payload, join(path, "raw"))
        elif tag == "spill":
            _SPILL(payload, join(path, "spill"))
        elif tag == "call" and allow_call:
            CALL_ID(payload, join(path, "call"))
        else:
            raise MessageError(path, rule)

    return check


_RAW = obj({"contentType": string(non_empty=True), "data": _pickle})
# A value in a file of the run volume (PROTOCOL.md §4), only between a pair that agreed on it.
_SPILL = obj({"path": string(non_empty=True), "size": integer(minimum=0)})
value = _form(allow_call=False)
input_form = _form(allow_call=True)
_list = array(value)

CALL_REF = obj({"call": CALL_ID})


def _items(v: Any, path: str) -> None:
    if type(v) is list:
        for i, x in enumerate(v):
            input_form(x, f"{path}[{i}]")
    elif type(v) is dict:
        CALL_REF(v, path)
    else:
        raise MessageError(path, "must be an array of value forms or a {call} reference")


_SPEC_BASE = {"id": CALL_ID, "kind": one_of("call", "map", "reduce"), "function": FUNCTION_NAME}
_DELAY = {"delay": number(minimum=0)}
_SPECS = {
    "call": obj(dict(_SPEC_BASE, args=array(input_form), kwargs=record(input_form)), _DELAY),
    "map": obj(dict(_SPEC_BASE, items=_items), _DELAY),
    "reduce": obj(dict(_SPEC_BASE, items=_items), dict(_DELAY, initial=input_form)),
}
_KIND = _SPEC_BASE["kind"]


def call_spec(v: Any, path: str) -> None:
    if type(v) is not dict:
        raise MessageError(path, "must be an object")
    if "kind" not in v:
        raise MessageError(join(path, "kind"), "is required")
    _KIND(v["kind"], join(path, "kind"))
    _SPECS[v["kind"]](v, path)

