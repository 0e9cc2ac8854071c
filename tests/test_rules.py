"""The exchange's update-ID rules (``tickbook._rules``), one pure function at a time.

Boundary cases come from real recordings (shared/data/real/PROVENANCE.md): futures first
events with ``u == lastUpdateId`` (AKRO, CTK, KEEP) and ``U == lastUpdateId`` (SUSHI); spot
first events with ``U == lastUpdateId + 1`` (DOT, FTM, ...) and a single-id event
``U == u == lastUpdateId + 1`` (BADGERBTC).
"""

from __future__ import annotations

import itertools

import pytest

from tickbook._rules import (
    Verdict,
    classify,
    futures_bridge,
    futures_continue,
    snapshot_is_stale,
    spot_bridge,
    spot_continue,
)

LID = 1000  # a snapshot lastUpdateId / book id used throughout

# --------------------------------------------------------------------------- spot, first event


@pytest.mark.parametrize(
    ("U", "u", "expected"),
    [
        (990, 999, Verdict.STALE),  # entirely before the snapshot
        (995, LID, Verdict.STALE),  # u == lastUpdateId: already in the snapshot (spot drops u <= id)
        (LID, LID, Verdict.STALE),
        (995, LID + 1, Verdict.APPLY),  # straddles lastUpdateId + 1
        (LID + 1, LID + 5, Verdict.APPLY),  # U == lastUpdateId + 1 (DOT, FTM, XMR, SXP, ETH)
        (LID + 1, LID + 1, Verdict.APPLY),  # single-id event U == u == lastUpdateId + 1 (BADGERBTC)
        (LID, LID + 1, Verdict.APPLY),
        (LID + 2, LID + 5, Verdict.NO_BRIDGE),  # starts after lastUpdateId + 1: an event is missing
        (LID + 2, LID + 2, Verdict.NO_BRIDGE),
    ],
)
def test_spot_bridge(U: int, u: int, expected: Verdict) -> None:
    assert spot_bridge(U, u, LID) is expected


def test_spot_bridge_real_btcusdt_2024() -> None:
    # PROVENANCE: spot BTCUSDT 2024, lastUpdateId 50093239218; the first applied event was
    # U=...208 u=...224 (straddles). Its two predecessors had u <= lastUpdateId and are dropped.
    lid = 50093239218
    assert spot_bridge(50093239208, 50093239224, lid) is Verdict.APPLY
    assert spot_bridge(50093239190, 50093239207, lid) is Verdict.STALE


# --------------------------------------------------------------------------- spot, later events


@pytest.mark.parametrize(
    ("U", "u", "expected"),
    [
        (LID + 1, LID + 7, Verdict.APPLY),  # the steady state: U == prev u + 1
        (LID + 1, LID + 1, Verdict.APPLY),
        (LID - 3, LID + 2, Verdict.APPLY),  # overlaps the book: quantities are absolute
        (LID - 3, LID, Verdict.APPLY),  # u == book id is not stale for spot (u < book id is)
        (LID - 9, LID - 1, Verdict.STALE),  # u < book id
        (LID - 1, LID - 1, Verdict.STALE),
        (LID + 2, LID + 2, Verdict.GAP),  # U == book id + 2: one id missing
        (LID + 50, LID + 60, Verdict.GAP),
    ],
)
def test_spot_continue(U: int, u: int, expected: Verdict) -> None:
    assert spot_continue(U, u, LID) is expected


def test_spot_continue_is_not_the_literal_pre_2025_rule() -> None:
    # 2024-12-16..2025-11-11 the docs read "if U > book.id, something went wrong". Read
    # literally it flags every contiguous event; the rule must not.
    book_id = LID
    for step in range(1, 20):
        U, u = book_id + 1, book_id + step
        assert U > book_id  # the literal wrong rule would call this a gap
        assert spot_continue(U, u, book_id) is Verdict.APPLY
        book_id = u


# --------------------------------------------------------------------------- futures, first event


@pytest.mark.parametrize(
    ("U", "u", "expected"),
    [
        (980, 999, Verdict.STALE),  # u < lastUpdateId (strictly)
        (990, LID, Verdict.APPLY),  # u == lastUpdateId is kept (AKRO, CTK, KEEP)
        (LID, LID + 30, Verdict.APPLY),  # U == lastUpdateId (SUSHI)
        (LID, LID, Verdict.APPLY),
        (990, LID + 30, Verdict.APPLY),  # straddles
        (LID + 1, LID + 30, Verdict.NO_BRIDGE),  # spot would accept U == id + 1; futures must not
        (LID + 40, LID + 50, Verdict.NO_BRIDGE),
    ],
)
def test_futures_bridge(U: int, u: int, expected: Verdict) -> None:
    assert futures_bridge(U, u, LID) is expected


def test_futures_bridge_real_sushi_boundary() -> None:
    # PROVENANCE: SUSHIUSDT 2021-07-22, lastUpdateId 600859605926, first applied event U == lid.
    lid = 600859605926
    assert futures_bridge(lid, lid + 17, lid) is Verdict.APPLY


# --------------------------------------------------------------------------- futures, later events


@pytest.mark.parametrize(
    ("u", "pu", "expected"),
    [
        (LID + 5, LID, Verdict.APPLY),  # pu == previous u
        (LID + 1, LID, Verdict.APPLY),
        (LID + 60, LID + 3, Verdict.GAP),  # pu != previous u and the event is newer: missed one
        (LID + 60, LID - 3, Verdict.GAP),
        (LID, LID - 7, Verdict.STALE),  # duplicate delivery of the event that made the book id
        (LID - 5, LID - 9, Verdict.STALE),  # an older duplicate
    ],
)
def test_futures_continue(u: int, pu: int, expected: Verdict) -> None:
    assert futures_continue(u, pu, LID) is expected


def test_futures_non_contiguous_U_with_matching_pu_applies() -> None:
    # Futures ids are not contiguous: U jumps to prev u + 23 while pu == prev u (binance-spec 2.3).
    prev_u = LID
    U, u = prev_u + 23, prev_u + 40
    assert classify(U, u, prev_u, prev_u, bridging=False, futures=True) is Verdict.APPLY
    # ... whereas the spot rule, if wrongly used, would call it a gap.
    assert spot_continue(U, u, prev_u) is Verdict.GAP


def test_futures_contiguous_U_with_wrong_pu_is_a_gap() -> None:
    # U == prev u + 1 looks fine by the spot rule, but pu says an event was missed.
    prev_u = LID
    U, u, pu = prev_u + 1, prev_u + 9, prev_u - 4
    assert spot_continue(U, u, prev_u) is Verdict.APPLY
    assert classify(U, u, pu, prev_u, bridging=False, futures=True) is Verdict.GAP


# --------------------------------------------------------------------------- snapshot staleness


@pytest.mark.parametrize(
    ("last_update_id", "first_U", "futures", "expected"),
    [
        (LID, -1, False, False),  # nothing buffered: never stale
        (LID, -1, True, False),
        (LID, LID + 1, False, False),  # spot: exactly adjacent is fine (docs' "lid < firstU" is not)
        (LID, LID + 2, False, True),  # spot: an id is missing between snapshot and stream
        (LID, LID - 50, False, False),
        (LID, LID, True, False),  # futures: U == lastUpdateId can still bridge
        (LID, LID + 1, True, True),  # futures: U must be <= lastUpdateId
        (LID, LID - 50, True, False),
    ],
)
def test_snapshot_is_stale(last_update_id: int, first_U: int, futures: bool, expected: bool) -> None:
    assert snapshot_is_stale(last_update_id, first_U, futures) is expected


def test_snapshot_is_stale_agrees_with_the_bridge_rules() -> None:
    # A snapshot is stale exactly when the first buffered event could never bridge it, whatever
    # its u: the bridge rule then answers NO_BRIDGE for every u >= U that is not stale.
    for lid, first_U in itertools.product(range(95, 106), range(90, 111)):
        for futures, bridge in ((False, spot_bridge), (True, futures_bridge)):
            verdicts = {bridge(first_U, u, lid) for u in range(first_U, first_U + 30)}
            stale = snapshot_is_stale(lid, first_U, futures)
            assert stale == (Verdict.APPLY not in verdicts), (lid, first_U, futures)


# --------------------------------------------------------------------------- dispatch


def test_classify_dispatches_to_the_four_rules() -> None:
    ids = range(LID - 3, LID + 4)
    for U, u, pu in itertools.product(ids, ids, ids):
        if U > u:
            continue
        assert classify(U, u, pu, LID, bridging=True, futures=False) is spot_bridge(U, u, LID)
        assert classify(U, u, pu, LID, bridging=False, futures=False) is spot_continue(U, u, LID)
        assert classify(U, u, pu, LID, bridging=True, futures=True) is futures_bridge(U, u, LID)
        assert classify(U, u, pu, LID, bridging=False, futures=True) is futures_continue(u, pu, LID)


def test_classify_spot_ignores_pu() -> None:
    for pu in (-1, 0, LID, LID + 1, 10**12):
        assert classify(LID + 1, LID + 3, pu, LID, bridging=False, futures=False) is Verdict.APPLY
        assert classify(LID + 2, LID + 3, pu, LID, bridging=False, futures=False) is Verdict.GAP


def test_classify_futures_never_uses_the_spot_rule() -> None:
    # Over a grid of events, synced futures decisions depend on pu and u only, never on U.
    ids = range(LID - 5, LID + 30)
    for u, pu in itertools.product(ids, ids):
        verdicts = {classify(U, u, pu, LID, bridging=False, futures=True) for U in range(LID - 5, u + 1)}
        assert len(verdicts) == 1, (u, pu, verdicts)
        if pu == LID:
            assert verdicts == {Verdict.APPLY}


def test_verdict_values() -> None:
    assert [int(v) for v in (Verdict.APPLY, Verdict.STALE, Verdict.GAP, Verdict.NO_BRIDGE)] == [0, 1, 2, 3]
