"""A Python client for the Veloz order-entry protocol (docs/protocol.md).

`Session` is the API (connect, log on, orders, cancels, replaces, mass cancels, queries,
balances, resume); `veloz_client.messages` holds the decoded messages as dataclasses, with prices as
exact `decimal.Decimal`; `veloz_client.codec` encodes and decodes frames with the
flatc-generated code in `veloz_client.generated`. The command line is `veloz-client` (or
`python -m veloz_client`).
"""
from .codec import DecodeError
from .messages import (
    AssetBalance, BalanceReport, CancelOnDisconnect, CancelReason, ExecType, ExecutionReport,
    Heartbeat, Instrument, Liquidity, LogonAck, Logout, LogoutReason, Message, OpenOrdersEnd,
    OrderKind, OrderStatus, PriceError, RejectReason, SelfTradePrevention, ShardBalance, Side, StreamResumed,
    TimeInForce, Trade, to_json,
)
from .session import (
    LogonRefused, MassCancelResult, OrderResult, RequestRejected, Session, SessionClosed,
    VelozError,
)
from .state import StateError, StreamState

__version__ = "0.1.0"

__all__ = [
    "AssetBalance", "BalanceReport", "CancelOnDisconnect", "CancelReason", "DecodeError",
    "ExecType", "ExecutionReport", "Heartbeat", "Instrument", "Liquidity", "LogonAck", "LogonRefused", "Logout",
    "LogoutReason", "MassCancelResult", "Message", "OpenOrdersEnd", "OrderKind", "OrderResult",
    "OrderStatus", "PriceError", "RejectReason", "RequestRejected", "SelfTradePrevention",
    "Session", "SessionClosed", "ShardBalance", "Side", "StateError", "StreamResumed",
    "StreamState", "TimeInForce", "Trade", "VelozError", "to_json",
]
