"""What travels on the wire, as plain Python: enums, instruments and message dataclasses.

Every code enum is derived from the generated FlatBuffers classes (veloz_client.generated),
so names and values cannot drift from schemas/veloz.fbs. Messages are frozen dataclasses;
prices in them are `decimal.Decimal` in quote units, converted exactly with the instrument's
`price_scale` (docs/protocol.md, section 2). `Instrument.price_units` is the reverse
conversion and refuses a price that is not a multiple of the instrument's tick.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation
from typing import Optional, Tuple, Union

from . import generated as g

__all__ = [
    "AssetBalance", "BalanceReport", "CancelOnDisconnect", "CancelReason", "ExecType", "ExecutionReport", "Heartbeat",
    "Instrument", "Liquidity", "LogonAck", "Logout", "LogoutReason", "Message",
    "OpenOrdersEnd", "OrderKind", "OrderStatus", "PriceError", "RejectReason",
    "SelfTradePrevention", "ShardBalance", "Side", "StreamResumed", "TimeInForce", "Trade",
    "to_json",
]


def _enum(name: str, generated: type) -> type:
    members = {k: v for k, v in vars(generated).items() if not k.startswith("_")}
    return enum.IntEnum(name, members, module=__name__)


Side = _enum("Side", g.Side)
OrderKind = _enum("OrderKind", g.OrderKind)
TimeInForce = _enum("TimeInForce", g.TimeInForce)
SelfTradePrevention = _enum("SelfTradePrevention", g.SelfTradePrevention)
RejectReason = _enum("RejectReason", g.RejectReason)
CancelReason = _enum("CancelReason", g.CancelReason)
CancelOnDisconnect = _enum("CancelOnDisconnect", g.CancelOnDisconnect)
LogoutReason = _enum("LogoutReason", g.LogoutReason)
ExecType = _enum("ExecType", g.ExecType)
Liquidity = _enum("Liquidity", g.Liquidity)

# Prices have at most 19 digits (i64); any input with more is refused exactly, not rounded.
_EXACT = Context(prec=400)


class PriceError(ValueError):
    """A price that cannot be sent for an instrument: not a number, not a multiple of its
    tick, or outside the 64-bit range of the wire."""


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument, from LogonAck.instruments.

    `price_scale` and `tick_size` are the wire's: a price is an integer count of
    10^-price_scale quote units and a multiple of tick_size; `tick` is the same in quote
    units (AAPL with scale 4 and tick_size 100: Decimal("0.01"))."""

    id: int
    symbol: str
    price_scale: int
    tick_size: int
    lot_size: int
    min_qty: int
    max_qty: int

    @property
    def tick(self) -> Decimal:
        """The tick in quote units, with no trailing zeros (0.01, 5, 100)."""
        tick = Decimal(self.tick_size).scaleb(-self.price_scale, _EXACT).normalize(_EXACT)
        return tick.quantize(Decimal(1)) if tick.as_tuple().exponent > 0 else tick

    def _places(self) -> int:
        """Decimals a price of this instrument is shown with: as many as its tick needs."""
        if self.tick_size <= 0:
            return self.price_scale
        return max(0, -self.tick.as_tuple().exponent)

    def price(self, units: int) -> Decimal:
        """Wire price units to an exact Decimal in quote units (1_900_100 -> 190.01)."""
        exact = Decimal(units).scaleb(-self.price_scale, _EXACT)
        shown = exact.quantize(Decimal(1).scaleb(-self._places()), context=_EXACT)
        return shown if shown == exact else exact

    def price_units(self, price: Union[Decimal, str, int]) -> int:
        """A price in quote units (Decimal, str or int; never float) to wire units, exactly.

        Raises PriceError naming the value when it is not a multiple of the tick."""
        if isinstance(price, (float, bool)):
            raise TypeError(f"price {price!r}: pass a Decimal, str or int, not a "
                            f"{type(price).__name__} (binary floats cannot hold most decimal "
                            "prices exactly)")
        try:
            value = price if isinstance(price, Decimal) else Decimal(str(price).strip())
        except InvalidOperation:
            raise PriceError(f"price {price!r} is not a number") from None
        if not value.is_finite():
            raise PriceError(f"price {price} is not a finite number")
        units = value.scaleb(self.price_scale, _EXACT)
        if units != units.to_integral_value(context=_EXACT) or int(units) % self.tick_size:
            raise PriceError(
                f"price {price} is off tick for {self.symbol}: not a multiple of its tick "
                f"{self.tick} (price_scale {self.price_scale}, tick_size {self.tick_size}); "
                f"nearest valid prices: {self._neighbours(value)}")
        n = int(units)
        if not -(2**63) <= n < 2**63:
            raise PriceError(f"price {price} of {self.symbol} is outside the wire's range")
        return n

    def _neighbours(self, value: Decimal) -> str:
        tick = self.tick
        below = _EXACT.divide(value, tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        return f"{self.price(int(below.scaleb(self.price_scale, _EXACT)))} and " \
               f"{self.price(int((below + tick).scaleb(self.price_scale, _EXACT)))}"


@dataclass(frozen=True)
class LogonAck:
    """The logon succeeded: the session's id, heartbeat interval, instruments and how many
    report streams (shards) the account has."""

    session_id: int
    heartbeat_interval_ms: int
    instruments: Tuple[Instrument, ...]
    streams: int


@dataclass(frozen=True)
class Logout:
    """The session ends (the engine's answer to ours, or its own reason)."""

    reason: LogoutReason
    text: str


@dataclass(frozen=True)
class Heartbeat:
    timestamp_ns: int


@dataclass(frozen=True)
class ExecutionReport:
    """What happened to one order or request of the account (docs/protocol.md, section 4).

    `symbol` is the instrument's name and the prices are Decimals in quote units; both are
    None when the report names no instrument the LogonAck listed (a MassCancelled over all
    symbols). Fields that do not apply to the exec_type are 0 or None."""

    exec_type: ExecType
    order_id: int
    client_order_id: int
    symbol_id: int
    symbol: Optional[str]
    has_symbol: bool
    side: Optional[Side]
    price: Optional[Decimal]
    qty: int
    last_qty: int
    last_price: Optional[Decimal]
    leaves_qty: int
    trade_id: int
    liquidity: Liquidity
    reject_reason: Optional[RejectReason]
    cancel_reason: Optional[CancelReason]
    reason_text: str
    seq: int
    timestamp_ns: int
    kept_priority: bool
    mass_cancel_count: int
    stream: int
    stream_seq: int


@dataclass(frozen=True)
class Trade:
    """A public trade print."""

    symbol_id: int
    symbol: Optional[str]
    trade_id: int
    price: Optional[Decimal]
    qty: int
    aggressor_side: Side
    timestamp_ns: int


@dataclass(frozen=True)
class StreamResumed:
    """The resend asked for at logon is complete on one stream."""

    stream: int
    after: int
    last: int
    resent: int
    first_retained: int

    @property
    def missing(self) -> Optional[Tuple[int, int]]:
        """The stream_seqs (first, last, inclusive) the engine no longer held and did not
        resend, or None when nothing is missing."""
        if self.last <= self.after:
            return None
        to = self.last if self.first_retained == 0 else self.first_retained - 1
        return (self.after + 1, to) if to > self.after else None


@dataclass(frozen=True)
class OrderStatus:
    """One resting order (an OrderStatusRequest's answer or one order of an open-orders
    page); with `reject_reason` set the order could not be shown and the rest is empty."""

    client_order_id: int
    reject_reason: Optional[RejectReason]
    order_id: int
    orig_client_order_id: int
    symbol_id: int
    symbol: Optional[str]
    side: Optional[Side]
    price: Optional[Decimal]
    leaves_qty: int
    entered_ns: int


@dataclass(frozen=True)
class OpenOrdersEnd:
    """The end of one page of open orders."""

    client_order_id: int
    count: int
    next_after_order_id: int
    reject_reason: Optional[RejectReason]


@dataclass(frozen=True)
class AssetBalance:
    """One asset of the account, summed over the engine's shards. Amounts are integers in
    the asset's smallest unit (10^-scale of it); `available_units` and `held_units` are the
    same as exact decimals of the asset ("1234.56" USD with scale 2)."""

    asset_id: int
    name: str
    scale: int
    available: int
    held: int

    @property
    def available_units(self) -> Decimal:
        return Decimal(self.available).scaleb(-self.scale, _EXACT)

    @property
    def held_units(self) -> Decimal:
        return Decimal(self.held).scaleb(-self.scale, _EXACT)


@dataclass(frozen=True)
class ShardBalance:
    """One shard's slice of one asset's balance (smallest units)."""

    shard: int
    asset_id: int
    available: int
    held: int


@dataclass(frozen=True)
class BalanceReport:
    """The answer to a BalanceRequest: every configured asset ascending by id (empty when
    the engine runs without money), and each shard's non-zero slice when asked for."""

    request_id: int
    account_id: int
    reject_reason: Optional[RejectReason]
    balances: Tuple[AssetBalance, ...]
    slices: Tuple[ShardBalance, ...]

    def of(self, name: str) -> Optional[AssetBalance]:
        """The balance of the asset named `name` ("USD"), or None."""
        return next((b for b in self.balances if b.name == name), None)


Message = Union[LogonAck, Logout, Heartbeat, ExecutionReport, Trade, StreamResumed,
                OrderStatus, OpenOrdersEnd, BalanceReport]


def _plain(value):
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
               if getattr(value, f.name) is not None}
        if isinstance(value, Instrument):
            out["tick"] = str(value.tick)
        if isinstance(value, AssetBalance):
            out["available_units"] = str(value.available_units)
            out["held_units"] = str(value.held_units)
        return out
    return value


def to_json(message: Message) -> dict:
    """A message as a JSON-ready dict: `type` is its name, enums are names, Decimals are
    exact strings ("190.01"), absent (None) fields are left out; a StreamResumed that
    misses reports has `missing: [first, last]`."""
    out = {"type": type(message).__name__}
    out.update(_plain(message))
    if isinstance(message, StreamResumed) and message.missing is not None:
        out["missing"] = list(message.missing)
    return out
