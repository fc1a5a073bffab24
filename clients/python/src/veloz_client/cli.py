"""The `veloz-client` command line (also `python -m veloz_client`)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from decimal import Decimal, InvalidOperation
from typing import List, Optional

from .messages import Message, OrderStatus, PriceError, RejectReason, to_json
from .session import (
    LogonRefused, NoEngine, OrderResult, RequestRejected, Session, SessionClosed, VelozError,
    parse_addresses,
)
from .state import StateError, StreamState

PROG = "veloz-client"

DESCRIPTION = "Send orders and queries to a Veloz engine and print what it answers."

EPILOG = """\
Every message received is printed on stdout as one JSON object per line ("type" names the
message; enums are names; prices are exact decimal strings in quote units, "190.01").
Heartbeats are exchanged in the background and not printed. Notes, warnings and errors go
to stderr, prefixed with the program's name.

Prices are given and shown in quote units (AAPL: 190.01 USD), never in the wire's integer
units: the instruments' price_scale and tick come with the logon, and a price that is not
a multiple of the instrument's tick is refused before anything is sent. Quantities are
integers in the instrument's quantity unit. --symbol takes an instrument id or its name.

Report streams: every execution report the engine journals carries `stream` (one per
shard) and `stream_seq` (gap-free from 1 per account and stream). With --state FILE the
client keeps the last stream_seq it has seen per stream in FILE (JSON: {"account": 1,
"last": [12, 0]}, replaced atomically after every report) and, when FILE exists, asks the
engine at logon to resend what came after it; the resent reports and one StreamResumed per
stream are printed before the command goes on. `resume` does only that (from stream_seq 0
when FILE does not exist yet). A report that skips stream_seqs is a gap and is warned
about on stderr; one already seen is a duplicate, noted on stderr and not printed again.

Failover: --connect takes a comma-separated list of engine addresses (a primary and its
standby). They are tried in order, round after round, until one logs the session on or
--connect-deadline has passed (default 0: each address once). An address that refuses the
connection, accepts it and closes it, does not answer the logon or is shutting down is
skipped; the error names every address and its last error. A session whose engine dies
ends with exit status 1: after a failover, run again with the same --state: the resend
fetches the reports missed meanwhile.

Exit status:
  0  the command did what was asked (a fill, partial or full, is a success; so is an IOC
     or market order whose rest was cancelled)
  1  the engine refused something (a reject, a refused logon, an order status it cannot
     show), the connection failed or ended early, or reports it could no longer resend
  2  bad arguments: unknown option or instrument, a price off tick, an unusable state file

Examples:
  export VELOZ_TOKEN=demo-alice
  veloz-client --account 1 order --symbol AAPL --side buy --price 189.99 --qty 10
  veloz-client --account 1 order --symbol AAPL --side sell --type market --qty 5
  veloz-client --account 1 replace --symbol AAPL --orig-coid 7 --price 189.98 --qty 4
  veloz-client --account 1 cancel --symbol 1 --order-id 281474976710657
  veloz-client --account 1 mass-cancel                # every symbol
  veloz-client --account 1 status --symbol AAPL --orig-coid 7
  veloz-client --account 1 open-orders
  veloz-client --account 1 balances --by-shard
  veloz-client --account 1 --state alice.json resume  # the reports missed while away
  veloz-client --connect 10.0.0.1:7700,10.0.0.2:7700 --connect-deadline 30 \
      --account 1 --state alice.json resume            # whichever engine answers

The same from Python: `from veloz_client import Session` (help(veloz_client.Session)).
The protocol is docs/protocol.md in the Veloz repository.
"""

log = logging.getLogger("veloz_client")


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _symbol(text: str):
    return int(text) if text.isdigit() else text


def _order_ref(p: argparse.ArgumentParser, what: str) -> None:
    ref = p.add_mutually_exclusive_group(required=True)
    ref.add_argument("--order-id", type=int, metavar="ID",
                     help=f"the engine's order id of the order to {what} (from its Accepted)")
    ref.add_argument("--orig-coid", type=int, metavar="COID",
                     help=f"the client order id the order to {what} was entered with")


def _coid(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--coid", type=int, metavar="N",
                   help=f"the {what}'s client order id (default: a fresh one, nanoseconds "
                        "since the epoch)")


def parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", default="127.0.0.1:7700", metavar="HOST:PORT[,HOST:PORT...]",
                   help="address of `veloz serve` (default 127.0.0.1:7700), or a "
                        "comma-separated list (a primary and its standby): each is tried in "
                        "order, round after round, until one answers or --connect-deadline "
                        "has passed")
    p.add_argument("--connect-deadline", type=float, default=0.0, metavar="SECONDS",
                   help="with a list, keep trying its addresses (pausing 50 ms, growing to "
                        "500 ms, between rounds) for this long (default 0: each address "
                        "once)")
    p.add_argument("--account", type=int, required=True, metavar="ID",
                   help="account id to log on as")
    p.add_argument("--token",
                   help="logon token; default: the environment variable VELOZ_TOKEN, which "
                        "keeps it out of the process list (never printed)")
    p.add_argument("--state", metavar="FILE",
                   help="JSON file with the last stream_seq seen per report stream: read at "
                        "logon to resume after it (when it exists), updated after every report")
    p.add_argument("--cancel-on-disconnect", choices=["account", "on", "off"], default="account",
                   help="whether this session's end cancels the account's resting orders "
                        "(default: the account's configured setting)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the connection and for each answer (default 10)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    o = sub.add_parser(
        "order", help="send a new order (limit or market) and print what it did",
        description="Send one NewOrder and print its reports: the Accepted (or Rejected), "
                    "the fills it made at once, the cancel of an IOC, FOK or market rest. "
                    "Then it has either left the book or rests; a fill, partial or full, "
                    "is a success.")
    o.add_argument("--symbol", type=_symbol, required=True, help="instrument id or name")
    o.add_argument("--side", choices=["buy", "sell"], required=True, help="buy or sell")
    o.add_argument("--qty", type=int, required=True, help="quantity (instrument units)")
    o.add_argument("--price", type=_decimal,
                   help="limit price in quote units (190.01); required for a limit order, "
                        "refused for a market order")
    o.add_argument("--type", dest="kind", choices=["limit", "market"], default="limit",
                   help="limit (default) or market: trades up to the instrument's protection "
                        "band from the best opposite price and never rests")
    o.add_argument("--tif", choices=["gtc", "ioc", "fok"],
                   help="time in force: gtc (the rest rests), ioc (the rest is cancelled), "
                        "fok (all at once or nothing); default gtc for limit, ioc for market")
    o.add_argument("--post-only", action="store_true",
                   help="reject (PostOnlyWouldCross) instead of trading on arrival")
    o.add_argument("--stp", choices=["default", "cancel-resting", "cancel-incoming",
                                     "cancel-both"], default="default",
                   help="self-trade prevention for this order; default: the account's "
                        "configured mode (Allow on the wire)")
    _coid(o, "order")

    c = sub.add_parser(
        "cancel", help="cancel a resting order by order id or client order id",
        description="Send a Cancel and print its answer: Cancelled, or Rejected (e.g. "
                    "UnknownOrder when the order no longer rests).")
    c.add_argument("--symbol", type=_symbol, required=True, help="the order's instrument")
    _order_ref(c, "cancel")
    _coid(c, "cancel")

    r = sub.add_parser(
        "replace", help="change a resting order's price and open quantity",
        description="Send a Replace and print its Replaced (or Rejected) and the fills a "
                    "crossing new price makes. Same price with a lower quantity keeps the "
                    "order's time priority; anything else moves it to the back.")
    r.add_argument("--symbol", type=_symbol, required=True, help="the order's instrument")
    _order_ref(r, "replace")
    r.add_argument("--price", type=_decimal, required=True, help="new limit price (quote units)")
    r.add_argument("--qty", type=int, required=True, help="new open (leaves) quantity")
    _coid(r, "replace")

    m = sub.add_parser(
        "mass-cancel", help="cancel every resting order of the account",
        description="Send a MassCancel of one instrument (--symbol) or of all, and print "
                    "each Cancelled and the MassCancelled report(s) (one per stream when "
                    "over all instruments).")
    m.add_argument("--symbol", type=_symbol, help="only this instrument (default: all)")
    _coid(m, "mass cancel")

    s = sub.add_parser(
        "status", help="the state of one resting order",
        description="Send an OrderStatusRequest and print the OrderStatus. Exit status 1 "
                    "when the engine cannot show the order (its reject_reason: UnknownOrder "
                    "for an order that does not rest, NotOrderOwner, UnknownSymbol).")
    s.add_argument("--symbol", type=_symbol, required=True, help="the order's instrument")
    _order_ref(s, "show")
    _coid(s, "request")

    q = sub.add_parser(
        "open-orders", help="list the account's resting orders",
        description="Send OpenOrdersRequests page after page and print every OrderStatus "
                    "and each page's OpenOrdersEnd.")
    q.add_argument("--symbol", type=_symbol, help="only this instrument (default: all)")
    q.add_argument("--page-size", type=int, default=0, metavar="N",
                   help="orders per page, at most 1000 (default: the engine's, 100)")

    bal = sub.add_parser(
        "balances", help="the account's balances per asset",
        description="Send a BalanceRequest and print the BalanceReport: per asset the "
                    "available and held amounts, summed over the engine's shards (integers "
                    "in the asset's smallest unit, and as decimals in available_units and "
                    "held_units). Empty when the engine runs without money.")
    bal.add_argument("--by-shard", action="store_true",
                     help="also list each shard's slice of each balance")

    d = sub.add_parser(
        "session", help="demo: N resting buy orders, cancel them, log out",
        description="Log on, send N buy orders of quantity 1 (the first at --price, each "
                    "next one tick lower), cancel those still resting, log out.")
    d.add_argument("--symbol", type=_symbol, required=True, help="instrument id or name")
    d.add_argument("--price", type=_decimal, required=True,
                   help="the first order's price (quote units)")
    d.add_argument("--orders", type=int, default=3, help="how many orders (default 3)")

    sub.add_parser(
        "resume", help="print the reports missed since --state, then log out",
        description="Log on asking for every report after the ones --state FILE has seen "
                    "(all retained ones when FILE does not exist or no --state is given), "
                    "print them and one StreamResumed per stream, then log out. Exit status "
                    "1 when the engine no longer held some of them.")

    w = sub.add_parser(
        "watch", help="print what arrives for a while (a drop copy), then log out",
        description="Stay logged on for --seconds (heartbeats are sent meanwhile) and print "
                    "every report of the account as it arrives, then log out.")
    w.add_argument("--seconds", type=float, required=True, help="how long to watch")
    return p


def show(message: Message) -> None:
    print(json.dumps(to_json(message), sort_keys=True), flush=True)


def _summary(what: str, r: OrderResult) -> None:
    rest = {True: f"{r.leaves_qty} resting", False: "not resting",
            None: "resting or not: unknown"}[r.resting]
    log.info("%s: order %d (client_order_id %d): filled %d, %s", what, r.order_id,
             r.client_order_id, r.filled_qty, rest)


def run_order(s: Session, a) -> bool:
    r = s.new_order(a.symbol, a.side, a.qty, a.price, kind=a.kind, tif=a.tif,
                    post_only=a.post_only, stp="allow" if a.stp == "default" else a.stp,
                    client_order_id=a.coid)
    _summary("order", r)
    return True


def run_cancel(s: Session, a) -> bool:
    r = s.cancel(a.symbol, a.order_id, orig_client_order_id=a.orig_coid, client_order_id=a.coid)
    log.info("cancel: order %d cancelled, %d open quantity removed", r.order_id, r.qty)
    return True


def run_replace(s: Session, a) -> bool:
    r = s.replace(a.symbol, a.order_id, a.price, a.qty, orig_client_order_id=a.orig_coid,
                  client_order_id=a.coid)
    _summary("replace", r)
    return True


def run_mass_cancel(s: Session, a) -> bool:
    r = s.mass_cancel(a.symbol, client_order_id=a.coid)
    log.info("mass cancel: %d orders cancelled", r.count)
    return True


def run_status(s: Session, a) -> bool:
    st = s.order_status(a.symbol, a.order_id, orig_client_order_id=a.orig_coid,
                        client_order_id=a.coid)
    if st.reject_reason is not None:
        why = {RejectReason.UnknownOrder: " (it does not rest: never existed, filled or "
                                          "cancelled)"}.get(st.reject_reason, "")
        log.error("error: the engine cannot show the order: %s%s", st.reject_reason.name, why)
        return False
    return True


def run_open_orders(s: Session, a) -> bool:
    orders: List[OrderStatus] = s.open_orders(a.symbol, page_size=a.page_size)
    log.info("open orders: %d", len(orders))
    return True


def run_balances(s: Session, a) -> bool:
    report = s.balances(by_shard=a.by_shard)
    if not report.balances:
        log.info("balances: none (the engine runs without money)")
    return True


def run_session(s: Session, a) -> bool:
    inst = s.instrument(a.symbol)
    ok = True
    resting = []
    for i in range(a.orders):
        price = a.price - i * inst.tick
        try:
            r = s.new_order(inst, "buy", 1, price)
        except RequestRejected as e:
            log.error("error: %s", e)
            ok = False
            continue
        if r.resting:
            resting.append(r.order_id)
    for order_id in resting:
        try:
            s.cancel(inst, order_id)
        except RequestRejected as e:
            # A cancel that lost the race against the order's last fill is refused: fine.
            if e.reason != RejectReason.UnknownOrder:
                log.error("error: %s", e)
                ok = False
    return ok


def run_watch(s: Session, a) -> bool:
    deadline = time.monotonic() + a.seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        try:
            s.wait_for(lambda m: False, "reports", timeout=left)
        except TimeoutError:
            return True


COMMANDS = {
    "order": run_order, "cancel": run_cancel, "replace": run_replace,
    "mass-cancel": run_mass_cancel, "status": run_status, "open-orders": run_open_orders,
    "balances": run_balances, "session": run_session, "resume": lambda s, a: True, "watch": run_watch,
}


class _Stderr(logging.Handler):
    def __init__(self, prog: str):
        super().__init__(logging.INFO)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{self.prog}: {record.getMessage()}", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> int:
    p = parser(prog)
    args = p.parse_args(argv)
    handler = _Stderr(prog)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        return _run(p, args)
    finally:
        log.removeHandler(handler)


def _run(p: argparse.ArgumentParser, args) -> int:
    token = args.token if args.token is not None else os.environ.get("VELOZ_TOKEN")
    if token is None:
        p.error("no token: give --token or set VELOZ_TOKEN")
    if args.cmd == "order" and args.kind == "market" and args.price is not None:
        p.error("order: a market order takes no --price")
    if args.cmd == "order" and args.kind == "limit" and args.price is None:
        p.error("order: a limit order needs --price")
    try:
        addresses = parse_addresses(args.connect)
    except ValueError as e:
        p.error(f"--connect {args.connect!r}: {e}")
    if not args.connect_deadline >= 0:
        p.error(f"--connect-deadline {args.connect_deadline}: expected seconds, 0 or more")
    try:
        state = StreamState(args.state, args.account)
    except StateError as e:
        log.error("error: %s", e)
        return 2
    resume = state.resume_after(always=args.cmd == "resume")
    cod = {"account": None, "on": True, "off": False}[args.cancel_on_disconnect]
    try:
        s = Session.connect(addresses, None, args.account, token, resume_after=resume,
                            cancel_on_disconnect=cod, state=state, timeout=args.timeout,
                            on_message=show, connect_deadline=args.connect_deadline)
    except NoEngine as e:
        log.error("error: cannot connect to %s: %s", args.connect, e)
        return 1
    except LogonRefused as e:
        log.error("error: %s", e)
        return 1
    except (SessionClosed, VelozError) as e:
        log.error("error: %s", e)
        return 1
    except TimeoutError:
        log.error("error: %s: no answer from the engine within %g s", args.connect, args.timeout)
        return 1
    except OSError as e:
        log.error("error: cannot connect to %s: %s", args.connect, e)
        return 1

    code = 0
    try:
        for m in s.catch_up():
            if getattr(m, "missing", None) is not None:
                code = 1
        if not COMMANDS[args.cmd](s, args):
            code = 1
    except (PriceError, ValueError, TypeError) as e:
        log.error("error: %s", e)
        code = 2
    except RequestRejected as e:
        log.error("error: %s", e)
        code = 1
    except SessionClosed as e:
        log.error("error: %s", e)
        s.close()
        return 1
    except TimeoutError as e:
        log.error("error: %s: %s", args.connect, e)
        code = 1
    except OSError as e:
        log.error("error: %s: %s", args.connect, e)
        s.close()
        return 1
    try:
        bye = s.logout()
    except VelozError as e:
        log.error("error: %s", e)
        return 1
    if bye is None:
        log.error("error: the engine closed the connection before its Logout")
        return 1
    return code
