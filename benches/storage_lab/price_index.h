/* What the price-indexed layouts of this lab share: the bucket, the side and its
 * directory of pages, and the snapshot load. A layout includes this first and then defines
 * `struct Page` and side_set (declared here for side_load). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FNV_OFFSET
#define FNV_OFFSET 1469598103934665603ULL
#endif

typedef struct {
    uint64_t bits; /* ticks present */
    int32_t n, cap;
    int64_t q[]; /* quantities of the ticks present, in tick order */
} Bucket;

typedef struct Page Page;

typedef struct {
    Page **pages;
    int64_t lo; /* page number of pages[0] */
    ptrdiff_t np;
    int64_t unit;
    int64_t best; /* highest key present, INT64_MIN if none */
    ptrdiff_t count;
    int64_t sign;
} Side;

static void side_init(Side *s, int64_t sign) {
    memset(s, 0, sizeof(*s));
    s->sign = sign;
    s->best = INT64_MIN;
    s->unit = 1;
}

/* Where an event's search starts: no search here, so no hint. */
static inline ptrdiff_t side_touch_hint(const Side *s) {
    (void)s;
    return 0;
}

static void side_cover(Side *s, int64_t pg) {
    if (s->np == 0) {
        s->lo = pg - 4;
        s->np = 8;
        s->pages = calloc(8, sizeof(Page *));
        return;
    }
    if (pg >= s->lo && pg < s->lo + s->np) return;
    int64_t lo = s->lo, hi = s->lo + s->np;
    while (pg < lo) lo -= hi - lo;
    while (pg >= hi) hi += hi - lo;
    Page **d = calloc(hi - lo, sizeof(Page *));
    memcpy(d + (s->lo - lo), s->pages, s->np * sizeof(Page *));
    free(s->pages);
    s->pages = d;
    s->lo = lo;
    s->np = hi - lo;
}

static inline int top_bit(uint64_t m) { return 63 - __builtin_clzll(m); }

static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint);

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void side_load(Side *s, const int64_t *px, const int64_t *qty, ptrdiff_t n) {
    int64_t g = 0;
    for (ptrdiff_t j = 0; j < n; j++) g = gcd64(g, px[j]);
    s->unit = g ? g : 1;
    for (ptrdiff_t j = 0; j < n; j++)
        if (qty[j]) side_set(s, s->sign * px[j], qty[j], NULL);
}
