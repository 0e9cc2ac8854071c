"""The live depth feed: books for many symbols kept in sync over the exchange's WebSockets.

``DepthFeed`` is the entry point; see docs/feed.md.
"""

from tickbook.feed.endpoints import Endpoints, Environment
from tickbook.feed.feed import BestBidAsk, DepthFeed, FeedError, StateEvent, StateKind

__all__ = ["BestBidAsk", "DepthFeed", "Endpoints", "Environment", "FeedError", "StateEvent", "StateKind"]
