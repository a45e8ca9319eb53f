"""The worker's outbox: a thread that flushes writes what is queued before its message and the
message itself, and the order of messages on the socket is the order they were sent in."""

import socket
import threading

from trellis.protocol import MAX_FRAME_BYTES
from trellis.worker.outbox import Outbox
from trellis.worker.protocol import read_frame


class RecordingSocket:
    """A socket end that records which thread wrote each frame; `gate` holds the first write."""

    def __init__(self, sock: socket.socket, gate: threading.Event | None = None) -> None:
        self.sock = sock
        self.gate = gate
        self.writers: list[str] = []
        self.first_write = threading.Event()

    def sendall(self, data: bytes) -> None:
        self.first_write.set()
        if self.gate is not None:
            self.gate.wait(10)
            self.gate = None
        self.writers.append(threading.current_thread().name)
        self.sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


def _pair(gate=None):
    a, b = socket.socketpair()
    rec = RecordingSocket(a, gate)
    return Outbox(rec), rec, b


def test_a_flushing_thread_writes_its_message_itself_and_others_go_through_the_writer():
    out, rec, peer = _pair()
    me = threading.current_thread().name
    try:
        out.send({"type": "result", "call": "c1", "attempt": 1, "output": {"json": 2}}, flush=True)
        assert read_frame(peer) == {"type": "result", "call": "c1", "attempt": 1, "output": {"json": 2}}
        assert rec.writers == [me]
        out.send({"type": "progress", "call": "c1", "attempt": 1, "current": 1, "total": 2})
        assert read_frame(peer)["type"] == "progress"
        assert rec.writers[-1] == "trellis-writer"
    finally:
        out.flush_and_close()
        peer.close()


def test_a_flushed_message_never_overtakes_messages_sent_before_it():
    gate = threading.Event()
    out, rec, peer = _pair(gate)
    try:
        out.send({"type": "calls", "call": "c1", "attempt": 1, "calls": [{"id": "a"}]})
        assert rec.first_write.wait(10)  # the writer holds the first frame at the gate
        out.send({"type": "calls", "call": "c1", "attempt": 1, "calls": [{"id": "b"}]})
        out.send({"type": "calls", "call": "c1", "attempt": 1, "calls": [{"id": "c"}]})
        out.send({"type": "watch", "call": "c1", "attempt": 1, "ids": ["c"]})
        done = threading.Thread(target=out.send, args=({"type": "result", "call": "c1", "attempt": 1,
                                                       "output": {"json": 1}}, True))
        done.start()
        gate.set()
        done.join(10)
        frames = [read_frame(peer) for _ in range(4)]
        assert [f["type"] for f in frames] == ["calls", "calls", "watch", "result"]
        assert [c["id"] for c in frames[0]["calls"]] == ["a"]
        assert [c["id"] for c in frames[1]["calls"]] == ["b", "c"]  # queued together: one frame
        # The writer wrote the first frame; whichever thread took the rest kept their order.
        assert rec.writers[0] == "trellis-writer" and len(rec.writers) == 4
    finally:
        out.flush_and_close()
        peer.close()


def test_an_output_too_large_for_a_frame_still_ends_the_attempt_as_a_failure():
    out, _rec, peer = _pair()
    try:
        out.send({"type": "result", "call": "c1", "attempt": 2, "output": {"json": "x" * (MAX_FRAME_BYTES + 1)}}, True)
        msg = read_frame(peer)
        assert (msg["type"], msg["call"], msg["attempt"]) == ("failure", "c1", 2)
        assert msg["error"]["type"] == "SerializationError" and msg["error"]["retryable"] is False
    finally:
        out.flush_and_close()
        peer.close()


def test_a_closed_connection_closes_the_outbox_on_the_direct_path():
    out, _rec, peer = _pair()
    peer.close()
    out.send({"type": "result", "call": "c1", "attempt": 1, "output": {"json": 1}}, flush=True)
    assert out.closed.is_set()
    out.flush_and_close()


def test_when_a_flushing_send_returns_everything_sent_before_it_is_written():
    out, _rec, peer = _pair()
    try:
        for i in range(50):
            out.send({"type": "calls", "call": "c1", "attempt": 1, "calls": [{"id": f"a{i}"}]})
            out.send({"type": "watch", "call": "c1", "attempt": 1, "ids": [f"a{i}"]}, flush=True)
            peer.setblocking(False)  # both frames are there already: the caller may block now
            frames = [read_frame(peer), read_frame(peer)]
            peer.setblocking(True)
            assert [f["type"] for f in frames] == ["calls", "watch"]
            assert frames[0]["calls"] == [{"id": f"a{i}"}]
    finally:
        out.flush_and_close()
        peer.close()


def test_close_stops_the_writer_after_what_was_queued_before_it():
    out, rec, peer = _pair()
    out.send({"type": "progress", "call": "c1", "attempt": 1, "current": 1, "total": 2})
    out.send({"type": "bye", "unfinished": []})
    out.flush_and_close()
    assert [read_frame(peer)["type"] for _ in range(2)] == ["progress", "bye"]
    assert read_frame(peer) is None
    assert not out._writer.is_alive()
    peer.close()


def test_threads_sending_and_flushing_at_once_lose_nothing_and_keep_each_threads_order():
    out, _rec, peer = _pair()
    threads, per = 6, 300
    got: dict[str, list[int]] = {f"c{t}": [] for t in range(threads)}

    def reader():
        want = threads * per
        n = 0
        while n < want:
            msg = read_frame(peer)
            assert msg is not None
            if msg["type"] == "calls":
                got[msg["call"]] += [c["id"] for c in msg["calls"]]
                n += len(msg["calls"])
            else:
                got[msg["call"]].append(msg["current"])
                n += 1

    def sender(t):
        for i in range(per):
            if i % 3 == 2:  # a progress message, flushed every other time
                out.send({"type": "progress", "call": f"c{t}", "attempt": 1, "current": i, "total": per}, i % 2 == 0)
            else:
                out.send({"type": "calls", "call": f"c{t}", "attempt": 1, "calls": [{"id": i}]})

    r = threading.Thread(target=reader)
    r.start()
    senders = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for s in senders:
        s.start()
    for s in senders:
        s.join(30)
    r.join(30)
    try:
        assert not r.is_alive()
        assert all(v == list(range(per)) for v in got.values())
    finally:
        out.flush_and_close()
        peer.close()
