# cython: language_level=3
"""C-level interface of the order book, for other Cython code to ``cimport``.

A reader or a strategy written in Cython calls ``apply_diff_raw`` and the
``best_*_c`` accessors through the class's vtable: no Python call, no
boxing. Semantics are those of ``docs/book.md``; the Python methods of the
same names wrap these.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t

# Levels per block of a side. 32 keys plus 32 quantities is 512 bytes: the
# search reads 5 cache lines at most, an insert or a delete moves at most 31
# pairs (chosen by measurement; see the storage notes in _book.pyx).
cdef enum:
    BLOCK_CAP = 32

cdef struct Level:
    int64_t key                 # price for bids, -price for asks
    int64_t qty                 # quantity ticks, > 0

cdef struct Block:
    int32_t n                   # levels in use, 1..BLOCK_CAP (an empty block is freed)
    Level lv[BLOCK_CAP]         # ascending by key; a level's quantity shares its key's line

# A side's storage layout (Side.layout), and what the book asks for (Side.policy).
cdef enum:
    LAYOUT_BLOCKS = 0           # sorted blocks of levels: any prices, any spread
    LAYOUT_PAGES = 1            # indexed by price: dense books, no search
    LAYOUT_AUTO = 2             # policy only: pages when they fit the memory aim, else tiers
    LAYOUT_TIERS = 3            # two inner sides: pages near the touch, blocks beyond
    LAYOUT_NEAR = 4             # policy only (a tiers side's near tier): pages, else blocks
    LAYOUT_DENSE = 5            # a tiers side's near tier only: a quantity per tick of a window

# Price-indexed storage (LAYOUT_PAGES). Prices are counted in units (one tick: the gcd of
# the prices seen); unit k lives in bucket k >> 6, a 64-bit map of the units present with
# their quantities packed in price order, and the buckets hang off pages of 64.
cdef extern from *:
    """
    typedef struct {
        uint64_t bits;          /* units present */
        int32_t n, cap;         /* quantities held, allocated */
        int64_t q[];            /* quantities of the units present, ascending */
    } TbBucket;
    typedef struct {
        TbBucket *b[64];
        uint64_t used_map;      /* buckets present */
        int32_t used;
    } TbPage;
    #if defined(_MSC_VER)
    #include <intrin.h>
    static __inline int tb_popcount64(unsigned __int64 x) { return (int)__popcnt64(x); }
    static __inline int tb_top_bit(unsigned __int64 x) {
        unsigned long i; _BitScanReverse64(&i, x); return (int)i;
    }
    static __inline int tb_low_bit(unsigned __int64 x) {
        unsigned long i; _BitScanForward64(&i, x); return (int)i;
    }
    #else
    #if defined(__POPCNT__)
    static inline int tb_popcount64(uint64_t x) { return __builtin_popcountll(x); }
    #else
    /* Without the instruction, __builtin_popcountll is a call into libgcc: count inline. */
    static inline int tb_popcount64(uint64_t x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    }
    #endif
    static inline int tb_top_bit(uint64_t x) { return 63 - __builtin_clzll(x); }
    static inline int tb_low_bit(uint64_t x) { return __builtin_ctzll(x); }
    #endif
    """
    ctypedef struct Bucket "TbBucket":
        uint64_t bits
        int32_t n
        int32_t cap
        int64_t q[1]            # flexible: cap quantities are allocated
    ctypedef struct Page "TbPage":
        Bucket* b[64]
        uint64_t used_map
        int32_t used
    int tb_popcount64(uint64_t x) noexcept nogil
    int tb_top_bit(uint64_t x) noexcept nogil      # x != 0
    int tb_low_bit(uint64_t x) noexcept nogil      # x != 0

cdef struct Side:
    int layout                  # LAYOUT_BLOCKS or LAYOUT_PAGES
    int policy                  # LAYOUT_*: what the book asked for
    Py_ssize_t count            # total levels
    int64_t sign                # +1 bids, -1 asks: price = key * sign
    # LAYOUT_BLOCKS: levels sorted ascending by key, so the best level of either side is
    # the last key of the last block: O(1) to read, and the busy region near the touch
    # sits at the end where inserts move the fewest pairs.
    Block** blocks              # owned array of owned blocks, ascending
    int64_t* firsts             # owned; firsts[i] == blocks[i].keys[0], for the block search
    Py_ssize_t nblocks
    Py_ssize_t cap              # allocated slots in blocks/firsts
    # LAYOUT_PAGES: key = unit number * unit; page p covers units [p * 4096, p * 4096 + 4096)
    Page** pages                # owned directory of owned pages (NULL: none there)
    int64_t lo                  # page number of pages[0]
    Py_ssize_t npages           # directory slots
    int64_t unit                # > 0 once a level was stored
    # key / unit without a division (see units_of): unit = odd << unit_shift
    int64_t unit_low_mask       # (1 << unit_shift) - 1
    int unit_shift
    uint64_t unit_inverse       # odd * unit_inverse == 1 (mod 2**64)
    int64_t unit_qmin, unit_qmax    # INT64_MIN / odd, INT64_MAX / odd (empty when no unit)
    int64_t top                 # highest unit number present (the best level), or INT64_MIN
    int64_t bottom              # lowest unit number present, or INT64_MAX
    Py_ssize_t page_bytes       # bytes held by the directory, pages and buckets
    # LAYOUT_TIERS: the keys >= tier_floor in near (its own layout, policy LAYOUT_NEAR), the
    # others in far (blocks); this side's own blocks and pages stay empty.
    Side* near                  # owned, or NULL when the side is not tiers
    Side* far                   # owned, or NULL when the side is not tiers
    int64_t tier_floor          # INT64_MIN: every key goes to near
    int64_t tier_low            # the side is rebuilt when its best key leaves [low, high]
    int64_t tier_high
    # LAYOUT_DENSE: the units [0, dense_slots) of a window starting at key dense_base, each
    # with its quantity (0: no level) and a bit; a bit per word of bits; the unit's division
    # constants, top (best) and bottom (lowest) as in pages, counted in slots.
    int64_t* dense_q            # owned, dense_slots quantities
    uint64_t* dense_bits        # owned, dense_slots / 64 words
    uint64_t* dense_words       # owned, dense_slots / 4096 words: which words of bits are not 0
    int64_t dense_base
    Py_ssize_t dense_slots      # a multiple of 4096

# Numeric values shared with tickbook._types (checked by tests/test_types.py).
cdef enum:
    STATE_WAITING_FOR_SNAPSHOT = 0
    STATE_BRIDGING = 1
    STATE_SYNCED = 2
    STATE_OUT_OF_SYNC = 3

cdef enum:
    REASON_NONE = 0
    REASON_NOT_STARTED = 1
    REASON_GAP = 2
    REASON_NO_BRIDGE = 3
    REASON_CROSSED = 4
    REASON_INVALIDATED = 5

cdef enum:
    F_APPLIED = 1
    F_BBO_CHANGED = 2
    F_BUFFERED = 4
    F_STALE = 8
    F_GAP = 16
    F_CROSSED = 32

# apply_frame_c only: the message is not in the exchange's exact layout (or names another
# symbol, or the scales are not known yet); nothing was read into the book or counted, and
# the caller decodes it with msgspec and applies it through the general path.
cdef enum:
    F_DECLINED = 64

# What the frame scan read from one depth message (levels go to the book's scratch arrays).
cdef struct FrameScan:
    int seen                    # K_* bits of the keys met
    int64_t event_time          # E
    int64_t first_id            # U
    int64_t final_id            # u
    int64_t prev_final_id       # pu (futures), else -1
    Py_ssize_t bids_at, bids_len, asks_at, asks_len   # the raw level arrays, for buffering
    Py_ssize_t nb, na           # parsed levels per side (bids first in scratch)

cdef enum:
    SNAPSHOT_STALE = 0
    SNAPSHOT_BRIDGING = 1
    SNAPSHOT_SYNCED = 2
    SNAPSHOT_OUT_OF_SYNC = 3


@cython.final
cdef class OrderBook:
    cdef Side _bids                 # owned storage
    cdef Side _asks                 # owned storage
    cdef str _symbol
    cdef bytes _symbol_bytes        # ASCII of _symbol, for the frame scan
    cdef object _market             # tickbook._types.Market
    cdef bint _futures              # USD-M / COIN-M rules (pu), else spot rules
    cdef int _pscale                # price scale, -1 until known
    cdef int _qscale                # quantity scale, -1 until known
    cdef bint _scales_given         # from tick_size/step_size, never inferred
    cdef object _pdiv               # 10**price_scale as a Python int (float conversion at the edge)
    cdef object _qdiv
    cdef double _pdiv_f             # the same as doubles (exact: scales are at most 18), 0 if unknown
    cdef double _qdiv_f
    # What best_bid_ticks()/best_ask_ticks() returned, kept while that side's best level stays
    # the same (None: not kept); bots read the top of book after every message.
    cdef object _bid_ticks
    cdef object _ask_ticks
    cdef int64_t _id                # book update ID, -1 before any snapshot
    cdef int _state
    cdef int _reason
    cdef str _detail
    cdef object _since_ns
    cdef int64_t _since_id
    cdef Py_ssize_t _max_depth      # 0: no cap
    cdef Py_ssize_t _buffer_limit
    cdef list _buffer               # (U, u, pu, bids, asks) tuples awaiting a snapshot
    cdef bint _has_floor
    cdef int64_t _floor             # bids below are incomplete (ticks)
    cdef bint _has_ceiling
    cdef int64_t _ceiling           # asks above are incomplete (ticks)
    # scratch for one event: parsed levels (bids first) and the undo log
    cdef int64_t* _px               # owned
    cdef int64_t* _qty              # owned
    cdef int64_t* _old              # owned; quantity each level had before the event
    cdef Py_ssize_t _scratch_cap
    # counters (see stats())
    cdef int64_t _n_applied, _n_bbo, _n_stale, _n_buffered, _n_gaps, _n_no_bridge
    cdef int64_t _n_crossed, _n_snapshots, _n_stale_snapshots, _n_dropped, _n_bad_buffered

    # Apply one depth event whose level arrays are JSON text ``[["p","q"],...]``.
    # ``bids``/``asks`` are borrowed for the duration of the call only (they are
    # copied if the event has to be buffered). ``prev_final_id`` is ignored on
    # spot. Returns the F_* flags; raises (book unchanged) on bad input.
    cdef int apply_diff_raw(self, int64_t first_id, int64_t final_id, int64_t prev_final_id,
                            const char* bids, Py_ssize_t bids_len,
                            const char* asks, Py_ssize_t asks_len) except -1

    # Apply one depth message exactly as received: a combined-stream message
    # ``{"stream":..,"data":{..}}`` or a bare event. Decoding, the symbol check, the
    # update-ID rules and the levels all run in C in one pass over the bytes.
    # Returns the F_* flags, or F_DECLINED when the message is not in the exchange's
    # exact layout: then nothing changed and the caller takes the general path
    # (msgspec), which decides and words any error. ``event_time`` (may be NULL)
    # receives E. The bytes are borrowed for the call only.
    cdef int apply_frame_c(self, const char* frame, Py_ssize_t n, int64_t* event_time) except -1

    # Best level as ticks; False (outputs untouched) when the side is empty.
    cdef bint best_bid_c(self, int64_t* price, int64_t* qty) noexcept
    cdef bint best_ask_c(self, int64_t* price, int64_t* qty) noexcept
    cdef bint is_synced_c(self) noexcept

    # internals shared by the Python and C entry points
    cdef object _apply(self, object first_id, object final_id, object prev_final_id, object bids,
                       object asks)
    cdef int _ensure_scratch(self, Py_ssize_t n) except -1
    cdef Py_ssize_t _parse_side(self, object levels, Py_ssize_t start) except -1
    cdef Py_ssize_t _parse_json(self, const char* p, Py_ssize_t n, Py_ssize_t start) except -1
    cdef bint _scan_frame(self, const char* p, Py_ssize_t n, FrameScan* f) noexcept
    cdef int _read_frame(self, const char* p, Py_ssize_t n, FrameScan* f) except -1
    cdef Py_ssize_t _parse_json_slow(self, const char* p, Py_ssize_t n, Py_ssize_t start) except -1
    cdef Py_ssize_t _parse_seq(self, object seq, Py_ssize_t start) except -1
    cdef int _apply_parsed(self, Py_ssize_t nb, Py_ssize_t na, int64_t final_id) except -1
    cdef void _undo(self, Py_ssize_t nb, Py_ssize_t done) noexcept
    cdef int _classify(self, int64_t first_id, int64_t final_id, int64_t prev_final_id) noexcept
    cdef int _gate(self, int64_t U, int64_t u, int64_t pu) except -1
    cdef int _buffer_event(self, int64_t first_id, int64_t final_id, object pu, object bids,
                           object asks) except -1
    cdef int _set_state(self, int state, int reason, str detail) except -1
    cdef int _trim(self) except -1
