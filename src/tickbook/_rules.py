"""The exchange's update-ID rules as small pure functions.

These are the rules of binance-spec §1.2 (spot) and §2.3 (USD-M and COIN-M),
written once so each can be tested on its own. The pure-Python reference book
calls them; the Cython core implements the same decisions in C (``_book.pyx``,
``_classify_*``) and the tests check both against these.

``book_id`` is the book's update ID: the snapshot's ``lastUpdateId`` right
after a snapshot, then the ``u`` of the last applied event.
"""

from __future__ import annotations

import enum


class Verdict(enum.IntEnum):
    APPLY = 0  # apply the event
    STALE = 1  # already covered by the book: ignore it
    GAP = 2  # continuity broken: resync
    NO_BRIDGE = 3  # the first event after the snapshot does not straddle it


def snapshot_is_stale(last_update_id: int, first_buffered_U: int, futures: bool) -> bool:
    """True when a snapshot is older than the stream, so it must be fetched again.

    Spot: the first applied event must satisfy ``U <= lastUpdateId + 1``;
    futures: ``U <= lastUpdateId``. Buffered events only grow in ``U``, so if
    the oldest one already starts after that bound, none can ever bridge.
    Spot's documented test ``lastUpdateId < firstU`` would also refetch the
    exactly adjacent case ``lastUpdateId == firstU - 1``, which step 5 of
    the same procedure accepts (real recordings contain it), so we use the
    bound itself.
    """
    if first_buffered_U < 0:
        return False
    bound = last_update_id if futures else last_update_id + 1
    return first_buffered_U > bound


def spot_bridge(U: int, u: int, last_update_id: int) -> Verdict:
    """First event after a spot snapshot: drop ``u <= lastUpdateId``, then it must
    straddle ``lastUpdateId + 1`` (``U <= lastUpdateId + 1 <= u``)."""
    if u <= last_update_id:
        return Verdict.STALE
    if U > last_update_id + 1:
        return Verdict.NO_BRIDGE
    return Verdict.APPLY


def spot_continue(U: int, u: int, book_id: int) -> Verdict:
    """Every later spot event: ``u < book id`` is stale, ``U > book id + 1`` is a gap."""
    if u < book_id:
        return Verdict.STALE
    if U > book_id + 1:
        return Verdict.GAP
    return Verdict.APPLY


def futures_bridge(U: int, u: int, last_update_id: int) -> Verdict:
    """First event after a futures snapshot: drop ``u < lastUpdateId`` (strictly),
    then it must satisfy ``U <= lastUpdateId <= u``."""
    if u < last_update_id:
        return Verdict.STALE
    if U > last_update_id:
        return Verdict.NO_BRIDGE
    return Verdict.APPLY


def futures_continue(u: int, pu: int, book_id: int) -> Verdict:
    """Every later futures event: ``pu`` must equal the previous ``u``.

    An event whose ``u`` is not newer than the book (a duplicate delivery) is
    ignored rather than treated as a gap: while synced every event up to the
    book ID has been applied in an unbroken ``pu`` chain, so an older one
    carries nothing the book lacks. Futures IDs are not contiguous, so the
    spot test ``U == prev u + 1`` is never used here.
    """
    if pu == book_id:
        return Verdict.APPLY
    if u <= book_id:
        return Verdict.STALE
    return Verdict.GAP


def classify(U: int, u: int, pu: int, book_id: int, bridging: bool, futures: bool) -> Verdict:
    """Dispatch to the rule for the market and the phase (bridging or synced)."""
    if futures:
        return futures_bridge(U, u, book_id) if bridging else futures_continue(u, pu, book_id)
    return spot_bridge(U, u, book_id) if bridging else spot_continue(U, u, book_id)
