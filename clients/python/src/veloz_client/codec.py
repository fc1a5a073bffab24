"""Frames to and from the wire: the one hand-written module that touches the generated code.

Encoders build one size-prefixed FlatBuffers frame per message (docs/protocol.md, section 1)
from wire values (integer price units, codes). `decode` reads one frame into a dataclass of
veloz_client.messages, converting prices with the instruments of the LogonAck; unknown
union types and enum values are errors (DecodeError), never guessed. `FrameReader`
reassembles frames from a byte stream.
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator, Mapping, Optional, Sequence

import flatbuffers

from . import generated as g
from .messages import (
    AssetBalance, BalanceReport, CancelOnDisconnect, CancelReason, ExecType, ExecutionReport,
    Heartbeat, Instrument, Liquidity, LogonAck, Logout, LogoutReason, Message, OpenOrdersEnd,
    OrderKind, OrderStatus, RejectReason, SelfTradePrevention, ShardBalance, Side,
    StreamResumed, TimeInForce, Trade,
)

__all__ = [
    "DecodeError", "FrameReader", "MAX_FRAME_LEN", "balance_request", "cancel", "decode",
    "heartbeat", "logon", "logout", "mass_cancel", "new_order", "open_orders_request",
    "order_status_request", "replace",
]

#: The largest frame body accepted from the engine (docs/protocol.md, section 1).
MAX_FRAME_LEN = 65536


class DecodeError(ValueError):
    """A frame from the engine that this client cannot read."""


# --- encoding ------------------------------------------------------------------------------

def _frame(builder: flatbuffers.Builder, kind: int, payload: int) -> bytes:
    g.MessageStart(builder)
    g.MessageAddPayloadType(builder, kind)
    g.MessageAddPayload(builder, payload)
    builder.FinishSizePrefixed(g.MessageEnd(builder))
    return bytes(builder.Output())


def logon(account_id: int, token: str, resume_after: Optional[Sequence[int]] = None,
          cancel_on_disconnect: CancelOnDisconnect = CancelOnDisconnect.AccountDefault) -> bytes:
    """Logon; `resume_after` (index = stream): resend what came after it (None: no resend)."""
    b = flatbuffers.Builder(128)
    tok = b.CreateString(token)
    resume = None
    if resume_after is not None:
        g.LogonStartResumeAfterVector(b, len(resume_after))
        for seq in reversed(list(resume_after)):
            b.PrependUint64(seq)
        resume = b.EndVector()
    g.LogonStart(b)
    g.LogonAddAccountId(b, account_id)
    g.LogonAddToken(b, tok)
    if resume is not None:
        g.LogonAddResumeAfter(b, resume)
    g.LogonAddCancelOnDisconnect(b, int(cancel_on_disconnect))
    return _frame(b, g.Payload.Logon, g.LogonEnd(b))


def logout(reason: LogoutReason = LogoutReason.Requested, text: Optional[str] = None) -> bytes:
    b = flatbuffers.Builder(64)
    txt = b.CreateString(text) if text else None
    g.LogoutStart(b)
    g.LogoutAddReason(b, int(reason))
    if txt is not None:
        g.LogoutAddText(b, txt)
    return _frame(b, g.Payload.Logout, g.LogoutEnd(b))


def heartbeat(timestamp_ns: int = 0) -> bytes:
    b = flatbuffers.Builder(32)
    g.HeartbeatStart(b)
    g.HeartbeatAddTimestampNs(b, timestamp_ns)
    return _frame(b, g.Payload.Heartbeat, g.HeartbeatEnd(b))


def new_order(client_order_id: int, symbol_id: int, side: Side, price: int, qty: int,
              kind: OrderKind = OrderKind.Limit, tif: TimeInForce = TimeInForce.Gtc,
              post_only: bool = False,
              stp: SelfTradePrevention = SelfTradePrevention.Allow) -> bytes:
    """NewOrder; `price` in wire units (0 for a market order)."""
    b = flatbuffers.Builder(128)
    g.NewOrderStart(b)
    g.NewOrderAddClientOrderId(b, client_order_id)
    g.NewOrderAddSymbolId(b, symbol_id)
    g.NewOrderAddSide(b, int(side))
    g.NewOrderAddKind(b, int(kind))
    g.NewOrderAddTif(b, int(tif))
    g.NewOrderAddPostOnly(b, bool(post_only))
    g.NewOrderAddStp(b, int(stp))
    g.NewOrderAddPrice(b, price)
    g.NewOrderAddQty(b, qty)
    return _frame(b, g.Payload.NewOrder, g.NewOrderEnd(b))


def cancel(client_order_id: int, symbol_id: int, order_id: int = 0,
           orig_client_order_id: int = 0) -> bytes:
    """Cancel, naming the order by `order_id`, or with order_id 0 by the client order id it
    was entered with."""
    b = flatbuffers.Builder(64)
    g.CancelStart(b)
    g.CancelAddClientOrderId(b, client_order_id)
    g.CancelAddSymbolId(b, symbol_id)
    g.CancelAddOrderId(b, order_id)
    g.CancelAddOrigClientOrderId(b, orig_client_order_id)
    return _frame(b, g.Payload.Cancel, g.CancelEnd(b))


def replace(client_order_id: int, symbol_id: int, price: int, qty: int, order_id: int = 0,
            orig_client_order_id: int = 0) -> bytes:
    """Replace: new limit `price` (wire units) and new open quantity `qty`."""
    b = flatbuffers.Builder(64)
    g.ReplaceStart(b)
    g.ReplaceAddClientOrderId(b, client_order_id)
    g.ReplaceAddSymbolId(b, symbol_id)
    g.ReplaceAddOrderId(b, order_id)
    g.ReplaceAddPrice(b, price)
    g.ReplaceAddQty(b, qty)
    g.ReplaceAddOrigClientOrderId(b, orig_client_order_id)
    return _frame(b, g.Payload.Replace, g.ReplaceEnd(b))


def mass_cancel(client_order_id: int, symbol_id: Optional[int] = None) -> bytes:
    """MassCancel of one symbol, or of every symbol when `symbol_id` is None."""
    b = flatbuffers.Builder(32)
    g.MassCancelStart(b)
    g.MassCancelAddClientOrderId(b, client_order_id)
    g.MassCancelAddHasSymbol(b, symbol_id is not None)
    g.MassCancelAddSymbolId(b, 0 if symbol_id is None else symbol_id)
    return _frame(b, g.Payload.MassCancel, g.MassCancelEnd(b))


def order_status_request(client_order_id: int, symbol_id: int, order_id: int = 0,
                         orig_client_order_id: int = 0) -> bytes:
    b = flatbuffers.Builder(64)
    g.OrderStatusRequestStart(b)
    g.OrderStatusRequestAddClientOrderId(b, client_order_id)
    g.OrderStatusRequestAddSymbolId(b, symbol_id)
    g.OrderStatusRequestAddOrderId(b, order_id)
    g.OrderStatusRequestAddOrigClientOrderId(b, orig_client_order_id)
    return _frame(b, g.Payload.OrderStatusRequest, g.OrderStatusRequestEnd(b))


def open_orders_request(client_order_id: int, symbol_id: Optional[int] = None,
                        after_order_id: int = 0, max_orders: int = 0) -> bytes:
    """One page of open orders: of one symbol, or of all when `symbol_id` is None."""
    b = flatbuffers.Builder(64)
    g.OpenOrdersRequestStart(b)
    g.OpenOrdersRequestAddClientOrderId(b, client_order_id)
    g.OpenOrdersRequestAddHasSymbol(b, symbol_id is not None)
    g.OpenOrdersRequestAddSymbolId(b, 0 if symbol_id is None else symbol_id)
    g.OpenOrdersRequestAddAfterOrderId(b, after_order_id)
    g.OpenOrdersRequestAddMaxOrders(b, max_orders)
    return _frame(b, g.Payload.OpenOrdersRequest, g.OpenOrdersRequestEnd(b))


def balance_request(request_id: int, by_shard: bool = False) -> bytes:
    """BalanceRequest: the account's balances; `by_shard` also lists each shard's slice."""
    b = flatbuffers.Builder(32)
    g.BalanceRequestStart(b)
    g.BalanceRequestAddRequestId(b, request_id)
    g.BalanceRequestAddByShard(b, by_shard)
    return _frame(b, g.Payload.BalanceRequest, g.BalanceRequestEnd(b))


# --- decoding ------------------------------------------------------------------------------

def _code(enum_type, value, field: str):
    """A wire code as its enum member; None stays None (an absent optional field)."""
    if value is None:
        return None
    try:
        return enum_type(value)
    except ValueError:
        raise DecodeError(f"unknown {enum_type.__name__} code {value} in {field}") from None


def _table(cls, tab):
    m = cls()
    m.Init(tab.Bytes, tab.Pos)
    return m


def _text(value: Optional[bytes]) -> str:
    return (value or b"").decode("utf-8")


def _instrument(m) -> Instrument:
    return Instrument(id=m.Id(), symbol=_text(m.Symbol()), price_scale=m.PriceScale(),
                      tick_size=m.TickSize(), lot_size=m.LotSize(), min_qty=m.MinQty(),
                      max_qty=m.MaxQty())


def decode(frame: bytes, instruments: Mapping[int, Instrument]) -> Message:
    """One size-prefixed frame (length prefix included) to a message dataclass. Prices are
    converted with `instruments` (by id); a price of an instrument not in it is None."""
    if len(frame) < 8 or struct.unpack_from("<I", frame)[0] != len(frame) - 4:
        raise DecodeError(f"not a size-prefixed frame ({len(frame)} bytes)")
    try:
        return _decode(bytes(frame), instruments)
    except DecodeError:
        raise
    except Exception as e:  # the flatbuffers runtime has no verifier: bad offsets end here
        raise DecodeError(f"malformed frame: {e!r}") from e


def _decode(frame: bytes, instruments: Mapping[int, Instrument]) -> Message:
    msg = g.Message.GetRootAs(frame, 4)
    kind = msg.PayloadType()
    tab = msg.Payload()
    if tab is None:
        raise DecodeError(f"frame without payload (union type {kind})")

    def symbol(symbol_id: int, present: bool = True):
        inst = instruments.get(symbol_id) if present else None
        return inst, (inst.symbol if inst else None)

    def price(inst: Optional[Instrument], units: int):
        return inst.price(units) if inst is not None else None

    if kind == g.Payload.LogonAck:
        m = _table(g.LogonAck, tab)
        insts = tuple(_instrument(m.Instruments(i)) for i in range(m.InstrumentsLength()))
        return LogonAck(session_id=m.SessionId(), heartbeat_interval_ms=m.HeartbeatIntervalMs(),
                        instruments=insts, streams=m.Streams())
    if kind == g.Payload.Logout:
        m = _table(g.Logout, tab)
        return Logout(reason=_code(LogoutReason, m.Reason(), "Logout.reason"), text=_text(m.Text()))
    if kind == g.Payload.Heartbeat:
        return Heartbeat(timestamp_ns=_table(g.Heartbeat, tab).TimestampNs())
    if kind == g.Payload.ExecutionReport:
        m = _table(g.ExecutionReport, tab)
        inst, name = symbol(m.SymbolId(), m.HasSymbol())
        return ExecutionReport(
            exec_type=_code(ExecType, m.ExecType(), "ExecutionReport.exec_type"),
            order_id=m.OrderId(), client_order_id=m.ClientOrderId(), symbol_id=m.SymbolId(),
            symbol=name, has_symbol=m.HasSymbol(),
            side=_code(Side, m.Side(), "ExecutionReport.side"), price=price(inst, m.Price()),
            qty=m.Qty(), last_qty=m.LastQty(), last_price=price(inst, m.LastPrice()),
            leaves_qty=m.LeavesQty(), trade_id=m.TradeId(),
            liquidity=_code(Liquidity, m.Liquidity(), "ExecutionReport.liquidity"),
            reject_reason=_code(RejectReason, m.RejectReason(), "ExecutionReport.reject_reason"),
            cancel_reason=_code(CancelReason, m.CancelReason(), "ExecutionReport.cancel_reason"),
            reason_text=_text(m.ReasonText()), seq=m.Seq(), timestamp_ns=m.TimestampNs(),
            kept_priority=m.KeptPriority(), mass_cancel_count=m.MassCancelCount(),
            stream=m.Stream(), stream_seq=m.StreamSeq())
    if kind == g.Payload.Trade:
        m = _table(g.Trade, tab)
        inst, name = symbol(m.SymbolId())
        if m.AggressorSide() is None:
            raise DecodeError("Trade without aggressor_side (required)")
        return Trade(symbol_id=m.SymbolId(), symbol=name, trade_id=m.TradeId(),
                     price=price(inst, m.Price()), qty=m.Qty(),
                     aggressor_side=_code(Side, m.AggressorSide(), "Trade.aggressor_side"),
                     timestamp_ns=m.TimestampNs())
    if kind == g.Payload.StreamResumed:
        m = _table(g.StreamResumed, tab)
        return StreamResumed(stream=m.Stream(), after=m.After(), last=m.Last(),
                             resent=m.Resent(), first_retained=m.FirstRetained())
    if kind == g.Payload.OrderStatus:
        m = _table(g.OrderStatus, tab)
        inst, name = symbol(m.SymbolId(), m.RejectReason() is None)
        return OrderStatus(
            client_order_id=m.ClientOrderId(),
            reject_reason=_code(RejectReason, m.RejectReason(), "OrderStatus.reject_reason"),
            order_id=m.OrderId(), orig_client_order_id=m.OrigClientOrderId(),
            symbol_id=m.SymbolId(), symbol=name, side=_code(Side, m.Side(), "OrderStatus.side"),
            price=price(inst, m.Price()), leaves_qty=m.LeavesQty(), entered_ns=m.EnteredNs())
    if kind == g.Payload.OpenOrdersEnd:
        m = _table(g.OpenOrdersEnd, tab)
        return OpenOrdersEnd(
            client_order_id=m.ClientOrderId(), count=m.Count(),
            next_after_order_id=m.NextAfterOrderId(),
            reject_reason=_code(RejectReason, m.RejectReason(), "OpenOrdersEnd.reject_reason"))
    if kind == g.Payload.BalanceReport:
        m = _table(g.BalanceReport, tab)
        balances = []
        for i in range(m.BalancesLength()):
            a = m.Balances(i)
            balances.append(AssetBalance(asset_id=a.AssetId(), name=_text(a.Name()),
                                         scale=a.Scale(), available=a.Available(),
                                         held=a.Held()))
        slices = []
        for i in range(m.SlicesLength()):
            s = m.Slices(i)
            slices.append(ShardBalance(shard=s.Shard(), asset_id=s.AssetId(),
                                       available=s.Available(), held=s.Held()))
        return BalanceReport(
            request_id=m.RequestId(), account_id=m.AccountId(),
            reject_reason=_code(RejectReason, m.RejectReason(), "BalanceReport.reject_reason"),
            balances=tuple(balances), slices=tuple(slices))
    names = {v: k for k, v in vars(g.Payload).items() if not k.startswith("_")}
    if kind in names:
        raise DecodeError(f"{names[kind]} (union type {kind}) does not travel engine -> client")
    raise DecodeError(f"unknown message type {kind}")


class FrameReader:
    """Reassembles size-prefixed frames from the pieces a stream delivers."""

    def __init__(self, max_len: int = MAX_FRAME_LEN):
        self.max_len = max_len
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add received bytes; yields every frame now complete (prefix included)."""
        self._buf += data
        while len(self._buf) >= 4:
            (length,) = struct.unpack_from("<I", self._buf)
            if length > self.max_len:
                raise DecodeError(f"frame of {length} bytes announced, above the limit of "
                                  f"{self.max_len}")
            if len(self._buf) < 4 + length:
                return
            frame = bytes(self._buf[: 4 + length])
            del self._buf[: 4 + length]
            yield frame


def instruments_by_id(instruments: Iterable[Instrument]) -> dict:
    return {i.id: i for i in instruments}
