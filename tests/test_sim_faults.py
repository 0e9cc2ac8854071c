"""Fault injection plans (``tickbook.sim.faults``): the ``--faults`` spec, scenario files, decisions, log."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from tickbook.sim.faults import (
    DEPTH_KINDS,
    KINDS,
    Action,
    Fault,
    FaultPlan,
    SnapshotAction,
    http_error_body,
    load_scenario,
    malformed_payload,
    parse_faults,
    unknown_event,
)

EVERY_KIND = (
    "drop@500,dup@2,reorder@3,delay@4:0.25,stall@5:2,close@6,disconnect@7,malformed@8,unknown@9,"
    "stale-snapshot,slow-snapshot:1.5,http@3:503,skew:-1500,lost-response@2:timeout=0.5"
)


def test_every_kind_parses() -> None:
    faults = parse_faults(EVERY_KIND)
    assert [f.kind for f in faults] == list(KINDS)
    by_kind = {f.kind: f for f in faults}
    assert by_kind["drop"] == Fault("drop", 500)
    assert by_kind["delay"] == Fault("delay", 4, seconds=0.25)
    assert by_kind["stall"] == Fault("stall", 5, seconds=2.0)
    assert by_kind["stale-snapshot"] == Fault("stale-snapshot", 1)  # the next snapshot answered
    assert by_kind["slow-snapshot"] == Fault("slow-snapshot", 1, seconds=1.5)
    assert by_kind["http"] == Fault("http", 3, status=503)
    assert by_kind["skew"] == Fault("skew", None, ms=-1500)
    # tokens round-trip
    assert parse_faults(",".join(f.token() for f in faults)) == faults


def test_scoping_options_and_whitespace() -> None:
    faults = parse_faults(
        " BTCUSDT:drop@500 , ethusdt:stale-snapshot@2, btcusd_perp:delay@3:1:every=10:count=2,drop@1:count=5,"
    )
    assert faults == [
        Fault("drop", 500, "BTCUSDT"),
        Fault("stale-snapshot", 2, "ETHUSDT"),
        Fault("delay", 3, "BTCUSD_PERP", seconds=1.0, every=10, count=2),
        Fault("drop", 1, count=5),
    ]
    assert parse_faults("") == []
    assert parse_faults(" , ") == []
    assert faults[2].token() == "BTCUSD_PERP:delay@3:1:every=10:count=2"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("explode@1", "unknown fault kind"),
        ("drop", "needs @N"),
        ("drop@0", "at least 1"),
        ("drop@x", "N must be an integer"),
        ("drop@1:5", "takes no argument"),
        ("delay@1", "needs exactly one :SECONDS"),
        ("stall@1:soon", "SECONDS must be a number"),
        ("stall@1:-1", "finite number >= 0"),
        ("delay@1:nan", "finite number >= 0"),
        ("slow-snapshot", "needs exactly one :SECONDS"),
        ("http@1", "needs exactly one :STATUS"),
        ("http@1:999", "HTTP status"),
        ("http@1:abc", "STATUS must be an integer"),
        ("http:500", "needs @N"),
        ("BTCUSDT:http@1:500", "cannot be scoped"),
        ("skew", "needs exactly one :MILLISECONDS"),
        ("skew@2:100", "skew takes no @N"),
        ("skew:1.5", "MILLISECONDS must be an integer"),
        ("skew:100:every=2", "no every="),
        ("BTC-USDT:drop@1", "neither a fault kind nor a symbol"),
        ("BTCUSDT:explode@1", "unknown fault kind"),
        ("drop@1:every=0", "every must be at least 1"),
        ("drop@1:count=x", "count must be an integer"),
        ("drop@1:often=2", "unknown option"),
        ("drop@1:every=2:every=3", "given twice"),
        ("delay@1:every=2:1", "must come last"),
        ("drop@1:conn=0", "conn must be at least 1"),
        ("drop@1:conn=x", "conn must be an integer"),
        ("drop@1:conn=-2", "conn must be at least 1"),
        ("drop@1:conn=1:conn=2", "given twice"),
        ("drop@1:conn=1:5", "must come last"),
        ("http@1:503:conn=1", "REST-side fault and takes no conn="),
        ("stale-snapshot:conn=1", "REST-side fault and takes no conn="),
        ("BTCUSDT:slow-snapshot@2:1:conn=2", "REST-side fault and takes no conn="),
        ("skew:100:conn=1", "REST-side fault and takes no conn="),
    ],
)
def test_bad_tokens_name_the_token(token: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_faults(f"dup@1,{token}")
    assert repr(token) in str(info.value)


def test_conn_option_targets_one_connection() -> None:
    faults = parse_faults("drop@500:conn=2, BTCUSDT:stall@100:3:conn=1,dup@7:every=5:count=2:conn=3")
    assert faults == [
        Fault("drop", 500, conn=2),
        Fault("stall", 100, "BTCUSDT", seconds=3.0, conn=1),
        Fault("dup", 7, every=5, count=2, conn=3),
    ]
    assert [f.token() for f in faults] == [
        "drop@500:conn=2",
        "BTCUSDT:stall@100:3:conn=1",
        "dup@7:every=5:count=2:conn=3",
    ]
    assert parse_faults(",".join(f.token() for f in faults)) == faults
    assert parse_faults("drop@1")[0].conn is None  # every connection, as before
    plan = FaultPlan(faults, clock=lambda: 7.0)
    assert plan.on_depth_event("BTCUSDT", 500) == [Action("drop", connection=2)]
    assert plan.on_depth_event("BTCUSDT", 100) == [Action("stall", 3.0, connection=1)]
    assert plan.on_depth_event("ETHUSDT", 100) == []  # the stall is scoped to BTCUSDT
    assert [a.connection for a in FaultPlan.from_spec("drop@1").on_depth_event("X", 1)] == [None]
    assert plan.log == [
        {"kind": "drop", "symbol": "BTCUSDT", "at": 500, "time": 7.0, "conn": 2},
        {"kind": "stall", "symbol": "BTCUSDT", "at": 100, "time": 7.0, "seconds": 3.0, "conn": 1},
    ]


def test_fires_at_with_every_and_count() -> None:
    once = Fault("drop", 5)
    assert [n for n in range(1, 40) if once.fires_at(n)] == [5]
    burst = Fault("drop", 5, count=3)
    assert [n for n in range(1, 40) if burst.fires_at(n)] == [5, 6, 7]
    repeat = Fault("drop", 5, every=10, count=2)
    assert [n for n in range(1, 40) if repeat.fires_at(n)] == [5, 6, 15, 16, 25, 26, 35, 36]
    assert not Fault("skew", None, ms=5).fires_at(1)


def test_depth_decisions_and_log() -> None:
    clock = iter(range(100, 200))
    plan = FaultPlan.from_spec(
        "drop@3,BTCUSDT:dup@3,delay@4:0.5,stall@5:2,close@6,disconnect@7,malformed@8,unknown@9,reorder@10",
        clock=lambda: float(next(clock)),
    )
    assert plan.on_depth_event("BTCUSDT", 1) == []
    actions = plan.on_depth_event("BTCUSDT", 3)
    assert [a.kind for a in actions] == ["drop", "dup"]  # spec order
    assert [a.kind for a in plan.on_depth_event("ETHUSDT", 3)] == ["drop"]  # dup is scoped to BTCUSDT
    assert plan.on_depth_event("ETHUSDT", 4) == [Action("delay", 0.5)]
    assert plan.on_depth_event("ETHUSDT", 5)[0].seconds == 2.0
    kinds = [a.kind for n in range(6, 11) for a in plan.on_depth_event("ETHUSDT", n)]
    assert kinds == ["close", "disconnect", "malformed", "unknown", "reorder"]
    malformed = plan.on_depth_event("XRPUSDT", 8)[0].data
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(malformed)
    unknown = json.loads(plan.on_depth_event("XRPUSDT", 9)[0].data)
    assert unknown["s"] == "XRPUSDT"
    assert unknown["e"] not in ("depthUpdate", "trade", "aggTrade", "bookTicker")
    assert plan.log[:4] == [
        {"kind": "drop", "symbol": "BTCUSDT", "at": 3, "time": 100.0},
        {"kind": "dup", "symbol": "BTCUSDT", "at": 3, "time": 101.0},
        {"kind": "drop", "symbol": "ETHUSDT", "at": 3, "time": 102.0},
        {"kind": "delay", "symbol": "ETHUSDT", "at": 4, "time": 103.0, "seconds": 0.5},
    ]
    assert len(plan.log) == 4 + 1 + 5 + 2
    assert {entry["kind"] for entry in plan.log} == set(DEPTH_KINDS)


def test_snapshot_rest_and_skew_decisions() -> None:
    plan = FaultPlan.from_spec(
        "stale-snapshot,ETHUSDT:slow-snapshot@2:3,slow-snapshot@3:1:every=2,http@2:503,http@4:429:count=2,"
        "http@4:500,skew:250,skew:-50",
        clock=lambda: 7.0,
    )
    assert plan.on_snapshot("BTCUSDT") == SnapshotAction(stale=True)  # first request of each symbol
    assert plan.on_snapshot("ETHUSDT") == SnapshotAction(stale=True)
    assert plan.on_snapshot("ETHUSDT") == SnapshotAction(delay=3.0)
    assert not plan.on_snapshot("BTCUSDT")  # BTCUSDT's 2nd: no fault
    assert plan.on_snapshot("BTCUSDT") == SnapshotAction(delay=1.0)  # 3rd, then every 2nd
    assert not plan.on_snapshot("BTCUSDT")
    assert plan.on_snapshot("BTCUSDT") == SnapshotAction(delay=1.0)
    assert [plan.on_rest_request(n) for n in range(1, 8)] == [None, 503, None, 429, 429, None, None]
    assert plan.clock_skew_ms() == 200
    assert plan.clock_skew_ms() == 200
    skews = [e for e in plan.log if e["kind"] == "skew"]
    assert skews == [{"kind": "skew", "symbol": None, "at": None, "time": 7.0, "ms": 200}]  # logged once
    https = [e for e in plan.log if e["kind"] == "http"]
    assert [(e["at"], e["status"]) for e in https] == [(2, 503), (4, 429), (5, 429)]
    slow = [e for e in plan.log if e["kind"] == "slow-snapshot"]
    assert [(e["symbol"], e["at"], e["seconds"]) for e in slow] == [
        ("ETHUSDT", 2, 3.0),
        ("BTCUSDT", 3, 1.0),
        ("BTCUSDT", 5, 1.0),
    ]


def test_empty_plan_and_runtime_additions() -> None:
    plan = FaultPlan()
    assert not plan
    assert plan.on_depth_event("BTCUSDT", 1) == []
    assert not plan.on_snapshot("BTCUSDT")
    assert plan.on_rest_request(1) is None
    assert plan.clock_skew_ms() == 0
    assert plan.log == []
    plan.add(Fault("drop", 2))
    assert plan
    assert [a.kind for a in plan.on_depth_event("BTCUSDT", 2)] == ["drop"]


def test_scenario_files(tmp_path: Path) -> None:
    expected = [
        Fault("drop", 500, "BTCUSDT", every=1000),
        Fault("delay", 10, seconds=0.5),
        Fault("http", 3, status=503, count=2),
        Fault("skew", None, ms=1500),
        Fault("dup", 7),
        Fault("stall", 4, "BTCUSDT", seconds=1.0, conn=2),
    ]
    as_json = tmp_path / "s.json"
    as_json.write_text(
        json.dumps(
            {
                "faults": [
                    {"kind": "drop", "at": 500, "symbol": "btcusdt", "every": 1000},
                    {"kind": "delay", "at": 10, "seconds": 0.5},
                    {"kind": "http", "at": 3, "status": 503, "count": 2},
                    {"kind": "skew", "ms": 1500},
                    "dup@7",
                    {"kind": "stall", "at": 4, "symbol": "BTCUSDT", "seconds": 1, "conn": 2},
                ]
            }
        )
    )
    assert load_scenario(as_json) == expected
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(["dup@7", {"kind": "close", "at": 3}]))
    assert load_scenario(bare) == [Fault("dup", 7), Fault("close", 3)]
    as_toml = tmp_path / "s.toml"
    as_toml.write_text(
        'faults = ["dup@7"]\n\n'
        '[[fault]]\nkind = "drop"\nat = 500\nsymbol = "BTCUSDT"\nevery = 1000\n\n'
        '[[fault]]\nkind = "delay"\nat = 10\nseconds = 0.5\n\n'
        '[[fault]]\nkind = "http"\nat = 3\nstatus = 503\ncount = 2\n\n'
        '[[fault]]\nkind = "skew"\nms = 1500\n\n'
        '[[fault]]\nkind = "stall"\nat = 4\nsymbol = "BTCUSDT"\nseconds = 1.0\nconn = 2\n'
    )
    assert load_scenario(as_toml) == [expected[4], *expected[:4], expected[5]]
    toml_no_suffix = tmp_path / "scenario.txt"
    toml_no_suffix.write_text('faults = "drop@5,dup@6"\n')
    assert load_scenario(toml_no_suffix) == [Fault("drop", 5), Fault("dup", 6)]
    plan = FaultPlan.from_file(as_json)
    assert [a.kind for a in plan.on_depth_event("BTCUSDT", 1500)] == ["drop"]
    assert plan.on_depth_event("ETHUSDT", 1500) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"faults": [{"kind": "drop"}]}', "needs @N"),
        ('{"faults": [{"kind": "drop", "at": 1, "when": 2}]}', "unknown key"),
        ('{"faults": [{"at": 1}]}', "needs a string 'kind'"),
        ('{"faults": [42]}', "spec string or a table"),
        ('{"faults": 5}', "must be a list"),
        ('{"faults": [], "extra": 1}', "unknown top-level"),
        ("42", "list of faults"),
        ("{not json nor = toml", "neither JSON nor TOML"),
        ('["explode@1"]', "unknown fault kind"),
        ('{"faults": [{"kind": "http", "at": 1, "status": 503, "conn": 1}]}', "takes no conn="),
        ('{"faults": [{"kind": "drop", "at": 1, "conn": 0}]}', "conn must be at least 1"),
    ],
)
def test_bad_scenarios(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_scenario(path)


def test_helpers() -> None:
    payload = b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","2"]],"a":[]}'
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(malformed_payload(payload))
    assert json.loads(unknown_event("BTCUSDT", 123)) == {"e": "simUnknownEvent", "E": 123, "s": "BTCUSDT"}
    assert json.loads(http_error_body(429))["code"] == -1003
    banned = json.loads(http_error_body(418, now_ms=1_000))
    assert banned["code"] == -1003
    assert "IP banned until 121000" in banned["msg"]
    assert json.loads(http_error_body(503)) == {"code": -1008, "msg": "Service Unavailable."}
    assert json.loads(http_error_body(599))["code"] == -1000


def test_http_retry_option_sets_the_retry_after() -> None:
    """``http@N:429:retry=S`` answers with ``Retry-After: S``; other kinds refuse ``retry=``."""
    faults = parse_faults("http@2:418:retry=1,http@3:429")
    assert [f.token() for f in faults] == ["http@2:418:retry=1", "http@3:429"]
    plan = FaultPlan(faults)
    seen = []
    for n in (1, 2, 3):
        seen.append((plan.on_rest_request(n), plan.retry_after))
    # None after a 429: the exchange's own Retry-After
    assert seen == [(None, None), (418, 1), (429, None)]
    with pytest.raises(ValueError, match="retry="):
        parse_faults("drop@5:retry=1")


def test_every_kind_is_documented_in_the_cli_help_and_docs() -> None:
    """``tickbook sim --help`` and docs/sim.md name every fault kind the spec parser accepts."""
    import argparse

    from tickbook.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sim = subparsers.choices["sim"]
    (faults,) = [a for a in sim._actions if "--faults" in a.option_strings]
    assert faults.help is not None
    docs = (Path(__file__).resolve().parents[1] / "docs" / "sim.md").read_text()
    (spec_row,) = [line for line in docs.splitlines() if line.startswith("| `tickbook/sim/faults.py`")]
    for kind in KINDS:
        assert kind in faults.help, kind
        assert kind in spec_row, kind
    assert "lost-response@N[:timeout=S|:reset|:503]" in faults.help
    assert "plan.on_order_placement(endpoint)" in docs
