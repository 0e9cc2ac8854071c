# cython: language_level=3
"""The order-book core: exact int64 fixed-point levels, Binance's update-ID rules.

Semantics: ``docs/book.md``. C-level interface: ``_book.pxd``. Typing: ``_book.pyi``.

Storage. Each side is stored in one of three layouts (``Side.layout``),
ordered by *key*: the price for bids, minus the price for asks, so the best
level of either side has the highest key. *Pages* index the levels by price
(see "one side: pages" below: no search, best for dense books); *blocks*,
described here, hold any spread of prices; *tiers* ("one side: tiers") keep
a window below the best key (a quantity per tick, "one side: a dense window",
or pages) and blocks beyond it; the window slides with the touch. ``layout="auto"``
(the default) takes pages for a side whose snapshot they store in the memory
aim and moves the side to tiers if they outgrow it: on the recordings, USD-M
keeps pages and spot's book spreads out into tiers.

Blocks. Each side is a sorted sequence of levels cut into blocks of at most
``BLOCK_CAP`` (32) levels. Ascending keys put the best level last, so:

- best bid/ask: the last key of the last block, O(1);
- find a price: start at the touch's block, or at the block of the event's
  previous level (levels of one event often sit close together), walk a few
  blocks back or forward, else search the blocks' first keys in two rounds of
  independent compares (``count_le_strided``); then within the block the same
  two rounds (``block_lower_bound``). The first-key round reads every 16th of
  the n/B first keys: linear, but 1/512 of n at full blocks, so about a dozen
  loads that do not wait for each other for Binance's deepest book (5,000
  levels a side), where a binary search's log2(n/B) loads would each wait for
  the one before;
- insert or delete: move at most 31 pairs inside one block, plus a split
  (insert into a full block) or a free/merge (emptied or sparse block) that
  moves n/32 block pointers.

A flat sorted array pays a memmove proportional to the distance from the
end, and on the real BTCUSDT spot recording most touched levels are far from
the touch (median rank 87 from the best level, 91% more than 50 ticks away;
BENCHMARKS.md has the profile), and 79% of the touched levels are inserted or
deleted, not updated in place. Blocks bound that cost at 31 moves. The block
size was chosen by measurement on the real recordings: against 64, 32 was as
fast on spot and about 10% faster on USD-M end to end, 16 slower on both. The
searches do not branch on the data, so those unpredictable positions cost no
mispredictions, and the payload stays 16 bytes per level (about 22-28 bytes
per level with the blocks' slack; see BENCHMARKS.md).

Measured and not kept (each timed side by side with this code on both
recordings, as a build of this module or in benches/storage_lab, which
replays the recorded level streams through a C port of the side functions).
A per-block index of every 8th key, so that the search reads one line of the
index instead of four of the block: 8-14% slower on spot, where 79% of the
updates insert or delete and each one rewrites the index; even on USD-M.
A branch-free AVX-512 rewrite of the whole block per level, in place of the
update/insert/delete branches and the memmove: 24% slower on spot, 40-60% on
USD-M. Applying each level as soon as it is parsed, in one pass with the
scan: no faster on spot, slower on USD-M. Deleting in place and compacting
only full blocks: mixed, spot slower. Parsing numbers eight bytes at a time
(also the integer digits only): slower on both. Building with -march=native:
3-10% slower. The lab's price-indexed prototype, which needs no search, took
0.8x the time on spot and about half on USD-M, but 3.6x the memory on spot:
it became the pages layout, which auto takes only where it fits. For the
dense windows of tiers (end to end on spot, interleaved in one process):
prefetching an event's slots before setting them, and keeping freed windows
for the next one instead of a fresh calloc, were no faster; nor was finding
the unit without Euclid's divisions. 65,536 ticks of window gave no more than
32,768. Moving a bucket's quantities by a loop instead of memmove in pages:
mixed, USD-M slower.

Applying an event is atomic: every level is parsed into scratch arrays
before anything changes, and the quantities replaced are logged so that an
update that would cross the book is undone exactly.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

import time
from collections.abc import Sequence

import msgspec

from tickbook import _analytics, _decimal
from tickbook._rules import snapshot_is_stale
from tickbook.decode import decode_depth_message
from tickbook._types import (
    BookError,
    DecimalError,
    LevelsFormatError,
    Market,
    OutOfSyncReason,
    SnapshotResult,
    SyncState,
    layout_policy,
)

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL

# Module-level copies of the C enums, for tests/test_types.py and Cython-less callers.
globals().update(
    STATE_WAITING_FOR_SNAPSHOT=STATE_WAITING_FOR_SNAPSHOT,
    STATE_BRIDGING=STATE_BRIDGING,
    STATE_SYNCED=STATE_SYNCED,
    STATE_OUT_OF_SYNC=STATE_OUT_OF_SYNC,
    REASON_NONE=REASON_NONE,
    REASON_NOT_STARTED=REASON_NOT_STARTED,
    REASON_GAP=REASON_GAP,
    REASON_NO_BRIDGE=REASON_NO_BRIDGE,
    REASON_CROSSED=REASON_CROSSED,
    REASON_INVALIDATED=REASON_INVALIDATED,
    APPLIED=F_APPLIED,
    BBO_CHANGED=F_BBO_CHANGED,
    BUFFERED=F_BUFFERED,
    STALE=F_STALE,
    GAP=F_GAP,
    CROSSED=F_CROSSED,
    SNAPSHOT_STALE=SNAPSHOT_STALE,
    SNAPSHOT_BRIDGING=SNAPSHOT_BRIDGING,
    SNAPSHOT_SYNCED=SNAPSHOT_SYNCED,
    SNAPSHOT_OUT_OF_SYNC=SNAPSHOT_OUT_OF_SYNC,
)

# The general path's decoder: it checks the whole side's shape before any number is read.
cdef object _LEVELS_DECODER = msgspec.json.Decoder(list[tuple[str, str]])
cdef tuple _TEXT_TYPES = (str, bytes, bytearray, memoryview)

# Enum objects are built once: constructing one per call would cost more
# than applying a typical event.
cdef tuple _STATES = tuple(SyncState(i) for i in range(4))
cdef tuple _REASONS = tuple(OutOfSyncReason(i) for i in range(6))
cdef tuple _SNAPSHOT_RESULTS = tuple(SnapshotResult(i) for i in range(4))

cdef int64_t NO_KEY = INT64_MIN     # best key of an empty side, for change detection

# Block fill: a snapshot fills blocks to 3/4 (room for inserts near any level); a block that
# drops below 1/4 is folded into a neighbour when the two fit in 3/4 (bounds bytes per level).
cdef int32_t SNAPSHOT_FILL = BLOCK_CAP * 3 // 4
cdef int32_t MERGE_BELOW = BLOCK_CAP // 4
cdef int32_t MERGE_MAX = BLOCK_CAP * 3 // 4


# ---------------------------------------------------------------- decimals

# parse_decimal result codes, in the precedence of tickbook._decimal
cdef enum:
    DEC_OK = 0
    DEC_MALFORMED = 1
    DEC_TOO_PRECISE = 2
    DEC_OVERFLOW = 3


@cython.cdivision(True)
cdef int parse_decimal(const char* s, Py_ssize_t n, int scale, int64_t* out) noexcept nogil:
    """``[0-9]+(\\.[0-9]+)?`` times 10**scale into ``out``; returns a DEC_* code.

    Grammar errors win over excess decimals, which win over overflow, so the
    error matches the pure-Python rules (tickbook._decimal) on every input.
    """
    cdef uint64_t v = 0
    cdef uint64_t limit = <uint64_t>INT64_MAX
    cdef Py_ssize_t i = 0
    cdef int frac = 0
    cdef unsigned int d
    cdef bint overflow = False
    cdef bint too_precise = False
    while i < n:
        d = <unsigned char>s[i] - 48
        if d > 9:
            break
        if v > (limit - d) // 10:     # exact path only: the hot path is scan_decimal
            overflow = True
        else:
            v = v * 10 + d
        i += 1
    if i == 0:
        return DEC_MALFORMED
    if i < n:
        if s[i] != b'.':
            return DEC_MALFORMED
        i += 1
        if i == n:
            return DEC_MALFORMED
        while i < n:
            d = <unsigned char>s[i] - 48
            if d > 9:
                return DEC_MALFORMED
            if frac < scale:
                if v > (limit - d) // 10:
                    overflow = True
                else:
                    v = v * 10 + d
                frac += 1
            elif d != 0:
                too_precise = True
            i += 1
    if too_precise:
        return DEC_TOO_PRECISE
    while frac < scale:
        if v > limit // 10:
            overflow = True
            break
        v *= 10
        frac += 1
    if overflow:
        return DEC_OVERFLOW
    out[0] = <int64_t>v
    return DEC_OK


cdef int64_t POW10[19]
POW10[0] = 1
for _k in range(1, 19):
    POW10[_k] = POW10[_k - 1] * 10


cdef extern from *:
    """
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define TICKBOOK_LITTLE_ENDIAN 0
    #else
    #define TICKBOOK_LITTLE_ENDIAN 1
    #endif
    """
    # The eight-digit trick reads bytes as a little-endian word.
    const bint TICKBOOK_LITTLE_ENDIAN


cdef inline bint eight_digits(uint64_t chunk) noexcept nogil:
    """True when all 8 bytes (read little-endian) are ASCII digits."""
    return ((chunk + 0x4646464646464646ULL) | (chunk - 0x3030303030303030ULL)) & 0x8080808080808080ULL == 0


cdef inline uint64_t eight_digits_value(uint64_t chunk) noexcept nogil:
    """Value of 8 ASCII digits loaded little-endian: three multiplies instead of eight steps."""
    chunk -= 0x3030303030303030ULL
    chunk = chunk * 10 + (chunk >> 8)
    return (((chunk & 0x000000FF000000FFULL) * 0x000F424000000064ULL)
            + (((chunk >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32


cdef inline Py_ssize_t scan_digits(const char* p, Py_ssize_t i, Py_ssize_t n,
                                   uint64_t* value) noexcept nogil:
    """Read the run of ASCII digits at p[i] into value (modulo 2**64: callers bound the run's
    length before they trust it); return the index after the run."""
    cdef uint64_t v = 0
    cdef unsigned int d
    while i < n:
        d = <unsigned char>p[i] - 48
        if d > 9:
            break
        v = v * 10 + d
        i += 1
    value[0] = v
    return i


cdef inline Py_ssize_t scan_decimal(const char* p, Py_ssize_t i, Py_ssize_t n, int scale,
                                    int64_t* out) noexcept nogil:
    """Hot-path parse of a number that starts at p[i]; return the index after it, or -1.

    One pass, no division: a value of at most 18 digits (after padding to the
    scale) cannot overflow int64, and anything longer or irregular returns -1
    so that the exact parser decides (and words the error).
    """
    cdef Py_ssize_t start = i
    cdef Py_ssize_t frac_start
    cdef uint64_t v = 0
    cdef uint64_t chunk
    cdef unsigned int d
    cdef int frac = 0
    i = scan_digits(p, i, n, &v)
    if i == start or (i - start) + scale > 18:
        return -1
    if i < n and p[i] == b'.':
        i += 1
        frac_start = i
        # Eight fraction digits at a time while they are all within the scale
        # (spot writes 8 decimals at scale 8).
        while TICKBOOK_LITTLE_ENDIAN and frac + 8 <= scale and i + 8 <= n:
            memcpy(&chunk, p + i, 8)
            if not eight_digits(chunk):
                break
            v = v * 100000000 + eight_digits_value(chunk)
            frac += 8
            i += 8
        while i < n:
            d = <unsigned char>p[i] - 48
            if d > 9:
                break
            if frac < scale:
                v = v * 10 + d
                frac += 1
            elif d != 0:
                return -1
            i += 1
        if i == frac_start:
            return -1
    out[0] = <int64_t>v * POW10[scale - frac]
    return i


cdef int raise_decimal(int code, const char* s, Py_ssize_t n, int scale) except -1:
    text = PyBytes_FromStringAndSize(s, n).decode("utf-8", "replace")
    if code == DEC_TOO_PRECISE:
        raise DecimalError(f"{text!r} has more than {scale} decimals")
    if code == DEC_OVERFLOW:
        raise DecimalError(f"{text!r} overflows int64 at scale {scale}")
    raise DecimalError(f"malformed decimal {text!r}")


cdef int64_t parse_item(object item, int scale) except? -1:
    """One price or quantity given as str or a bytes-like object."""
    cdef const char* p
    cdef Py_ssize_t n
    cdef int64_t value
    cdef int code
    cdef Py_buffer view
    if isinstance(item, str):
        p = PyUnicode_AsUTF8AndSize(item, &n)
        code = parse_decimal(p, n, scale, &value)
    elif isinstance(item, bytes):
        code = parse_decimal(PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item), scale, &value)
        p = PyBytes_AS_STRING(item)
        n = PyBytes_GET_SIZE(item)
    elif PyObject_CheckBuffer(item):
        PyObject_GetBuffer(item, &view, PyBUF_SIMPLE)
        try:
            code = parse_decimal(<const char*>view.buf, view.len, scale, &value)
            if code != DEC_OK:
                raise_decimal(code, <const char*>view.buf, view.len, scale)
        finally:
            PyBuffer_Release(&view)
        return value
    else:
        raise DecimalError(f"malformed decimal {item!r}: expected str or bytes, got {type(item).__name__}")
    if code != DEC_OK:
        raise_decimal(code, p, n, scale)
    return value


cdef inline Py_ssize_t skip_ws(const char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    # The exchange sends no whitespace: one compare settles the common case
    # (every JSON whitespace byte is <= b' ').
    while i < n and <unsigned char>p[i] <= 32 and (
            p[i] == b' ' or p[i] == b'\n' or p[i] == b'\r' or p[i] == b'\t'):
        i += 1
    return i


cdef inline Py_ssize_t scan_quoted_decimal(const char* p, Py_ssize_t i, Py_ssize_t n, int scale,
                                           int64_t* out) noexcept nogil:
    """A plain decimal in quotes starting at p[i] (the opening quote); the index after the
    closing quote, or -1."""
    if i >= n or p[i] != b'"':
        return -1
    i = scan_decimal(p, i + 1, n, scale, out)
    if i < 0 or i >= n or p[i] != b'"':
        return -1
    return i + 1


cdef Py_ssize_t scan_levels(const char* p, Py_ssize_t i, Py_ssize_t n, int pscale, int qscale,
                            int64_t* px, int64_t* qty, Py_ssize_t* count) noexcept nogil:
    """Scan the level array that starts at p[i] into px/qty; return the index after its ``]``.

    The exchange's exact shape only: ``[["p","q"],...]`` with plain decimals and
    no whitespace (the exchange sends none; checking for it cost 4% end to end).
    Anything else returns -1, and the caller hands the text to a path that
    decodes it with msgspec and words the error. px/qty must have room for one
    pair per 9 bytes of the rest of the input.
    """
    cdef Py_ssize_t k = 0
    cdef int64_t price, amount
    if i >= n or p[i] != b'[':
        return -1
    i += 1
    if i < n and p[i] == b']':
        count[0] = 0
        return i + 1
    while True:
        if i >= n or p[i] != b'[':
            return -1
        i = scan_quoted_decimal(p, i + 1, n, pscale, &price)
        if i < 0 or i >= n or p[i] != b',':
            return -1
        i = scan_quoted_decimal(p, i + 1, n, qscale, &amount)
        if i < 0 or i >= n or p[i] != b']':
            return -1
        px[k] = price
        qty[k] = amount
        k += 1
        i += 1
        if i < n and p[i] == b',':
            i += 1
            continue
        if i < n and p[i] == b']':
            count[0] = k
            return i + 1
        return -1


cdef inline Py_ssize_t scan_uint(const char* p, Py_ssize_t i, Py_ssize_t n, int64_t* out) noexcept nogil:
    """A JSON unsigned integer at p[i] of at most 18 digits (no leading zero); index after it, or -1."""
    cdef Py_ssize_t start = i
    cdef uint64_t v
    i = scan_digits(p, i, n, &v)
    if i == start or i - start > 18 or (p[start] == b'0' and i - start > 1):
        return -1
    out[0] = <int64_t>v
    return i


cdef inline Py_ssize_t scan_plain_string(const char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """From the byte after an opening quote: the index of the closing quote, or -1.

    Printable ASCII without escapes only, so the bytes are the string's value;
    anything else is left to msgspec.
    """
    cdef unsigned char c
    while i < n:
        c = <unsigned char>p[i]
        if c == b'"':
            return i
        if c == b'\\' or c < 32 or c >= 127:
            return -1
        i += 1
    return -1


# Keys of a depth event, as bits of FrameScan.seen.
cdef enum:
    K_e = 1
    K_E = 2
    K_T = 4
    K_s = 8
    K_U = 16
    K_u = 32
    K_pu = 64
    K_b = 128
    K_a = 256
    K_ps = 512

cdef int SPOT_KEYS = K_e | K_E | K_s | K_U | K_u | K_b | K_a
cdef int FUTURES_KEYS = SPOT_KEYS | K_T | K_pu

cdef const char* _STREAM_HEAD = b'{"stream":"'       # 11 bytes
cdef const char* _DATA_HEAD = b'","data":{'          # 10 bytes, after the stream name
cdef const char* _DEPTH_UPDATE = b'depthUpdate'       # 11 bytes


def _decode_levels(text):
    """JSON text of one side -> its (price, qty) string pairs; the whole shape is checked."""
    try:
        return _LEVELS_DECODER.decode(text)
    except msgspec.DecodeError as exc:   # also ValidationError: the wrong shape
        raise LevelsFormatError(f"levels are not a JSON array of [price, qty] strings: {exc}") from None


def _check_pairs(levels):
    """The shape rules for a Python sequence of pairs (numbers not read); returns it."""
    if not isinstance(levels, (list, tuple)) and not isinstance(levels, Sequence):
        raise LevelsFormatError(
            f"levels must be JSON text or a sequence of [price, qty] pairs, got {type(levels).__name__}")
    for j, pair in enumerate(levels):
        if (isinstance(pair, _TEXT_TYPES) or not isinstance(pair, (list, tuple, Sequence))
                or len(pair) != 2):
            raise LevelsFormatError(f"level {j} is not a [price, qty] pair: {pair!r}")
        if not isinstance(pair[0], _TEXT_TYPES) or not isinstance(pair[1], _TEXT_TYPES):
            raise LevelsFormatError(f"level {j} must hold two strings, got {pair!r}")
    return levels


def _side_pairs(levels):
    """One side in any accepted form -> its (price, qty) texts; LevelsFormatError if malformed."""
    if isinstance(levels, (bytes, str)):
        return _decode_levels(levels)
    if PyObject_CheckBuffer(levels):
        return _decode_levels(bytes(memoryview(levels)))
    return _check_pairs(levels)


def _side_texts(levels):
    """``_side_pairs``, or None when the side's shape is wrong (scale inference skips it)."""
    try:
        return _side_pairs(levels)
    except LevelsFormatError:
        return None


cdef int _max_decimals(object pairs, int* price_dec, int* qty_dec) except -1:
    """Widen the running maxima by the decimals written in one side; return its pair count."""
    cdef int count = 0
    for price, qty in pairs:
        count += 1
        price_dec[0] = max(price_dec[0], _decimal.decimals_of(price))
        qty_dec[0] = max(qty_dec[0], _decimal.decimals_of(qty))
    return count


# ---------------------------------------------------------------- one side

cdef Block* new_block() except NULL:
    cdef Block* b = <Block*>malloc(sizeof(Block))
    if b == NULL:
        raise MemoryError()
    memset(b, 0, sizeof(Block))         # unused slots are read (masked) by block_lower_bound
    b.n = 0
    return b


cdef void blocks_init(Side* s) noexcept:
    s.blocks = NULL
    s.firsts = NULL
    s.nblocks = 0
    s.cap = 0


cdef void blocks_free(Side* s) noexcept:
    cdef Py_ssize_t i
    for i in range(s.nblocks):
        free(s.blocks[i])
    free(s.blocks)
    free(s.firsts)
    blocks_init(s)


cdef int blocks_reserve(Side* s, Py_ssize_t nblocks) except -1:
    cdef Py_ssize_t cap
    cdef Block** blocks
    cdef int64_t* firsts
    if nblocks <= s.cap:
        return 0
    cap = max(nblocks, s.cap * 2, 8)
    blocks = <Block**>realloc(s.blocks, cap * sizeof(Block*))
    if blocks == NULL:
        raise MemoryError()
    s.blocks = blocks
    firsts = <int64_t*>realloc(s.firsts, cap * sizeof(int64_t))
    if firsts == NULL:
        raise MemoryError()
    s.firsts = firsts
    s.cap = cap
    return 0


cdef int blocks_insert(Side* s, Py_ssize_t at, Block* b) except -1:
    """Insert the (non-empty, owned) block b at index at. Frees b on failure."""
    try:
        blocks_reserve(s, s.nblocks + 1)
    except MemoryError:
        free(b)
        raise
    memmove(&s.blocks[at + 1], &s.blocks[at], (s.nblocks - at) * sizeof(Block*))
    memmove(&s.firsts[at + 1], &s.firsts[at], (s.nblocks - at) * sizeof(int64_t))
    s.blocks[at] = b
    s.firsts[at] = b.lv[0].key
    s.nblocks += 1
    return 0


cdef void blocks_remove(Side* s, Py_ssize_t at) noexcept:
    free(s.blocks[at])
    memmove(&s.blocks[at], &s.blocks[at + 1], (s.nblocks - at - 1) * sizeof(Block*))
    memmove(&s.firsts[at], &s.firsts[at + 1], (s.nblocks - at - 1) * sizeof(int64_t))
    s.nblocks -= 1


cdef inline Py_ssize_t count_le_strided(const int64_t* a, Py_ssize_t n, int64_t key) noexcept nogil:
    """How many of the n ascending keys are <= key, in two rounds of independent compares.

    Every 16th key first (a side has a few hundred blocks at most, so a few
    dozen loads that do not wait for each other), then the 16 keys of the one
    stretch that can hold the answer. A binary search would chain its loads.
    """
    cdef Py_ssize_t g = 0
    cdef Py_ssize_t j, stop
    for j in range(15, n, 16):
        g += a[j] <= key
    g *= 16
    stop = min(g + 16, n)
    for j in range(g, stop):
        g += a[j] <= key
    return g


cdef inline Py_ssize_t blocks_find(const Side* s, int64_t key, Py_ssize_t hint) noexcept nogil:
    """Index of the last block whose first key is <= key (0 if key precedes all).

    ``hint`` is where the search starts: the touch's block, or the block of the
    previous level of the same event. The exchange lists an event's levels in
    price order (on the recordings: spot best first on both sides, USD-M
    ascending on both), so the next level is in that block or a few blocks
    before it (keys going down) or after it (keys going up): a short walk
    either way, and only then the search over all first keys.
    """
    cdef Py_ssize_t hi = s.nblocks - 1
    cdef Py_ssize_t stop
    if 0 <= hint < hi:
        if s.firsts[hint + 1] > key:
            hi = hint                   # key precedes the block after the hint: walk back
        else:                           # the levels go up (USD-M bids): walk forward
            stop = hint + 7 if hint + 7 < hi else hi
            hint += 1
            while hint < stop and s.firsts[hint + 1] <= key:
                hint += 1
            if hint == hi or s.firsts[hint + 1] > key:
                return hint
    stop = hi - 6 if hi > 6 else 0
    while hi > stop and s.firsts[hi] > key:
        hi -= 1
    if hi == 0 or s.firsts[hi] <= key:
        return hi
    hi = count_le_strided(s.firsts, hi, key) - 1
    return hi if hi > 0 else 0


cdef inline int32_t block_lower_bound(const Block* b, int64_t key) noexcept nogil:
    """Index of the first key >= key in the block (b.n if none).

    Two rounds of eight independent compares instead of a six-step binary
    search: the last key of each group of eight first (eight loads from eight
    cache lines, issued together), then the eight keys of the one group that
    can hold the answer (one cache line). A block that is not in L1 then costs
    two memory round trips, not six dependent ones, and nothing branches on
    the data. Slots at or beyond b.n are masked out, never trusted.
    """
    cdef const Level* lv = &b.lv[0]
    cdef int32_t n = b.n
    cdef int32_t g = 0
    cdef int32_t j
    for j in range(7, BLOCK_CAP, 8):
        g += (lv[j].key < key) & (j < n)
    if g == BLOCK_CAP // 8:              # every key is below: only a full block gets here
        return BLOCK_CAP
    g *= 8
    n -= g                              # slots of the group that are in use (may exceed 8)
    lv += g
    for j in range(8):
        g += (lv[j].key < key) & (j < n)
    return g


cdef int64_t blocks_get(const Side* s, int64_t key) noexcept nogil:
    cdef const Block* b
    cdef int32_t i
    if s.nblocks == 0:
        return 0
    b = s.blocks[blocks_find(s, key, s.nblocks - 1)]
    i = block_lower_bound(b, key)
    if i < b.n and b.lv[i].key == key:
        return b.lv[i].qty
    return 0


cdef void blocks_merge(Side* s, Py_ssize_t bi) noexcept:
    """Fold a sparse block into a neighbour when the two fit with room to spare."""
    cdef Block* b = s.blocks[bi]
    cdef Block* other
    if bi + 1 < s.nblocks and b.n + s.blocks[bi + 1].n <= MERGE_MAX:
        other = s.blocks[bi + 1]
        memcpy(&b.lv[b.n], other.lv, other.n * sizeof(Level))
        b.n += other.n
        blocks_remove(s, bi + 1)
    elif bi > 0 and b.n + s.blocks[bi - 1].n <= MERGE_MAX:
        other = s.blocks[bi - 1]
        memcpy(&other.lv[other.n], b.lv, b.n * sizeof(Level))
        other.n += b.n
        blocks_remove(s, bi)


cdef inline int64_t blocks_set(Side* s, int64_t key, int64_t qty, Py_ssize_t* hint) except -1:
    """Set the level at key to qty (0 deletes); return the previous quantity (0: none).

    ``hint`` (optional, in/out): the block to start the search from; set to the
    block the key landed in, for the next level of the same event.
    """
    cdef Py_ssize_t bi
    cdef Block* b
    cdef Block* upper
    cdef int32_t i
    cdef int32_t half = BLOCK_CAP // 2
    cdef int64_t old
    if s.nblocks == 0:
        if qty == 0:
            return 0
        b = new_block()
        b.n = 1
        b.lv[0].key = key
        b.lv[0].qty = qty
        blocks_insert(s, 0, b)
        s.count = 1
        return 0
    bi = blocks_find(s, key, hint[0] if hint != NULL and 0 <= hint[0] < s.nblocks else s.nblocks - 1)
    if hint != NULL:
        hint[0] = bi
    b = s.blocks[bi]
    i = block_lower_bound(b, key)
    if i < b.n and b.lv[i].key == key:
        old = b.lv[i].qty
        if qty != 0:
            b.lv[i].qty = qty
            return old
        memmove(&b.lv[i], &b.lv[i + 1], (b.n - i - 1) * sizeof(Level))
        b.n -= 1
        s.count -= 1
        if b.n == 0:
            blocks_remove(s, bi)
        else:
            if i == 0:
                s.firsts[bi] = b.lv[0].key
            if b.n < MERGE_BELOW:
                blocks_merge(s, bi)
        return old
    if qty == 0:
        return 0                        # deleting an absent level is normal
    if b.n == BLOCK_CAP:                # split: the upper half moves to a new block
        upper = new_block()
        memcpy(upper.lv, &b.lv[half], half * sizeof(Level))
        upper.n = half
        blocks_insert(s, bi + 1, upper)
        b.n = half
        if i > half:
            b = upper
            i -= half
            bi += 1
    memmove(&b.lv[i + 1], &b.lv[i], (b.n - i) * sizeof(Level))
    b.lv[i].key = key
    b.lv[i].qty = qty
    b.n += 1
    if i == 0:
        s.firsts[bi] = key
    s.count += 1
    return 0


cdef int blocks_load(Side* s, const int64_t* px, const int64_t* qty, Py_ssize_t n) except -1:
    """Fill an empty side from parsed snapshot levels (zero quantities skipped).

    Snapshots come best first, which is descending key order: then the blocks
    are filled directly, 3/4 full so inserts near any level rarely split.
    Any other order falls back to one insert per level (last one wins).
    """
    cdef Py_ssize_t j
    cdef bint best_first = True
    cdef Block* b = NULL
    cdef int64_t key
    for j in range(1, n):
        if s.sign * px[j] >= s.sign * px[j - 1]:
            best_first = False
            break
    if not best_first:
        for j in range(n):
            if qty[j] != 0:
                blocks_set(s, s.sign * px[j], qty[j], NULL)
        return 0
    for j in range(n - 1, -1, -1):
        if qty[j] == 0:
            continue
        key = s.sign * px[j]
        if b == NULL or b.n == SNAPSHOT_FILL:
            b = new_block()
            b.n = 1
            b.lv[0].key = key
            b.lv[0].qty = qty[j]
            blocks_insert(s, s.nblocks, b)
        else:
            b.lv[b.n].key = key
            b.lv[b.n].qty = qty[j]
            b.n += 1
        s.count += 1
    return 0


cdef int blocks_copy(Side* dst, const Side* src) except -1:
    cdef Py_ssize_t i
    cdef Block* b
    blocks_reserve(dst, src.nblocks)
    for i in range(src.nblocks):
        b = new_block()
        memcpy(b, src.blocks[i], sizeof(Block))
        dst.blocks[i] = b
        dst.firsts[i] = src.firsts[i]
        dst.nblocks += 1
    dst.count = src.count
    return 0


cdef inline bint blocks_best(const Side* s, int64_t* key, int64_t* qty) noexcept nogil:
    cdef const Block* b
    if s.nblocks == 0:
        return False
    b = s.blocks[s.nblocks - 1]
    key[0] = b.lv[b.n - 1].key
    qty[0] = b.lv[b.n - 1].qty
    return True


cdef Py_ssize_t blocks_memory(const Side* s) noexcept:
    return s.nblocks * sizeof(Block) + s.cap * (sizeof(Block*) + sizeof(int64_t))


cdef int blocks_check(const Side* s, str name) except -1:
    cdef Py_ssize_t bi
    cdef int32_t i
    cdef Py_ssize_t total = 0
    cdef const Block* b
    cdef bint have_prev = False
    cdef int64_t prev = 0
    for bi in range(s.nblocks):
        b = s.blocks[bi]
        if not 1 <= b.n <= BLOCK_CAP:
            raise AssertionError(f"{name}: block {bi} holds {b.n} levels")
        if s.firsts[bi] != b.lv[0].key:
            raise AssertionError(f"{name}: block {bi} index key {s.firsts[bi]} != first key {b.lv[0].key}")
        for i in range(b.n):
            if have_prev and b.lv[i].key <= prev:
                raise AssertionError(f"{name}: price {b.lv[i].key * s.sign} out of order")
            if b.lv[i].qty <= 0:
                raise AssertionError(f"{name}: level {b.lv[i].key * s.sign} has quantity {b.lv[i].qty}")
            prev = b.lv[i].key
            have_prev = True
        total += b.n
    if total != s.count:
        raise AssertionError(f"{name}: count {s.count} but {total} levels stored")
    return 0


cdef Py_ssize_t blocks_collect(const Side* s, Py_ssize_t want, int64_t* keys, int64_t* qtys) noexcept:
    """The best ``want`` levels (at most count), best first, as keys and quantities."""
    cdef Py_ssize_t bi = s.nblocks - 1
    cdef Py_ssize_t k = 0
    cdef int32_t i
    cdef const Block* b
    while k < want and bi >= 0:
        b = s.blocks[bi]
        i = b.n - 1
        while i >= 0 and k < want:
            keys[k] = b.lv[i].key
            qtys[k] = b.lv[i].qty
            k += 1
            i -= 1
        bi -= 1
    return k


# ---------------------------------------------------------------- one side: pages
#
# The price-indexed layout. A key is a whole number of units (u = key / unit, one tick);
# unit u lives in bucket u >> 6 of page u >> 12, at bit u & 63 of the bucket's map, and its
# quantity is the popcount(map below the bit)-th of the bucket's packed quantities. Finding
# a level is three indexed loads and a popcount, whatever the depth; an insert or a delete
# moves at most 63 quantities. The best and the lowest unit are kept up to date, and when
# one is deleted the next is found through the maps (most often in the same bucket).
#
# It suits dense books: on the USD-M BTCUSDT recording (6 levels per 64-tick bucket) the
# side updates take about half the time of the blocks and the book fewer bytes. A sparse
# book pays a bucket and a page for isolated far levels (the spot recording's book would
# take 3.6 times the blocks' bytes), so under LAYOUT_AUTO a side takes pages only when they
# fit the memory aim, and gives them up for blocks when they grow past it. A price that
# is not a whole number of units re-keys the side with the smaller unit; a side whose
# prices are too far apart for the directory falls back to blocks.

# A snapshot side keeps pages (LAYOUT_AUTO) when they take at most this many bytes per
# level (the project's memory aim), and gives them up once they take more than
# PAGES_MAX_BYTES_PER_LEVEL per level plus PAGES_SLACK_BYTES.
cdef Py_ssize_t PAGES_LOAD_BYTES_PER_LEVEL = 32
cdef Py_ssize_t PAGES_MAX_BYTES_PER_LEVEL = 48
cdef Py_ssize_t PAGES_SLACK_BYTES = 32768
# Directory slots at most (8 bytes each; one page covers 4,096 units).
cdef Py_ssize_t PAGES_MAX_DIRECTORY = 1 << 16
cdef int32_t BUCKET_FIRST_CAP = 2


cdef inline Py_ssize_t bucket_bytes(int32_t cap) noexcept nogil:
    return sizeof(Bucket) + cap * sizeof(int64_t)


cdef void pages_set_unit(Side* s, int64_t unit) noexcept nogil:
    """Set the unit (> 0, or 0: none yet) and the constants of its exact division."""
    cdef uint64_t odd, inv
    cdef int _step
    s.unit = unit
    if unit <= 0:
        s.unit_shift = 0
        s.unit_low_mask = 0
        s.unit_inverse = 1
        s.unit_qmin = 1                 # an empty range: no key is a whole number of units
        s.unit_qmax = 0
        return
    s.unit_shift = tb_low_bit(<uint64_t>unit)
    s.unit_low_mask = ((<int64_t>1) << s.unit_shift) - 1
    odd = <uint64_t>unit >> s.unit_shift
    inv = odd                           # Newton's iteration: each step doubles the correct bits
    for _step in range(5):
        inv *= 2 - odd * inv
    s.unit_inverse = inv
    s.unit_qmin = INT64_MIN // <int64_t>odd
    s.unit_qmax = INT64_MAX // <int64_t>odd


cdef inline bint units_of(const Side* s, int64_t key, int64_t* u) noexcept nogil:
    """key / unit, when key is a whole number of units, without a division instruction.

    The low bits must be zero for the unit's power of two; then the rest times the odd
    part's inverse mod 2**64 is the quotient exactly when the division is exact, and
    otherwise lands outside [INT64_MIN / odd, INT64_MAX / odd] (both products would be
    int64 values congruent mod 2**64, hence equal).
    """
    cdef int64_t q
    if key & s.unit_low_mask:
        return False
    q = <int64_t>(<uint64_t>(key >> s.unit_shift) * s.unit_inverse)
    if q < s.unit_qmin or q > s.unit_qmax:
        return False
    u[0] = q
    return True


cdef void pages_init(Side* s) noexcept:
    s.pages = NULL
    s.lo = 0
    s.npages = 0
    pages_set_unit(s, 0)
    s.top = INT64_MIN
    s.bottom = INT64_MAX
    s.page_bytes = 0


cdef void pages_free(Side* s) noexcept:
    cdef Py_ssize_t i
    cdef int j
    cdef Page* p
    for i in range(s.npages):
        p = s.pages[i]
        if p != NULL:
            for j in range(64):
                free(p.b[j])
            free(p)
    free(s.pages)
    pages_init(s)


cdef inline int64_t gcd64(int64_t a, int64_t b) noexcept nogil:
    # |values| up to 2**63 - 1 (keys are never INT64_MIN: prices are >= 0)
    if a < 0:
        a = -a
    if b < 0:
        b = -b
    while b:
        a, b = b, a % b
    return a


cdef int pages_cover(Side* s, int64_t pg) except -1:
    """Grow the directory to hold page pg; 1 (nothing changed) if that needs too many slots."""
    cdef int64_t lo, hi
    cdef Page** d
    if s.npages == 0:
        lo = pg - 2
        hi = pg + 3
    else:
        lo = s.lo
        hi = s.lo + s.npages
        if lo <= pg < hi:
            return 0
        if pg < lo:
            if hi - pg > PAGES_MAX_DIRECTORY:
                return 1
            lo = max(min(pg, lo - s.npages), hi - PAGES_MAX_DIRECTORY)
        else:
            if pg + 1 - lo > PAGES_MAX_DIRECTORY:
                return 1
            hi = min(max(pg + 1, hi + s.npages), lo + PAGES_MAX_DIRECTORY)
    d = <Page**>calloc(hi - lo, sizeof(Page*))
    if d == NULL:
        raise MemoryError()
    if s.npages:
        memcpy(d + (s.lo - lo), s.pages, s.npages * sizeof(Page*))
        free(s.pages)
    s.page_bytes += (hi - lo - s.npages) * sizeof(Page*)
    s.pages = d
    s.lo = lo
    s.npages = hi - lo
    return 0


cdef inline Bucket* pages_bucket(const Side* s, int64_t u) noexcept nogil:
    """The bucket holding unit u, or NULL."""
    cdef int64_t r = (u >> 12) - s.lo
    cdef const Page* p
    if r < 0 or r >= s.npages:
        return NULL
    p = s.pages[r]
    if p == NULL:
        return NULL
    return p.b[(u >> 6) & 63]


cdef inline int64_t bucket_qty(const Bucket* b, int64_t u) noexcept nogil:
    """Quantity of unit u in its bucket b (0 if absent)."""
    cdef uint64_t bit = (<uint64_t>1) << (u & 63)
    if b.bits & bit:
        return b.q[tb_popcount64(b.bits & (bit - 1))]
    return 0


cdef int64_t pages_next_below(const Side* s, int64_t u) noexcept nogil:
    """The highest unit present below u, or INT64_MIN."""
    cdef int64_t bk = u >> 6
    cdef int64_t r = (bk >> 6) - s.lo
    cdef int tick = u & 63
    cdef int slot = bk & 63
    cdef const Page* p
    cdef uint64_t m
    cdef int sl
    if r >= s.npages:
        r = s.npages - 1
        slot = 64
    while r >= 0:
        p = s.pages[r]
        if p != NULL:
            if slot < 64 and p.b[slot] != NULL:
                m = p.b[slot].bits & (((<uint64_t>1) << tick) - 1)
                if m:
                    return ((s.lo + r) * 64 + slot) * 64 + tb_top_bit(m)
            m = p.used_map & (((<uint64_t>1) << slot) - 1) if slot < 64 else p.used_map
            if m:
                sl = tb_top_bit(m)
                return ((s.lo + r) * 64 + sl) * 64 + tb_top_bit(p.b[sl].bits)
        r -= 1
        slot = 64
    return INT64_MIN


cdef int64_t pages_next_above(const Side* s, int64_t u) noexcept nogil:
    """The lowest unit present above u, or INT64_MAX."""
    cdef int64_t bk = u >> 6
    cdef int64_t r = (bk >> 6) - s.lo
    cdef int tick = u & 63
    cdef int slot = bk & 63
    cdef const Page* p
    cdef uint64_t m
    cdef int sl
    if r < 0:
        r = 0
        slot = -1
    while r < s.npages:
        p = s.pages[r]
        if p != NULL:
            if slot >= 0 and p.b[slot] != NULL:
                m = p.b[slot].bits & ~(((<uint64_t>2) << tick) - 1)
                if m:
                    return ((s.lo + r) * 64 + slot) * 64 + tb_low_bit(m)
            m = p.used_map & ~(((<uint64_t>2) << slot) - 1) if slot >= 0 else p.used_map
            if m:
                sl = tb_low_bit(m)
                return ((s.lo + r) * 64 + sl) * 64 + tb_low_bit(p.b[sl].bits)
        r += 1
        slot = -1
    return INT64_MAX


cdef inline bint pages_best(const Side* s, int64_t* key, int64_t* qty) noexcept nogil:
    if s.count == 0:
        return False
    key[0] = s.top * s.unit
    qty[0] = bucket_qty(pages_bucket(s, s.top), s.top)
    return True


cdef int64_t pages_get(const Side* s, int64_t key) noexcept nogil:
    cdef Bucket* b
    cdef int64_t u
    if s.count == 0 or not units_of(s, key, &u):
        return 0
    b = pages_bucket(s, u)
    return bucket_qty(b, u) if b != NULL else 0


cdef int pages_over_budget(const Side* s) noexcept nogil:
    return ((s.policy == LAYOUT_AUTO or s.policy == LAYOUT_NEAR)
            and s.page_bytes > PAGES_MAX_BYTES_PER_LEVEL * s.count + PAGES_SLACK_BYTES)


cdef inline int pages_spill(const Side* s) noexcept nogil:
    """Where a side leaves pages for (over the memory aim, or prices too far apart):
    auto goes to tiers, which keep pages near the touch; anything else to blocks."""
    return LAYOUT_TIERS if s.policy == LAYOUT_AUTO else LAYOUT_BLOCKS


cdef int64_t pages_set(Side* s, int64_t key, int64_t qty) except -1:
    """Set the level at key to qty (0 deletes); return the previous quantity (0: none).

    May change the side's layout (a new unit, or ``pages_spill``): the caller must not
    keep pointers into the side across the call.
    """
    cdef int64_t u, old, pg, r
    cdef int slot, pos, tick
    cdef Page* p
    cdef Bucket* b
    cdef uint64_t bit
    cdef bint grew = False
    if not units_of(s, key, &u):
        if qty == 0:
            return 0                    # not a whole number of units: no such level
        side_relayout(s, LAYOUT_PAGES, max(gcd64(s.unit, key), 1))
        return side_set(s, key, qty, NULL)
    pg = u >> 12
    slot = (u >> 6) & 63
    tick = u & 63
    r = pg - s.lo
    if r < 0 or r >= s.npages or s.pages[r] == NULL:
        if qty == 0:
            return 0
        if pages_cover(s, pg):
            side_relayout(s, pages_spill(s), 0)     # prices too far apart for the directory
            return side_set(s, key, qty, NULL)
        r = pg - s.lo
        p = s.pages[r]
        if p == NULL:
            p = <Page*>calloc(1, sizeof(Page))
            if p == NULL:
                raise MemoryError()
            s.pages[r] = p
            s.page_bytes += sizeof(Page)
        grew = True
    else:
        p = s.pages[r]
    b = p.b[slot]
    bit = (<uint64_t>1) << tick
    if b == NULL:
        if qty == 0:
            return 0
        b = <Bucket*>malloc(bucket_bytes(BUCKET_FIRST_CAP))
        if b == NULL:
            if p.used == 0:                 # a page made for this level: no empty page stays
                free(p)
                s.pages[r] = NULL
                s.page_bytes -= sizeof(Page)
            raise MemoryError()
        b.bits = 0
        b.n = 0
        b.cap = BUCKET_FIRST_CAP
        p.b[slot] = b
        p.used_map |= (<uint64_t>1) << slot
        p.used += 1
        s.page_bytes += bucket_bytes(BUCKET_FIRST_CAP)
        grew = True
    pos = tb_popcount64(b.bits & (bit - 1))
    if b.bits & bit:
        old = b.q[pos]
        if qty != 0:
            b.q[pos] = qty
            return old
        memmove(&b.q[pos], &b.q[pos + 1], (b.n - pos - 1) * sizeof(int64_t))
        b.n -= 1
        b.bits &= ~bit
        s.count -= 1
        if b.n == 0:
            s.page_bytes -= bucket_bytes(b.cap)
            free(b)
            p.b[slot] = NULL
            p.used_map &= ~((<uint64_t>1) << slot)
            p.used -= 1
            if p.used == 0:
                free(p)
                s.pages[r] = NULL
                s.page_bytes -= sizeof(Page)
        if u == s.top:
            s.top = pages_next_below(s, u)
        if u == s.bottom:
            s.bottom = pages_next_above(s, u)
        return old
    if qty == 0:
        return 0                        # deleting an absent level is normal
    if b.n == b.cap:
        b = <Bucket*>realloc(b, bucket_bytes(b.cap * 2))
        if b == NULL:
            raise MemoryError()
        p.b[slot] = b
        s.page_bytes += bucket_bytes(b.cap * 2) - bucket_bytes(b.cap)
        b.cap *= 2
        grew = True
    memmove(&b.q[pos + 1], &b.q[pos], (b.n - pos) * sizeof(int64_t))
    b.q[pos] = qty
    b.n += 1
    b.bits |= bit
    s.count += 1
    if u > s.top:
        s.top = u
    if u < s.bottom:
        s.bottom = u
    if grew and pages_over_budget(s):
        side_relayout(s, pages_spill(s), 0)
    return 0


cdef int pages_load(Side* s, const int64_t* keys, const int64_t* qtys, Py_ssize_t n,
                    int64_t unit) except -1:
    """Fill an empty side with pages (zero quantities skipped, last one wins).

    The unit is the gcd of the keys and ``unit``. Returns 1, with the side still empty,
    when the keys are too far apart for the directory.
    """
    cdef Py_ssize_t j
    cdef int64_t lo = INT64_MAX, hi = INT64_MIN, g = unit
    cdef int policy = s.policy
    for j in range(n):
        if qtys[j] != 0:
            g = gcd64(g, keys[j])
            lo = min(lo, keys[j])
            hi = max(hi, keys[j])
    if lo > hi:
        s.layout = LAYOUT_PAGES
        pages_set_unit(s, g)
        return 0
    if g == 0:
        g = 1                           # only the price 0
    if (hi // g >> 12) - (lo // g >> 12) >= PAGES_MAX_DIRECTORY:
        return 1
    s.layout = LAYOUT_PAGES
    pages_set_unit(s, g)
    pages_cover(s, lo // g >> 12)
    pages_cover(s, hi // g >> 12)
    s.policy = LAYOUT_PAGES             # no budget check half way through
    try:
        for j in range(n):
            if qtys[j] != 0:
                pages_set(s, keys[j], qtys[j])
    finally:
        s.policy = policy
    return 0


cdef int pages_copy(Side* dst, const Side* src) except -1:
    cdef Py_ssize_t i
    cdef int j
    cdef const Page* p
    cdef Page* q
    cdef Bucket* b
    pages_set_unit(dst, src.unit)
    dst.top = src.top
    dst.bottom = src.bottom
    if src.npages:
        dst.pages = <Page**>calloc(src.npages, sizeof(Page*))
        if dst.pages == NULL:
            raise MemoryError()
        dst.lo = src.lo
        dst.npages = src.npages
    for i in range(src.npages):
        p = src.pages[i]
        if p == NULL:
            continue
        q = <Page*>calloc(1, sizeof(Page))
        if q == NULL:
            raise MemoryError()
        dst.pages[i] = q
        q.used_map = p.used_map
        q.used = p.used
        for j in range(64):
            if p.b[j] != NULL:
                b = <Bucket*>malloc(bucket_bytes(p.b[j].cap))
                if b == NULL:
                    raise MemoryError()
                memcpy(b, p.b[j], bucket_bytes(p.b[j].cap))
                q.b[j] = b
    dst.page_bytes = src.page_bytes
    return 0


cdef Py_ssize_t pages_collect(const Side* s, Py_ssize_t want, int64_t* keys, int64_t* qtys) noexcept:
    """The best ``want`` levels (at most count), best first, as keys and quantities."""
    cdef Py_ssize_t k = 0
    cdef int64_t r
    cdef const Page* p
    cdef const Bucket* b
    cdef uint64_t used, bits
    cdef int sl, t
    cdef int32_t i
    if s.count == 0:
        return 0
    r = (s.top >> 12) - s.lo
    while k < want and r >= 0:
        p = s.pages[r]
        if p != NULL:
            used = p.used_map
            while used and k < want:
                sl = tb_top_bit(used)
                used &= ~((<uint64_t>1) << sl)
                b = p.b[sl]
                bits = b.bits
                i = b.n - 1
                while bits and k < want:
                    t = tb_top_bit(bits)
                    bits &= ~((<uint64_t>1) << t)
                    keys[k] = (((s.lo + r) * 64 + sl) * 64 + t) * s.unit
                    qtys[k] = b.q[i]
                    i -= 1
                    k += 1
        r -= 1
    return k


cdef int pages_check(const Side* s, str name) except -1:
    cdef Py_ssize_t i, total = 0, held = 0
    cdef int j, used
    cdef const Page* p
    cdef const Bucket* b
    cdef int64_t top = INT64_MIN, bottom = INT64_MAX, u
    cdef uint64_t bits
    cdef int32_t k
    if s.count and s.unit <= 0:
        raise AssertionError(f"{name}: unit {s.unit} with {s.count} levels")
    held = s.npages * sizeof(Page*)
    for i in range(s.npages):
        p = s.pages[i]
        if p == NULL:
            continue
        held += sizeof(Page)
        used = 0
        for j in range(64):
            b = p.b[j]
            if (b != NULL) != <bint>((p.used_map >> j) & 1):
                raise AssertionError(f"{name}: page {s.lo + i} bucket {j} disagrees with the page's map")
            if b == NULL:
                continue
            used += 1
            held += bucket_bytes(b.cap)
            if not 1 <= b.n <= b.cap or tb_popcount64(b.bits) != b.n:
                raise AssertionError(f"{name}: bucket {(s.lo + i) * 64 + j} holds {b.n} of {b.cap}"
                                     f" with {tb_popcount64(b.bits)} bits set")
            bits = b.bits
            for k in range(b.n):
                u = ((s.lo + i) * 64 + j) * 64 + tb_low_bit(bits)
                bits &= bits - 1
                if b.q[k] <= 0:
                    raise AssertionError(f"{name}: level {u * s.unit * s.sign} has quantity {b.q[k]}")
                top = max(top, u)
                bottom = min(bottom, u)
            total += b.n
        if used == 0 or used != p.used:
            raise AssertionError(f"{name}: page {s.lo + i} counts {p.used} buckets, holds {used}")
    if total != s.count:
        raise AssertionError(f"{name}: count {s.count} but {total} levels stored")
    if top != s.top or bottom != s.bottom:
        raise AssertionError(f"{name}: best/lowest units {s.top}/{s.bottom}, stored {top}/{bottom}")
    if held != s.page_bytes:
        raise AssertionError(f"{name}: {s.page_bytes} bytes counted, {held} held")
    return 0


# ---------------------------------------------------------------- one side: a dense window

# The near tier of a tiers side, when the window is busy enough: a quantity for every unit
# (tick) of a window of TIERS_DENSE_SLOTS units, a bit per unit present and a bit per word
# of those. A set is an index; the best and lowest levels move through the bits. It costs
# 8 bytes and a bit per unit of the window whatever the levels in it (256 KiB a side), so a
# tiers side takes it only for a window holding a level per 256 units or more. Measured on
# the spot recording (interleaved, end to end): 16,384 units took 0.84x the blocks' time,
# 32,768 0.75x, 65,536 0.73x at 1 MiB a book.
cdef Py_ssize_t TIERS_DENSE_SLOTS = 32768      # 0: never a dense window
cdef Py_ssize_t DENSE_UNITS_PER_LEVEL = 256


cdef int dense_open(Side* s, int64_t base, Py_ssize_t slots, int64_t unit) except -1:
    """Make the empty side s a dense window of ``slots`` units from key ``base``."""
    s.dense_q = <int64_t*>calloc(slots, sizeof(int64_t))
    s.dense_bits = <uint64_t*>calloc(slots // 64, sizeof(uint64_t))
    s.dense_words = <uint64_t*>calloc(slots // 4096, sizeof(uint64_t))
    if s.dense_q == NULL or s.dense_bits == NULL or s.dense_words == NULL:
        dense_free(s)
        raise MemoryError()
    s.layout = LAYOUT_DENSE
    s.dense_base = base
    s.dense_slots = slots
    pages_set_unit(s, unit)
    s.top = INT64_MIN
    s.bottom = INT64_MAX
    return 0


cdef void dense_free(Side* s) noexcept:
    free(s.dense_q)
    free(s.dense_bits)
    free(s.dense_words)
    s.dense_q = NULL
    s.dense_bits = NULL
    s.dense_words = NULL
    s.dense_slots = 0


cdef inline bint dense_slot(const Side* s, int64_t key, int64_t* slot) noexcept nogil:
    """The slot of key, when the window holds it (a whole number of units inside it)."""
    cdef uint64_t d
    if key < s.dense_base:
        return False
    d = <uint64_t>key - <uint64_t>s.dense_base
    return d <= <uint64_t>INT64_MAX and units_of(s, <int64_t>d, slot) and slot[0] < s.dense_slots


cdef int64_t dense_next_below(const Side* s, int64_t u) noexcept nogil:
    """The highest slot present below u, or INT64_MIN."""
    cdef int64_t w = u >> 6, sw
    cdef uint64_t m
    if u & 63:
        m = s.dense_bits[w] & (((<uint64_t>1) << (u & 63)) - 1)
        if m:
            return w * 64 + tb_top_bit(m)
    w -= 1
    while w >= 0:
        sw = w >> 6
        m = s.dense_words[sw] & (~(<uint64_t>0) >> (63 - (w & 63)))
        if m:
            w = sw * 64 + tb_top_bit(m)
            return w * 64 + tb_top_bit(s.dense_bits[w])
        w = sw * 64 - 1
    return INT64_MIN


cdef int64_t dense_next_above(const Side* s, int64_t u) noexcept nogil:
    """The lowest slot present above u, or INT64_MAX."""
    cdef int64_t w = u >> 6, sw
    cdef int64_t words = s.dense_slots >> 6
    cdef uint64_t m
    if (u & 63) < 63:
        m = s.dense_bits[w] & (~(<uint64_t>0) << ((u & 63) + 1))
        if m:
            return w * 64 + tb_low_bit(m)
    w += 1
    while w < words:
        sw = w >> 6
        m = s.dense_words[sw] & (~(<uint64_t>0) << (w & 63))
        if m:
            w = sw * 64 + tb_low_bit(m)
            return w * 64 + tb_low_bit(s.dense_bits[w])
        w = (sw + 1) * 64
    return INT64_MAX


cdef inline int64_t dense_set(Side* s, int64_t key, int64_t qty) except -1:
    """Set the level at key to qty (0 deletes); return the previous quantity (0: none).

    A key the window cannot hold (outside it, or finer than the unit) turns the side into
    pages with the finer unit (the tiers side's next rebuild makes a window again). The
    tiers side slides the window first for a key just above it (tiers_slide_up)."""
    cdef int64_t u, old, w
    cdef uint64_t bit
    if not dense_slot(s, key, &u):
        if qty == 0:
            return 0                    # no level can be there
        side_relayout(s, LAYOUT_PAGES, max(gcd64(s.unit, key), 1))
        return side_set(s, key, qty, NULL)
    old = s.dense_q[u]
    s.dense_q[u] = qty
    if (old == 0) == (qty == 0):
        return old                      # an update in place, or deleting an absent level
    w = u >> 6
    bit = (<uint64_t>1) << (u & 63)
    if qty:
        s.dense_bits[w] |= bit
        s.dense_words[w >> 6] |= (<uint64_t>1) << (w & 63)
        s.count += 1
        if u > s.top:
            s.top = u
        if u < s.bottom:
            s.bottom = u
    else:
        s.dense_bits[w] &= ~bit
        if s.dense_bits[w] == 0:
            s.dense_words[w >> 6] &= ~((<uint64_t>1) << (w & 63))
        s.count -= 1
        if u == s.top:
            s.top = dense_next_below(s, u)
        if u == s.bottom:
            s.bottom = dense_next_above(s, u)
    return old


cdef Py_ssize_t dense_collect(const Side* s, Py_ssize_t want, int64_t* keys, int64_t* qtys) noexcept:
    """The best ``want`` levels (at most count), best first, as keys and quantities."""
    cdef Py_ssize_t k = 0
    cdef int64_t u = s.top if s.count else INT64_MIN
    while k < want and u != INT64_MIN:
        keys[k] = s.dense_base + u * s.unit
        qtys[k] = s.dense_q[u]
        k += 1
        u = dense_next_below(s, u)
    return k


cdef int dense_copy(Side* dst, const Side* src) except -1:
    dense_open(dst, src.dense_base, src.dense_slots, src.unit)
    memcpy(dst.dense_q, src.dense_q, src.dense_slots * sizeof(int64_t))
    memcpy(dst.dense_bits, src.dense_bits, src.dense_slots // 64 * sizeof(uint64_t))
    memcpy(dst.dense_words, src.dense_words, src.dense_slots // 4096 * sizeof(uint64_t))
    dst.top = src.top
    dst.bottom = src.bottom
    return 0


cdef void dense_shift(Side* s, int64_t d) noexcept:
    """Move the window d slots up (d > 0) or down (d < 0), d a multiple of 64 and |d| below
    dense_slots. The slots that leave the window are dropped (the caller has moved their
    levels out and counted them), the slots that come in are empty; top and bottom are the
    caller's to set. Two memmoves of the whole window (about 10 us for 32,768 slots)."""
    cdef Py_ssize_t n = s.dense_slots, words = n >> 6, i
    cdef Py_ssize_t a = d if d > 0 else -d
    cdef Py_ssize_t aw = a >> 6
    if d > 0:
        memmove(s.dense_q, s.dense_q + a, (n - a) * sizeof(int64_t))
        memset(s.dense_q + n - a, 0, a * sizeof(int64_t))
        memmove(s.dense_bits, s.dense_bits + aw, (words - aw) * sizeof(uint64_t))
        memset(s.dense_bits + words - aw, 0, aw * sizeof(uint64_t))
    else:
        memmove(s.dense_q + a, s.dense_q, (n - a) * sizeof(int64_t))
        memset(s.dense_q, 0, a * sizeof(int64_t))
        memmove(s.dense_bits + aw, s.dense_bits, (words - aw) * sizeof(uint64_t))
        memset(s.dense_bits, 0, aw * sizeof(uint64_t))
    memset(s.dense_words, 0, (words >> 6) * sizeof(uint64_t))
    for i in range(words):
        if s.dense_bits[i]:
            s.dense_words[i >> 6] |= (<uint64_t>1) << (i & 63)
    s.dense_base += d * s.unit


cdef Py_ssize_t dense_memory(const Side* s) noexcept:
    return s.dense_slots * sizeof(int64_t) + s.dense_slots // 8 + s.dense_slots // 512


cdef int dense_check(const Side* s, str name) except -1:
    cdef Py_ssize_t u, total = 0
    cdef int64_t top = INT64_MIN, bottom = INT64_MAX
    cdef bint present
    if s.dense_q == NULL or s.dense_slots % 4096:
        raise AssertionError(f"{name}: dense window of {s.dense_slots} slots")
    for u in range(s.dense_slots):
        present = s.dense_q[u] != 0
        if s.dense_q[u] < 0:
            raise AssertionError(f"{name}: negative quantity at slot {u}")
        if present != <bint>((s.dense_bits[u >> 6] >> (u & 63)) & 1):
            raise AssertionError(f"{name}: bit of slot {u} does not match its quantity")
        if present:
            total += 1
            top = u
            bottom = min(bottom, u)
    for u in range(s.dense_slots // 64):
        if (s.dense_bits[u] != 0) != <bint>((s.dense_words[u >> 6] >> (u & 63)) & 1):
            raise AssertionError(f"{name}: word bit {u} does not match its word")
    if total != s.count:
        raise AssertionError(f"{name}: count {s.count} but {total} levels stored")
    if total and (s.top != top or s.bottom != bottom):
        raise AssertionError(f"{name}: top/bottom {s.top}/{s.bottom}, levels span {top}/{bottom}")
    return 0


# ---------------------------------------------------------------- one side: tiers

# Tiers. Spot's book is dense near the touch and sparse beyond it: after the
# recording's replay its 600 best levels a side sit in 3-5 pages, the other
# 1,400-2,400 one or two to a bucket across hundreds of pages, where pages cost
# 3.6 times the blocks' bytes. Yet most of the levels its events touch are near
# the touch. So a tiers side keeps two inner sides: near, the keys at or above
# tier_floor, and far, every key below (blocks). A set goes to one of them by one
# compare. Near is a dense window (above) when the book is busy there, else pages
# for TIERS_WINDOW ticks below the best key (at most 1/64 of the price; its policy
# LAYOUT_NEAR falls back to blocks past the memory aim). When the best key leaves
# [tier_low, tier_high], a dense window slides (tiers_slide_up/down): its quantities and
# bits move by a multiple of 64 slots, and only the levels crossing the floor change
# tier. Anything else is rebuilt around the new best: O(levels) plus a fresh window.
# On the spot recording the window slides five times, 30-70 us each against 100-200 us
# for a rebuild (3.5-7.5% of the pass end to end, interleaved). benches/storage_lab has
# the measurements of the layouts (tiered.h).
cdef int64_t TIERS_WINDOW = 32768          # units: 8 pages of 4096


cdef inline int64_t add_clamped(int64_t a, int64_t b) noexcept nogil:
    """a + b for b >= 0, clamped at INT64_MAX."""
    return INT64_MAX if a > INT64_MAX - b else a + b


cdef inline int64_t sub_clamped(int64_t a, int64_t b) noexcept nogil:
    """a - b for b >= 0, clamped at INT64_MIN."""
    return INT64_MIN if a < INT64_MIN + b else a - b


cdef void tiers_dense_bounds(Side* s) noexcept:
    """Set the floor and the bounds of a tiers side from its dense near tier: the side
    moves its window once the best key leaves [floor + window / 8, the window's top]."""
    cdef Side* near = s.near
    cdef int64_t window = near.dense_slots * near.unit
    s.tier_floor = near.dense_base
    s.tier_low = near.dense_base + window // 8
    s.tier_high = add_clamped(near.dense_base, window - near.unit)


cdef int tiers_build(Side* s, const int64_t* keys, const int64_t* qtys, Py_ssize_t n) except -1:
    """Make the empty side s tiers from n distinct keys, best first, quantities > 0."""
    cdef Py_ssize_t j, k = n
    cdef int64_t unit = 0, window = 0, floor = INT64_MIN
    cdef bint dense = False
    cdef Side* near = <Side*>malloc(sizeof(Side))
    cdef Side* far = <Side*>malloc(sizeof(Side))
    if n >= 2:                  # one price alone says nothing of the tick
        for j in range(n):
            unit = gcd64(unit, keys[j])
    if unit == 0:
        unit = 1
    if n >= 2 and TIERS_DENSE_SLOTS and unit <= INT64_MAX // TIERS_DENSE_SLOTS:
        # a dense window, the best key at three quarters of it, if it holds a level per
        # DENSE_UNITS_PER_LEVEL units or more
        window = TIERS_DENSE_SLOTS * unit
        floor = sub_clamped(keys[0], window // 4 * 3)
        k = 0
        while k < n and keys[k] >= floor:
            k += 1
        dense = floor != INT64_MIN and k * DENSE_UNITS_PER_LEVEL >= TIERS_DENSE_SLOTS
    if n and not dense:
        # TIERS_WINDOW ticks, but at most 1/64 of the price (a gcd of a few prices can be
        # far coarser than the tick) and at least 64 units of the price's scale
        window = TIERS_WINDOW * unit if unit <= INT64_MAX // TIERS_WINDOW else INT64_MAX
        window = max(min(window, (keys[0] if keys[0] >= 0 else -keys[0]) >> 6), 64)
        floor = sub_clamped(keys[0], window)
        k = 0
        while k < n and keys[k] >= floor:
            k += 1
    if near != NULL:
        side_init(near, s.sign, LAYOUT_NEAR)
    if far != NULL:
        side_init(far, s.sign, LAYOUT_BLOCKS)
    try:
        if near == NULL or far == NULL:
            raise MemoryError()
        if dense:
            dense_open(near, floor, TIERS_DENSE_SLOTS, unit)
            for j in range(k):
                dense_set(near, keys[j], qtys[j])
        else:
            side_load_keys(near, keys, qtys, k, LAYOUT_NEAR, unit)
        side_load_keys(far, keys + k, qtys + k, n - k, LAYOUT_BLOCKS, 0)
    except BaseException:
        if near != NULL:
            side_free(near)
        if far != NULL:
            side_free(far)
        free(near)
        free(far)
        raise
    s.layout = LAYOUT_TIERS
    s.near = near
    s.far = far
    s.count = n
    s.tier_floor = floor
    if dense:
        tiers_dense_bounds(s)
    elif n:         # rebuild once the best key leaves [floor + window / 4, best + window]
        s.tier_low = add_clamped(floor, window // 4)
        s.tier_high = add_clamped(keys[0], window)
    else:           # empty: rebuild at the first level, to centre the window on it
        s.tier_low = INT64_MIN
        s.tier_high = INT64_MIN
    return 0


cdef int tiers_load(Side* s, const int64_t* keys, const int64_t* qtys, Py_ssize_t n) except -1:
    """Fill the empty side s with tiers from keys in any order (zero quantities skipped,
    last one wins): sorted through blocks first, then split."""
    cdef Side sorted_side
    cdef Py_ssize_t m
    cdef int64_t* best_keys = NULL
    cdef int64_t* best_qtys = NULL
    side_init(&sorted_side, s.sign, LAYOUT_BLOCKS)
    try:
        side_load_keys(&sorted_side, keys, qtys, n, LAYOUT_BLOCKS, 0)
        m = sorted_side.count
        best_keys = <int64_t*>malloc(max(m, 1) * sizeof(int64_t))
        best_qtys = <int64_t*>malloc(max(m, 1) * sizeof(int64_t))
        if best_keys == NULL or best_qtys == NULL:
            raise MemoryError()
        side_collect(&sorted_side, m, best_keys, best_qtys)
        tiers_build(s, best_keys, best_qtys, m)
    finally:
        side_free(&sorted_side)
        free(best_keys)
        free(best_qtys)
    return 0


cdef inline int64_t best_key_of(const Side* s) noexcept nogil:
    """The best key of a non-empty dense, pages or blocks side."""
    if s.layout == LAYOUT_DENSE:
        return s.dense_base + s.top * s.unit
    if s.layout == LAYOUT_PAGES:
        return s.top * s.unit
    return s.blocks[s.nblocks - 1].lv[s.blocks[s.nblocks - 1].n - 1].key


cdef int tiers_slide_up(Side* s, int64_t key) except -1:
    """Slide the dense window of the tiers side s up so that ``key``, above it, lands near
    three quarters of it; the levels below the new floor move to far (appended on top of
    it). Return 1, or 0 (nothing changed) when the key is off the window's grid or a whole
    window or more above it, or memory runs out: then the caller rebuilds the side."""
    cdef Side* near = s.near
    cdef Side* far = s.far
    cdef Py_ssize_t n = near.dense_slots, moved = 0
    cdef Py_ssize_t hint = far.nblocks - 1
    cdef int64_t u, d, slot, first_kept
    cdef uint64_t dist = <uint64_t>key - <uint64_t>near.dense_base
    if dist > <uint64_t>INT64_MAX or not units_of(near, <int64_t>dist, &u):
        return 0
    d = (u - n // 4 * 3 + 63) & ~(<int64_t>63)
    if d >= n:
        return 0
    slot = near.bottom if near.count else INT64_MAX
    try:
        while slot < d:
            blocks_set(far, near.dense_base + slot * near.unit, near.dense_q[slot], &hint)
            moved += 1
            slot = dense_next_above(near, slot)
    except MemoryError:
        slot = near.bottom      # undo: far gets back exactly what it had
        while moved:
            blocks_set(far, near.dense_base + slot * near.unit, 0, NULL)
            moved -= 1
            slot = dense_next_above(near, slot)
        return 0
    first_kept = slot
    near.count -= moved
    dense_shift(near, d)
    if near.count:
        near.top -= d
        near.bottom = first_kept - d
    else:
        near.top = INT64_MIN
        near.bottom = INT64_MAX
    tiers_dense_bounds(s)
    global _n_tier_slides
    _n_tier_slides += 1
    return 1


cdef int tiers_slide_down(Side* s) except -1:
    """Slide the dense window of the tiers side s down so that its best key (in near, or
    far's best when near is empty) lands near three quarters of it; far's levels at or
    above the new floor move into near. Return 1, or 0 (nothing changed) when the best is
    a whole window or more below, or a level to move in is off the window's grid: then
    the caller rebuilds the side. Never allocates."""
    cdef Side* near = s.near
    cdef Side* far = s.far
    cdef Py_ssize_t n = near.dense_slots, bi
    cdef int32_t i
    cdef int64_t u, d, base, key, qty, top_slot
    cdef uint64_t dist
    if near.count:
        top_slot = near.top
    elif far.count:
        blocks_best(far, &key, &qty)
        dist = <uint64_t>near.dense_base - <uint64_t>key
        if dist > <uint64_t>INT64_MAX or not units_of(near, <int64_t>dist, &u):
            return 0
        top_slot = -u
    else:
        return 0
    d = (n // 4 * 3 - top_slot + 63) & ~(<int64_t>63)
    if d >= n or near.dense_base < INT64_MIN + d * near.unit:
        return 0
    base = near.dense_base - d * near.unit
    # far's levels at or above the new floor must all sit on the window's grid
    bi = far.nblocks - 1
    while bi >= 0:
        i = far.blocks[bi].n - 1
        while i >= 0 and far.blocks[bi].lv[i].key >= base:
            if not units_of(near, far.blocks[bi].lv[i].key - base, &u):
                return 0
            i -= 1
        if i >= 0:
            break
        bi -= 1
    dense_shift(near, -d)
    if near.count:
        near.top += d
        near.bottom += d
    while far.count and blocks_best(far, &key, &qty) and key >= base:
        blocks_set(far, key, 0, NULL)
        units_of(near, key - base, &u)          # on the grid: checked above
        near.dense_q[u] = qty                   # (not dense_set: it stays inlined in the hot
        near.dense_bits[u >> 6] |= (<uint64_t>1) << (u & 63)    # path with one caller)
        near.dense_words[u >> 12] |= (<uint64_t>1) << ((u >> 6) & 63)
        near.count += 1
        near.top = max(near.top, u)
        near.bottom = u                         # far's levels come best first
    tiers_dense_bounds(s)
    global _n_tier_slides
    _n_tier_slides += 1
    return 1


cdef inline int64_t tiers_set(Side* s, int64_t key, int64_t qty, Py_ssize_t* hint) except -1:
    cdef Side* near = s.near
    cdef int64_t old
    cdef bint moved = False
    if key >= s.tier_floor:
        if near.layout == LAYOUT_DENSE:
            if key > s.tier_high and qty != 0:      # the touch rises past the window: slide
                tiers_slide_up(s, key)              # (if it cannot, rebuilt below)
            old = dense_set(near, key, qty)         # may become pages: near stays valid
        elif near.layout == LAYOUT_PAGES:
            old = pages_set(near, key, qty)         # may leave pages: near stays valid
        else:
            old = blocks_set(near, key, qty, NULL)
        if qty == 0:        # a delete moves the touch down only if near's best goes
            moved = old != 0 and (near.count == 0 or best_key_of(near) < s.tier_low)
        else:               # an insert moves it up only to the inserted key
            moved = old == 0 and key > s.tier_high
    else:                   # below the window: never the best while near holds a level
        old = blocks_set(s.far, key, qty, hint)
    s.count = near.count + s.far.count
    if moved and near.layout == LAYOUT_DENSE and qty == 0 and tiers_slide_down(s):
        moved = False
    if moved:
        try:        # the touch left the window: rebuild the tiers around it
            side_relayout(s, LAYOUT_TIERS, 0)
            global _n_tier_rebuilds
            _n_tier_rebuilds += 1
        except MemoryError:
            pass    # the tiers stay as they were: a valid side, only slower to update
    return old


cdef int tiers_copy(Side* dst, const Side* src) except -1:
    """Copy the tiers side src into dst, initialised empty with src's policy."""
    dst.near = <Side*>malloc(sizeof(Side))
    dst.far = <Side*>malloc(sizeof(Side))
    if dst.near == NULL or dst.far == NULL:
        free(dst.near)
        free(dst.far)
        dst.near = dst.far = NULL
        raise MemoryError()
    side_init(dst.near, src.sign, LAYOUT_NEAR)
    side_init(dst.far, src.sign, LAYOUT_BLOCKS)
    dst.layout = LAYOUT_TIERS       # from here side_free releases both inner sides
    dst.tier_floor = src.tier_floor
    dst.tier_low = src.tier_low
    dst.tier_high = src.tier_high
    side_copy(dst.near, src.near)
    side_copy(dst.far, src.far)
    return 0


cdef int tiers_check(const Side* s, str name) except -1:
    cdef int64_t key = 0, qty = 0
    if s.nblocks or s.blocks != NULL or s.npages or s.pages != NULL:
        raise AssertionError(f"{name}: tiers with blocks or pages of its own")
    if s.near == NULL or s.far == NULL:
        raise AssertionError(f"{name}: tiers without both inner sides")
    if s.near.layout == LAYOUT_TIERS or s.far.layout != LAYOUT_BLOCKS:
        raise AssertionError(f"{name}: inner layouts {s.near.layout}, {s.far.layout}")
    side_check(s.near, name + " (near tier)")
    side_check(s.far, name + " (far tier)")
    if s.count != s.near.count + s.far.count:
        raise AssertionError(f"{name}: count {s.count}, tiers hold {s.near.count} + {s.far.count}")
    if s.near.layout == LAYOUT_DENSE and s.near.dense_base != s.tier_floor:
        raise AssertionError(f"{name}: dense window from {s.near.dense_base}, floor {s.tier_floor}")
    if side_lowest(s.near, &key) and key < s.tier_floor:
        raise AssertionError(f"{name}: near tier holds key {key} below its floor {s.tier_floor}")
    if side_best(s.far, &key, &qty) and key >= s.tier_floor:
        raise AssertionError(f"{name}: far tier holds key {key} at or above the floor {s.tier_floor}")
    return 0


# ---------------------------------------------------------------- one side: any layout

cdef void side_init(Side* s, int64_t sign, int policy) noexcept:
    s.layout = LAYOUT_BLOCKS
    s.policy = policy
    s.count = 0
    s.sign = sign
    s.near = s.far = NULL
    s.tier_floor = INT64_MIN
    s.tier_low = s.tier_high = INT64_MIN
    s.dense_q = NULL
    s.dense_bits = s.dense_words = NULL
    s.dense_base = 0
    s.dense_slots = 0
    blocks_init(s)
    pages_init(s)


cdef void side_free(Side* s) noexcept:
    if s.layout == LAYOUT_TIERS:
        side_free(s.near)
        side_free(s.far)
        free(s.near)
        free(s.far)
    dense_free(s)
    blocks_free(s)
    pages_free(s)
    side_init(s, s.sign, s.policy)


cdef int64_t side_set(Side* s, int64_t key, int64_t qty, Py_ssize_t* hint=NULL) except -1:
    """Set the level at key to qty (0 deletes); return the previous quantity (0: none).

    ``hint`` (optional, in/out; blocks only): the block to start the search from; set
    to the block the key landed in, for the next level of the same event.
    """
    if s.layout == LAYOUT_PAGES:
        return pages_set(s, key, qty)
    if s.layout == LAYOUT_TIERS:
        return tiers_set(s, key, qty, hint)
    if s.layout == LAYOUT_DENSE:
        return dense_set(s, key, qty)
    return blocks_set(s, key, qty, hint)


cdef inline bint side_best(const Side* s, int64_t* key, int64_t* qty) noexcept nogil:
    if s.layout == LAYOUT_PAGES:
        return pages_best(s, key, qty)
    if s.layout == LAYOUT_TIERS:
        if s.near.count:
            return side_best(s.near, key, qty)
        return blocks_best(s.far, key, qty)
    if s.layout == LAYOUT_DENSE:
        if s.count == 0:
            return False
        key[0] = s.dense_base + s.top * s.unit
        qty[0] = s.dense_q[s.top]
        return True
    return blocks_best(s, key, qty)


cdef inline bint side_lowest(const Side* s, int64_t* key) noexcept nogil:
    """The side's worst level: the lowest bid, or the highest ask (as its key)."""
    if s.count == 0:
        return False
    if s.layout == LAYOUT_TIERS:
        return side_lowest(s.far, key) if s.far.count else side_lowest(s.near, key)
    if s.layout == LAYOUT_DENSE:
        key[0] = s.dense_base + s.bottom * s.unit
    elif s.layout == LAYOUT_PAGES:
        key[0] = s.bottom * s.unit
    else:
        key[0] = s.blocks[0].lv[0].key
    return True


cdef int64_t side_get(const Side* s, int64_t key) noexcept nogil:
    if s.layout == LAYOUT_PAGES:
        return pages_get(s, key)
    cdef int64_t u
    if s.layout == LAYOUT_TIERS:
        return side_get(s.near if key >= s.tier_floor else s.far, key)
    if s.layout == LAYOUT_DENSE:
        return s.dense_q[u] if dense_slot(s, key, &u) else 0
    return blocks_get(s, key)


cdef Py_ssize_t side_collect(const Side* s, Py_ssize_t want, int64_t* keys, int64_t* qtys) noexcept:
    """The best ``want`` levels (at most count), best first, as keys and quantities."""
    cdef Py_ssize_t got
    if s.layout == LAYOUT_PAGES:
        return pages_collect(s, want, keys, qtys)
    if s.layout == LAYOUT_TIERS:
        got = side_collect(s.near, want, keys, qtys)
        if got < want:
            got += side_collect(s.far, want - got, keys + got, qtys + got)
        return got
    if s.layout == LAYOUT_DENSE:
        return dense_collect(s, want, keys, qtys)
    return blocks_collect(s, want, keys, qtys)


cdef int side_load_keys(Side* s, const int64_t* keys, const int64_t* qtys, Py_ssize_t n,
                        int layout, int64_t unit) except -1:
    """Fill the empty side s from keys (zero quantities skipped, last one wins).

    ``layout`` LAYOUT_PAGES (with ``unit`` folded into the pages' unit) falls back to
    blocks when the keys are too far apart; LAYOUT_AUTO takes pages when they fit the
    memory aim (PAGES_LOAD_BYTES_PER_LEVEL), else tiers; LAYOUT_NEAR (a tiers side's
    near tier, a window of a few pages) takes pages unless they are over the budget that
    moves a side off pages (``pages_over_budget``), else blocks; LAYOUT_TIERS takes tiers.
    """
    cdef Py_ssize_t j
    cdef int64_t* px
    if layout == LAYOUT_TIERS:
        return tiers_load(s, keys, qtys, n)
    if layout != LAYOUT_BLOCKS and pages_load(s, keys, qtys, n, unit) == 0:
        if (layout == LAYOUT_PAGES
                or (s.count and s.page_bytes <= PAGES_LOAD_BYTES_PER_LEVEL * s.count)
                or (layout == LAYOUT_NEAR and not pages_over_budget(s))):
            return 0
        pages_free(s)
        s.count = 0
    if layout == LAYOUT_AUTO:
        return tiers_load(s, keys, qtys, n)
    s.layout = LAYOUT_BLOCKS
    px = <int64_t*>malloc(max(n, 1) * sizeof(int64_t))
    if px == NULL:
        raise MemoryError()
    for j in range(n):
        px[j] = keys[j] * s.sign
    try:
        blocks_load(s, px, qtys, n)
    finally:
        free(px)
    return 0


cdef int side_load(Side* s, const int64_t* px, const int64_t* qty, Py_ssize_t n) except -1:
    """Fill the empty side s from parsed snapshot prices, in the layout its policy asks for."""
    cdef Py_ssize_t j
    cdef int64_t* keys
    if s.policy == LAYOUT_BLOCKS:
        return blocks_load(s, px, qty, n)
    keys = <int64_t*>malloc(max(n, 1) * sizeof(int64_t))
    if keys == NULL:
        raise MemoryError()
    for j in range(n):
        keys[j] = px[j] * s.sign
    try:
        side_load_keys(s, keys, qty, n, s.policy, 0)
    finally:
        free(keys)
    return 0


cdef int side_relayout(Side* s, int layout, int64_t unit) except -1:
    """Store the side's levels again, in ``layout`` (pages: with ``unit`` folded in)."""
    cdef Side t
    cdef Py_ssize_t n = s.count
    cdef int64_t* keys = <int64_t*>malloc(max(n, 1) * sizeof(int64_t))
    cdef int64_t* qtys = <int64_t*>malloc(max(n, 1) * sizeof(int64_t))
    side_init(&t, s.sign, s.policy)
    try:
        if keys == NULL or qtys == NULL:
            raise MemoryError()
        side_collect(s, n, keys, qtys)
        if layout == LAYOUT_TIERS:
            tiers_build(&t, keys, qtys, n)      # collected: distinct and best first, no sort
        else:
            side_load_keys(&t, keys, qtys, n, layout, unit)
    except BaseException:
        side_free(&t)
        raise
    finally:
        free(keys)
        free(qtys)
    side_free(s)
    s[0] = t
    return 0


cdef int side_copy(Side* dst, const Side* src) except -1:
    side_init(dst, src.sign, src.policy)
    try:
        if src.layout == LAYOUT_TIERS:
            tiers_copy(dst, src)
        else:
            dst.layout = src.layout
            if src.layout == LAYOUT_PAGES:
                pages_copy(dst, src)
            elif src.layout == LAYOUT_DENSE:
                dense_copy(dst, src)
            else:
                blocks_copy(dst, src)
        dst.count = src.count
    except BaseException:
        side_free(dst)
        raise
    return 0


cdef list side_levels(const Side* s, object n):
    """Best-first (price, qty) ticks of the best n levels (all if n is None)."""
    cdef Py_ssize_t want, got, j
    cdef int64_t* keys
    cdef int64_t* qtys
    if n is None:
        want = s.count
    else:
        want = n
        if want < 0:
            raise ValueError(f"n must be >= 0 or None, got {n}")
        want = min(want, s.count)
    keys = <int64_t*>malloc(max(want, 1) * sizeof(int64_t))
    qtys = <int64_t*>malloc(max(want, 1) * sizeof(int64_t))
    try:
        if keys == NULL or qtys == NULL:
            raise MemoryError()
        got = side_collect(s, want, keys, qtys)
        return [(keys[j] * s.sign, qtys[j]) for j in range(got)]
    finally:
        free(keys)
        free(qtys)


cdef Py_ssize_t side_memory(const Side* s) noexcept:
    if s.layout == LAYOUT_PAGES:
        return s.page_bytes
    if s.layout == LAYOUT_TIERS:
        return 2 * sizeof(Side) + side_memory(s.near) + side_memory(s.far)
    if s.layout == LAYOUT_DENSE:
        return dense_memory(s)
    return blocks_memory(s)


cdef int side_check(const Side* s, str name) except -1:
    if s.layout == LAYOUT_TIERS:
        return tiers_check(s, name)
    if s.near != NULL or s.far != NULL:
        raise AssertionError(f"{name}: inner sides left over")
    if s.layout == LAYOUT_DENSE:
        if s.nblocks or s.blocks != NULL or s.npages or s.pages != NULL:
            raise AssertionError(f"{name}: a dense window with blocks or pages left over")
        return dense_check(s, name)
    if s.dense_q != NULL:
        raise AssertionError(f"{name}: a dense window left over")
    if s.layout == LAYOUT_PAGES:
        if s.nblocks or s.blocks != NULL:
            raise AssertionError(f"{name}: pages with blocks left over")
        return pages_check(s, name)
    if s.npages or s.pages != NULL:
        raise AssertionError(f"{name}: blocks with pages left over")
    return blocks_check(s, name)


# ---------------------------------------------------------------- the book

cdef inline int64_t id_arg(object value, str name) except? -1:
    cdef int64_t x = -1
    if isinstance(value, int):
        try:
            x = value
        except OverflowError:
            pass
    else:
        raise BookError(f"{name} must be an int update ID, got {type(value).__name__}: {value!r}")
    if x < 0:
        raise BookError(f"{name} must be an update ID in 0..2**63-1, got {value!r}")
    return x


cdef inline object own_copy(object levels):
    """Levels kept in the buffer must outlive the caller's buffer (frames are reused)."""
    if isinstance(levels, (bytes, str, list, tuple)):
        return levels
    if PyObject_CheckBuffer(levels):
        return bytes(memoryview(levels))
    return levels


@cython.final
cdef double EXACT_DOUBLE = 9007199254740992.0     # 2**53


cdef inline object ticks_to_float(int64_t ticks, double div_f, object div):
    """ticks / div as Python computes it, without making int objects for the common case.

    Below 2**53 a tick count is exact as a double, and so is a power of ten up to 10**22:
    one IEEE division of the two is then the correctly rounded quotient, which is what
    Python's int / int returns. Anything else goes through Python.
    """
    if div_f != 0.0 and -EXACT_DOUBLE < <double>ticks < EXACT_DOUBLE:
        return (<double>ticks) / div_f
    return ticks / div


cdef object tiers_info(const Side* s):
    if s.layout != LAYOUT_TIERS:
        return None
    return {"floor": s.tier_floor, "low": s.tier_low, "high": s.tier_high,
            "near_levels": s.near.count, "near_bytes": side_memory(s.near),
            "far_levels": s.far.count, "far_bytes": side_memory(s.far)}


cdef str side_layout_name(const Side* s):
    if s.layout == LAYOUT_TIERS:
        return "tiers:" + _LAYOUT_NAMES[s.near.layout]
    return _LAYOUT_NAMES[s.layout]


def _tiers_window(units=None):
    """The units (ticks) between a tiers side's best key and its floor at a build (32768);
    set it with ``units`` (for tests, which make it small to move the window often)."""
    global TIERS_WINDOW
    if units is not None:
        if not isinstance(units, int) or not 1 <= units <= 1 << 40:
            raise ValueError(f"units must be an int in 1..2**40, got {units!r}")
        TIERS_WINDOW = units
    return TIERS_WINDOW


def _tiers_dense_slots(slots=None):
    """The units of a tiers side's dense window (32768; 0: none); set it with ``slots``
    (a multiple of 4096, or 0), for the books built after (for tests and tuning)."""
    global TIERS_DENSE_SLOTS
    if slots is not None:
        if not isinstance(slots, int) or slots < 0 or slots % 4096 or slots > 1 << 24:
            raise ValueError(f"slots must be 0 or a multiple of 4096 up to 2**24, got {slots!r}")
        TIERS_DENSE_SLOTS = slots
    return TIERS_DENSE_SLOTS


cdef Py_ssize_t _n_tier_rebuilds = 0
cdef Py_ssize_t _n_tier_slides = 0


def _tier_rebuilds():
    """How many times tiers sides were rebuilt since the module was loaded."""
    return _n_tier_rebuilds


def _tier_slides():
    """How many times the dense windows of tiers sides slid since the module was loaded."""
    return _n_tier_slides


cdef dict _LAYOUT_POLICIES = {
    "auto": LAYOUT_AUTO, "blocks": LAYOUT_BLOCKS, "pages": LAYOUT_PAGES, "tiers": LAYOUT_TIERS}
cdef tuple _LAYOUT_NAMES = ("blocks", "pages", "auto", "tiers", "near", "dense")


cdef class OrderBook:
    """A validated local order book for one symbol; see ``_book.pyi`` and ``docs/book.md``."""

    def __cinit__(self):
        side_init(&self._bids, 1, LAYOUT_AUTO)
        side_init(&self._asks, -1, LAYOUT_AUTO)
        self._px = NULL
        self._qty = NULL
        self._old = NULL
        self._scratch_cap = 0

    def __dealloc__(self):
        side_free(&self._bids)
        side_free(&self._asks)
        free(self._px)
        free(self._qty)
        free(self._old)

    def __init__(self, symbol, market="spot", *, tick_size=None, step_size=None, max_depth=0,
                 buffer_limit=10_000, layout=None):
        if not isinstance(symbol, str) or not symbol or not symbol.isascii():
            raise BookError(f"symbol must be a non-empty ASCII string, got {symbol!r}")
        if not isinstance(max_depth, int) or max_depth < 0:
            raise ValueError(f"max_depth must be an int >= 0, got {max_depth!r}")
        if not isinstance(buffer_limit, int) or buffer_limit < 1:
            raise ValueError(f"buffer_limit must be an int >= 1, got {buffer_limit!r}")
        self._bids.policy = self._asks.policy = _LAYOUT_POLICIES[layout_policy(layout)]
        self._symbol = symbol.upper()
        self._symbol_bytes = self._symbol.encode("ascii")
        self._market = Market.parse(market)
        self._futures = self._market.is_futures
        self._pscale = -1
        self._qscale = -1
        if tick_size is not None:
            self._set_price_scale(_decimal.scale_of_step(tick_size))
        if step_size is not None:
            self._set_qty_scale(_decimal.scale_of_step(step_size))
        self._id = -1
        self._state = STATE_WAITING_FOR_SNAPSHOT
        self._reason = REASON_NOT_STARTED
        self._detail = "no snapshot yet"
        self._since_ns = time.time_ns()
        self._since_id = -1
        self._max_depth = max_depth
        self._buffer_limit = buffer_limit
        self._buffer = []
        self._has_floor = False
        self._has_ceiling = False

    def _set_price_scale(self, int scale):
        self._pscale = scale
        self._pdiv = 10 ** scale if scale >= 0 else None
        self._pdiv_f = float(self._pdiv) if scale >= 0 else 0.0

    def _set_qty_scale(self, int scale):
        self._qscale = scale
        self._qdiv = 10 ** scale if scale >= 0 else None
        self._qdiv_f = float(self._qdiv) if scale >= 0 else 0.0

    # ------------------------------------------------------------ state

    @property
    def symbol(self):
        return self._symbol

    @property
    def market(self):
        return self._market

    @property
    def state(self):
        return _STATES[self._state]

    @property
    def synced(self):
        return self._state == STATE_SYNCED

    @property
    def reason(self):
        return _REASONS[self._reason]

    @property
    def reason_detail(self):
        return self._detail

    @property
    def state_since_ns(self):
        return self._since_ns

    @property
    def state_since_update_id(self):
        return self._since_id

    @property
    def last_update_id(self):
        return self._id

    @property
    def price_scale(self):
        return self._pscale if self._pscale >= 0 else None

    @property
    def qty_scale(self):
        return self._qscale if self._qscale >= 0 else None

    @property
    def max_depth(self):
        return self._max_depth

    def _tiers(self):
        """For each tiers side (None otherwise), bids then asks: its floor key and the
        levels and bytes of its near and far tiers. Core only, for tests and tuning."""
        return tiers_info(&self._bids), tiers_info(&self._asks)

    @property
    def layout(self):
        return _LAYOUT_NAMES[self._bids.policy]

    def _layouts(self):
        """The storage each side uses now, bids then asks: "blocks", "pages", or for tiers
        "tiers:" and the near tier's layout ("tiers:dense", "tiers:pages", "tiers:blocks")."""
        return side_layout_name(&self._bids), side_layout_name(&self._asks)

    @property
    def bid_count(self):
        return self._bids.count

    @property
    def ask_count(self):
        return self._asks.count

    @property
    def buffered(self):
        return len(self._buffer)

    @property
    def first_buffered_id(self):
        return self._buffer[0][0] if self._buffer else -1

    @property
    def bid_floor(self):
        return self._floor if self._has_floor else None

    @property
    def ask_ceiling(self):
        return self._ceiling if self._has_ceiling else None

    def stats(self):
        return {
            "applied": self._n_applied,
            "bbo_changes": self._n_bbo,
            "stale": self._n_stale,
            "buffered": self._n_buffered,
            "gaps": self._n_gaps,
            "no_bridge": self._n_no_bridge,
            "crossed": self._n_crossed,
            "snapshots": self._n_snapshots,
            "stale_snapshots": self._n_stale_snapshots,
            "buffer_dropped": self._n_dropped,
            "bad_buffered": self._n_bad_buffered,
        }

    cdef int _set_state(self, int state, int reason, str detail) except -1:
        if state != self._state:
            self._since_ns = time.time_ns()
            self._since_id = self._id
        self._state = state
        self._reason = reason
        self._detail = detail
        return 0

    cdef bint is_synced_c(self) noexcept:
        return self._state == STATE_SYNCED

    # ------------------------------------------------------------ parsing

    cdef int _ensure_scratch(self, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap
        cdef int64_t* p
        if n <= self._scratch_cap:
            return 0
        cap = max(n, self._scratch_cap * 2, 256)
        p = <int64_t*>realloc(self._px, cap * sizeof(int64_t))
        if p == NULL:
            raise MemoryError()
        self._px = p
        p = <int64_t*>realloc(self._qty, cap * sizeof(int64_t))
        if p == NULL:
            raise MemoryError()
        self._qty = p
        p = <int64_t*>realloc(self._old, cap * sizeof(int64_t))
        if p == NULL:
            raise MemoryError()
        self._old = p
        self._scratch_cap = cap
        return 0

    cdef Py_ssize_t _parse_side(self, object levels, Py_ssize_t start) except -1:
        """Parse one side into the scratch arrays from index start; return its level count."""
        cdef const char* p
        cdef Py_ssize_t n
        cdef Py_buffer view
        if self._pscale < 0 or self._qscale < 0:
            raise BookError(f"{self._symbol}: scales unknown before the first snapshot")
        if isinstance(levels, bytes):
            return self._parse_json(PyBytes_AS_STRING(levels), PyBytes_GET_SIZE(levels), start)
        if isinstance(levels, str):
            p = PyUnicode_AsUTF8AndSize(levels, &n)
            return self._parse_json(p, n, start)
        if PyObject_CheckBuffer(levels):
            PyObject_GetBuffer(levels, &view, PyBUF_SIMPLE)
            try:
                return self._parse_json(<const char*>view.buf, view.len, start)
            finally:
                PyBuffer_Release(&view)
        return self._parse_seq(levels, start)

    cdef Py_ssize_t _parse_json(self, const char* p, Py_ssize_t n, Py_ssize_t start) except -1:
        """Scan ``[["p","q"],...]`` straight into int64s.

        Only the exchange's exact shape is scanned here (``scan_levels``);
        anything irregular (escapes, non-digits, numbers instead of strings,
        bad JSON) goes to the general path, which decodes with msgspec and
        reports the first fault exactly as the reference book does.
        """
        cdef Py_ssize_t count = 0
        cdef Py_ssize_t i
        self._ensure_scratch(start + n // 9 + 1)    # a pair takes at least 9 bytes: ["1","1"]
        i = scan_levels(p, skip_ws(p, 0, n), n, self._pscale, self._qscale,
                        self._px + start, self._qty + start, &count)
        if i < 0 or skip_ws(p, i, n) != n:
            return self._parse_json_slow(p, n, start)
        return count

    cdef Py_ssize_t _parse_json_slow(self, const char* p, Py_ssize_t n, Py_ssize_t start) except -1:
        return self._parse_seq(_decode_levels(PyBytes_FromStringAndSize(p, n)), start)

    cdef Py_ssize_t _parse_seq(self, object seq, Py_ssize_t start) except -1:
        """A Python sequence of (price, qty) pairs: the whole side's shape first, then the numbers."""
        cdef Py_ssize_t j = 0
        _check_pairs(seq)
        self._ensure_scratch(start + len(seq))
        for pair in seq:
            self._px[start + j] = parse_item(pair[0], self._pscale)
            self._qty[start + j] = parse_item(pair[1], self._qscale)
            j += 1
        return j

    def _parse_only(self, bids, asks):
        """Parse both sides into scratch and return the level count; the book is untouched.

        The floor the benchmarks compare the full apply against: the same scan
        and int64 conversion, with no book work.
        """
        cdef Py_ssize_t nb = self._parse_side(bids, 0)
        return nb + self._parse_side(asks, nb)

    # ------------------------------------------------------------ feeding

    def apply_snapshot(self, last_update_id, bids, asks, *, limit=None):
        cdef int64_t lid = id_arg(last_update_id, "lastUpdateId")
        cdef int price_dec = 0, qty_dec = 0
        cdef Py_ssize_t pairs = 0
        cdef int old_pscale = self._pscale, old_qscale = self._qscale
        cdef Py_ssize_t nb, na
        cdef Side new_bids, new_asks
        cdef int64_t bk, bq, ak, aq
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive int or None, got {limit!r}")
        if self._buffer and snapshot_is_stale(lid, self._buffer[0][0], self._futures):
            self._n_stale_snapshots += 1
            return _SNAPSHOT_RESULTS[SNAPSHOT_STALE]
        if old_pscale < 0 or old_qscale < 0:
            # Only well-formed sides count: a snapshot side that is not raises below, and a
            # buffered event with an unreadable side can never be applied.
            for side in (bids, asks):
                texts = _side_texts(side)
                if texts is not None:
                    pairs += _max_decimals(texts, &price_dec, &qty_dec)
            for event in self._buffer:
                event_bids = _side_texts(event[3])
                event_asks = _side_texts(event[4])
                if event_bids is not None and event_asks is not None:
                    pairs += _max_decimals(event_bids, &price_dec, &qty_dec)
                    pairs += _max_decimals(event_asks, &price_dec, &qty_dec)
            if pairs == 0:
                price_dec = qty_dec = 8      # nothing to infer from: an empty book
            if old_pscale < 0:
                self._set_price_scale(_decimal.check_scale(price_dec))
            if old_qscale < 0:
                try:
                    self._set_qty_scale(_decimal.check_scale(qty_dec))
                except DecimalError:
                    self._set_price_scale(old_pscale)
                    raise
        side_init(&new_bids, 1, self._bids.policy)
        side_init(&new_asks, -1, self._asks.policy)
        try:
            try:
                nb = self._parse_side(bids, 0)
            except DecimalError:
                _side_pairs(asks)           # the reference reads both shapes before any number
                raise
            na = self._parse_side(asks, nb)
            side_load(&new_bids, self._px, self._qty, nb)
            side_load(&new_asks, self._px + nb, self._qty + nb, na)
            if side_best(&new_bids, &bk, &bq) and side_best(&new_asks, &ak, &aq) and bk >= -ak:
                raise BookError(
                    f"{self._symbol}: crossed snapshot {lid}: best bid {self.price_str(bk)}"
                    f" >= best ask {self.price_str(-ak)}")
        except BaseException:
            side_free(&new_bids)
            side_free(&new_asks)
            self._set_price_scale(old_pscale)
            self._set_qty_scale(old_qscale)
            raise
        side_free(&self._bids)
        side_free(&self._asks)
        self._bids = new_bids
        self._asks = new_asks
        self._bid_ticks = None
        self._ask_ticks = None
        self._id = lid
        self._n_snapshots += 1
        self._has_floor = self._bids.count > 0 and (limit is None or self._bids.count >= limit)
        if self._has_floor:
            side_lowest(&self._bids, &self._floor)
        self._has_ceiling = self._asks.count > 0 and (limit is None or self._asks.count >= limit)
        if self._has_ceiling:
            side_lowest(&self._asks, &self._ceiling)
            self._ceiling = -self._ceiling
        self._set_state(STATE_BRIDGING, REASON_NONE, "")
        self._since_ns = time.time_ns()         # a snapshot always starts a new period
        self._since_id = lid
        self._trim()
        pending = self._buffer
        self._buffer = []
        for event in pending:
            try:
                self._apply(event[0], event[1], event[2], event[3], event[4])
            except BookError:
                self._n_bad_buffered += 1
        if self._state == STATE_SYNCED:
            return _SNAPSHOT_RESULTS[SNAPSHOT_SYNCED]
        if self._state == STATE_BRIDGING:
            return _SNAPSHOT_RESULTS[SNAPSHOT_BRIDGING]
        return _SNAPSHOT_RESULTS[SNAPSHOT_OUT_OF_SYNC]

    def apply_diff(self, first_id, final_id, bids, asks, prev_final_id=None):
        return self._apply(first_id, final_id, prev_final_id, bids, asks)

    def apply_event(self, event):
        symbol = event.s
        if symbol != self._symbol:
            raise BookError(f"event for {symbol!r} fed to the {self._symbol} book")
        return self._apply(event.U, event.u, event.pu if self._futures else None, event.b, event.a)

    def apply_frame(self, frame):
        """Apply one depth message as received (combined-stream or bare event), bytes-like or str.

        The exchange's own layout is read in one C pass (decode, symbol check,
        update-ID rules, levels); any other valid layout is decoded with msgspec
        and applied by ``apply_event``, with the same result. Malformed JSON or
        a wrong shape raises ``DecodeError``, another symbol ``BookError``; the
        book is unchanged then. Returns the same flags as ``apply_event``.
        """
        cdef Py_buffer view
        cdef int flags
        if type(frame) is bytes:           # what a socket or a file gives: no buffer request
            flags = self.apply_frame_c(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), NULL)
        else:
            if isinstance(frame, str):
                frame = (<str>frame).encode()
            PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
            try:
                flags = self.apply_frame_c(<const char*>view.buf, view.len, NULL)
            finally:
                PyBuffer_Release(&view)
        if flags != F_DECLINED:
            return flags
        return self.apply_event(decode_depth_message(frame, self._market))

    def _scan_only(self, frame):
        """The frame scan of ``apply_frame`` alone: ``(U, u, pu, E, bid levels, ask levels)``
        for a message in the exchange's exact layout, None when ``apply_frame`` would hand it
        to msgspec. Every price and quantity is parsed (into scratch); the book is untouched.

        The floor the benchmarks compare ``apply_frame`` against, and the tests' view of
        which messages take the C path."""
        cdef Py_buffer view
        cdef FrameScan f
        cdef int ok
        if isinstance(frame, str):
            frame = (<str>frame).encode()
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            ok = self._read_frame(<const char*>view.buf, view.len, &f)
        finally:
            PyBuffer_Release(&view)
        if not ok:
            return None
        return (f.first_id, f.final_id, f.prev_final_id if self._futures else None, f.event_time, f.nb, f.na)

    cdef object _apply(self, object first_id, object final_id, object prev_final_id, object bids,
                       object asks):
        cdef int64_t U = id_arg(first_id, "U (first update ID)")
        cdef int64_t u = id_arg(final_id, "u (final update ID)")
        cdef int64_t pu = -1
        cdef Py_ssize_t nb, na
        cdef int flags
        if self._futures:
            if prev_final_id is None:
                raise BookError(f"{self._symbol}: futures events need pu (previous final update ID)")
            pu = id_arg(prev_final_id, "pu (previous final update ID)")
        else:
            prev_final_id = None                # spot events carry no pu
        if U > u:
            raise BookError(f"{self._symbol}: event U={U} > u={u}")
        flags = self._gate(U, u, pu)
        if flags == 0:
            nb = self._parse_side(bids, 0)
            na = self._parse_side(asks, nb)
            flags = self._apply_parsed(nb, na, u)
            if flags != F_CROSSED:
                return flags
        if flags != F_STALE:                    # buffered, gap or crossed: kept for the resync
            self._buffer_event(U, u, prev_final_id, bids, asks)
        return flags

    cdef int apply_diff_raw(self, int64_t first_id, int64_t final_id, int64_t prev_final_id,
                            const char* bids, Py_ssize_t bids_len,
                            const char* asks, Py_ssize_t asks_len) except -1:
        cdef Py_ssize_t nb, na
        cdef int flags
        if first_id < 0 or first_id > final_id:
            raise BookError(f"{self._symbol}: bad update IDs U={first_id}, u={final_id}")
        flags = self._gate(first_id, final_id, prev_final_id)
        if flags == 0:
            if self._pscale < 0 or self._qscale < 0:
                raise BookError(f"{self._symbol}: scales unknown before the first snapshot")
            nb = self._parse_json(bids, bids_len, 0)
            na = self._parse_json(asks, asks_len, nb)
            flags = self._apply_parsed(nb, na, final_id)
            if flags != F_CROSSED:
                return flags
        if flags != F_STALE:                    # the caller's spans do not outlive the call: copy
            self._buffer_event(first_id, final_id, prev_final_id if self._futures else None,
                               PyBytes_FromStringAndSize(bids, bids_len),
                               PyBytes_FromStringAndSize(asks, asks_len))
        return flags

    cdef bint _scan_frame(self, const char* p, Py_ssize_t n, FrameScan* f) noexcept:
        """Read a depth message in the exchange's exact layout; False at the first surprise.

        Accepted: ``{"stream":"<name>","data":<event>}`` or a bare ``<event>``, where
        the event is an object of this market's keys only (spot: e E s U u b a;
        futures: also T and pu, and COIN-M's ps), each once, in any order except
        b before a, with no whitespace anywhere, ``e`` equal to
        depthUpdate, ``s`` equal to this book's symbol, plain unsigned integers and
        plain strings. That is a strict subset of JSON with exactly the meaning
        the msgspec Structs give it, so whatever this accepts decodes the same
        either way (tests/test_frame.py checks that on real and generated
        messages); everything else returns False and goes to msgspec.
        """
        cdef Py_ssize_t i = 0, end, key_at, key_len
        cdef bint wrapped = False
        cdef int bit = 0
        cdef int64_t value = 0
        cdef char c0
        cdef Py_ssize_t sym_len = len(self._symbol_bytes)
        f.seen = 0
        f.prev_final_id = -1
        if n > 11 and memcmp(p, _STREAM_HEAD, 11) == 0:
            end = scan_plain_string(p, 11, n)
            if end < 0 or n - end < 10 or memcmp(p + end, _DATA_HEAD, 10) != 0:
                return False
            i = end + 10
            wrapped = True
        elif n > 0 and p[0] == b'{':
            i = 1
        else:
            return False
        while True:
            if i >= n or p[i] != b'"':
                return False
            key_at = i + 1
            end = scan_plain_string(p, key_at, n)
            if end < 0 or end + 1 >= n or p[end + 1] != b':':
                return False
            key_len = end - key_at
            i = end + 2
            c0 = p[key_at]
            if key_len == 1:
                if c0 == b'b' or c0 == b'a':
                    if c0 == b'b':
                        if f.seen & K_a:
                            return False        # scratch holds bids first
                        bit = K_b
                        f.bids_at = i
                        end = scan_levels(p, i, n, self._pscale, self._qscale,
                                          self._px, self._qty, &f.nb)
                        f.bids_len = end - i
                    else:
                        if not f.seen & K_b:
                            return False
                        bit = K_a
                        f.asks_at = i
                        end = scan_levels(p, i, n, self._pscale, self._qscale,
                                          self._px + f.nb, self._qty + f.nb, &f.na)
                        f.asks_len = end - i
                    i = end
                elif c0 == b'e' or c0 == b's':
                    if i >= n or p[i] != b'"':
                        return False
                    end = scan_plain_string(p, i + 1, n)
                    if end < 0:
                        return False
                    if c0 == b'e':
                        bit = K_e
                        if end - i - 1 != 11 or memcmp(p + i + 1, _DEPTH_UPDATE, 11) != 0:
                            return False
                    else:
                        bit = K_s
                        if (end - i - 1 != sym_len
                                or memcmp(p + i + 1, <const char*>self._symbol_bytes, sym_len) != 0):
                            return False
                    i = end + 1
                else:
                    i = scan_uint(p, i, n, &value)
                    if c0 == b'U':
                        bit = K_U
                        f.first_id = value
                    elif c0 == b'u':
                        bit = K_u
                        f.final_id = value
                    elif c0 == b'E':
                        bit = K_E
                        f.event_time = value
                    elif c0 == b'T' and self._futures:
                        bit = K_T
                    else:
                        return False
            elif key_len == 2 and self._futures and c0 == b'p' and p[key_at + 1] == b'u':
                bit = K_pu
                i = scan_uint(p, i, n, &f.prev_final_id)
            elif (key_len == 2 and self._market is Market.COINM and c0 == b'p'
                    and p[key_at + 1] == b's'):
                bit = K_ps
                if i >= n or p[i] != b'"':
                    return False
                end = scan_plain_string(p, i + 1, n)
                i = end + 1 if end >= 0 else -1
            else:
                return False
            if i < 0 or f.seen & bit:
                return False
            f.seen |= bit
            if i >= n:
                return False
            if p[i] == b',':
                i += 1
                continue
            if p[i] != b'}':
                return False
            i += 1
            break
        if wrapped:
            if i >= n or p[i] != b'}':
                return False
            i += 1
        if i != n:
            return False
        bit = FUTURES_KEYS if self._futures else SPOT_KEYS
        return (f.seen & bit) == bit

    cdef int _read_frame(self, const char* p, Py_ssize_t n, FrameScan* f) except -1:
        """1 when the C pass read the whole frame (levels in scratch), 0 when it declines."""
        if self._pscale < 0 or self._qscale < 0:
            return 0                            # no snapshot yet: the general path buffers
        self._ensure_scratch(n // 9 + 1)        # a pair takes at least 9 bytes: ["1","1"]
        return self._scan_frame(p, n, f) and f.first_id <= f.final_id

    cdef int apply_frame_c(self, const char* frame, Py_ssize_t n, int64_t* event_time) except -1:
        cdef FrameScan f
        cdef int flags
        if not self._read_frame(frame, n, &f):
            return F_DECLINED
        if event_time != NULL:
            event_time[0] = f.event_time
        flags = self._gate(f.first_id, f.final_id, f.prev_final_id)
        if flags == 0:
            flags = self._apply_parsed(f.nb, f.na, f.final_id)
            if flags != F_CROSSED:
                return flags
        if flags != F_STALE:                    # the frame does not outlive the call: copy
            self._buffer_event(f.first_id, f.final_id, f.prev_final_id if self._futures else None,
                               PyBytes_FromStringAndSize(frame + f.bids_at, f.bids_len),
                               PyBytes_FromStringAndSize(frame + f.asks_at, f.asks_len))
        return flags

    cdef int _gate(self, int64_t U, int64_t u, int64_t pu) except -1:
        """The sync decision, before anything is parsed: 0 to apply the event, F_STALE to
        ignore it, F_BUFFERED or F_GAP for the caller to keep it for the (re)sync."""
        cdef int verdict
        if self._state == STATE_WAITING_FOR_SNAPSHOT or self._state == STATE_OUT_OF_SYNC:
            return F_BUFFERED
        verdict = self._classify(U, u, pu)
        if verdict == F_STALE:
            self._n_stale += 1
        elif verdict == F_GAP:
            self._on_gap(U, u, pu)
        else:
            return 0
        return verdict

    cdef int _classify(self, int64_t U, int64_t u, int64_t pu) noexcept:
        """The rules of tickbook._rules, in C: F_APPLIED, F_STALE or F_GAP (gap or no bridge)."""
        cdef int64_t book_id = self._id
        if self._state == STATE_BRIDGING:
            if self._futures:
                if u < book_id:
                    return F_STALE
                return F_GAP if U > book_id else F_APPLIED
            if u <= book_id:
                return F_STALE
            return F_GAP if U > book_id + 1 else F_APPLIED
        if self._futures:
            if pu == book_id:
                return F_APPLIED
            return F_STALE if u <= book_id else F_GAP
        if u < book_id:
            return F_STALE
        return F_GAP if U > book_id + 1 else F_APPLIED

    def _on_gap(self, int64_t U, int64_t u, int64_t pu):
        cdef int64_t book_id = self._id
        if self._state == STATE_BRIDGING:
            self._n_no_bridge += 1
            bound = f"{book_id}" if self._futures else f"{book_id} + 1"
            detail = f"no bridge: first event after snapshot {book_id} has U={U} > {bound} (u={u})"
            reason = REASON_NO_BRIDGE
        else:
            self._n_gaps += 1
            if self._futures:
                detail = f"gap: pu={pu} != previous u {book_id} (U={U}, u={u})"
            else:
                detail = f"gap: U={U} > book id {book_id} + 1 (u={u})"
            reason = REASON_GAP
        self._buffer = []
        self._set_state(STATE_OUT_OF_SYNC, reason, detail)

    cdef int _buffer_event(self, int64_t first_id, int64_t final_id, object pu, object bids,
                           object asks) except -1:
        self._buffer.append((first_id, final_id, pu, own_copy(bids), own_copy(asks)))
        self._n_buffered += 1
        if len(self._buffer) > self._buffer_limit:
            del self._buffer[0]
            self._n_dropped += 1
        return 0

    cdef int _apply_parsed(self, Py_ssize_t nb, Py_ssize_t na, int64_t final_id) except -1:
        """Set the parsed levels; undo them all if the book would cross. Returns F_* flags."""
        cdef Py_ssize_t j = 0
        cdef Py_ssize_t total = nb + na
        cdef int64_t bk0 = NO_KEY, bq0 = 0, ak0 = NO_KEY, aq0 = 0
        cdef int64_t bk = NO_KEY, bq = 0, ak = NO_KEY, aq = 0
        cdef bint has_bid, has_ask
        side_best(&self._bids, &bk0, &bq0)
        side_best(&self._asks, &ak0, &aq0)
        cdef Py_ssize_t hint = self._bids.nblocks - 1
        try:
            while j < nb:
                self._old[j] = side_set(&self._bids, self._px[j], self._qty[j], &hint)
                j += 1
            hint = self._asks.nblocks - 1
            while j < total:
                self._old[j] = side_set(&self._asks, -self._px[j], self._qty[j], &hint)
                j += 1
        except MemoryError:
            self._undo(nb, j)
            raise
        has_bid = side_best(&self._bids, &bk, &bq)
        has_ask = side_best(&self._asks, &ak, &aq)
        if has_bid and has_ask and bk >= -ak:
            detail = (f"crossed: event u={final_id} would leave best bid {self.price_str(bk)}"
                      f" >= best ask {self.price_str(-ak)}")
            self._undo(nb, total)
            self._n_crossed += 1
            self._buffer = []
            self._set_state(STATE_OUT_OF_SYNC, REASON_CROSSED, detail)
            return F_CROSSED
        if bk != bk0 or bq != bq0:
            self._bid_ticks = None
        if ak != ak0 or aq != aq0:
            self._ask_ticks = None
        self._id = final_id
        if self._state == STATE_BRIDGING:
            self._set_state(STATE_SYNCED, REASON_NONE, "")
        if self._max_depth:
            self._trim()
        self._n_applied += 1
        if bk != bk0 or bq != bq0 or ak != ak0 or aq != aq0:
            self._n_bbo += 1
            return F_APPLIED | F_BBO_CHANGED
        return F_APPLIED

    cdef void _undo(self, Py_ssize_t nb, Py_ssize_t done) noexcept:
        """Restore the quantities logged for the first ``done`` parsed levels, newest first."""
        cdef Py_ssize_t j = done - 1
        while j >= 0:
            if j < nb:
                side_set(&self._bids, self._px[j], self._old[j])
            else:
                side_set(&self._asks, -self._px[j], self._old[j])
            j -= 1

    cdef int _trim(self) except -1:
        cdef int64_t key = 0
        if self._max_depth == 0:
            return 0
        while self._bids.count > self._max_depth:
            side_lowest(&self._bids, &key)                # lowest bid
            side_set(&self._bids, key, 0)
            if not self._has_floor or key + 1 > self._floor:
                self._floor = key + 1
                self._has_floor = True
        while self._asks.count > self._max_depth:
            side_lowest(&self._asks, &key)                # highest ask (key = -price)
            side_set(&self._asks, key, 0)
            if not self._has_ceiling or -key - 1 < self._ceiling:
                self._ceiling = -key - 1
                self._has_ceiling = True
        return 0

    def invalidate(self, detail=""):
        self._buffer = []
        if self._state == STATE_BRIDGING or self._state == STATE_SYNCED:
            self._set_state(STATE_OUT_OF_SYNC, REASON_INVALIDATED, detail or "invalidated")

    # ------------------------------------------------------------ top of book

    cdef bint best_bid_c(self, int64_t* price, int64_t* qty) noexcept:
        return side_best(&self._bids, price, qty)

    cdef bint best_ask_c(self, int64_t* price, int64_t* qty) noexcept:
        cdef int64_t key
        if not side_best(&self._asks, &key, qty):
            return False
        price[0] = -key
        return True

    def best_bid_ticks(self):
        cdef int64_t p, q
        if self._bid_ticks is not None:
            return self._bid_ticks
        if not self.best_bid_c(&p, &q):
            return None
        self._bid_ticks = (p, q)
        return self._bid_ticks

    def best_ask_ticks(self):
        cdef int64_t p, q
        if self._ask_ticks is not None:
            return self._ask_ticks
        if not self.best_ask_c(&p, &q):
            return None
        self._ask_ticks = (p, q)
        return self._ask_ticks

    def best_bid(self):
        cdef int64_t p, q
        if not self.best_bid_c(&p, &q):
            return None
        return (ticks_to_float(p, self._pdiv_f, self._pdiv), ticks_to_float(q, self._qdiv_f, self._qdiv))

    def best_ask(self):
        cdef int64_t p, q
        if not self.best_ask_c(&p, &q):
            return None
        return (ticks_to_float(p, self._pdiv_f, self._pdiv), ticks_to_float(q, self._qdiv_f, self._qdiv))

    def best_bid_str(self):
        cdef int64_t p, q
        if not self.best_bid_c(&p, &q):
            return None
        return (self.price_str(p), self.qty_str(q))

    def best_ask_str(self):
        cdef int64_t p, q
        if not self.best_ask_c(&p, &q):
            return None
        return (self.price_str(p), self.qty_str(q))

    def spread_ticks(self):
        cdef int64_t bp, bq, ap, aq
        if not (self.best_bid_c(&bp, &bq) and self.best_ask_c(&ap, &aq)):
            return None
        return ap - bp

    def spread(self):
        ticks = self.spread_ticks()
        return None if ticks is None else ticks / self._pdiv

    def mid(self):
        cdef int64_t bp, bq, ap, aq
        if not (self.best_bid_c(&bp, &bq) and self.best_ask_c(&ap, &aq)):
            return None
        return _analytics.mid(bp, ap, self._pscale)

    def microprice(self):
        cdef int64_t bp, bq, ap, aq
        if not (self.best_bid_c(&bp, &bq) and self.best_ask_c(&ap, &aq)):
            return None
        return _analytics.microprice(bp, bq, ap, aq, self._pscale)

    # ------------------------------------------------------------ depth

    def bids_ticks(self, n=None):
        return side_levels(&self._bids, n)

    def asks_ticks(self, n=None):
        return side_levels(&self._asks, n)

    def bids(self, n=None):
        pdiv, qdiv = self._pdiv, self._qdiv
        return [(p / pdiv, q / qdiv) for p, q in side_levels(&self._bids, n)]

    def asks(self, n=None):
        pdiv, qdiv = self._pdiv, self._qdiv
        return [(p / pdiv, q / qdiv) for p, q in side_levels(&self._asks, n)]

    def bids_str(self, n=None):
        return [(self.price_str(p), self.qty_str(q)) for p, q in side_levels(&self._bids, n)]

    def asks_str(self, n=None):
        return [(self.price_str(p), self.qty_str(q)) for p, q in side_levels(&self._asks, n)]

    def bids_ticks_array(self, n=None):
        return _analytics.ticks_array(side_levels(&self._bids, n))

    def asks_ticks_array(self, n=None):
        return _analytics.ticks_array(side_levels(&self._asks, n))

    def bids_array(self, n=None):
        return _analytics.float_array(self.bids_ticks_array(n), self._pscale, self._qscale)

    def asks_array(self, n=None):
        return _analytics.float_array(self.asks_ticks_array(n), self._pscale, self._qscale)

    def qty_at_ticks(self, price):
        cdef int64_t p = price
        cdef int64_t q = side_get(&self._bids, p)
        if q == 0 and p != INT64_MIN:
            q = side_get(&self._asks, -p)
        return q

    def qty_at(self, price):
        return self.qty_at_ticks(self.parse_price(price)) / self._qdiv

    def depth_within_bps_ticks(self, bps):
        cdef int64_t bp, bq, ap, aq
        if not (self.best_bid_c(&bp, &bq) and self.best_ask_c(&ap, &aq)):
            return None
        return _analytics.depth_within_bps_ticks(bp, ap, bps, self.bids_ticks, self.asks_ticks)

    def depth_within_bps(self, bps):
        ticks = self.depth_within_bps_ticks(bps)
        if ticks is None:
            return None
        return (ticks[0] / self._qdiv, ticks[1] / self._qdiv)

    def fill(self, side, *, qty=None, notional=None):
        if side == "buy":
            top = self.asks_ticks
        elif side == "sell":
            top = self.bids_ticks
        else:
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        return _analytics.fill(top, max(self._pscale, 0), max(self._qscale, 0), qty, notional)

    def checksum(self, n):
        return _analytics.checksum(self.bids_str(n), self.asks_str(n))

    # ------------------------------------------------------------ conversions

    def _need_scales(self):
        if self._pscale < 0 or self._qscale < 0:
            raise BookError(f"{self._symbol}: scales unknown before the first snapshot")

    def parse_price(self, text):
        self._need_scales()
        return parse_item(text, self._pscale)

    def parse_qty(self, text):
        self._need_scales()
        return parse_item(text, self._qscale)

    def price_str(self, ticks):
        self._need_scales()
        return _decimal.format_decimal(ticks, self._pscale)

    def qty_str(self, ticks):
        self._need_scales()
        return _decimal.format_decimal(ticks, self._qscale)

    # ------------------------------------------------------------ misc

    def copy(self):
        cdef OrderBook other = OrderBook.__new__(OrderBook)
        side_copy(&other._bids, &self._bids)
        side_copy(&other._asks, &self._asks)
        other._symbol = self._symbol
        other._symbol_bytes = self._symbol_bytes
        other._market = self._market
        other._futures = self._futures
        other._set_price_scale(self._pscale)
        other._set_qty_scale(self._qscale)
        other._id = self._id
        other._state = self._state
        other._reason = self._reason
        other._detail = self._detail
        other._since_ns = self._since_ns
        other._since_id = self._since_id
        other._max_depth = self._max_depth
        other._buffer_limit = self._buffer_limit
        other._buffer = list(self._buffer)
        other._has_floor = self._has_floor
        other._floor = self._floor
        other._has_ceiling = self._has_ceiling
        other._ceiling = self._ceiling
        other._n_applied = self._n_applied
        other._n_bbo = self._n_bbo
        other._n_stale = self._n_stale
        other._n_buffered = self._n_buffered
        other._n_gaps = self._n_gaps
        other._n_no_bridge = self._n_no_bridge
        other._n_crossed = self._n_crossed
        other._n_snapshots = self._n_snapshots
        other._n_stale_snapshots = self._n_stale_snapshots
        other._n_dropped = self._n_dropped
        other._n_bad_buffered = self._n_bad_buffered
        return other

    def __copy__(self):
        return self.copy()

    def memory_bytes(self):
        return side_memory(&self._bids) + side_memory(&self._asks)

    def _check(self):
        cdef int64_t bp, bq, ap, aq
        side_check(&self._bids, "bids")
        side_check(&self._asks, "asks")
        if self._bid_ticks is not None and (not self.best_bid_c(&bp, &bq) or self._bid_ticks != (bp, bq)):
            raise AssertionError(f"kept best bid {self._bid_ticks} is not the best bid")
        if self._ask_ticks is not None and (not self.best_ask_c(&ap, &aq) or self._ask_ticks != (ap, aq)):
            raise AssertionError(f"kept best ask {self._ask_ticks} is not the best ask")
        if self._state == STATE_SYNCED and self.best_bid_c(&bp, &bq) and self.best_ask_c(&ap, &aq):
            if bp >= ap:
                raise AssertionError(f"synced book is crossed: bid {bp} >= ask {ap}")
        if self._max_depth and (self._bids.count > self._max_depth or self._asks.count > self._max_depth):
            raise AssertionError("max_depth exceeded")
        if (self._bids.count or self._asks.count) and (self._pscale < 0 or self._qscale < 0):
            raise AssertionError("levels stored without scales")
        if len(self._buffer) > self._buffer_limit:
            raise AssertionError("buffer beyond buffer_limit")
        in_sync_phase = self._state == STATE_BRIDGING or self._state == STATE_SYNCED
        if in_sync_phase != (self._reason == REASON_NONE):
            raise AssertionError(f"state {self.state.name} with reason {self.reason.name}")

    def __repr__(self):
        bid = self.best_bid_str() if self._pscale >= 0 else None
        ask = self.best_ask_str() if self._pscale >= 0 else None
        return (f"<OrderBook {self._symbol} {self._market.value} {self.state.name}"
                f" id={self._id} bid={bid} ask={ask}"
                f" levels={self._bids.count}/{self._asks.count}>")
