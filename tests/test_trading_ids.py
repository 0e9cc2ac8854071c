"""Client order IDs (binance-spec §6.1): generated ids are legal on both markets and unique
across threads and processes; illegal ids are refused with the exchange's codes."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from tickbook import Market
from tickbook.trading import ids as ids_module
from tickbook.trading.errors import RequestError, error_from_response
from tickbook.trading.ids import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    MAX_PREFIX_LENGTH,
    check_client_order_id,
    new_client_order_id,
)

LEGAL = re.compile(r"[A-Za-z0-9_-]{1,36}")


def test_generated_ids_are_legal_on_both_markets() -> None:
    for prefix in ("tb", "", "x" * MAX_PREFIX_LENGTH, "bot_7-a", "A"):
        cid = new_client_order_id(prefix)
        assert cid.startswith(prefix)
        assert LEGAL.fullmatch(cid), cid
        assert len(cid) <= MAX_CLIENT_ORDER_ID_LENGTH
        for market in Market:
            assert check_client_order_id(cid, market) == cid
    assert len(new_client_order_id("x" * MAX_PREFIX_LENGTH)) == 36
    assert new_client_order_id().startswith("tb")


def test_ids_from_one_process_are_unique_and_sort_in_creation_order() -> None:
    ids = [new_client_order_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    # Fixed-width base 36 time then counter: creation order is sort order.
    assert ids == sorted(ids)


def test_ids_from_threads_are_unique() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def work(slot: list[str]) -> None:
        slot.extend(new_client_order_id() for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(slot,)) for slot in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [cid for slot in out for cid in slot]
    assert len(set(ids)) == len(ids) == 40_000


def test_ids_keep_increasing_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(ids_module, "_clock_ns", lambda: now[0])
    first = [new_client_order_id("") for _ in range(3)]
    now[0] -= 5_000_000_000  # NTP steps the wall clock 5 s back
    later = [new_client_order_id("") for _ in range(3)]
    body = [cid[:12] for cid in first + later]  # time + counter, without the random part
    assert body == sorted(body)
    assert len(set(body)) == 6


def test_a_full_millisecond_borrows_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids_module, "_clock_ns", lambda: 1_900_000_000_000_000_000)
    monkeypatch.setattr(ids_module, "_last_count", 36**3 - 2)
    monkeypatch.setattr(ids_module, "_last_ms", 1_900_000_000_000)
    a, b = new_client_order_id(""), new_client_order_id("")
    assert a[:12] < b[:12]
    assert b[9:12] == "000"  # counter restarted on the following millisecond


def _batch(n: int) -> list[str]:
    return [new_client_order_id() for _ in range(n)]


def test_ids_from_separate_processes_are_unique() -> None:
    """Each process has its own counter starting at 0: the random part keeps them apart."""
    with ProcessPoolExecutor(max_workers=3) as pool:
        batches = list(pool.map(_batch, [5_000] * 3))
    ids = [cid for batch in batches for cid in batch]
    assert len(set(ids)) == len(ids) == 15_000


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("bad prefix", "may only use"),
        ("tb.", "may only use"),
        ("é", "may only use"),
        ("x" * (MAX_PREFIX_LENGTH + 1), "at most 16 fit"),
    ],
)
def test_bad_prefixes_are_refused(prefix: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_client_order_id(prefix)


def test_a_non_string_prefix_is_refused() -> None:
    with pytest.raises(TypeError):
        new_client_order_id(7)  # type: ignore[arg-type]


SPOT_ILLEGAL = (
    "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'."
)


@pytest.mark.parametrize(
    ("text", "market", "code", "msg"),
    [
        ("my order", "spot", -1100, SPOT_ILLEGAL),
        ("a.b", "spot", -1100, SPOT_ILLEGAL),
        ("", "spot", -1100, SPOT_ILLEGAL),
        ("x" * 37, "spot", -1100, SPOT_ILLEGAL),
        ("ordér", "spot", -1100, SPOT_ILLEGAL),
        # USD-M accepts '.', ':' and '/', but the common subset keeps one id legal everywhere.
        ("a.b", "usdm", -1100, SPOT_ILLEGAL),
        ("", "usdm", -1100, SPOT_ILLEGAL),
        ("x" * 37, "usdm", -4015, "Client order id length should not be more than 36 chars"),
        ("x" * 37, "coinm", -4015, "Client order id length should not be more than 36 chars"),
    ],
)
def test_illegal_ids_are_refused_with_the_exchange_code(text: str, market: str, code: int, msg: str) -> None:
    with pytest.raises(RequestError) as info:
        check_client_order_id(text, market)
    # Refused before sending: the exchange's code and message, no HTTP status.
    assert (info.value.code, info.value.msg, info.value.status) == (code, msg, None)
    # The same answer from the exchange decodes to the same class, with its status.
    body = json.dumps({"code": code, "msg": msg}).encode()
    remote = error_from_response(
        400, body, method="POST", endpoint="/api/v3/order", client_order_id=None, market=Market(market)
    )
    assert type(remote) is RequestError
    assert (remote.code, remote.msg, remote.status) == (code, msg, 400)


def test_the_message_names_the_parameter() -> None:
    with pytest.raises(RequestError, match="parameter 'origClientOrderId'"):
        check_client_order_id("no way", Market.SPOT, param="origClientOrderId")
    assert check_client_order_id("x" * 36, "spot") == "x" * 36
    with pytest.raises(TypeError):
        check_client_order_id(None, "spot")  # type: ignore[arg-type]
