"""The REST and trading layer: signed requests, rate accounting, orders, user data, journal.

The pieces, each in its own module:

* ``client.RestClient``: one pooled aiohttp session per market and host; signing
  (``tickbook.signing``), the server-time offset (``clock.ServerClock``), request weights and
  order counts (``tickbook.budget``), typed errors (``errors``), market data over REST;
* ``spot.SpotTrading`` / ``futures.FuturesTrading``: orders and account, with parameters checked
  locally (``orders``, ``filters``) and lost answers reconciled by client order ID;
* ``user_data.SpotUserData`` (WebSocket API) / ``user_data.FuturesUserData`` (listenKey);
* ``tracker.OrderTracker``: order state from responses and events;
* ``journal.Journal``: the SQLite audit trail, secrets redacted.

docs/trading.md describes how they fit together.
"""

from tickbook.trading.client import RestClient
from tickbook.trading.clock import ServerClock
from tickbook.trading.errors import (
    AuthenticationError,
    BinanceError,
    CancelReplacePartial,
    DuplicateOrder,
    FilterFailure,
    IpBanned,
    NetworkError,
    NoSuchOrder,
    OrderRejected,
    RateLimited,
    RequestError,
    ServerBusy,
    TimestampError,
    UnknownOutcome,
    WafBlocked,
)
from tickbook.trading.filters import ExchangeRules, SymbolRules
from tickbook.trading.futures import FuturesTrading
from tickbook.trading.ids import new_client_order_id
from tickbook.trading.journal import Journal, JournalEntry
from tickbook.trading.orders import Leg, is_reconciled
from tickbook.trading.spot import SpotTrading
from tickbook.trading.tracker import OrderState, OrderTracker
from tickbook.trading.user_data import FuturesUserData, SpotUserData

__all__ = [
    "AuthenticationError",
    "BinanceError",
    "CancelReplacePartial",
    "DuplicateOrder",
    "ExchangeRules",
    "FilterFailure",
    "FuturesTrading",
    "FuturesUserData",
    "IpBanned",
    "Journal",
    "JournalEntry",
    "Leg",
    "NetworkError",
    "NoSuchOrder",
    "OrderRejected",
    "OrderState",
    "OrderTracker",
    "RateLimited",
    "RequestError",
    "RestClient",
    "ServerBusy",
    "ServerClock",
    "SpotTrading",
    "SpotUserData",
    "SymbolRules",
    "TimestampError",
    "UnknownOutcome",
    "WafBlocked",
    "is_reconciled",
    "new_client_order_id",
]
