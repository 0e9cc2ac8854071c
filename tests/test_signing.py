"""Signing and verification: the documented vectors (spec §4.2, §4.3), the server-side checks
(-2014, -2015, -1022, -1021, -1102, -1100, ...), RSA and Ed25519 round trips, key loading and
redaction. Client and server halves are tested against each other."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tickbook.signing import (
    FUTURES_RULES,
    SPOT_RULES,
    Accepted,
    Ed25519Key,
    HmacKey,
    KeyLoadError,
    KeyRegistry,
    KeyType,
    Reason,
    Rejected,
    RsaKey,
    SigningKey,
    Verdict,
    check_timestamp,
    encode_value,
    key_from_env,
    key_from_file,
    load_key,
    rest_payload,
    sign_rest,
    sign_ws,
    ws_payload,
)

# Spec §4.2 / §4.3 vectors.
SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
FUT_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
FUT_API_KEY = (
    "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"  # any key: not signed on REST
)
FULLWIDTH = "１２３４５６"
FULLWIDTH_ENC = "%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"

SPOT_TS = 1499827319559
SPOT_PARAMS: dict[str, object] = {
    "symbol": "LTCBTC",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": 1,
    "price": "0.1",
    "recvWindow": 5000,
    "timestamp": SPOT_TS,
}
SPOT_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
SPOT_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
SPOT_FULLWIDTH_SIG = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"

FUT_TS = 1591702613943
FUT_PARAMS: dict[str, object] = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": 1,
    "price": 9000,
    "timeInForce": "GTC",
    "recvWindow": 5000,
    "timestamp": FUT_TS,
}
FUT_PAYLOAD = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
    "&recvWindow=5000&timestamp=1591702613943"
)
FUT_SIG = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"

WS_TS = 1645423376532
WS_PARAMS: dict[str, object] = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
    "recvWindow": 100,
    "timestamp": WS_TS,
    "apiKey": SPOT_API_KEY,
}
WS_PAYLOAD = (
    f"apiKey={SPOT_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
    "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
WS_SIG = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
WS_FULLWIDTH_PARAMS: dict[str, object] = {
    **WS_PARAMS,
    "symbol": FULLWIDTH,
    "price": "0.10000000",
    "quantity": "1.00000000",
    "recvWindow": 5000,
    "side": "BUY",
}
WS_FULLWIDTH_SIG = "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


def us(ms: int) -> int:
    return ms * 1000


@pytest.fixture
def spot_key() -> HmacKey:
    return HmacKey(SPOT_API_KEY, SPOT_SECRET)


@pytest.fixture
def registry(spot_key: HmacKey) -> KeyRegistry:
    reg = KeyRegistry(clock=lambda: us(SPOT_TS))
    reg.add(spot_key)
    return reg


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def other_rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ed25519_pem() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def rejected(verdict: Verdict) -> Rejected:
    assert isinstance(verdict, Rejected), verdict
    return verdict


def accepted(verdict: Verdict) -> Accepted:
    assert isinstance(verdict, Accepted), verdict
    return verdict


# --------------------------------------------------------------------------------------------
# Documented vectors, client side


def test_spot_rest_vector(spot_key: HmacKey) -> None:
    query, body, payload = rest_payload(SPOT_PARAMS)
    assert (query, body, payload) == (SPOT_PAYLOAD, "", SPOT_PAYLOAD)
    assert spot_key.sign(SPOT_PAYLOAD) == SPOT_SIG
    signed = sign_rest(spot_key, SPOT_PARAMS)
    assert signed.signature == SPOT_SIG
    assert signed.query_string == f"{SPOT_PAYLOAD}&signature={SPOT_SIG}"
    assert signed.body == ""


def test_spot_rest_vector_non_ascii_is_signed_percent_encoded(spot_key: HmacKey) -> None:
    params = {**SPOT_PARAMS, "symbol": FULLWIDTH}
    query, _, payload = rest_payload(params)
    assert payload == SPOT_PAYLOAD.replace("symbol=LTCBTC", f"symbol={FULLWIDTH_ENC}")
    assert query == payload
    assert sign_rest(spot_key, params).signature == SPOT_FULLWIDTH_SIG
    # The pre-2026 mistake: signing the decoded text gives another signature.
    assert spot_key.sign(payload.replace(FULLWIDTH_ENC, FULLWIDTH)) != SPOT_FULLWIDTH_SIG


def test_futures_rest_vector() -> None:
    key = HmacKey(FUT_API_KEY, FUT_SECRET)
    assert rest_payload(FUT_PARAMS).payload == FUT_PAYLOAD
    assert sign_rest(key, FUT_PARAMS).signature == FUT_SIG


def test_ws_api_vector(spot_key: HmacKey) -> None:
    assert ws_payload(WS_PARAMS) == WS_PAYLOAD
    signed = sign_ws(spot_key, WS_PARAMS)
    assert signed["signature"] == WS_SIG
    assert {k: v for k, v in signed.items() if k != "signature"} == WS_PARAMS
    # apiKey is added (and signed) when the caller leaves it out.
    without_key = {k: v for k, v in WS_PARAMS.items() if k != "apiKey"}
    assert sign_ws(spot_key, without_key)["signature"] == WS_SIG


def test_ws_api_vector_non_ascii_uses_raw_utf8(spot_key: HmacKey) -> None:
    payload = ws_payload(WS_FULLWIDTH_PARAMS)
    assert f"symbol={FULLWIDTH}&" in payload
    assert sign_ws(spot_key, WS_FULLWIDTH_PARAMS)["signature"] == WS_FULLWIDTH_SIG


def test_ws_payload_excludes_signature_and_sorts() -> None:
    assert ws_payload({"b": 1, "signature": "x", "a": True, "c": None}) == "a=true&b=1"


def test_sign_ws_after_logon_leaves_api_key_out(spot_key: HmacKey) -> None:
    signed = sign_ws(spot_key, {"timestamp": WS_TS}, include_api_key=False)
    assert "apiKey" not in signed
    assert signed["signature"] == spot_key.sign(f"timestamp={WS_TS}")


def test_mixed_query_and_body(spot_key: HmacKey) -> None:
    query = {"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    body = {"quantity": 1, "price": "0.1", "recvWindow": 5000, "timestamp": SPOT_TS}
    q, b, payload = rest_payload(query, body)
    assert payload == q + b
    assert "timeInForce=GTCquantity=1" in payload  # no separator between query and body
    signed = sign_rest(spot_key, query, body)
    assert signed.query_string == q
    assert signed.body == f"{b}&signature={signed.signature}"  # signature last, in the body


def test_encode_value_shapes() -> None:
    from decimal import Decimal

    assert encode_value(True) == "true"
    assert encode_value(False) == "false"
    assert encode_value(Decimal("1E-7")) == "0.0000001"
    assert encode_value(0.1) == "0.1"
    assert encode_value(1e-7) == "0.0000001"
    assert encode_value(["BTCUSDT", "ETHUSDT"]) == '["BTCUSDT","ETHUSDT"]'
    assert encode_value({"a": 1}) == '{"a":1}'
    with pytest.raises(TypeError):
        encode_value(object())


def test_rest_payload_encodes_json_arrays_and_drops_none() -> None:
    query, _, _ = rest_payload({"symbols": ["A", "B"], "skip": None, "note": "a b/c"})
    assert query == "symbols=%5B%22A%22%2C%22B%22%5D&note=a+b%2Fc"


# --------------------------------------------------------------------------------------------
# Server side with the vectors


def test_verify_spot_vector(registry: KeyRegistry) -> None:
    ok = accepted(registry.verify_rest(SPOT_API_KEY, f"{SPOT_PAYLOAD}&signature={SPOT_SIG}"))
    assert ok.key_type is KeyType.HMAC
    assert ok.params["symbol"] == "LTCBTC"
    assert "signature" not in ok.params
    assert ok.timestamp_us == us(SPOT_TS)
    assert ok.recv_window_us == us(5000)


def test_verify_hmac_signature_is_case_insensitive(registry: KeyRegistry) -> None:
    accepted(registry.verify_rest(SPOT_API_KEY, f"{SPOT_PAYLOAD}&signature={SPOT_SIG.upper()}"))


def test_verify_non_ascii_vector(registry: KeyRegistry) -> None:
    query = SPOT_PAYLOAD.replace("symbol=LTCBTC", f"symbol={FULLWIDTH_ENC}")
    ok = accepted(registry.verify_rest(SPOT_API_KEY, f"{query}&signature={SPOT_FULLWIDTH_SIG}"))
    assert ok.params["symbol"] == FULLWIDTH


def test_verify_signature_over_decoded_text_is_rejected(registry: KeyRegistry, spot_key: HmacKey) -> None:
    query = SPOT_PAYLOAD.replace("symbol=LTCBTC", f"symbol={FULLWIDTH_ENC}")
    old_style = spot_key.sign(query.replace(FULLWIDTH_ENC, FULLWIDTH))
    verdict = rejected(registry.verify_rest(SPOT_API_KEY, f"{query}&signature={old_style}"))
    assert (verdict.code, verdict.msg, verdict.http_status) == (
        -1022,
        "Signature for this request is not valid.",
        400,
    )
    assert verdict.reason is Reason.BAD_SIGNATURE
    assert json.loads(verdict.body()) == {"code": -1022, "msg": "Signature for this request is not valid."}


def test_verify_body_and_mixed(registry: KeyRegistry, spot_key: HmacKey) -> None:
    body_only = sign_rest(spot_key, None, SPOT_PARAMS)
    accepted(registry.verify_rest(SPOT_API_KEY, body_only.query_string, body_only.body))
    query = {"symbol": "LTCBTC", "side": "BUY"}
    body = {k: v for k, v in SPOT_PARAMS.items() if k not in query}
    mixed = sign_rest(spot_key, query, body)
    ok = accepted(registry.verify_rest(SPOT_API_KEY, mixed.query_string, mixed.body.encode()))
    assert ok.params["side"] == "BUY"
    assert ok.params["timestamp"] == str(SPOT_TS)


def test_query_value_wins_over_body(registry: KeyRegistry, spot_key: HmacKey) -> None:
    signed = sign_rest(spot_key, {**SPOT_PARAMS, "side": "SELL"}, {"side": "BUY"})
    ok = accepted(registry.verify_rest(SPOT_API_KEY, signed.query_string, signed.body))
    assert ok.params["side"] == "SELL"


def test_verify_futures_vector_and_signature_last() -> None:
    reg = KeyRegistry(clock=lambda: us(FUT_TS), rules=FUTURES_RULES)
    reg.add_hmac(FUT_API_KEY, FUT_SECRET)
    accepted(reg.verify_rest(FUT_API_KEY, f"{FUT_PAYLOAD}&signature={FUT_SIG}"))
    # Signature in the middle: the payload is still well defined, but futures wants it last.
    first, rest = FUT_PAYLOAD.split("&", 1)
    middle = f"{first}&signature={FUT_SIG}&{rest}"
    assert rejected(reg.verify_rest(FUT_API_KEY, middle)).code == -1022
    accepted(reg.verify_rest(FUT_API_KEY, middle, rules=SPOT_RULES))
    # Signature in the query while a body follows: not last either.
    assert rejected(reg.verify_rest(FUT_API_KEY, f"{FUT_PAYLOAD}&signature={FUT_SIG}", "a=1")).code == -1022


def test_tampered_payload_is_rejected(registry: KeyRegistry) -> None:
    tampered = SPOT_PAYLOAD.replace("quantity=1", "quantity=2")
    assert rejected(registry.verify_rest(SPOT_API_KEY, f"{tampered}&signature={SPOT_SIG}")).code == -1022


# --------------------------------------------------------------------------------------------
# Server side: keys and parameters


def test_missing_or_malformed_api_key_is_2014(registry: KeyRegistry) -> None:
    for api_key in (None, "", "has space", "tab\tkey", "é"):
        verdict = rejected(registry.verify_rest(api_key, f"{SPOT_PAYLOAD}&signature={SPOT_SIG}"))
        assert (verdict.code, verdict.msg, verdict.http_status) == (-2014, "API-key format invalid.", 400)


def test_unknown_api_key_is_2015_with_401(registry: KeyRegistry) -> None:
    verdict = rejected(registry.verify_rest("unknownKey", f"{SPOT_PAYLOAD}&signature={SPOT_SIG}"))
    assert verdict.code == -2015
    assert verdict.http_status == 401
    assert verdict.msg == "Invalid API-key, IP, or permissions for action."
    assert verdict.reason is Reason.UNKNOWN_API_KEY


@pytest.mark.parametrize(
    ("query", "code", "msg"),
    [
        (SPOT_PAYLOAD, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."),
        (
            f"{SPOT_PAYLOAD}&signature=",
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ),
        (
            f"symbol=LTCBTC&signature={SPOT_SIG}",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            f"symbol=LTCBTC&timestamp=&signature={SPOT_SIG}",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            f"symbol=LTCBTC&timestamp=12ab&signature={SPOT_SIG}",
            -1100,
            "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.",
        ),
        (
            f"timestamp={SPOT_TS}&recvWindow=-5&signature={SPOT_SIG}",
            -1100,
            "Illegal characters found in parameter 'recvWindow'; "
            "legal range is '^[0-9]{1,12}(\\.[0-9]{1,3})?$'.",
        ),
        (f"timestamp={SPOT_TS}&recvWindow=&signature={SPOT_SIG}", -1105, "Parameter 'recvWindow' was empty."),
        (
            f"timestamp={SPOT_TS}&recvWindow=5000.1234&signature={SPOT_SIG}",
            -1111,
            "Parameter 'recvWindow' has too much precision.",
        ),
        (
            f"timestamp={SPOT_TS}&recvWindow=60000.001&signature={SPOT_SIG}",
            -1102,
            "'recvWindow' contains unexpected value. Cannot be greater than '60000'.",
        ),
        (
            f"{SPOT_PAYLOAD}&signature={SPOT_SIG}&signature={SPOT_SIG}",
            -1101,
            "Duplicate values for a parameter detected.",
        ),
    ],
)
def test_parameter_errors(registry: KeyRegistry, query: str, code: int, msg: str) -> None:
    verdict = rejected(registry.verify_rest(SPOT_API_KEY, query))
    assert (verdict.code, verdict.msg, verdict.http_status) == (code, msg, 400)


def test_signature_in_both_query_and_body_is_a_duplicate(registry: KeyRegistry) -> None:
    verdict = rejected(
        registry.verify_rest(SPOT_API_KEY, f"{SPOT_PAYLOAD}&signature={SPOT_SIG}", "signature=x")
    )
    assert verdict.code == -1101


def test_undecodable_body_is_illegal_chars(registry: KeyRegistry) -> None:
    assert (
        rejected(registry.verify_rest(SPOT_API_KEY, f"{SPOT_PAYLOAD}&signature={SPOT_SIG}", b"\xff")).code
        == -1100
    )


# --------------------------------------------------------------------------------------------
# Timing


def signed_at(key: SigningKey, timestamp: int, recv_window: str | None = None) -> str:
    params: dict[str, object] = {"symbol": "BTCUSDT", "timestamp": timestamp}
    if recv_window is not None:
        params["recvWindow"] = recv_window
    return sign_rest(key, params).query_string


def verdict_at(
    reg: KeyRegistry, key: SigningKey, timestamp: int, now_us: int, recv_window: str | None = None
) -> Verdict:
    return reg.verify_rest(key.api_key, signed_at(key, timestamp, recv_window), now_us=now_us)


NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_recv_window_default_5000_boundary(registry: KeyRegistry, spot_key: HmacKey) -> None:
    accepted(verdict_at(registry, spot_key, NOW_MS - 5000, us(NOW_MS)))  # exactly recvWindow old
    late = rejected(verdict_at(registry, spot_key, NOW_MS - 5000, us(NOW_MS) + 1))
    assert (late.code, late.msg) == (-1021, "Timestamp for this request is outside of the recvWindow.")
    assert late.reason is Reason.OUTSIDE_RECV_WINDOW


def test_timestamp_ahead_of_server(registry: KeyRegistry, spot_key: HmacKey) -> None:
    accepted(verdict_at(registry, spot_key, NOW_MS + 999, us(NOW_MS)))
    ahead = rejected(verdict_at(registry, spot_key, NOW_MS + 1000, us(NOW_MS)))  # must be < server + 1000
    assert (ahead.code, ahead.msg) == (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
    assert ahead.reason is Reason.AHEAD_OF_SERVER
    assert rejected(verdict_at(registry, spot_key, NOW_MS + 10_001, us(NOW_MS))).code == -1021


def test_timestamp_in_microseconds(registry: KeyRegistry, spot_key: HmacKey) -> None:
    ts_us = us(NOW_MS) - 4_999_999
    ok = accepted(verdict_at(registry, spot_key, ts_us, us(NOW_MS)))
    assert ok.timestamp_us == ts_us
    accepted(verdict_at(registry, spot_key, us(NOW_MS) - 5_000_000, us(NOW_MS)))
    assert rejected(verdict_at(registry, spot_key, us(NOW_MS) - 5_000_001, us(NOW_MS))).code == -1021
    assert rejected(verdict_at(registry, spot_key, us(NOW_MS) + 1_000_000, us(NOW_MS))).code == -1021
    accepted(verdict_at(registry, spot_key, us(NOW_MS) + 999_999, us(NOW_MS)))


def test_timestamp_before_2017_is_rejected(registry: KeyRegistry, spot_key: HmacKey) -> None:
    old = 1_483_228_799_999
    verdict = rejected(verdict_at(registry, spot_key, old, us(old), recv_window="60000"))
    assert verdict.code == -1021
    accepted(verdict_at(registry, spot_key, old + 1, us(old + 1)))


def test_recv_window_with_microsecond_decimals(registry: KeyRegistry, spot_key: HmacKey) -> None:
    ts = NOW_MS - 6000
    ok = accepted(verdict_at(registry, spot_key, ts, us(NOW_MS) + 346, recv_window="6000.346"))
    assert ok.recv_window_us == 6_000_346
    assert (
        rejected(verdict_at(registry, spot_key, ts, us(NOW_MS) + 347, recv_window="6000.346")).code == -1021
    )
    accepted(verdict_at(registry, spot_key, NOW_MS - 60_000, us(NOW_MS), recv_window="60000"))
    accepted(verdict_at(registry, spot_key, NOW_MS - 10, us(NOW_MS), recv_window="10.5"))


def test_futures_recv_window_rules(spot_key: HmacKey) -> None:
    reg = KeyRegistry(clock=lambda: us(NOW_MS), rules=FUTURES_RULES)
    reg.add(spot_key)
    accepted(
        verdict_at(reg, spot_key, NOW_MS - 90_000, us(NOW_MS), recv_window="100000")
    )  # no max on futures
    assert rejected(verdict_at(reg, spot_key, NOW_MS, us(NOW_MS), recv_window="5000.5")).code == -1111


def test_clock_is_injectable_for_skew(spot_key: HmacKey) -> None:
    now = [us(NOW_MS)]
    reg = KeyRegistry(clock=lambda: now[0])
    reg.add(spot_key)
    query = signed_at(spot_key, NOW_MS)
    accepted(reg.verify_rest(spot_key.api_key, query))
    now[0] -= 2_000_000  # the server's clock runs 2 s behind the client's
    assert rejected(reg.verify_rest(spot_key.api_key, query)).reason is Reason.AHEAD_OF_SERVER
    now[0] += 8_000_000  # now 6 s ahead of the timestamp
    assert rejected(reg.verify_rest(spot_key.api_key, query)).reason is Reason.OUTSIDE_RECV_WINDOW


def test_signature_is_checked_before_time(registry: KeyRegistry) -> None:
    # A stale request with a bad signature says "bad signature", not "late".
    query = f"symbol=BTCUSDT&timestamp={NOW_MS - 3_600_000}&signature={'0' * 64}"
    assert rejected(registry.verify_rest(SPOT_API_KEY, query, now_us=us(NOW_MS))).code == -1022


def test_check_timestamp_for_the_pre_matching_recheck() -> None:
    assert check_timestamp(us(NOW_MS), us(5000), us(NOW_MS) + us(5000)) is None
    late = check_timestamp(us(NOW_MS), us(5000), us(NOW_MS) + us(5000) + 1)
    assert late is not None
    assert late.code == -1021


# --------------------------------------------------------------------------------------------
# RSA and Ed25519


@pytest.fixture
def asym_keys(rsa_pem: bytes) -> list[SigningKey]:
    return [RsaKey("rsaKey123", rsa_pem), Ed25519Key("edKey123", ed25519_pem())]


def test_asymmetric_round_trip_query_and_body(asym_keys: list[SigningKey]) -> None:
    reg = KeyRegistry(clock=lambda: us(NOW_MS))
    for key in asym_keys:
        reg.add(key)
        params = {"symbol": FULLWIDTH, "side": "BUY", "quantity": "1", "timestamp": NOW_MS}
        signed = sign_rest(key, params)
        assert signed.query_string.endswith("&signature=" + quote(signed.signature, safe=""))
        ok = accepted(reg.verify_rest(key.api_key, signed.query_string))
        assert ok.key_type is key.kind
        assert ok.params["symbol"] == FULLWIDTH
        in_body = sign_rest(key, {"symbol": "BTCUSDT"}, {"quantity": "1", "timestamp": NOW_MS})
        accepted(reg.verify_rest(key.api_key, in_body.query_string, in_body.body))


def test_asymmetric_rejections(asym_keys: list[SigningKey], other_rsa_pem: bytes) -> None:
    reg = KeyRegistry(clock=lambda: us(NOW_MS))
    impostors: list[SigningKey] = [RsaKey("rsaKey123", other_rsa_pem), Ed25519Key("edKey123", ed25519_pem())]
    for key, impostor in zip(asym_keys, impostors, strict=True):
        reg.add(key)
        params: dict[str, object] = {"symbol": FULLWIDTH, "quantity": "1", "timestamp": NOW_MS}
        good = sign_rest(key, params)
        # Tampered payload.
        tampered = good.query_string.replace("quantity=1", "quantity=2")
        assert rejected(reg.verify_rest(key.api_key, tampered)).code == -1022
        # Right API key, wrong private key.
        assert rejected(reg.verify_rest(key.api_key, sign_rest(impostor, params).query_string)).code == -1022
        # Signed over the decoded text (the pre-2026 way), sent encoded.
        query, _, _ = rest_payload(params)
        old = key.sign(query.replace(FULLWIDTH_ENC, FULLWIDTH))
        verdict = rejected(reg.verify_rest(key.api_key, f"{query}&signature={quote(old, safe='')}"))
        assert (verdict.code, verdict.msg) == (-1022, "Signature for this request is not valid.")
        # Not base64 at all.
        assert rejected(reg.verify_rest(key.api_key, f"{query}&signature=%%%")).code == -1022


def test_unencoded_base64_plus_reads_as_space(asym_keys: list[SigningKey]) -> None:
    """A base64 ``+`` left raw in the URL decodes to a space: the exchange then rejects the
    signature (-1022), which is why the spec says to percent-encode it."""
    key = asym_keys[1]
    reg = KeyRegistry(clock=lambda: us(NOW_MS))
    reg.add(key)
    for offset in range(200):  # find a request whose signature contains '+'
        query, _, payload = rest_payload({"symbol": "BTCUSDT", "timestamp": NOW_MS - offset})
        signature = key.sign(payload)
        if "+" in signature:
            break
    else:  # pragma: no cover - 200 tries without a '+' is about 0.75**200
        pytest.fail("no signature with '+'")
    assert rejected(reg.verify_rest(key.api_key, f"{query}&signature={signature}")).code == -1022
    accepted(reg.verify_rest(key.api_key, f"{query}&signature={quote(signature, safe='')}"))


def test_ws_api_verification(spot_key: HmacKey, asym_keys: list[SigningKey]) -> None:
    reg = KeyRegistry(clock=lambda: us(WS_TS))
    reg.add(spot_key)
    signed = sign_ws(spot_key, WS_FULLWIDTH_PARAMS)
    ok = accepted(reg.verify_ws(signed))
    assert ok.params["symbol"] == FULLWIDTH
    assert "signature" not in ok.params
    # The SDK's way (percent-encoded values) differs from the documented raw payload.
    from urllib.parse import urlencode

    sdk_payload = urlencode(sorted((k, str(v)) for k, v in WS_FULLWIDTH_PARAMS.items()))
    wrong = {**WS_FULLWIDTH_PARAMS, "signature": spot_key.sign(sdk_payload)}
    assert rejected(reg.verify_ws(wrong)).code == -1022
    for key in asym_keys:
        reg.add(key)
        signed = sign_ws(key, {"timestamp": WS_TS, "symbol": FULLWIDTH})
        accepted(reg.verify_ws(signed))
        assert rejected(reg.verify_ws({**signed, "symbol": "BTCUSDT"})).code == -1022
    assert rejected(reg.verify_ws({"timestamp": WS_TS, "signature": "ab"})).code == -2014
    assert rejected(reg.verify_ws({"apiKey": "nobody", "timestamp": WS_TS, "signature": "ab"})).code == -2015
    assert rejected(reg.verify_ws({"apiKey": SPOT_API_KEY, "timestamp": WS_TS})).code == -1102
    stale = sign_ws(spot_key, {"timestamp": WS_TS - 10_000})
    assert rejected(reg.verify_ws(stale)).code == -1021
    # After session.logon the key comes from the session, not the params.
    logged_on = sign_ws(spot_key, {"timestamp": WS_TS}, include_api_key=False)
    accepted(reg.verify_ws(logged_on, api_key=SPOT_API_KEY))


# --------------------------------------------------------------------------------------------
# Key loading, registration and redaction


def test_reprs_never_show_secrets(spot_key: HmacKey, asym_keys: list[SigningKey], rsa_pem: bytes) -> None:
    reg = KeyRegistry()
    reg.add(spot_key)
    for key in asym_keys:
        reg.add(key)
    texts = [repr(spot_key), str(spot_key), repr(reg), str(reg), *map(repr, asym_keys), *map(str, asym_keys)]
    for text in texts:
        assert SPOT_SECRET not in text
        assert SPOT_API_KEY not in text
        assert "PRIVATE" not in text
        assert "MII" not in text  # no PEM body
    assert "redacted" in repr(spot_key)
    assert "redacted" in repr(asym_keys[0])


def test_accepted_repr_hides_the_api_key(registry: KeyRegistry) -> None:
    ok = accepted(registry.verify_rest(SPOT_API_KEY, f"{SPOT_PAYLOAD}&signature={SPOT_SIG}"))
    assert SPOT_API_KEY not in repr(ok)


def test_load_key_detects_the_type(rsa_pem: bytes) -> None:
    assert isinstance(load_key("k1", SPOT_SECRET), HmacKey)
    assert isinstance(load_key("k1", rsa_pem), RsaKey)
    assert isinstance(load_key("k1", ed25519_pem().decode()), Ed25519Key)
    with pytest.raises(KeyLoadError, match="password only applies"):
        load_key("k1", SPOT_SECRET, password="x")


def test_load_errors_do_not_leak_material(rsa_pem: bytes) -> None:
    garbage = "-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyLoadError) as info:
        load_key("k1", garbage)
    assert "SECRETMATERIAL" not in str(info.value)
    assert info.value.__cause__ is None
    with pytest.raises(KeyLoadError):
        Ed25519Key("k1", rsa_pem)  # an RSA PEM is not an Ed25519 key
    with pytest.raises(KeyLoadError):
        RsaKey("k1", ed25519_pem())
    with pytest.raises(KeyLoadError):
        HmacKey("bad key", "secret")
    with pytest.raises(KeyLoadError):
        HmacKey("k1", "")


def test_small_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyLoadError, match="1024-bit"):
        RsaKey("k1", pem)
    with pytest.raises(KeyLoadError, match="1024-bit"):
        KeyRegistry().add_public_key("k1", pem)


def test_encrypted_pem_and_files(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    encrypted = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"),
    )
    pem_file = tmp_path / "key.pem"
    pem_file.write_bytes(encrypted)
    key = key_from_file("edKey", pem_file, password="pass phrase")
    assert isinstance(key, Ed25519Key)
    with pytest.raises(KeyLoadError):
        key_from_file("edKey", pem_file)  # no password
    assert isinstance(Ed25519Key.from_file("edKey", pem_file, b"pass phrase"), Ed25519Key)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SPOT_SECRET + "\n")
    hmac_key = key_from_file(SPOT_API_KEY, secret_file)
    assert isinstance(hmac_key, HmacKey)
    assert hmac_key.sign(SPOT_PAYLOAD) == SPOT_SIG
    with pytest.raises(KeyLoadError, match="cannot read"):
        key_from_file("k", tmp_path / "missing")


def test_key_from_env(tmp_path: Path, rsa_pem: bytes) -> None:
    env = {"BINANCE_API_KEY": SPOT_API_KEY, "BINANCE_API_SECRET": SPOT_SECRET}
    key = key_from_env(environ=env)
    assert isinstance(key, HmacKey)
    assert key.sign(SPOT_PAYLOAD) == SPOT_SIG
    assert isinstance(HmacKey.from_env(environ=env), HmacKey)
    assert isinstance(key_from_env("X", {"X_API_KEY": "k", "X_PRIVATE_KEY": rsa_pem.decode()}), RsaKey)
    path = tmp_path / "ed.pem"
    path.write_bytes(ed25519_pem())
    assert isinstance(key_from_env("X", {"X_API_KEY": "k", "X_PRIVATE_KEY_FILE": str(path)}), Ed25519Key)
    with pytest.raises(KeyLoadError, match="exactly one"):
        key_from_env("X", {"X_API_KEY": "k", "X_API_SECRET": "s", "X_PRIVATE_KEY_FILE": str(path)})
    with pytest.raises(KeyLoadError, match="not set"):
        key_from_env("X", {})
    with pytest.raises(KeyLoadError):
        HmacKey.from_env("X", {"X_API_KEY": "k"})


def test_registry_registration(tmp_path: Path, rsa_pem: bytes) -> None:
    reg = KeyRegistry()
    assert reg.register("hmacKey:topsecret") is KeyType.HMAC
    public = RsaKey("rsaKey", rsa_pem).public_key_pem()
    (tmp_path / "rsa.pub").write_bytes(public)
    assert reg.register("rsaKey:@rsa.pub", base_dir=tmp_path) is KeyType.RSA
    ed = Ed25519Key("edKey", ed25519_pem())
    (tmp_path / "ed.pub").write_bytes(ed.public_key_pem())
    assert reg.register(f"edKey:@{tmp_path / 'ed.pub'}") is KeyType.ED25519
    assert reg.add_public_key("fromPrivate", rsa_pem) is KeyType.RSA  # its public half
    assert len(reg) == 4
    assert "hmacKey" in reg
    assert reg.kind("edKey") is KeyType.ED25519
    assert reg.kind("nobody") is None
    with pytest.raises(KeyLoadError, match="already registered"):
        reg.register("hmacKey:other")
    with pytest.raises(KeyLoadError):
        reg.register("no-colon")
    with pytest.raises(KeyLoadError, match="cannot read"):
        reg.register("k:@missing.pem", base_dir=tmp_path)
    with pytest.raises(KeyLoadError):
        reg.add_public_key("junk", b"not a pem")
    reg.remove("hmacKey")
    assert "hmacKey" not in reg
    # Verification with a key registered from its PEM file.
    reg.clock = lambda: us(NOW_MS)
    signed = sign_rest(ed, {"timestamp": NOW_MS})
    accepted(reg.verify_rest("edKey", signed.query_string))
