/* pages.h with packed pages: the same keys, buckets and directory, but a page keeps only
 * the buckets it has.
 *
 * In pages.h a page is 64 bucket pointers whether it holds one bucket or 64: 528 bytes.
 * On a sparse book (spot: 1.5-2 levels per bucket and 4-7 buckets per page) most of those
 * pointers are NULL and the pages are more than half of the memory. Here a page is its map
 * of the buckets present plus their pointers packed in slot order, so the pointer of slot
 * s sits at popcount(map below s), the same trick the buckets use for their quantities.
 * The pointer array starts at 2 and doubles with realloc as buckets are created, and
 * halves when it falls to a quarter full, so a bucket that comes and goes at a boundary
 * does not realloc the page every time.
 *
 * What it costs: a second popcount on every lookup, a load of the page's map before its
 * pointer (the same cache line while the page has few buckets), and a memmove of up to 63
 * pointers, sometimes a realloc, when a bucket is created or freed: one update in eight
 * on spot, one in 150 on USD-M.
 *
 * Not a drop-in either: same abort on a price that is not a multiple of the unit. */
#include "price_index.h"

struct Page {
    uint64_t used_map; /* buckets present */
    int32_t n, cap;    /* n == popcount(used_map) */
    Bucket *b[];       /* the buckets present, in slot order */
};

#define PAGE_MIN_CAP 2

/* Index in p->b of the bucket in slot (present or not: where it is or would go). */
static inline int page_index(const Page *p, int slot) {
    return __builtin_popcountll(p->used_map & ((1ULL << slot) - 1));
}

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
        uint64_t below = slot < 64 ? p->used_map & ((1ULL << slot) - 1) : p->used_map;
        /* the page's buckets under slot: as many as slot's index, so the highest of them
         * is the pointer just before it */
        int at = __builtin_popcountll(below);
        if (slot < 64 && (p->used_map >> slot & 1)) {
            uint64_t m = p->b[at]->bits & ((1ULL << tick) - 1);
            if (m) return ((((s->lo + r) << 6) + slot) << 6) + top_bit(m);
        }
        if (below) {
            int sl = top_bit(below);
            return ((((s->lo + r) << 6) + sl) << 6) + top_bit(p->b[at - 1]->bits);
        }
    }
    return INT64_MIN;
}

/* Put bucket b at index at of page r (slot's bit not yet in the map); returns the page,
 * which may have moved. */
static Page *page_insert(Side *s, ptrdiff_t r, Page *p, int at, int slot, Bucket *b) {
    if (p->n == p->cap) {
        p->cap *= 2;
        p = s->pages[r] = realloc(p, sizeof(Page) + p->cap * sizeof(Bucket *));
    }
    memmove(&p->b[at + 1], &p->b[at], (p->n - at) * sizeof(Bucket *));
    p->b[at] = b;
    p->n++;
    p->used_map |= 1ULL << slot;
    return p;
}

/* Drop the (already freed) bucket at index at, slot slot, of page r; frees the page when
 * it was its last bucket. */
static void page_remove(Side *s, ptrdiff_t r, Page *p, int at, int slot) {
    memmove(&p->b[at], &p->b[at + 1], (p->n - at - 1) * sizeof(Bucket *));
    p->n--;
    p->used_map &= ~(1ULL << slot);
    if (!p->n) {
        free(p);
        s->pages[r] = NULL;
    } else if (p->cap > PAGE_MIN_CAP && p->n <= p->cap / 4) {
        p->cap /= 2;
        s->pages[r] = realloc(p, sizeof(Page) + p->cap * sizeof(Bucket *));
    }
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
        if (!p) {
            p = s->pages[r] = malloc(sizeof(Page) + PAGE_MIN_CAP * sizeof(Bucket *));
            p->used_map = 0;
            p->n = 0;
            p->cap = PAGE_MIN_CAP;
        }
    }
    int at = page_index(p, slot);
    Bucket *b;
    if (p->used_map >> slot & 1) {
        b = p->b[at];
    } else {
        if (!qty) return 0;
        b = malloc(sizeof(Bucket) + 2 * sizeof(int64_t));
        b->bits = 0;
        b->n = 0;
        b->cap = 2;
        p = page_insert(s, r, p, at, slot, b);
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
            page_remove(s, r, p, at, slot);
        }
        if (k == s->best) s->best = side_next_below(s, k);
        return old;
    }
    if (!qty) return 0;
    if (b->n == b->cap) {
        b->cap *= 2;
        b = p->b[at] = realloc(b, sizeof(Bucket) + b->cap * sizeof(int64_t));
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
        for (int j = 0; j < p->n; j++) free(p->b[j]);
        free(p);
    }
    free(s->pages);
}

static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    if (s->best == INT64_MIN) return 0;
    int64_t bk = s->best >> 6;
    const Page *p = s->pages[(bk >> 6) - s->lo];
    const Bucket *b = p->b[page_index(p, bk & 63)];
    uint64_t bit = 1ULL << (s->best & 63);
    *key = s->best * s->unit;
    *qty = b->q[__builtin_popcountll(b->bits & (bit - 1))];
    return 1;
}

/* Same order and hash as the other layouts: ascending key. */
static uint64_t side_hash(const Side *s) {
    uint64_t h = FNV_OFFSET;
    for (ptrdiff_t i = 0; i < s->np; i++) {
        const Page *p = s->pages[i];
        if (!p) continue;
        uint64_t used = p->used_map;
        for (int at = 0; used; at++, used &= used - 1) {
            const Bucket *b = p->b[at];
            int64_t bk = ((s->lo + i) << 6) + __builtin_ctzll(used);
            uint64_t m = b->bits;
            for (int c = 0; m; c++, m &= m - 1) {
                int64_t key = ((bk << 6) + __builtin_ctzll(m)) * s->unit;
                h = (h ^ (uint64_t)key) * 1099511628211ULL;
                h = (h ^ (uint64_t)b->q[c]) * 1099511628211ULL;
            }
        }
    }
    return h;
}

/* Bytes as requested from malloc: directory, page headers and their pointer arrays,
 * bucket headers and their quantity arrays. */
static size_t side_bytes(const Side *s) {
    size_t t = s->np * sizeof(Page *);
    for (ptrdiff_t i = 0; i < s->np; i++) {
        const Page *p = s->pages[i];
        if (!p) continue;
        t += sizeof(Page) + p->cap * sizeof(Bucket *);
        for (int j = 0; j < p->n; j++) t += sizeof(Bucket) + p->b[j]->cap * sizeof(int64_t);
    }
    return t;
}
