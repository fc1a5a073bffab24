"""Unit tests of engine address lists (`parse_addresses`, `Session.connect` over a list)
against loopback listeners: a refused port (bound, then closed), a listener that accepts
and closes at once (an engine still starting), and a fake engine that reads the Logon and
answers it with a given frame. The real engines are tests/client_failover.rs (Rust client).

Run: PYTHONPATH=clients/python/src python -m unittest discover -s clients/python/tests
"""
import socket
import threading
import time
import unittest

import flatbuffers

from veloz_client import LogonAck, LogonRefused, LogoutReason, Session, SessionClosed
from veloz_client import codec
from veloz_client import generated as g
from veloz_client.session import NoEngine, parse_addresses


def refused() -> str:
    """An address nothing listens on: a port bound, then released."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def logon_ack(session_id: int) -> bytes:
    b = flatbuffers.Builder(128)
    g.LogonAckStartInstrumentsVector(b, 0)
    vec = b.EndVector()
    g.LogonAckStart(b)
    g.LogonAckAddSessionId(b, session_id)
    g.LogonAckAddHeartbeatIntervalMs(b, 1000)
    g.LogonAckAddInstruments(b, vec)
    g.LogonAckAddStreams(b, 2)
    ack = g.LogonAckEnd(b)
    g.MessageStart(b)
    g.MessageAddPayloadType(b, g.Payload.LogonAck)
    g.MessageAddPayload(b, ack)
    b.FinishSizePrefixed(g.MessageEnd(b))
    return bytes(b.Output())


class Fake:
    """A loopback listener on a thread. With `answer` None it closes every connection at
    once; else it reads one frame (the Logon) per connection, writes `answer` and keeps the
    connection open until stopped. `accepted` counts the connections."""

    def __init__(self, answer=None):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.01)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.answer = answer
        self.accepted = 0
        self.logons = 0
        self.open = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.accepted += 1
            if self.answer is None:
                conn.close()
                continue
            conn.settimeout(5)
            reader = codec.FrameReader()
            frames = []
            while not frames:
                data = conn.recv(4096)
                if not data:
                    break
                frames.extend(reader.feed(data))
            if frames:
                self.logons += 1
                conn.sendall(self.answer)
            self.open.append(conn)

    def finish(self):
        self.stop.set()
        self.thread.join(5)
        for c in self.open:
            c.close()
        self.listener.close()


class Addresses(unittest.TestCase):
    def test_lists_split_trim_and_skip_empties(self):
        self.assertEqual(parse_addresses(" 10.0.0.1:7700 ,,10.0.0.2:7701, "),
                         [("10.0.0.1", 7700), ("10.0.0.2", 7701)])
        self.assertEqual(parse_addresses(["h:1", ("k", 2)]), [("h", 1), ("k", 2)])
        self.assertEqual(parse_addresses(("k", 2)), [("k", 2)])
        self.assertEqual(parse_addresses("[::1]:7700"), [("::1", 7700)])
        # The single-address form of Session.connect(host, port, ...).
        self.assertEqual(parse_addresses("127.0.0.1", 7700), [("127.0.0.1", 7700)])

    def test_bad_entries_are_named(self):
        for bad in ["h:1,k", "h:x", ":7700", "h:99999"]:
            with self.assertRaises(ValueError) as e:
                parse_addresses(bad)
            self.assertIn("expected HOST:PORT", str(e.exception), bad)
        for empty in ["", " , ", []]:
            with self.assertRaises(ValueError) as e:
                parse_addresses(empty)
            self.assertIn("no engine address", str(e.exception))


class ConnectOverAList(unittest.TestCase):
    def setUp(self):
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.finish()

    def fake(self, answer=None) -> Fake:
        f = Fake(answer)
        self.fakes.append(f)
        return f

    def test_the_second_address_answers_when_the_first_refuses(self):
        engine = self.fake(logon_ack(41))
        seen = []
        s = Session.connect(f"{refused()},{engine.addr}", None, 1, "demo-alice",
                            timeout=5, on_message=seen.append)
        try:
            self.assertEqual((s.address_index, s.address), (1, engine.addr))
            self.assertEqual(s.logon_ack.session_id, 41)
            self.assertEqual(s.streams, 2)
            self.assertEqual([type(m) for m in seen], [LogonAck])
        finally:
            s.close()

    def test_an_engine_that_accepts_and_closes_is_skipped(self):
        closing = self.fake()
        engine = self.fake(logon_ack(42))
        s = Session.connect([refused(), closing.addr, engine.addr], None, 1, "demo-alice",
                            timeout=5)
        try:
            self.assertEqual(s.address_index, 2)
            self.assertEqual(closing.accepted, 1)
        finally:
            s.close()

    def test_a_stopping_engine_is_skipped_a_refusal_is_not(self):
        stopping = self.fake(codec.logout(LogoutReason.EngineShutdown))
        engine = self.fake(logon_ack(43))
        seen = []
        s = Session.connect(f"{stopping.addr},{engine.addr}", None, 1, "demo-alice",
                            timeout=5, on_message=seen.append)
        s.close()
        self.assertEqual(s.address_index, 1)
        self.assertEqual([type(m) for m in seen], [LogonAck], "the skipped Logout not shown")

        refusing = self.fake(codec.logout(LogoutReason.AuthenticationFailed))
        other = self.fake(logon_ack(44))
        with self.assertRaises(LogonRefused) as e:
            Session.connect(f"{refusing.addr},{other.addr}", None, 1, "bad", timeout=5,
                            connect_deadline=2)
        self.assertEqual(e.exception.logout.reason, LogoutReason.AuthenticationFailed)
        self.assertEqual(other.accepted, 0, "no try after a refused token")

    def test_after_the_deadline_every_address_is_named_with_its_last_error(self):
        closing = self.fake()
        first = refused()
        start = time.monotonic()
        with self.assertRaises(NoEngine) as e:
            Session.connect(f"{first},{closing.addr}", None, 1, "demo-alice", timeout=5,
                            connect_deadline=0.4)
        waited = time.monotonic() - start
        self.assertTrue(0.4 <= waited < 3, waited)
        err = e.exception
        self.assertIsInstance(err, OSError)
        text = str(err)
        self.assertIn(f"{first}: ", text)
        self.assertIn(f"{closing.addr}: accepted, then closed", text)
        self.assertGreaterEqual(err.rounds, 2)
        self.assertGreaterEqual(closing.accepted, 2, "tried again until the deadline")
        self.assertEqual([a for a, _ in err.tried], [first, closing.addr])

    def test_one_address_raises_its_own_error(self):
        with self.assertRaises(ConnectionRefusedError):
            Session.connect("127.0.0.1", int(refused().rsplit(":", 1)[1]), 1, "demo-alice",
                            timeout=5)
        closing = self.fake()
        with self.assertRaises(SessionClosed) as e:
            Session.connect(closing.addr, None, 1, "demo-alice", timeout=5)
        self.assertIn("closed the connection before answering the logon", str(e.exception))


if __name__ == "__main__":
    unittest.main()
