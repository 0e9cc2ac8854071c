"""Where a market's REST snapshots and WebSocket streams live, per environment.

The live path and the local exchange differ only here: ``Endpoints.custom(rest, stream)``
points the same feed at ``tickbook sim``. Hosts and limits follow binance-spec.md §3, §11.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Final

from tickbook._types import Market


class Environment(enum.StrEnum):
    PRODUCTION = "production"
    TESTNET = "testnet"
    DEMO = "demo"  # spot demo mode (since 2026-01-29); USD-M's testnet is its demo host


_REST: Final = {
    (Market.SPOT, Environment.PRODUCTION): "https://api.binance.com",
    (Market.SPOT, Environment.TESTNET): "https://testnet.binance.vision",
    (Market.USDM, Environment.PRODUCTION): "https://fapi.binance.com",
    (Market.USDM, Environment.TESTNET): "https://demo-fapi.binance.com",
    (Market.COINM, Environment.PRODUCTION): "https://dapi.binance.com",
    (Market.COINM, Environment.TESTNET): "https://testnet.binancefuture.com",
    (Market.SPOT, Environment.DEMO): "https://demo-api.binance.com",
    (Market.USDM, Environment.DEMO): "https://demo-fapi.binance.com",
}
_STREAMS: Final = {
    (Market.SPOT, Environment.PRODUCTION): "wss://stream.binance.com:9443",
    (Market.SPOT, Environment.TESTNET): "wss://stream.testnet.binance.vision",
    (Market.USDM, Environment.PRODUCTION): "wss://fstream.binance.com",
    (Market.USDM, Environment.TESTNET): "wss://fstream.binancefuture.com",
    (Market.COINM, Environment.PRODUCTION): "wss://dstream.binance.com",
    (Market.COINM, Environment.TESTNET): "wss://dstream.binancefuture.com",
    (Market.SPOT, Environment.DEMO): "wss://demo-stream.binance.com",
    (Market.USDM, Environment.DEMO): "wss://fstream.binancefuture.com",
}
DEPTH_PATHS: Final = {
    Market.SPOT: "/api/v3/depth",
    Market.USDM: "/fapi/v1/depth",
    Market.COINM: "/dapi/v1/depth",
}
_INFO_PATH: Final = {
    Market.SPOT: "/api/v3/exchangeInfo",
    Market.USDM: "/fapi/v1/exchangeInfo",
    Market.COINM: "/dapi/v1/exchangeInfo",
}


@dataclasses.dataclass(frozen=True, slots=True)
class StreamLimits:
    """The exchange's WebSocket limits for one market (binance-spec.md §3)."""

    inbound_per_s: int  # control messages, pings and pongs the client may send per second
    streams_per_connection: int
    ping_interval_s: float  # the server pings this often
    pong_deadline_s: float  # and closes when the pong is later than this
    lifetime_s: float  # connections are cut after this
    attempts: int  # connection attempts per window (per IP)
    attempts_window_s: float


SPOT_LIMITS: Final = StreamLimits(5, 1024, 20.0, 60.0, 86_400.0, 300, 300.0)
# Futures document no attempt limit; keep the spot one as a polite bound.
FUTURES_LIMITS: Final = StreamLimits(10, 1024, 180.0, 600.0, 86_400.0, 300, 300.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs (no trailing slash) for one market: REST and streams."""

    market: Market
    rest: str
    stream: str

    @classmethod
    def of(cls, market: Market | str, environment: Environment | str = Environment.PRODUCTION) -> Endpoints:
        m = Market.parse(market)
        env = Environment(environment)
        return cls(m, _REST[m, env], _STREAMS[m, env])

    @classmethod
    def custom(cls, market: Market | str, rest: str, stream: str) -> Endpoints:
        """Any host speaking the exchange's protocol: the local exchange, a proxy."""
        for name, url, schemes in (
            ("rest", rest, ("http://", "https://")),
            ("stream", stream, ("ws://", "wss://")),
        ):
            if not url.startswith(schemes):
                raise ValueError(f"{name} URL {url!r} must start with {' or '.join(schemes)}")
        return cls(Market.parse(market), rest.rstrip("/"), stream.rstrip("/"))

    @property
    def depth_path(self) -> str:
        return DEPTH_PATHS[self.market]

    @property
    def exchange_info_path(self) -> str:
        return _INFO_PATH[self.market]

    @property
    def limits(self) -> StreamLimits:
        return FUTURES_LIMITS if self.market.is_futures else SPOT_LIMITS

    def stream_url(self, route: str, streams: list[str]) -> str:
        """Combined-stream URL; ``route`` is USD-M's ``/public`` or ``/market`` (else "")."""
        return f"{self.stream}{route}/stream?streams={'/'.join(streams)}"


def rest_base_url(market: Market | str, environment: Environment | str = Environment.PRODUCTION) -> str:
    """The REST base URL (no trailing slash, no ``/api``: paths carry it) of a market in an
    environment (binance-spec §11): production, the testnets, spot demo mode
    (``https://demo-api.binance.com``) and USD-M's demo host (``https://demo-fapi.binance.com``,
    which the official page now names as the testnet). COIN-M has no demo host."""
    m = Market.parse(market)
    try:
        env = Environment(str(environment).lower())
    except ValueError:
        names = ", ".join(e.value for e in Environment)
        raise ValueError(f"unknown environment {environment!r}; expected one of: {names}") from None
    url = _REST.get((m, env))
    if url is None:
        raise ValueError(f"{m.value} has no {env.value} environment")
    return url


def depth_stream(symbol: str, speed: str | None) -> str:
    """``btcusdt@depth@100ms`` (``speed`` None: the market's default cadence)."""
    name = f"{symbol.lower()}@depth"
    return f"{name}@{speed}" if speed else name


def depth_route(market: Market) -> str:
    """USD-M serves depth on ``/public`` since 2026-04-23; other markets have no routes."""
    return "/public" if market is Market.USDM else ""
