"""One order-entry session with a Veloz engine: usable from a script or a notebook.

    from decimal import Decimal
    from veloz_client import Session

    with Session.connect("127.0.0.1", 7700, account_id=1, token="demo-alice") as s:
        r = s.new_order("AAPL", "buy", 10, Decimal("189.99"))    # waits for the outcome
        print(r.order_id, r.resting, r.filled_qty, r.reports)
        s.replace("AAPL", r.order_id, Decimal("189.98"), 5)
        print(s.open_orders())
        print(s.balances().of("USD"))                            # available, held
        s.cancel("AAPL", r.order_id)

A background thread reads the socket (so the engine never sees a slow consumer) and sends
the heartbeats the protocol asks for while the session is idle; messages wait in a queue
until `recv` (or a call that waits for an answer) takes them. Every message taken is
recorded in the stream positions (`state`, for resume), appended to `history` and handed
to `on_message`. Requests come in two forms: `send_*` only sends and returns the request's
client order id; the plain name sends, waits for the answer and returns it, raising
RequestRejected when the engine refuses. Fills are not errors.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union

from . import codec
from .messages import (
    BalanceReport, CancelOnDisconnect, CancelReason, ExecType, ExecutionReport, Heartbeat,
    Instrument, LogonAck, LogoutReason, Logout, Message, OpenOrdersEnd, OrderKind, OrderStatus,
    RejectReason, SelfTradePrevention, Side, StreamResumed, TimeInForce,
)
from .state import StreamState

__all__ = [
    "LogonRefused", "MassCancelResult", "NoEngine", "OrderResult", "RequestRejected", "Session",
    "SessionClosed", "VelozError", "parse_addresses",
]

log = logging.getLogger("veloz_client")

_CLOSED = object()

SymbolRef = Union[int, str, Instrument]
PriceLike = Union[Decimal, str, int]
#: An engine address: "host:port" or (host, port).
Address = Union[str, Tuple[str, int]]

#: With several addresses, one connection try waits at most this long (seconds): a dead host
#: that drops SYNs must not hold up its standby for the whole deadline.
TRY_CONNECT_S = 1.0
#: The least time (seconds) a try after the first round gets when the deadline is spent.
TRY_MIN_S = 0.1
#: The pause after the first round in which no address answered; it doubles each round up
#: to PAUSE_MAX_S.
PAUSE_FIRST_S = 0.05
PAUSE_MAX_S = 0.5


class VelozError(Exception):
    """Base of the errors this package raises about a session."""


class SessionClosed(VelozError):
    """The session ended: the engine logged it out (`logout` is its Logout) or the
    connection closed."""

    def __init__(self, message: str, logout: Optional[Logout] = None):
        super().__init__(message)
        self.logout = logout


class LogonRefused(SessionClosed):
    """The engine answered the Logon with a Logout (`logout.reason`, e.g.
    AuthenticationFailed)."""


class NoEngine(VelozError, ConnectionError):
    """No address of a list answered before the deadline. `tried` holds every address
    ("host:port") with the last error it gave, in the list's order; `rounds` how many rounds
    over the list were begun. An OSError (ConnectionError), like a single connection's failure."""

    def __init__(self, waited: float, rounds: int, tried: List[Tuple[str, BaseException]]):
        each = "; ".join(f"{a}: {_describe(e)}" for a, e in tried)
        super().__init__(f"no engine answered within {waited:.1f} s ({rounds} rounds over "
                         f"{len(tried)} addresses): {each}")
        self.waited = waited
        self.rounds = rounds
        self.tried = tried


def _describe(e: BaseException) -> str:
    if isinstance(e, SessionClosed) and not isinstance(e, LogonRefused):
        return "accepted, then closed the connection before the logon answer"
    return str(e) or type(e).__name__


def parse_addresses(addresses: Union[Address, Sequence[Address]],
                    port: Optional[int] = None) -> List[Tuple[str, int]]:
    """The engine addresses as (host, port) pairs, in order.

    `addresses`: "host:port", a comma-separated list of them ("10.0.0.1:7700,
    10.0.0.2:7700"; blanks around entries and empty entries are skipped), or a list of
    "host:port" strings and (host, port) pairs; with `port` given, a single host name (the
    plain `Session.connect(host, port, ...)` form). "[::1]:7700" is IPv6. Raises ValueError
    naming an entry that is not HOST:PORT, or when no address is given."""
    if port is not None:
        if not isinstance(addresses, str):
            raise ValueError(f"a port ({port}) goes with one host name, not {addresses!r}")
        return [(addresses, int(port))]
    if isinstance(addresses, str):
        items: List[Address] = [a.strip() for a in addresses.split(",") if a.strip()]
    elif isinstance(addresses, tuple) and len(addresses) == 2 and isinstance(addresses[1], int):
        items = [addresses]
    else:
        items = list(addresses)
    out: List[Tuple[str, int]] = []
    for item in items:
        if isinstance(item, str):
            host, _, p = item.strip().rpartition(":")
            host = host.strip()
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            if not host or not p.isdigit() or int(p) > 65535:
                raise ValueError(f"{item!r}: expected HOST:PORT")
            out.append((host, int(p)))
        else:
            host, p = item
            out.append((str(host), int(p)))
    if not out:
        raise ValueError(f"no engine address given in {addresses!r}")
    return out


def _show(addr: Tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class RequestRejected(VelozError):
    """The engine refused a request: `reason` is the RejectReason, `report` the Rejected
    ExecutionReport (None for a refused query)."""

    def __init__(self, message: str, reason: Optional[RejectReason],
                 report: Optional[ExecutionReport] = None):
        super().__init__(message)
        self.reason = reason
        self.report = report


@dataclass
class OrderResult:
    """What a new order or a replace did at once: its reports (Accepted or Replaced, fills,
    the cancel of an IOC/FOK/market rest) and its status right after (`status.reject_reason`
    is UnknownOrder when it no longer rests). `status` is None when the engine refused the
    status request the session sent behind the order (Throttled): then `reports` may lack
    some of the order's reports, which `recv` returns later, and `resting` is None."""

    client_order_id: int
    order_id: int
    reports: List[ExecutionReport]
    status: Optional[OrderStatus]

    @property
    def resting(self) -> Optional[bool]:
        return None if self.status is None else self.status.reject_reason is None

    @property
    def leaves_qty(self) -> int:
        """The open quantity left resting (0 when it does not rest or is not known)."""
        return self.status.leaves_qty if self.resting else 0

    @property
    def filled_qty(self) -> int:
        return sum(r.last_qty for r in self.fills)

    @property
    def fills(self) -> List[ExecutionReport]:
        fill = (ExecType.PartiallyFilled, ExecType.Filled)
        return [r for r in self.reports if r.exec_type in fill]


@dataclass
class MassCancelResult:
    """The orders a mass cancel took out (`cancelled`) and its MassCancelled reports (one,
    or one per stream over all symbols)."""

    client_order_id: int
    cancelled: List[ExecutionReport] = field(default_factory=list)
    done: List[ExecutionReport] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(r.mass_cancel_count for r in self.done)


def coerce(enum_type, value):
    """An enum member from itself, its code, or its name in any case, with '-' or '_'
    ignored ("sell", "cancel-resting", "IOC")."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return enum_type(value)
    if isinstance(value, str):
        key = value.replace("-", "").replace("_", "").lower()
        for member in enum_type:
            if member.name.lower() == key:
                return member
    names = ", ".join(m.name for m in enum_type)
    raise ValueError(f"{value!r} is not a {enum_type.__name__} (one of {names})")


class Session:
    """A logged-on session. Create it with `Session.connect`."""

    def __init__(self, sock: socket.socket, account_id: int, state: StreamState,
                 timeout: float, on_message: Optional[Callable[[Message], None]],
                 history: int):
        self._sock = sock
        self.account_id = account_id
        self.state = state
        self.timeout = timeout
        self.on_message = on_message
        #: The last messages taken from the session (heartbeats are not kept).
        self.history: Deque[Message] = collections.deque(maxlen=history)
        #: The instruments of the LogonAck, by id.
        self.instruments: Dict[int, Instrument] = {}
        self.logon_ack: Optional[LogonAck] = None
        #: The engine's Logout, once received.
        self.logout_received: Optional[Logout] = None
        self._resumed = False
        # Client order ids of the status requests the session sends itself (new_order and
        # replace): their answers are returned but not handed to on_message.
        self._internal: set = set()
        self._queue: "queue.Queue" = queue.Queue()
        self._send_lock = threading.Lock()
        self._last_sent = time.monotonic()
        self._heartbeat_s: Optional[float] = None
        self._stop = threading.Event()
        self._logout_sent = False
        self._closed = False
        self._next_coid = time.time_ns()
        self._reader = threading.Thread(target=self._read_loop, name="veloz-session-reader",
                                        daemon=True)
        #: The engine address the session logged on at ("host:port") and its index in the
        #: list given to `connect`.
        self.address: Optional[str] = None
        self.address_index = 0

    # --- connecting ---------------------------------------------------------------------

    @classmethod
    def connect(cls, host: Union[Address, Sequence[Address]], port: Optional[int],
                account_id: int, token: str, *,
                resume_after: Optional[Sequence[int]] = None,
                cancel_on_disconnect: Optional[bool] = None,
                state: Union[StreamState, str, os.PathLike, None] = None,
                timeout: float = 10.0,
                on_message: Optional[Callable[[Message], None]] = None,
                history: int = 10_000,
                connect_deadline: float = 0.0) -> "Session":
        """Connect, log on and wait for the LogonAck.

        `host` and `port`: the engine's address; or, with `port` None, a list of engine
        addresses (a primary and its standby): "host:port,host:port", or a list of
        "host:port" strings or (host, port) pairs (`parse_addresses`). They are tried in
        order, round after round with a pause between rounds (50 ms, doubling up to
        500 ms), until one logs the session on or `connect_deadline` seconds (from the call)
        have passed; the first round tries every address, so the default 0 tries each once.
        A try fails, and the next address is tried, when the connection is refused or cannot
        be made (with several addresses a try waits at most 1 s for it), when the engine
        accepts and then closes it or does not answer the logon within `timeout` (an engine
        still starting), or refuses the logon because it is shutting down. `address` and
        `address_index` say which one answered. After a failover, log on again with the same
        `state`: the resend fetches the reports missed meanwhile.

        `resume_after`: the last stream_seq processed per stream (docs/protocol.md, 5a); the
        engine then resends what came after it (`catch_up` reads the resend). Default: the
        positions in `state` (a StreamState, or the path of its JSON file) when it has any,
        else no resend. `cancel_on_disconnect`: True/False override the account's setting
        for this session, None keeps it. `timeout`: seconds to wait for any one answer.
        Raises OSError when the engine cannot be reached (with several addresses NoEngine,
        naming each and its last error; with one, the last try's own error), LogonRefused
        with the engine's reason when the logon is refused (at once: another try would get
        the same answer). The token is sent and never kept."""
        addresses = parse_addresses(host, port)
        if not isinstance(state, StreamState):
            state = StreamState(state, account_id)
        if resume_after is None:
            resume = state.resume_after(always=False)
        else:
            resume = [int(s) for s in resume_after]
            state.last = list(resume)
            state.start_from_zero()
        cod = {None: CancelOnDisconnect.AccountDefault, True: CancelOnDisconnect.On,
               False: CancelOnDisconnect.Off}[cancel_on_disconnect]
        cap = TRY_CONNECT_S if len(addresses) > 1 else timeout
        start = time.monotonic()
        last: List[Optional[BaseException]] = [None] * len(addresses)
        pause = PAUSE_FIRST_S
        rounds = 0
        while True:
            rounds += 1
            for i, addr in enumerate(addresses):
                left = connect_deadline - (time.monotonic() - start)
                if rounds > 1 and left <= 0:
                    break
                wait = timeout if rounds == 1 else min(timeout, max(left, TRY_MIN_S))
                try:
                    s = cls._logon_at(addr, min(wait, cap), wait, account_id, token, resume,
                                      cod, state, timeout, on_message, history)
                except LogonRefused as e:
                    if e.logout is None or e.logout.reason != LogoutReason.EngineShutdown:
                        raise
                    last[i] = e
                except (OSError, VelozError, codec.DecodeError) as e:
                    last[i] = e
                else:
                    s.address, s.address_index = _show(addr), i
                    return s
            else:
                left = connect_deadline - (time.monotonic() - start)
                if left > 0:
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, PAUSE_MAX_S)
                    if time.monotonic() - start < connect_deadline:
                        continue
            break
        if len(addresses) == 1:
            raise last[0]
        waited = time.monotonic() - start
        raise NoEngine(waited, rounds, [(_show(a), e) for a, e in zip(addresses, last)])

    @classmethod
    def _logon_at(cls, addr: Tuple[str, int], connect_timeout: float, answer_timeout: float,
                  account_id: int, token: str, resume: Optional[List[int]],
                  cod: CancelOnDisconnect, state: StreamState, timeout: float,
                  on_message: Optional[Callable[[Message], None]],
                  history: int) -> "Session":
        """One try of `connect`: connect to `addr`, log on, wait for the answer. A Logout
        EngineShutdown (an engine stopping: the caller tries elsewhere) is not handed to
        `on_message`; the LogonAck and any other refusal are."""
        host, port = addr
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = cls(sock, account_id, state, timeout, None, history)
        s._reader.start()
        s._resumed = resume is not None
        try:
            s._send(codec.logon(account_id, token, resume, cod))
            first = s.recv(answer_timeout)
        except SessionClosed as e:
            s.close()
            raise SessionClosed(f"the engine at {host}:{port} closed the connection before "
                                f"answering the logon ({e})") from None
        except BaseException:
            s.close()
            raise
        s.on_message = on_message
        stopping = isinstance(first, Logout) and first.reason == LogoutReason.EngineShutdown
        if on_message is not None and not stopping:
            on_message(first)
        if isinstance(first, Logout):
            s.close()
            text = f": {first.text}" if first.text else ""
            raise LogonRefused(f"logon of account {account_id} refused: {first.reason.name}"
                               f"{text}", logout=first)
        if not isinstance(first, LogonAck):
            s.close()
            raise VelozError(f"unexpected answer to the logon: {type(first).__name__}")
        state.ensure(first.streams)
        return s

    @property
    def streams(self) -> int:
        return self.logon_ack.streams if self.logon_ack else 0

    def instrument(self, symbol: SymbolRef) -> Instrument:
        """An instrument of the LogonAck by id, symbol name or itself."""
        if isinstance(symbol, Instrument):
            return symbol
        if isinstance(symbol, int) and not isinstance(symbol, bool):
            if symbol in self.instruments:
                return self.instruments[symbol]
        elif isinstance(symbol, str):
            for inst in self.instruments.values():
                if inst.symbol == symbol or inst.symbol.lower() == symbol.lower():
                    return inst
        known = ", ".join(f"{i.symbol} ({i.id})" for i in self.instruments.values())
        raise ValueError(f"unknown instrument {symbol!r}: the engine lists {known or 'none'}")

    def next_client_order_id(self) -> int:
        """A fresh client order id: nanoseconds since the epoch at session start, counting
        up (below 2^63, so an order can be named by it; unlikely to repeat across runs)."""
        coid = self._next_coid
        self._next_coid += 1
        return coid

    # --- the wire -------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        with self._send_lock:
            self._sock.sendall(frame)
            self._last_sent = time.monotonic()

    def _read_loop(self) -> None:
        reader = codec.FrameReader()
        try:
            while not self._stop.is_set():
                self._heartbeat_if_idle()
                try:
                    ready, _, _ = select.select([self._sock], [], [], 0.05)
                    if not ready:
                        continue
                    data = self._sock.recv(65536)
                except (OSError, ValueError):
                    break
                if not data:
                    break
                for frame in reader.feed(data):
                    msg = codec.decode(frame, self.instruments)
                    if isinstance(msg, LogonAck):
                        self.instruments = codec.instruments_by_id(msg.instruments)
                        self.logon_ack = msg
                        self._heartbeat_s = max(msg.heartbeat_interval_ms, 1) / 1000.0
                    elif isinstance(msg, Heartbeat):
                        continue
                    self._queue.put(msg)
        except codec.DecodeError as e:
            self._queue.put(e)
        finally:
            self._queue.put(_CLOSED)

    def _heartbeat_if_idle(self) -> None:
        hb = self._heartbeat_s
        if hb is None or self._logout_sent:
            return
        if time.monotonic() - self._last_sent >= hb / 2:
            try:
                self._send(codec.heartbeat(time.time_ns()))
            except OSError:
                pass  # the read side sees the connection end

    def recv(self, timeout: Optional[float] = None) -> Message:
        """The next message (heartbeats are answered by the session, never returned).

        Duplicate reports (already processed, by stream position) are skipped; every other
        report moves the stream position. Raises TimeoutError when none comes within
        `timeout` seconds (default: the session's), SessionClosed once the connection has
        ended and everything before the end was taken."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(left, 0))
            except queue.Empty:
                raise TimeoutError(f"no message from the engine within {wait:g} s") from None
            if item is _CLOSED:
                self._queue.put(_CLOSED)
                self._closed = True
                if self.logout_received is not None:
                    r = self.logout_received
                    raise SessionClosed(f"the session ended: {r.reason.name}"
                                        + (f" ({r.text})" if r.text else ""), logout=r)
                raise SessionClosed("the engine closed the connection")
            if isinstance(item, Exception):
                raise item
            if isinstance(item, ExecutionReport) and not self.state.accept(item):
                continue
            if isinstance(item, Logout):
                self.logout_received = item
            self.history.append(item)
            internal = isinstance(item, OrderStatus) and item.client_order_id in self._internal
            if internal:
                self._internal.discard(item.client_order_id)
            elif self.on_message is not None:
                self.on_message(item)
            return item

    def wait_for(self, match: Callable[[Message], bool], what: str,
                 timeout: Optional[float] = None) -> Message:
        """Take messages until one that `match`es (returned). A Logout on the way raises
        SessionClosed naming its reason and `what` was awaited."""
        while True:
            try:
                m = self.recv(timeout)
            except SessionClosed as e:
                raise SessionClosed(f"{e} while waiting for {what}", logout=e.logout) from None
            except TimeoutError as e:
                raise TimeoutError(f"{e} while waiting for {what}") from None
            if isinstance(m, Logout):
                text = f" ({m.text})" if m.text else ""
                raise SessionClosed(f"logged out by the engine while waiting for {what}: "
                                    f"{m.reason.name}{text}", logout=m)
            if match(m):
                return m

    # --- resume ---------------------------------------------------------------------------

    def catch_up(self, timeout: Optional[float] = None) -> List[Message]:
        """After a logon that asked for a resend: take the resent reports until every
        stream's StreamResumed; returns them all (reports and StreamResumed, in order).
        A StreamResumed whose `missing` is set names reports the engine no longer held.
        Nothing to do (empty list) when no resend was asked for."""
        if not self._resumed:
            return []
        self._resumed = False
        pending = set(range(self.streams))
        got: List[Message] = []

        def match(m: Message) -> bool:
            got.append(m)
            return isinstance(m, StreamResumed) and m.stream in pending

        while pending:
            m = self.wait_for(match, f"StreamResumed on streams {sorted(pending)}", timeout)
            pending.discard(m.stream)
            if m.missing is not None:
                lo, hi = m.missing
                log.warning("warning: stream %d: reports %d..%d are no longer held by the "
                            "engine and were not resent", m.stream, lo, hi)
            if m.after > m.last:
                log.warning("warning: stream %d: the state says stream_seq %d was seen but "
                            "the engine's stream ends at %d (a state file from another "
                            "engine?): continuing from %d", m.stream, m.after, m.last, m.last)
                self.state.restart(m.stream, m.last)
        return got

    # --- order entry ----------------------------------------------------------------------

    def _order_kind(self, price, kind, tif):
        kind = coerce(OrderKind, kind) if kind is not None else (
            OrderKind.Limit if price is not None else OrderKind.Market)
        if kind == OrderKind.Market and price is not None:
            raise ValueError("a market order takes no price")
        if kind == OrderKind.Limit and price is None:
            raise ValueError("a limit order needs a price")
        tif = coerce(TimeInForce, tif) if tif is not None else (
            TimeInForce.Gtc if kind == OrderKind.Limit else TimeInForce.Ioc)
        return kind, tif

    def send_new_order(self, symbol: SymbolRef, side, qty: int, price: Optional[PriceLike] = None,
                       *, kind=None, tif=None, post_only: bool = False,
                       stp=SelfTradePrevention.Allow,
                       client_order_id: Optional[int] = None) -> int:
        """Send a NewOrder; returns its client order id. A limit order has a `price`
        (Decimal or str in quote units, refused with PriceError when off tick), a market
        order none (kind defaults accordingly; tif defaults to Gtc for limit, Ioc for
        market). `stp` Allow means the account's configured mode."""
        inst = self.instrument(symbol)
        kind, tif = self._order_kind(price, kind, tif)
        units = inst.price_units(price) if price is not None else 0
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.new_order(coid, inst.id, coerce(Side, side), units, int(qty), kind, tif,
                                   post_only, coerce(SelfTradePrevention, stp)))
        return coid

    def new_order(self, symbol: SymbolRef, side, qty: int, price: Optional[PriceLike] = None,
                  **kw) -> OrderResult:
        """Send a NewOrder (arguments as `send_new_order`) and wait for what it did at once:
        its Accepted, fills and cancels, and its status after. Raises RequestRejected when
        it is rejected. A crossing order's PartiallyFilled or Filled is a success."""
        coid = self.send_new_order(symbol, side, qty, price, **kw)
        first = self._answer(coid, (ExecType.Accepted,), "new order")
        return self._settle(coid, first, self.instrument(symbol))

    def _answer(self, coid: int, ok, request: str) -> ExecutionReport:
        """Wait for the report answering request `coid`: one of `ok`, or Rejected (raised)."""
        r = self.wait_for(lambda m: isinstance(m, ExecutionReport) and m.client_order_id == coid
                          and (m.exec_type in ok or m.exec_type == ExecType.Rejected),
                          f"the answer to the {request} (client_order_id {coid})")
        if r.exec_type == ExecType.Rejected:
            raise RequestRejected(_rejected_text(request, r), r.reject_reason, r)
        return r

    def _settle(self, coid: int, first: ExecutionReport, inst: Instrument) -> OrderResult:
        """Collect an order's reports up to the answer of a status request sent behind it
        (the engine answers a query after the reports of earlier requests)."""
        order_id = first.order_id
        reports = [first]
        status_id = self.next_client_order_id()
        self._internal.add(status_id)
        self.send_order_status(inst, order_id, client_order_id=status_id)

        def match(m: Message) -> bool:
            if _refused(m, status_id):
                return True
            if isinstance(m, ExecutionReport) and m.order_id == order_id:
                reports.append(m)
            return isinstance(m, OrderStatus) and m.client_order_id == status_id

        status = self.wait_for(match, f"the status of order {order_id}")
        if isinstance(status, ExecutionReport):
            log.warning("warning: the status request after order %d was refused (%s): its "
                        "state after the request is not known", order_id,
                        status.reject_reason.name if status.reject_reason else "?")
            return OrderResult(coid, order_id, reports, None)
        return OrderResult(coid, order_id, reports, status)

    @staticmethod
    def _order_ref(order_id: Optional[int], orig_client_order_id: Optional[int]):
        if (order_id is None) == (orig_client_order_id is None):
            raise ValueError("name the order by exactly one of order_id and "
                             "orig_client_order_id")
        return (order_id or 0, orig_client_order_id or 0)

    def send_cancel(self, symbol: SymbolRef, order_id: Optional[int] = None, *,
                    orig_client_order_id: Optional[int] = None,
                    client_order_id: Optional[int] = None) -> int:
        """Send a Cancel of the order `order_id`, or of the order entered with client order
        id `orig_client_order_id`; returns the cancel's own client order id."""
        inst = self.instrument(symbol)
        oid, orig = self._order_ref(order_id, orig_client_order_id)
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.cancel(coid, inst.id, oid, orig))
        return coid

    def cancel(self, symbol: SymbolRef, order_id: Optional[int] = None, **kw) -> ExecutionReport:
        """Cancel (arguments as `send_cancel`); returns the Cancelled report, raises
        RequestRejected (e.g. UnknownOrder: already filled or cancelled)."""
        coid = self.send_cancel(symbol, order_id, **kw)
        return self._answer(coid, (ExecType.Cancelled,),
                            f"cancel of {_order_name(order_id, kw.get('orig_client_order_id'))}")

    def send_replace(self, symbol: SymbolRef, order_id: Optional[int] = None,
                     price: Optional[PriceLike] = None, qty: Optional[int] = None, *,
                     orig_client_order_id: Optional[int] = None,
                     client_order_id: Optional[int] = None) -> int:
        """Send a Replace: new limit `price` and new open quantity `qty` of the order
        `order_id` (or the one entered with `orig_client_order_id`); returns the replace's
        client order id."""
        if price is None or qty is None:
            raise ValueError("a replace needs the new price and the new open quantity")
        inst = self.instrument(symbol)
        oid, orig = self._order_ref(order_id, orig_client_order_id)
        units = inst.price_units(price)
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.replace(coid, inst.id, units, int(qty), oid, orig))
        return coid

    def replace(self, symbol: SymbolRef, order_id: Optional[int] = None,
                price: Optional[PriceLike] = None, qty: Optional[int] = None,
                **kw) -> OrderResult:
        """Replace (arguments as `send_replace`) and wait for its Replaced, the fills a
        crossing new price makes, and the order's status after; raises RequestRejected."""
        coid = self.send_replace(symbol, order_id, price, qty, **kw)
        first = self._answer(coid, (ExecType.Replaced,),
                             f"replace of {_order_name(order_id, kw.get('orig_client_order_id'))}")
        return self._settle(coid, first, self.instrument(symbol))

    def send_mass_cancel(self, symbol: Optional[SymbolRef] = None, *,
                         client_order_id: Optional[int] = None) -> int:
        """Send a MassCancel of one symbol, or of every symbol when `symbol` is None."""
        sid = None if symbol is None else self.instrument(symbol).id
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.mass_cancel(coid, sid))
        return coid

    def mass_cancel(self, symbol: Optional[SymbolRef] = None, **kw) -> MassCancelResult:
        """Mass cancel and wait until it is complete (one MassCancelled per stream over all
        symbols); raises RequestRejected."""
        coid = self.send_mass_cancel(symbol, **kw)
        result = MassCancelResult(coid)
        expected = 1 if symbol is not None else max(self.streams, 1)
        while len(result.done) < expected:
            def match(m: Message) -> bool:
                if (isinstance(m, ExecutionReport) and m.exec_type == ExecType.Cancelled
                        and m.cancel_reason == CancelReason.MassCancel):
                    result.cancelled.append(m)
                return (isinstance(m, ExecutionReport) and m.client_order_id == coid
                        and m.exec_type in (ExecType.MassCancelled, ExecType.Rejected))
            r = self.wait_for(match, f"MassCancelled (client_order_id {coid})")
            if r.exec_type == ExecType.Rejected:
                raise RequestRejected(_rejected_text("mass cancel", r), r.reject_reason, r)
            result.done.append(r)
        return result

    # --- queries --------------------------------------------------------------------------

    def send_order_status(self, symbol: SymbolRef, order_id: Optional[int] = None, *,
                          orig_client_order_id: Optional[int] = None,
                          client_order_id: Optional[int] = None) -> int:
        inst = self.instrument(symbol)
        oid, orig = self._order_ref(order_id, orig_client_order_id)
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.order_status_request(coid, inst.id, oid, orig))
        return coid

    def order_status(self, symbol: SymbolRef, order_id: Optional[int] = None,
                     **kw) -> OrderStatus:
        """The state of one resting order, by `order_id` or `orig_client_order_id=`. An
        order that does not rest (filled, cancelled, unknown) comes back with
        `reject_reason` UnknownOrder; that is an answer, not an exception."""
        coid = self.send_order_status(symbol, order_id, **kw)
        m = self.wait_for(lambda m: _refused(m, coid) or (isinstance(m, OrderStatus)
                                                          and m.client_order_id == coid),
                          f"the order status (client_order_id {coid})")
        if isinstance(m, ExecutionReport):
            raise RequestRejected(_rejected_text("order status request", m), m.reject_reason, m)
        return m

    def send_open_orders(self, symbol: Optional[SymbolRef] = None, *, after_order_id: int = 0,
                         max_orders: int = 0, client_order_id: Optional[int] = None) -> int:
        sid = None if symbol is None else self.instrument(symbol).id
        coid = self.next_client_order_id() if client_order_id is None else client_order_id
        self._send(codec.open_orders_request(coid, sid, after_order_id, max_orders))
        return coid

    def open_orders(self, symbol: Optional[SymbolRef] = None, *,
                    page_size: int = 0) -> List[OrderStatus]:
        """Every resting order of the account (of `symbol`, or all), ascending by order id
        per shard, walking every page; raises RequestRejected when the engine refuses."""
        orders: List[OrderStatus] = []
        after = 0
        while True:
            coid = self.send_open_orders(symbol, after_order_id=after, max_orders=page_size)

            def match(m: Message) -> bool:
                if isinstance(m, OrderStatus) and m.client_order_id == coid:
                    orders.append(m)
                return _refused(m, coid) or (isinstance(m, OpenOrdersEnd)
                                             and m.client_order_id == coid)

            end = self.wait_for(match, f"the open orders (client_order_id {coid})")
            if isinstance(end, ExecutionReport):
                raise RequestRejected(_rejected_text("open orders request", end),
                                      end.reject_reason, end)
            if end.reject_reason is not None:
                raise RequestRejected(f"open orders refused: {end.reject_reason.name}",
                                      end.reject_reason)
            if end.next_after_order_id == 0:
                return orders
            after = end.next_after_order_id

    def send_balances(self, by_shard: bool = False,
                      request_id: Optional[int] = None) -> int:
        """Send a BalanceRequest; returns its request id."""
        rid = self.next_client_order_id() if request_id is None else request_id
        self._send(codec.balance_request(rid, by_shard))
        return rid

    def balances(self, by_shard: bool = False) -> BalanceReport:
        """The account's balances, summed over the engine's shards (with each shard's
        slice when `by_shard`); `.of("USD")` picks one asset. Empty when the engine runs
        without money. Raises RequestRejected when the engine refuses the request."""
        rid = self.send_balances(by_shard)
        m = self.wait_for(lambda m: _refused(m, rid) or (isinstance(m, BalanceReport)
                                                         and m.request_id == rid),
                          f"the balances (request_id {rid})")
        if isinstance(m, ExecutionReport):
            raise RequestRejected(_rejected_text("balance request", m), m.reject_reason, m)
        if m.reject_reason is not None:
            raise RequestRejected(f"balance request refused: {m.reject_reason.name}",
                                  m.reject_reason)
        return m

    # --- ending ---------------------------------------------------------------------------

    def logout(self, timeout: Optional[float] = None) -> Optional[Logout]:
        """Log out and take messages up to the engine's Logout (returned; None when the
        connection closed without one), then close."""
        try:
            if self._closed:
                return self.logout_received
            self._logout_sent = True
            try:
                self._send(codec.logout())
            except OSError:
                return self.logout_received
            while True:
                try:
                    m = self.recv(timeout)
                except SessionClosed:
                    return self.logout_received
                if isinstance(m, Logout):
                    return m
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection without logging out (the engine sees a disconnect)."""
        self._closed = True
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        if not self._closed and self.logout_received is None:
            self.logout()
        else:
            self.close()

    def __repr__(self) -> str:
        ack = self.logon_ack
        return (f"<Session account {self.account_id}"
                f"{f' session {ack.session_id}' if ack else ''}"
                f"{' closed' if self._closed else ''}>")


def _refused(m: Message, coid: int) -> bool:
    """A gateway's Rejected report answering request `coid` (a query refused as Throttled,
    MalformedMessage, ...): queries are otherwise answered with their own messages."""
    return (isinstance(m, ExecutionReport) and m.client_order_id == coid
            and m.exec_type == ExecType.Rejected)


def _order_name(order_id: Optional[int], orig_client_order_id: Optional[int]) -> str:
    if order_id is not None:
        return f"order {order_id}"
    return f"the order entered as client_order_id {orig_client_order_id}"


def _rejected_text(what: str, r: ExecutionReport) -> str:
    reason = r.reject_reason.name if r.reject_reason is not None else "unknown reason"
    text = f" ({r.reason_text})" if r.reason_text else ""
    return f"{what} (client_order_id {r.client_order_id}) rejected: {reason}{text}"
