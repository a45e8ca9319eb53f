"""The shared fixtures of the contract package (protocol/fixtures/) against the Python twin;
protocol/worker-messages.test.ts checks the same files against the TypeScript schemas."""

import json
import pathlib

import pytest

from trellis import protocol
from trellis.protocol import MessageError, validate_message

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "protocol" / "fixtures"


def load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


MESSAGES = load("worker-messages.json")


def test_fixtures_are_for_this_protocol_version():
    assert MESSAGES["protocol"] == protocol.PROTOCOL_VERSION


def test_fixtures_cover_every_message_type_of_both_directions():
    for direction, table in (("worker", protocol.WORKER_MESSAGES), ("sidecar", protocol.SIDECAR_MESSAGES)):
        types = {e["message"]["type"] for e in MESSAGES["valid"] if e["direction"] == direction}
        assert types == set(table)
    assert len(MESSAGES["invalid"]) >= 25


@pytest.mark.parametrize("example", MESSAGES["valid"], ids=lambda e: e["name"])
def test_valid_message_is_accepted(example):
    validate_message(example["message"], example["direction"])


@pytest.mark.parametrize("example", MESSAGES["invalid"], ids=lambda e: e["name"])
def test_invalid_message_is_rejected_naming_the_field(example):
    with pytest.raises(MessageError) as caught:
        validate_message(example["message"], example["direction"])
    assert caught.value.path == example["field"]
    assert f"{example['field']}: " in str(caught.value)


@pytest.mark.parametrize("vector", load("child-names.json"), ids=lambda v: v["name"])
def test_child_name(vector):
    assert protocol.child_name(vector["request"], vector["parent"], vector["sequence"]) == vector["name"]


def test_constants_match_the_typescript_side():
    constants = load("constants.json")
    assert constants["workerProtocolVersion"] == protocol.PROTOCOL_VERSION
    assert constants["maxFrameBytes"] == protocol.MAX_FRAME_BYTES
    assert constants["childSuffixLength"] == protocol.CHILD_SUFFIX_LEN
    reasons = {r["reason"]: (r["kind"], r["retry"]) for r in constants["failureReasons"]}
    assert set(reasons) == set(protocol.FAILURE_REASONS)
    assert reasons == {name: tuple(r) for name, r in protocol.FAILURE_REASONS.items()}


@pytest.mark.parametrize("reason", sorted(protocol.FAILURE_REASONS))
def test_failure_may_relay_any_reason_of_the_table(reason):
    # A function that does not catch a failed child's error fails with the child's reason.
    error = {"type": "FunctionError", "message": "function 'boom' failed", "reason": reason}
    validate_message({"type": "failure", "call": "r0123456789abcdef", "attempt": 1, "error": error}, "worker")


def test_failure_with_a_reason_outside_the_table_is_rejected():
    error = {"type": "FunctionError", "message": "m", "reason": "timeout"}
    with pytest.raises(MessageError) as caught:
        validate_message({"type": "failure", "call": "r0123456789abcdef", "attempt": 1, "error": error}, "worker")
    assert caught.value.path == "error.reason"
