/* Two tiers, prototype: a dense window of DENSE_SLOTS ticks near the touch (a quantity per
 * tick, a bit per tick and a bit per word of those), sorted blocks for every key outside it.
 * The window covers [base, base + DENSE_SLOTS * unit), the best key at three quarters of it;
 * the side is rebuilt (every level split again) when the best key leaves [base + slots / 8,
 * base + slots - 1]. 8 bytes a tick of window whatever the levels: 256 KiB a side at 32,768.
 * Set the size with LAB_CFLAGS=-DDENSE_SLOTS=N (a multiple of 4096). The core's tiers side
 * took this as its near tier (LAYOUT_DENSE in _book.pyx). */
#pragma GCC diagnostic ignored "-Wunused-function" /* blocks' own load and hash */

#define TIER_NAME(name) far_##name
#include "tier_names.h"
#include "blocks.h"
#undef TIER_NAME
#include "tier_names.h"

#ifndef DENSE_SLOTS
#define DENSE_SLOTS 32768
#endif
#define DENSE_WORDS (DENSE_SLOTS / 64)

typedef struct {
    far_Side far;
    int64_t *q;            /* DENSE_SLOTS quantities */
    uint64_t bits[DENSE_WORDS], summary[(DENSE_WORDS + 63) / 64];
    int64_t base, unit, lo_key, hi_key; /* window [base, hi_key]; rebuild below lo_key */
    ptrdiff_t near_count, count;
    int64_t best_slot;     /* -1: empty window */
    int64_t sign;
} Side;

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

static void side_init(Side *s, int64_t sign) {
    memset(s, 0, sizeof(*s));
    far_side_init(&s->far, sign);
    s->q = calloc(DENSE_SLOTS, sizeof(int64_t));
    s->sign = sign;
    s->best_slot = -1;
    s->unit = 1;
    s->base = INT64_MAX;  /* nothing dense until the first build */
    s->hi_key = INT64_MIN;
}

static inline ptrdiff_t side_touch_hint(const Side *s) { return far_side_touch_hint(&s->far); }

static inline int64_t dense_top_below(const Side *s, int64_t slot) { /* highest set slot < slot, or -1 */
    int64_t w = slot >> 6;
    uint64_t m = (slot & 63) ? s->bits[w] & ((1ULL << (slot & 63)) - 1) : 0;
    if (m) return (w << 6) + 63 - __builtin_clzll(m);
    for (w = w - 1; w >= 0; w--) {
        /* summary lookup: words below w with bits */
        int64_t sw = w >> 6;
        uint64_t sm = s->summary[sw] & ((w & 63) == 63 ? ~0ULL : ((1ULL << ((w & 63) + 1)) - 1));
        while (!sm) {
            if (--sw < 0) return -1;
            sm = s->summary[sw];
        }
        w = (sw << 6) + 63 - __builtin_clzll(sm);
        return (w << 6) + 63 - __builtin_clzll(s->bits[w]);
    }
    return -1;
}

static void rebuild(Side *s);

__attribute__((noinline)) static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint) {
    int64_t d = key - s->base;
    if (key >= s->base && key <= s->hi_key && d % s->unit == 0) {
        int64_t slot = d / s->unit, old = s->q[slot];
        s->q[slot] = qty;
        uint64_t bit = 1ULL << (slot & 63);
        int64_t w = slot >> 6;
        if (qty && !old) {
            s->bits[w] |= bit;
            s->summary[w >> 6] |= 1ULL << (w & 63);
            s->near_count++;
            s->count++;
            if (slot > s->best_slot) s->best_slot = slot;
        } else if (!qty && old) {
            s->bits[w] &= ~bit;
            if (!s->bits[w]) s->summary[w >> 6] &= ~(1ULL << (w & 63));
            s->near_count--;
            s->count--;
            if (slot == s->best_slot) {
                s->best_slot = dense_top_below(s, slot);
                if (s->best_slot < 0 || s->base + s->best_slot * s->unit < s->lo_key) rebuild(s);
            }
        }
        return old;
    }
    if (key > s->hi_key) { /* above the window (the touch moved up): rebuild with it */
        int64_t old = far_side_set(&s->far, key, qty, hint);
        s->count = s->near_count + s->far.count;
        if (qty) rebuild(s);
        return old;
    }
    if (key >= s->base) abort(); /* off the grid inside the window: not in this prototype */
    int64_t old = far_side_set(&s->far, key, qty, hint);
    s->count = s->near_count + s->far.count;
    return old;
}

/* Move every level to far, pick the window around the best, move the window's levels in. */
static void rebuild(Side *s) {
    for (int64_t w = 0; w < DENSE_WORDS; w++)
        for (uint64_t m = s->bits[w]; m; m &= m - 1) {
            int64_t slot = (w << 6) + __builtin_ctzll(m);
            far_side_set(&s->far, s->base + slot * s->unit, s->q[slot], NULL);
            s->q[slot] = 0;
        }
    memset(s->bits, 0, sizeof s->bits);
    memset(s->summary, 0, sizeof s->summary);
    s->near_count = 0;
    s->best_slot = -1;
    int64_t bk, bq;
    if (!far_side_best(&s->far, &bk, &bq)) {
        s->base = INT64_MAX;
        s->hi_key = INT64_MIN;
        return;
    }
    s->base = bk - (int64_t)(DENSE_SLOTS * 3 / 4) * s->unit;
    s->hi_key = s->base + (int64_t)(DENSE_SLOTS - 1) * s->unit;
    s->lo_key = s->base + (int64_t)(DENSE_SLOTS / 8) * s->unit;
    /* pull the window's levels out of far: they are its best levels */
    while (far_side_best(&s->far, &bk, &bq) && bk >= s->base) {
        int64_t d = bk - s->base;
        if (d % s->unit) abort();
        int64_t slot = d / s->unit;
        far_side_set(&s->far, bk, 0, NULL);
        s->q[slot] = bq;
        s->bits[slot >> 6] |= 1ULL << (slot & 63);
        s->summary[slot >> 12] |= 1ULL << ((slot >> 6) & 63);
        s->near_count++;
        if (slot > s->best_slot) s->best_slot = slot;
    }
    s->count = s->near_count + s->far.count;
}

static void side_load(Side *s, const int64_t *px, const int64_t *qty, ptrdiff_t n) {
    int64_t g = 0;
    for (ptrdiff_t j = 0; j < n; j++) g = gcd64(g, px[j]);
    s->unit = g ? g : 1;
    for (ptrdiff_t j = 0; j < n; j++)
        if (qty[j]) far_side_set(&s->far, s->sign * px[j], qty[j], NULL);
    rebuild(s);
}

static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    if (s->best_slot >= 0) {
        *key = s->base + s->best_slot * s->unit;
        *qty = s->q[s->best_slot];
        return 1;
    }
    return far_side_best(&s->far, key, qty);
}

static void side_free(Side *s) { far_side_free(&s->far); free(s->q); }

static uint64_t side_hash(const Side *s) {
    uint64_t h = far_side_hash(&s->far);
    for (int64_t slot = 0; slot < DENSE_SLOTS; slot++)
        if (s->q[slot]) {
            h = (h ^ (uint64_t)(s->base + slot * s->unit)) * 1099511628211ULL;
            h = (h ^ (uint64_t)s->q[slot]) * 1099511628211ULL;
        }
    return h;
}

static size_t side_bytes(const Side *s) {
    return far_side_bytes(&s->far) + DENSE_SLOTS * sizeof(int64_t) + sizeof(s->bits) + sizeof(s->summary);
}
