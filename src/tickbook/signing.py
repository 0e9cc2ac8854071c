"""Signed requests: building the exact payload, signing it, and verifying it on the server side.

Binance authenticates a request by a signature over a payload that both ends must build
byte for byte the same way, and most client bugs live in that construction rather than in
the cryptography. The rules (``../shared/binance-spec.md`` §4) differ by API:

* REST (spot and futures): the payload is the query string *as sent* followed directly by
  the request body *as sent* (no separator), without the ``signature`` parameter. Since
  2026-01-15 spot rejects a signature computed over the decoded text with -1022, so the
  client percent-encodes first (``urlencode``), signs that string and sends the same bytes.
* WebSocket API: all ``params`` except ``signature`` (``apiKey`` included), sorted by name,
  joined as ``k=v&k=v`` with the raw UTF-8 values, no percent-encoding.

Three key types: HMAC-SHA256 (lowercase hex, compared case-insensitively), RSA PKCS#1 v1.5
with SHA-256 and Ed25519 (both base64, percent-encoded when placed in a URL or form body).
The asymmetric algorithms come from ``cryptography``; HMAC from the standard library.

The client half (``rest_payload``, ``sign_rest``, ``ws_payload``, ``sign_ws``) is used by the
REST client; the server half (``KeyRegistry.verify_rest``/``verify_ws``) by the local
exchange, so the two are tested against each other and against the documented vectors.

Secrets never appear in ``repr``/``str`` of any object here, nor in error messages.
"""

from __future__ import annotations

import abc
import base64
import binascii
import enum
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import ClassVar, Final, Literal, NamedTuple, Self, TypeAlias
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

__all__ = [
    "FUTURES_RULES",
    "MIN_TIMESTAMP_MS",
    "SPOT_RULES",
    "Accepted",
    "AuthRules",
    "Ed25519Key",
    "HmacKey",
    "KeyLoadError",
    "KeyRegistry",
    "KeyType",
    "Reason",
    "Rejected",
    "RestPayload",
    "RsaKey",
    "SignedRest",
    "SigningKey",
    "Verdict",
    "check_timestamp",
    "encode_value",
    "key_from_env",
    "key_from_file",
    "load_key",
    "rest_payload",
    "sign_rest",
    "sign_ws",
    "system_clock_us",
    "ws_payload",
]


class KeyType(enum.StrEnum):
    """The three kinds of API key Binance issues."""

    HMAC = "hmac"
    RSA = "rsa"
    ED25519 = "ed25519"


class KeyLoadError(ValueError):
    """A key could not be loaded. The message names the source, never the key material."""


# Binance issues 64-character alphanumeric keys; the local exchange also accepts friendlier
# test keys, but nothing with whitespace or control characters: such a key cannot travel in
# an HTTP header unchanged, and the real exchange answers -2014 for it.
_API_KEY_RE: Final = re.compile(r"[\x21-\x7e]{1,256}")

# RSA key sizes the exchange accepts (spec §4.2: 2048-4096 bit, 2048 recommended).
RSA_MIN_BITS: Final = 2048
RSA_MAX_BITS: Final = 4096


def _mask(api_key: str) -> str:
    """Enough of an API key to tell keys apart in logs, not enough to use it."""
    return api_key[:4] + "…" if len(api_key) > 4 else "…"


def _check_api_key(api_key: str) -> str:
    if not isinstance(api_key, str) or not _API_KEY_RE.fullmatch(api_key):
        raise KeyLoadError("API key must be 1-256 printable ASCII characters without spaces")
    return api_key


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _is_pem(data: str | bytes) -> bool:
    return _as_bytes(data).lstrip().startswith(b"-----BEGIN ")


# --------------------------------------------------------------------------------------------
# Client keys


class HmacKey:
    """An HMAC-SHA256 key: ``api_key`` plus the shared ``secret``.

    The secret is kept in a private slot and left out of ``repr``, so logging a key (or an
    object holding one) cannot leak it.
    """

    __slots__ = ("_secret", "api_key")
    kind: ClassVar[KeyType] = KeyType.HMAC

    def __init__(self, api_key: str, secret: str | bytes) -> None:
        self.api_key = _check_api_key(api_key)
        secret_bytes = _as_bytes(secret)
        if not secret_bytes:
            raise KeyLoadError("HMAC secret is empty")
        self._secret = secret_bytes

    def sign(self, payload: str | bytes) -> str:
        """Lowercase hex HMAC-SHA256 of the payload bytes (what the exchange documents)."""
        return hmac.new(self._secret, _as_bytes(payload), hashlib.sha256).hexdigest()

    @classmethod
    def from_env(cls, prefix: str = "BINANCE", environ: Mapping[str, str] | None = None) -> HmacKey:
        """``{prefix}_API_KEY`` and ``{prefix}_API_SECRET`` from the environment."""
        env = os.environ if environ is None else environ
        api_key, secret = env.get(f"{prefix}_API_KEY"), env.get(f"{prefix}_API_SECRET")
        if not api_key or not secret:
            raise KeyLoadError(f"{prefix}_API_KEY and {prefix}_API_SECRET must both be set")
        return cls(api_key, secret)

    def __repr__(self) -> str:
        return f"HmacKey(api_key={_mask(self.api_key)!r}, secret=<redacted>)"

    __str__ = __repr__


class _AsymmetricKey(abc.ABC):
    """Shared code of the RSA and Ed25519 client keys (PEM private key, base64 signatures)."""

    __slots__ = ("_private", "api_key")
    kind: ClassVar[KeyType]

    def __init__(
        self, api_key: str, private_key_pem: str | bytes, password: str | bytes | None = None
    ) -> None:
        self.api_key = _check_api_key(api_key)
        try:
            key = serialization.load_pem_private_key(
                _as_bytes(private_key_pem), None if password is None else _as_bytes(password)
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The original exception may quote the input; do not chain it.
            raise KeyLoadError(f"{type(self).__name__}: not a loadable PEM private key") from None
        self._private = self._accept(key)

    @abc.abstractmethod
    def _accept(self, key: object) -> RSAPrivateKey | Ed25519PrivateKey:
        """Return the key if it is of this class's algorithm (and size), else raise KeyLoadError."""

    @abc.abstractmethod
    def sign_raw(self, payload: bytes) -> bytes:
        """The raw signature bytes of ``payload``."""

    def sign(self, payload: str | bytes) -> str:
        """Base64 signature of the payload bytes (not yet percent-encoded)."""
        return base64.b64encode(self.sign_raw(_as_bytes(payload))).decode("ascii")

    def public_key_pem(self) -> bytes:
        """The public half as SubjectPublicKeyInfo PEM: what gets registered with the exchange."""
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_file(
        cls, api_key: str, path: str | os.PathLike[str], password: str | bytes | None = None
    ) -> Self:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"cannot read private key file {os.fspath(path)!r}: {exc.strerror}") from None
        return cls(api_key, data, password)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_key={_mask(self.api_key)!r}, private_key=<redacted>)"

    __str__ = __repr__


class RsaKey(_AsymmetricKey):
    """An RSA key: RSASSA-PKCS1-v1_5 with SHA-256 (PSS is not accepted by the exchange).

    Binance asks for a PKCS#8 private key file; a traditional PKCS#1 PEM produces the same
    signatures, so both load. The size must be 2048-4096 bits.
    """

    __slots__ = ()
    kind: ClassVar[KeyType] = KeyType.RSA

    def _accept(self, key: object) -> RSAPrivateKey:
        if not isinstance(key, RSAPrivateKey):
            raise KeyLoadError("RsaKey: the PEM holds no RSA private key")
        if not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            raise KeyLoadError(f"RsaKey: {key.key_size}-bit key; the exchange takes 2048-4096 bits")
        return key

    def sign_raw(self, payload: bytes) -> bytes:
        private = self._private
        assert isinstance(private, RSAPrivateKey)
        return private.sign(payload, padding.PKCS1v15(), hashes.SHA256())


class Ed25519Key(_AsymmetricKey):
    """An Ed25519 key (RFC 8032): the type Binance recommends, and the only one for
    WebSocket ``session.logon`` and SBE streams."""

    __slots__ = ()
    kind: ClassVar[KeyType] = KeyType.ED25519

    def _accept(self, key: object) -> Ed25519PrivateKey:
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyLoadError("Ed25519Key: the PEM holds no Ed25519 private key")
        return key

    def sign_raw(self, payload: bytes) -> bytes:
        private = self._private
        assert isinstance(private, Ed25519PrivateKey)
        return private.sign(payload)


SigningKey: TypeAlias = HmacKey | RsaKey | Ed25519Key


def load_key(api_key: str, secret_or_pem: str | bytes, *, password: str | bytes | None = None) -> SigningKey:
    """A key from its parts: a PEM private key gives an RSA or Ed25519 key, anything else is
    taken as an HMAC secret. Saves callers from knowing the key type in advance."""
    if not _is_pem(secret_or_pem):
        if password is not None:
            raise KeyLoadError("a password only applies to a PEM private key")
        return HmacKey(api_key, _as_bytes(secret_or_pem).strip())
    try:
        key = serialization.load_pem_private_key(
            _as_bytes(secret_or_pem), None if password is None else _as_bytes(password)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyLoadError("not a loadable PEM private key") from None
    if isinstance(key, RSAPrivateKey):
        return RsaKey(api_key, secret_or_pem, password)
    if isinstance(key, Ed25519PrivateKey):
        return Ed25519Key(api_key, secret_or_pem, password)
    raise KeyLoadError("unsupported private key type; the exchange takes RSA or Ed25519")


def key_from_file(
    api_key: str, path: str | os.PathLike[str], *, password: str | bytes | None = None
) -> SigningKey:
    """A key whose secret part sits in a file: a PEM private key, or a file holding the HMAC
    secret (surrounding whitespace ignored). Keeps secrets out of shell history and argv."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read key file {os.fspath(path)!r}: {exc.strerror}") from None
    return load_key(api_key, data, password=password)


def key_from_env(prefix: str = "BINANCE", environ: Mapping[str, str] | None = None) -> SigningKey:
    """A key from the environment, so no secret needs to be in code or on a command line.

    ``{prefix}_API_KEY`` plus exactly one of ``{prefix}_API_SECRET`` (HMAC),
    ``{prefix}_PRIVATE_KEY`` (PEM text) or ``{prefix}_PRIVATE_KEY_FILE`` (a path); an
    optional ``{prefix}_PRIVATE_KEY_PASSWORD`` decrypts an encrypted PEM.
    """
    env = os.environ if environ is None else environ
    api_key = env.get(f"{prefix}_API_KEY")
    if not api_key:
        raise KeyLoadError(f"{prefix}_API_KEY is not set")
    names = [f"{prefix}_API_SECRET", f"{prefix}_PRIVATE_KEY", f"{prefix}_PRIVATE_KEY_FILE"]
    present = [name for name in names if env.get(name)]
    if len(present) != 1:
        raise KeyLoadError(f"set exactly one of {', '.join(names)} (found {len(present)})")
    password = env.get(f"{prefix}_PRIVATE_KEY_PASSWORD") or None
    value = env[present[0]]
    if present[0] == names[0]:
        return HmacKey(api_key, value)
    if present[0] == names[1]:
        return load_key(api_key, value, password=password)
    return key_from_file(api_key, value, password=password)


# --------------------------------------------------------------------------------------------
# Client side: payloads and signatures


def encode_value(value: object) -> str:
    """A parameter value as the exchange expects its text.

    Booleans are ``true``/``false``; lists, tuples and dicts become compact JSON (the
    ``symbols=["A","B"]`` form); decimals and floats are written positionally, never with an
    exponent, which the exchange rejects.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raise TypeError(f"cannot encode a parameter of type {type(value).__name__}")


def _encode_params(params: Mapping[str, object] | None) -> str:
    if not params:
        return ""
    pairs = [(name, encode_value(value)) for name, value in params.items() if value is not None]
    return urlencode(pairs)


class RestPayload(NamedTuple):
    """The percent-encoded query string and body exactly as sent, and what gets signed."""

    query_string: str
    body: str
    payload: str


def rest_payload(
    query_params: Mapping[str, object] | None, body_params: Mapping[str, object] | None = None
) -> RestPayload:
    """Encode the parameters once, as they will travel, and derive the signed payload from
    those same strings (query then body, no separator): signing anything else is the
    pre-2026 mistake the exchange now rejects. ``None`` values are left out; order is kept."""
    query = _encode_params(query_params)
    body = _encode_params(body_params)
    return RestPayload(query, body, query + body)


class SignedRest(NamedTuple):
    """What to send: the query string and form body, ``signature`` already appended as the
    very last parameter (to the body when there is one, otherwise to the query)."""

    query_string: str
    body: str
    signature: str  # as the key produced it (hex or base64), before percent-encoding


def sign_rest(
    key: SigningKey,
    query_params: Mapping[str, object] | None,
    body_params: Mapping[str, object] | None = None,
) -> SignedRest:
    """Sign a REST request. The caller supplies ``timestamp`` (and ``recvWindow``) among the
    parameters: this function adds nothing but the signature, so what it signs is exactly
    what the caller asked for. Base64 signatures are percent-encoded (``+/=``) where placed."""
    query, body, payload = rest_payload(query_params, body_params)
    signature = key.sign(payload)
    field_ = "signature=" + quote(signature, safe="")
    if body:
        body = f"{body}&{field_}"
    else:
        query = f"{query}&{field_}" if query else field_
    return SignedRest(query, body, signature)


def ws_payload(params: Mapping[str, object]) -> str:
    """The WebSocket API payload: every param but ``signature`` (``apiKey`` included), sorted
    by name, raw UTF-8 values joined as ``k=v&k=v``. No percent-encoding here, unlike REST."""
    items = sorted((k, v) for k, v in params.items() if k != "signature" and v is not None)
    return "&".join(f"{name}={encode_value(value)}" for name, value in items)


def sign_ws(
    key: SigningKey, params: Mapping[str, object], *, include_api_key: bool = True
) -> dict[str, object]:
    """A copy of ``params`` with ``signature`` added. ``apiKey`` is added first (when missing
    and ``include_api_key``) because it is part of what is signed; after ``session.logon``
    pass ``include_api_key=False`` and the session's key is implied."""
    signed = {name: value for name, value in params.items() if name != "signature"}
    if include_api_key:
        signed.setdefault("apiKey", key.api_key)
    signed["signature"] = key.sign(ws_payload(signed))
    return signed


# --------------------------------------------------------------------------------------------
# Server side: verdicts


class Reason(enum.Enum):
    """Why a signed request was refused; each maps to one Binance code."""

    BAD_API_KEY_FORMAT = "bad_api_key_format"  # -2014
    UNKNOWN_API_KEY = "unknown_api_key"  # -2015
    MISSING_PARAMETER = "missing_parameter"  # -1102
    EMPTY_PARAMETER = "empty_parameter"  # -1105
    RECV_WINDOW_TOO_LARGE = "recv_window_too_large"  # -1102
    ILLEGAL_CHARS = "illegal_chars"  # -1100
    TOO_MUCH_PRECISION = "too_much_precision"  # -1111
    DUPLICATE_PARAMETER = "duplicate_parameter"  # -1101
    BAD_SIGNATURE = "bad_signature"  # -1022
    OUTSIDE_RECV_WINDOW = "outside_recv_window"  # -1021
    AHEAD_OF_SERVER = "ahead_of_server"  # -1021


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused request: the Binance error code, message and HTTP status to answer with."""

    reason: Reason
    code: int
    msg: str
    http_status: int = 400
    ok: ClassVar[Literal[False]] = False

    def body(self) -> bytes:
        """The exchange's JSON error body, ``{"code":-1022,"msg":"..."}``."""
        return json.dumps({"code": self.code, "msg": self.msg}, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Accepted:
    """An authenticated request. ``params`` are the decoded parameters (the query's value
    wins over the body's, as on the exchange), ``signature`` removed. ``timestamp_us`` and
    ``recv_window_us`` are kept so the caller can repeat the window check just before
    matching (the exchange's third check, §4.4) with ``check_timestamp``."""

    api_key: str = field(repr=False)
    key_type: KeyType
    params: dict[str, str]
    timestamp_us: int
    recv_window_us: int
    ok: ClassVar[Literal[True]] = True


Verdict: TypeAlias = Accepted | Rejected


def _bad_key_format() -> Rejected:
    return Rejected(Reason.BAD_API_KEY_FORMAT, -2014, "API-key format invalid.")


def _unknown_key() -> Rejected:
    # Spot and futures answer -2015 with HTTP 401 (the WS-API: status 401 and the session closes).
    return Rejected(Reason.UNKNOWN_API_KEY, -2015, "Invalid API-key, IP, or permissions for action.", 401)


def _missing(name: str) -> Rejected:
    msg = f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    return Rejected(Reason.MISSING_PARAMETER, -1102, msg)


def _illegal(name: str, legal: str) -> Rejected:
    msg = f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    return Rejected(Reason.ILLEGAL_CHARS, -1100, msg)


def _bad_signature() -> Rejected:
    return Rejected(Reason.BAD_SIGNATURE, -1022, "Signature for this request is not valid.")


_OUTSIDE: Final = "Timestamp for this request is outside of the recvWindow."
_AHEAD: Final = "Timestamp for this request was 1000ms ahead of the server's time."


@dataclass(frozen=True, slots=True)
class AuthRules:
    """What a market accepts for ``timestamp``/``recvWindow`` and where ``signature`` goes.

    Spot: recvWindow default 5000 ms, at most 60000, up to 3 decimals (µs) since 2025-08.
    Futures: default 5000, no documented maximum, whole milliseconds only (the µs form is
    documented for spot only), and ``signature`` must be the last parameter.
    """

    default_recv_window_ms: int = 5000
    max_recv_window_ms: int | None = 60_000
    recv_window_decimals: int = 3
    ahead_ms: int = 1000  # timestamp must be < server time + this
    signature_must_be_last: bool = False


SPOT_RULES: Final = AuthRules()
FUTURES_RULES: Final = AuthRules(max_recv_window_ms=None, recv_window_decimals=0, signature_must_be_last=True)

# 2017-01-01T00:00:00Z: the exchange refuses anything older (spec §4.4).
MIN_TIMESTAMP_MS: Final = 1_483_228_800_000
# A timestamp at or above this is read as microseconds: 10**14 ms would be the year 5138,
# while every microsecond timestamp after 2017 is above 1.48 * 10**15.
_US_THRESHOLD: Final = 10**14
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,20}")
_RECV_WINDOW_RE: Final = re.compile(r"([0-9]{1,12})(?:\.([0-9]+))?")


def system_clock_us() -> int:
    """Server time in microseconds since the epoch: the default clock of ``KeyRegistry``."""
    return time.time_ns() // 1000


def _parse_timestamp(text: str) -> int | Rejected:
    if not text:
        return _missing("timestamp")
    if not _TIMESTAMP_RE.fullmatch(text):
        return _illegal("timestamp", "^[0-9]{1,20}$")
    value = int(text)
    return value if value >= _US_THRESHOLD else value * 1000


def _parse_recv_window(text: str | None, rules: AuthRules) -> int | Rejected:
    if text is None:
        return rules.default_recv_window_ms * 1000
    if text == "":
        return Rejected(Reason.EMPTY_PARAMETER, -1105, "Parameter 'recvWindow' was empty.")
    match = _RECV_WINDOW_RE.fullmatch(text)
    if match is None:
        return _illegal("recvWindow", "^[0-9]{1,12}(\\.[0-9]{1,3})?$")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > rules.recv_window_decimals:
        return Rejected(Reason.TOO_MUCH_PRECISION, -1111, "Parameter 'recvWindow' has too much precision.")
    micros = int(whole) * 1000 + int((fraction + "000")[:3])
    if rules.max_recv_window_ms is not None and micros > rules.max_recv_window_ms * 1000:
        return Rejected(
            Reason.RECV_WINDOW_TOO_LARGE,
            -1102,
            f"'recvWindow' contains unexpected value. Cannot be greater than '{rules.max_recv_window_ms}'.",
        )
    return micros


def check_timestamp(
    timestamp_us: int, recv_window_us: int, now_us: int, rules: AuthRules = SPOT_RULES
) -> Rejected | None:
    """The exchange's timing checks (§4.4), all in microseconds; ``None`` when accepted.

    Rejected with -1021 when the timestamp is before 2017, when it is not below
    ``now + 1000 ms``, or when ``now - timestamp > recvWindow``. Public so the exchange can
    run it again just before matching, as the real one does since 2025-06.
    """
    if timestamp_us < MIN_TIMESTAMP_MS * 1000:
        return Rejected(Reason.OUTSIDE_RECV_WINDOW, -1021, _OUTSIDE)
    if timestamp_us >= now_us + rules.ahead_ms * 1000:
        return Rejected(Reason.AHEAD_OF_SERVER, -1021, _AHEAD)
    if now_us - timestamp_us > recv_window_us:
        return Rejected(Reason.OUTSIDE_RECV_WINDOW, -1021, _OUTSIDE)
    return None


# --------------------------------------------------------------------------------------------
# Server side: registered keys and verification


@dataclass(frozen=True, slots=True)
class _Registered:
    kind: KeyType
    secret: bytes = field(repr=False, default=b"")
    public: RSAPublicKey | Ed25519PublicKey | None = field(repr=False, default=None)


def _split_signature(raw: str) -> tuple[str, list[str]]:
    """``raw`` without its ``signature`` fields (all other bytes untouched), and their raw
    values. Works on the undecoded text because the payload is defined on the bytes sent."""
    if not raw:
        return "", []
    kept: list[str] = []
    found: list[str] = []
    for segment in raw.split("&"):
        name, sep, value = segment.partition("=")
        if sep and unquote_plus(name) == "signature":
            found.append(value)
        else:
            kept.append(segment)
    return "&".join(kept), found


def _load_public_key(pem: str | bytes) -> RSAPublicKey | Ed25519PublicKey:
    data = _as_bytes(pem)
    try:
        if b"PRIVATE KEY-----" in data:  # a private PEM is accepted for convenience: keep its public half
            public: object = serialization.load_pem_private_key(data, None).public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyLoadError("not a loadable PEM public key") from None
    if isinstance(public, RSAPublicKey):
        if not RSA_MIN_BITS <= public.key_size <= RSA_MAX_BITS:
            raise KeyLoadError(f"{public.key_size}-bit RSA key; the exchange takes 2048-4096 bits")
        return public
    if isinstance(public, Ed25519PublicKey):
        return public
    raise KeyLoadError("unsupported public key type; the exchange takes RSA or Ed25519")


class KeyRegistry:
    """The keys a local exchange accepts, and the verification of signed requests.

    HMAC keys are registered with their secret, RSA and Ed25519 keys with their public key,
    as on Binance. ``clock`` returns the server time in **microseconds** since the epoch;
    inject one to freeze time in tests or to skew the server's clock. ``rules`` are the
    default timing rules (spot's); pass ``FUTURES_RULES`` per call on futures routes.
    """

    def __init__(self, *, clock: Callable[[], int] = system_clock_us, rules: AuthRules = SPOT_RULES) -> None:
        self._keys: dict[str, _Registered] = {}
        self.clock = clock
        self.rules = rules

    # -- registration ------------------------------------------------------------------

    def _put(self, api_key: str, entry: _Registered) -> None:
        _check_api_key(api_key)
        if api_key in self._keys:
            raise KeyLoadError(f"API key {_mask(api_key)!r} is already registered")
        self._keys[api_key] = entry

    def add_hmac(self, api_key: str, secret: str | bytes) -> None:
        secret_bytes = _as_bytes(secret)
        if not secret_bytes:
            raise KeyLoadError("HMAC secret is empty")
        self._put(api_key, _Registered(KeyType.HMAC, secret=secret_bytes))

    def add_public_key(self, api_key: str, public_key_pem: str | bytes) -> KeyType:
        """Register an RSA or Ed25519 public key (PEM); returns which type it was."""
        public = _load_public_key(public_key_pem)
        kind = KeyType.RSA if isinstance(public, RSAPublicKey) else KeyType.ED25519
        self._put(api_key, _Registered(kind, public=public))
        return kind

    def add(self, key: SigningKey) -> None:
        """Register the server-side half of a client key (handy in tests and demos)."""
        if isinstance(key, HmacKey):
            self.add_hmac(key.api_key, key._secret)
        else:
            self.add_public_key(key.api_key, key.public_key_pem())

    def register(self, spec: str, *, base_dir: str | os.PathLike[str] | None = None) -> KeyType:
        """The CLI's ``--key`` syntax: ``API_KEY:SECRET`` (HMAC) or ``API_KEY:@FILE`` (a PEM
        public key, RSA or Ed25519; relative paths resolve against ``base_dir``)."""
        api_key, sep, rest = spec.partition(":")
        if not sep or not api_key or not rest:
            raise KeyLoadError("a key is given as API_KEY:SECRET or API_KEY:@FILE")
        if not rest.startswith("@"):
            self.add_hmac(api_key, rest)
            return KeyType.HMAC
        path = Path(rest[1:])
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"cannot read public key file {os.fspath(path)!r}: {exc.strerror}") from None
        return self.add_public_key(api_key, pem)

    def remove(self, api_key: str) -> None:
        self._keys.pop(api_key, None)

    def kind(self, api_key: str) -> KeyType | None:
        entry = self._keys.get(api_key)
        return None if entry is None else entry.kind

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{_mask(k)}: {e.kind.value}" for k, e in self._keys.items())
        return f"KeyRegistry({{{kinds}}})"

    # -- verification ------------------------------------------------------------------

    def verify_signature(self, api_key: str, payload: bytes, signature: str) -> bool:
        """Whether ``signature`` (already URL-decoded: hex, or base64) is the registered
        key's signature of ``payload``. Unknown keys simply fail."""
        entry = self._keys.get(api_key)
        if entry is None:
            return False
        if entry.kind is KeyType.HMAC:
            expected = hmac.new(entry.secret, payload, hashlib.sha256).hexdigest().encode()
            try:
                given = signature.lower().encode("ascii")
            except UnicodeEncodeError:
                return False
            return hmac.compare_digest(expected, given)
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        try:
            if isinstance(entry.public, RSAPublicKey):
                entry.public.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(entry.public, Ed25519PublicKey):
                entry.public.verify(raw, payload)
            else:  # pragma: no cover - registration guarantees a public key
                return False
        except InvalidSignature:
            return False
        return True

    def _lookup(self, api_key: str | None) -> Rejected | None:
        if not api_key or not _API_KEY_RE.fullmatch(api_key):
            return _bad_key_format()
        if api_key not in self._keys:
            return _unknown_key()
        return None

    def verify_rest(
        self,
        api_key: str | None,
        raw_query_string: str,
        raw_body: str | bytes = "",
        *,
        rules: AuthRules | None = None,
        now_us: int | None = None,
    ) -> Verdict:
        """Authenticate a signed REST request from what arrived on the wire.

        ``api_key`` is the ``X-MBX-APIKEY`` header (``None`` when absent),
        ``raw_query_string`` the query exactly as received (still percent-encoded, without
        ``?``; on aiohttp that is ``request.rel_url.raw_query_string``, *not*
        ``request.query_string``, which yarl has already decoded), ``raw_body`` the form body
        as received (``await request.read()``). The payload is rebuilt as the
        exchange defines it: the raw query minus its ``signature`` field, then the raw body
        minus its ``signature`` field. Checks run in this order: key format (-2014), known
        key (-2015), mandatory and well-formed parameters (-1102/-1100/-1111/-1101),
        signature (-1022), then time (-1021), so only authentic timestamps are judged.
        """
        rules = self.rules if rules is None else rules
        failure = self._lookup(api_key)
        if failure is not None:
            return failure
        assert api_key is not None
        if isinstance(raw_body, bytes):
            try:
                raw_body = raw_body.decode("utf-8")
            except UnicodeDecodeError:
                return Rejected(Reason.ILLEGAL_CHARS, -1100, "Illegal characters found in a parameter.")
        query, query_sigs = _split_signature(raw_query_string)
        body, body_sigs = _split_signature(raw_body)
        signatures = query_sigs + body_sigs
        if len(signatures) > 1:
            return Rejected(Reason.DUPLICATE_PARAMETER, -1101, "Duplicate values for a parameter detected.")
        if not signatures or not signatures[0]:
            return _missing("signature")
        # Query first, so a name present in both keeps the query's value (spec §4.2).
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True):
            params.setdefault(name, value)
        timestamp_us = _parse_timestamp(params.get("timestamp", ""))
        if isinstance(timestamp_us, Rejected):
            return timestamp_us
        recv_window_us = _parse_recv_window(params.get("recvWindow"), rules)
        if isinstance(recv_window_us, Rejected):
            return recv_window_us
        if rules.signature_must_be_last and not _signature_is_last(raw_query_string, raw_body):
            return _bad_signature()
        signature = unquote_plus(signatures[0])
        if not self.verify_signature(api_key, (query + body).encode("utf-8"), signature):
            return _bad_signature()
        now = self.clock() if now_us is None else now_us
        late = check_timestamp(timestamp_us, recv_window_us, now, rules)
        if late is not None:
            return late
        kind = self._keys[api_key].kind
        return Accepted(api_key, kind, params, timestamp_us, recv_window_us)

    def verify_ws(
        self,
        params: Mapping[str, object],
        *,
        api_key: str | None = None,
        rules: AuthRules | None = None,
        now_us: int | None = None,
    ) -> Verdict:
        """Authenticate the ``params`` of a signed WebSocket API request (decoded JSON).

        The key is ``params["apiKey"]`` unless ``api_key`` is given (a request carrying its
        own key after ``session.logon``). The payload is ``ws_payload(params)``; the
        signature is the raw hex or base64 string, never percent-encoded on this API.
        """
        rules = self.rules if rules is None else rules
        if api_key is None:
            key_param = params.get("apiKey")
            api_key = key_param if isinstance(key_param, str) else None
        failure = self._lookup(api_key)
        if failure is not None:
            return failure
        assert api_key is not None
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            return _missing("signature")
        text = {name: encode_value(value) for name, value in params.items() if value is not None}
        timestamp_us = _parse_timestamp(text.get("timestamp", ""))
        if isinstance(timestamp_us, Rejected):
            return timestamp_us
        recv_window_us = _parse_recv_window(text.get("recvWindow"), rules)
        if isinstance(recv_window_us, Rejected):
            return recv_window_us
        if not self.verify_signature(api_key, ws_payload(params).encode("utf-8"), signature):
            return _bad_signature()
        now = self.clock() if now_us is None else now_us
        late = check_timestamp(timestamp_us, recv_window_us, now, rules)
        if late is not None:
            return late
        text.pop("signature", None)
        return Accepted(api_key, self._keys[api_key].kind, text, timestamp_us, recv_window_us)


def _signature_is_last(raw_query: str, raw_body: str) -> bool:
    """Whether ``signature`` is the final parameter of query + body (futures insists)."""
    last = raw_body if raw_body else raw_query
    segments = [segment for segment in last.split("&") if segment]
    return bool(segments) and unquote_plus(segments[-1].partition("=")[0]) == "signature"
