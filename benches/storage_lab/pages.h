/* A price-indexed layout, prototype: no search at all.
 *
 * Keys are divided by the price unit (the gcd of the snapshot's prices: one tick), so
 * neighbouring ticks are neighbouring integers k. Tick k lives in bucket k >> 6, which
 * holds a 64-bit map of the ticks present and their quantities packed in tick order
 * (position = popcount of the map below the tick); buckets hang off pages of 64, and the
 * pages off a directory that grows at either end. Finding a level is two indexed loads
 * and a popcount; an insert or a delete moves at most 63 quantities of 8 bytes. The best
 * key is kept up to date; when it is deleted the next one is found through the maps.
 *
 * Not a drop-in: a price that is not a multiple of the unit aborts here, where a real
 * side would re-key itself with the smaller unit; and a sparse book pays a page per
 * isolated far level (see README.md for the bytes per level). */
#include "price_index.h"

struct Page {
    Bucket *b[64];
    uint64_t used_map; /* buckets present */
    int32_t used;
};

/* The highest key below k, or INT64_MIN. */
static int64_t side_next_below(const Side *s, int64_t k) {
    int64_t bk = k >> 6;
    ptrdiff_t r = (bk >> 6) - s->lo;
    int tick = k & 63, slot = bk & 63;
    if (r >= s->np) {
        r = s->np - 1;
        slot = 64;
    }
    for (; r >= 0; r--, slot = 64, tick = 0) {
        const Page *p = s->pages[r];
        if (!p) continue;
        if (slot < 64 && p->b[slot]) {
            uint64_t m = p->b[slot]->bits & ((1ULL << tick) - 1);
            if (m) return ((((s->lo + r) << 6) + slot) << 6) + top_bit(m);
        }
        uint64_t m = slot < 64 ? p->used_map & ((1ULL << slot) - 1) : p->used_map;
        if (m) {
            int sl = top_bit(m);
            return ((((s->lo + r) << 6) + sl) << 6) + top_bit(p->b[sl]->bits);
        }
    }
    return INT64_MIN;
}

__attribute__((noinline)) static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint) {
    (void)hint;
    if (key % s->unit) abort();
    int64_t k = key / s->unit, bk = k >> 6, pg = bk >> 6;
    int tick = k & 63, slot = bk & 63;
    ptrdiff_t r = pg - s->lo;
    Page *p;
    if (r < 0 || r >= s->np || !(p = s->pages[r])) {
        if (!qty) return 0;
        side_cover(s, pg);
        r = pg - s->lo;
        p = s->pages[r];
        if (!p) p = s->pages[r] = calloc(1, sizeof(Page));
    }
    Bucket *b = p->b[slot];
    if (!b) {
        if (!qty) return 0;
        b = malloc(sizeof(Bucket) + 2 * sizeof(int64_t));
        b->bits = 0;
        b->n = 0;
        b->cap = 2;
        p->b[slot] = b;
        p->used_map |= 1ULL << slot;
        p->used++;
    }
    uint64_t bit = 1ULL << tick;
    int pos = __builtin_popcountll(b->bits & (bit - 1));
    if (b->bits & bit) {
        int64_t old = b->q[pos];
        if (qty) {
            b->q[pos] = qty;
            return old;
        }
        memmove(&b->q[pos], &b->q[pos + 1], (b->n - pos - 1) * sizeof(int64_t));
        b->n--;
        b->bits &= ~bit;
        s->count--;
        if (!b->n) {
            free(b);
            p->b[slot] = NULL;
            p->used_map &= ~(1ULL << slot);
            if (!--p->used) {
                free(p);
                s->pages[r] = NULL;
            }
        }
        if (k == s->best) s->best = side_next_below(s, k);
        return old;
    }
    if (!qty) return 0;
    if (b->n == b->cap) {
        b->cap *= 2;
        b = p->b[slot] = realloc(b, sizeof(Bucket) + b->cap * sizeof(int64_t));
    }
    memmove(&b->q[pos + 1], &b->q[pos], (b->n - pos) * sizeof(int64_t));
    b->q[pos] = qty;
    b->n++;
    b->bits |= bit;
    s->count++;
    if (k > s->best) s->best = k;
    return 0;
}

static void side_free(Side *s) {
    for (ptrdiff_t i = 0; i < s->np; i++) {
        Page *p = s->pages[i];
        if (!p) continue;
        for (int j = 0; j < 64; j++) free(p->b[j]);
        free(p);
    }
    free(s->pages);
}

static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    if (s->best == INT64_MIN) return 0;
    int64_t bk = s->best >> 6;
    const Bucket *b = s->pages[(bk >> 6) - s->lo]->b[bk & 63];
    uint64_t bit = 1ULL << (s->best & 63);
    *key = s->best * s->unit;
    *qty = b->q[__builtin_popcountll(b->bits & (bit - 1))];
    return 1;
}

static uint64_t side_hash_from(const Side *s, uint64_t h) {
    for (ptrdiff_t i = 0; i < s->np; i++) {
        const Page *p = s->pages[i];
        if (!p) continue;
        for (int j = 0; j < 64; j++) {
            const Bucket *b = p->b[j];
            if (!b) continue;
            uint64_t m = b->bits;
            for (int c = 0; m; c++, m &= m - 1) {
                int64_t key = (((((s->lo + i) << 6) + j) << 6) + __builtin_ctzll(m)) * s->unit;
                h = (h ^ (uint64_t)key) * 1099511628211ULL;
                h = (h ^ (uint64_t)b->q[c]) * 1099511628211ULL;
            }
        }
    }
    return h;
}

static uint64_t side_hash(const Side *s) { return side_hash_from(s, FNV_OFFSET); }

static size_t side_bytes(const Side *s) {
    size_t t = s->np * sizeof(Page *);
    for (ptrdiff_t i = 0; i < s->np; i++) {
        const Page *p = s->pages[i];
        if (!p) continue;
        t += sizeof(Page);
        for (int j = 0; j < 64; j++)
            if (p->b[j]) t += sizeof(Bucket) + p->b[j]->cap * sizeof(int64_t);
    }
    return t;
}
