"""Recording readers and writer: formats, gzip detection, multi-file recordings, snapshot attribution."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tickbook.recording import (
    InlineSnapshotAttributor,
    Record,
    RecordingError,
    RecordingWriter,
    SnapshotFile,
    attribute_snapshot_file,
    iter_lines,
    parse_line,
    parse_snapshot_arg,
    read_records,
    time_to_ns,
)

REAL = Path(__file__).parent.parent / "data" / "real"
HFT_SPOT = [
    REAL / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
    REAL / "hftbacktest" / "spot" / "btcusdt_20240809.gz",
]


def kind_of(data: bytes) -> str:
    """Independent classification by the text of the stream name (not the decoder under test)."""
    if data.startswith(b'{"stream":"'):
        name = data[11 : data.index(b'"', 11)].decode()
        return name.split("@", 1)[1].split("@", 1)[0]
    return "snapshot" if data.startswith(b'{"lastUpdateId":') else "?"


def test_hftbacktest_day_files_as_one_recording() -> None:
    """PROVENANCE.md: 41,249 + 58,325 lines; depth 3,451 + 3,044, bookTicker 28,040 + 45,134,
    trade 9,757 + 10,147, one inline snapshot (line 8 of the first day)."""
    counts: dict[str, dict[str, int]] = {}
    first: dict[str, Record] = {}
    previous_time = 0
    for rec in read_records(HFT_SPOT):
        day = Path(rec.source).name
        first.setdefault(day, rec)
        kind = kind_of(rec.data)
        counts.setdefault(day, {}).setdefault(kind, 0)
        counts[day][kind] += 1
        assert rec.time is not None
        assert rec.time >= previous_time  # receive times only move forward across the files
        previous_time = rec.time
        if kind == "snapshot":
            assert (day, rec.line) == ("btcusdt_20240808.gz", 8)
            assert json.loads(rec.data)["lastUpdateId"] == 50093239218
    assert counts == {
        "btcusdt_20240808.gz": {"depth": 3451, "bookTicker": 28040, "trade": 9757, "snapshot": 1},
        "btcusdt_20240809.gz": {"depth": 3044, "bookTicker": 45134, "trade": 10147},
    }
    rec = first["btcusdt_20240808.gz"]
    assert rec.time == 1723161253937085768
    assert rec.data.startswith(
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,'
    )
    assert rec.line == 1
    assert first["btcusdt_20240809.gz"].line == 1


def test_records_are_read_lazily(tmp_path: Path) -> None:
    """The reader yields as it reads: a file that appears later is not touched until reached."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}\n')
    later = tmp_path / "later.jsonl"
    records = read_records([path, later])
    assert next(records).data == b'{"a":1}'
    assert next(records).data == b'{"a":2}'
    later.write_bytes(b'{"a":3}\n')  # created after reading began
    assert [r.data for r in records] == [b'{"a":3}']


def test_gzip_is_detected_by_magic_not_name(tmp_path: Path) -> None:
    lines = [b'1 {"stream":"x@trade","data":{}}', b'{"lastUpdateId":5,"bids":[],"asks":[]}', b"3 {}"]
    body = b"\n".join(lines) + b"\n"
    plain_named_gz = tmp_path / "plain.gz"
    plain_named_gz.write_bytes(body)
    gz_named_plain = tmp_path / "packed.jsonl"
    gz_named_plain.write_bytes(gzip.compress(body))
    a = [r[:2] for r in read_records([plain_named_gz])]
    b = [r[:2] for r in read_records([gz_named_plain])]
    assert a == b == [(1, lines[0][2:]), (None, lines[1]), (3, b"{}")]


def test_line_endings_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b'{"a":1}\r\n\r\n\n{"a":2}\r\n{"a":3}')  # no final newline either
    recs = list(read_records([path]))
    assert [r.data for r in recs] == [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert [r.line for r in recs] == [1, 2, 3]  # numbered over non-empty lines


def test_truncated_gzip(tmp_path: Path) -> None:
    body = b"".join(b'%d {"n":%d}\n' % (i, i) for i in range(5000))
    packed = gzip.compress(body)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    after = tmp_path / "after.jsonl"
    after.write_bytes(b'{"n":"after"}\n')
    with pytest.raises(RecordingError, match=r"cut\.gz"):
        list(read_records([cut, after]))
    errors: list[RecordingError] = []
    recs = list(read_records([cut, after], on_error=errors.append))
    assert len(errors) == 1
    assert 0 < len(recs) < 5001
    assert recs[-1].data == b'{"n":"after"}'  # reading went on with the next file
    for i, rec in enumerate(recs[:-2]):  # complete lines come out intact (the last may be cut)
        assert rec.time == i
        assert json.loads(rec.data) == {"n": i}


def test_missing_file() -> None:
    with pytest.raises(RecordingError, match="cannot open"):
        list(read_records(["/nonexistent/recording.gz"]))
    errors: list[RecordingError] = []
    assert list(read_records(["/nonexistent/recording.gz"], on_error=errors.append)) == []
    assert len(errors) == 1


def test_parse_line_formats() -> None:
    assert parse_line(b'{"a":1}') == (None, b'{"a":1}', None, None)
    assert parse_line(b'1723161253937085768 {"a":1}') == (1723161253937085768, b'{"a":1}', None, None)
    # cryptofeed raw recorder: seconds with a fraction, converted exactly to ns
    assert parse_line(b'1617566591.326123: {"a":1}') == (1617566591326123000, b'{"a":1}', None, None)
    url = b"https://www.binance.com/api/v3/depth?symbol=XMRBTC&limit=5000 -> 1628952396.228346: {}"
    assert parse_line(url) == (1628952396228346000, b"{}", "XMRBTC", 5000)
    assert parse_line(b"wss://stream.binance.com:9443/stream?streams=a@depth <-> 1617566590.378895") is None
    assert parse_line(b'configuration: {"log":{}}') is None
    assert parse_line(b"garbage line") == (None, b"garbage line", None, None)  # left to the decoder


def test_time_to_ns() -> None:
    assert time_to_ns(1723161253937085768) == 1723161253937085768  # ns
    assert time_to_ns(1680652700430123) == 1680652700430123000  # µs
    assert time_to_ns(1680652700430) == 1680652700430000000  # ms
    assert time_to_ns(1680652700) == 1680652700000000000  # s


@pytest.mark.parametrize("name", ["rec.gz", "rec.txt"])
def test_writer_round_trip(tmp_path: Path, name: str) -> None:
    snapshot = (REAL / "derived" / "binance_spot_btcusdt_20240808_snapshot.json").read_bytes().strip()
    messages = (REAL / "payloads" / "ws_samples_spot.jsonl").read_bytes().splitlines()
    path = tmp_path / name
    ticks = iter(range(1000, 2000))
    with RecordingWriter(path, clock=lambda: next(ticks)) as writer:
        writer.write(messages[0], 1723161253937085768)
        writer.write_snapshot(snapshot, 1723161254206652067)
        writer.write(messages[1].decode())  # str accepted; time from the clock
        writer.write(memoryview(messages[2]))
        writer.write(b'{\n  "pretty": true\n}', 5)  # JSON whitespace newlines: still one line
    assert writer.closed
    assert writer.count == 5
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    recs = [(r.time, r.data) for r in read_records([path])]
    assert recs == [
        (1723161253937085768, messages[0]),
        (1723161254206652067, snapshot),
        (1000, messages[1]),
        (1001, messages[2]),
        (5, b'{   "pretty": true }'),
    ]
    with RecordingWriter(path, append=True) as more:  # appending continues the same recording
        more.write(b'{"x":1}', 7)
    assert [r.data for r in read_records([path])][-2:] == [b'{   "pretty": true }', b'{"x":1}']


def test_iter_lines_gzip_and_plain(tmp_path: Path) -> None:
    body = b"a\nb\n\nc\n"
    (tmp_path / "p").write_bytes(body)
    (tmp_path / "g").write_bytes(gzip.compress(body))
    assert list(iter_lines(tmp_path / "p")) == list(iter_lines(tmp_path / "g")) == [b"a", b"b", b"c"]


def test_parse_snapshot_arg(tmp_path: Path) -> None:
    assert parse_snapshot_arg("BTCUSDT=snap.json") == ("BTCUSDT", "snap.json")
    assert parse_snapshot_arg("btcusdt=dir/snap.json") == ("BTCUSDT", "dir/snap.json")
    assert parse_snapshot_arg("snap.json") == (None, "snap.json")
    assert parse_snapshot_arg("/abs/path/x.json") == (None, "/abs/path/x.json")
    odd = tmp_path / "a=b.json"  # an existing file whose name has "=" is taken whole
    odd.write_text("{}")
    assert parse_snapshot_arg(str(odd)) == (None, str(odd))


def test_snapshot_file_attribution(tmp_path: Path) -> None:
    cf = REAL / "cryptofeed"
    files = [
        SnapshotFile.load(cf / "binance_spot_20210814_FTMUSDT_snapshot.json"),
        SnapshotFile.load(cf / "binance_spot_20210814_XMRBTC_snapshot.json"),
        SnapshotFile.load(REAL / "derived" / "binance_spot_btcusdt_20240808_snapshot.json"),
        SnapshotFile.load(cf / "binance_spot_20210814_SXPBTC_snapshot.json", "BADGERBTC"),  # explicit
    ]
    assert files[0].data.startswith(b'{"lastUpdateId":')
    assert b"\n" not in files[0].data
    assert attribute_snapshot_file("FTMUSDT", files, first_symbol=True) == 0
    assert attribute_snapshot_file("XMRBTC", files, first_symbol=False) == 1
    assert attribute_snapshot_file("BTCUSDT", files, first_symbol=False) == 2  # lower-case name
    assert attribute_snapshot_file("BADGERBTC", files, first_symbol=False) == 3  # explicit wins
    assert attribute_snapshot_file("SXPBTC", files, first_symbol=False) is None  # given to BADGERBTC
    assert attribute_snapshot_file("ETHUSDT", files, first_symbol=True) is None
    lone = tmp_path / "snap.json"
    lone.write_bytes(b'{"lastUpdateId":1,"bids":[],"asks":[]}\n')
    one = [SnapshotFile.load(lone)]
    assert attribute_snapshot_file("ETHUSDT", one, first_symbol=True) == 0  # a lone file: first symbol
    assert attribute_snapshot_file("ETHUSDT", one, first_symbol=False) is None
    assert attribute_snapshot_file("ETHUSDT", [*one, *one], first_symbol=True) is None  # ambiguous


def test_inline_snapshot_attribution() -> None:
    a = InlineSnapshotAttributor()
    assert a.attribute(100) is None  # nothing seen yet: the caller keeps it
    a.saw_depth("BTCUSDT", 9893032991)
    assert a.attribute(1) == "BTCUSDT"  # one symbol: it is that one
    a.saw_depth("ETHUSDT", 6591598769)
    a.saw_depth("DOTUSDT", 1513939205)
    assert a.attribute(9893033066) == "BTCUSDT"
    assert a.attribute(6591598839) == "ETHUSDT"
    assert a.attribute(1513939277) == "DOTUSDT"
    pending: list[tuple[int, object]] = [(9893033066, "btc"), (1513939277, "dot")]
    assert InlineSnapshotAttributor.claim(pending, 1513939205) == 1
    assert InlineSnapshotAttributor.claim(pending, 9893032991) == 0
