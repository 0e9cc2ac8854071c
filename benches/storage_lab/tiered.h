/* Two tiers, prototype: pages.h for the keys near the touch, blocks.h for the rest.
 *
 * Spot's book is dense near the touch and sparse beyond it (its 600 best levels a side sit
 * in 3-5 pages, the other levels one or two to a bucket across hundreds of pages), and most
 * updates land near the touch. So the keys at or above a threshold T (the snapshot's best
 * minus TIER_UNITS units) go to a price-indexed side and the keys below it to sorted blocks:
 * pages' speed where the updates are, the blocks' bytes where the levels are.
 *
 * A measurement, not a drop-in: T is fixed at the snapshot (the recordings' touch stays
 * above it); a real side would move levels between the tiers when the touch moves away. */
#pragma GCC diagnostic ignored "-Wunused-function" /* each tier's own load and hash */

#define TIER_NAME(name) far_##name
#include "tier_names.h"
#include "blocks.h"
#undef TIER_NAME
#include "tier_names.h"

#define TIER_NAME(name) near_##name
#include "tier_names.h"
#include "pages.h"
#undef TIER_NAME
#include "tier_names.h"

#ifndef TIER_UNITS
#define TIER_UNITS 32768 /* 8 pages of 4096 units */
#endif

typedef struct {
    far_Side far;  /* keys below T */
    near_Side near;  /* keys at or above T */
    int64_t T;
    ptrdiff_t count;
    int64_t sign;
} Side;

static void side_init(Side *s, int64_t sign) {
    far_side_init(&s->far, sign);
    near_side_init(&s->near, sign);
    s->T = INT64_MIN;
    s->count = 0;
    s->sign = sign;
}

static inline ptrdiff_t side_touch_hint(const Side *s) { return far_side_touch_hint(&s->far); }

static inline int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint) {
    int64_t old = key >= s->T ? near_side_set(&s->near, key, qty, NULL) : far_side_set(&s->far, key, qty, hint);
    s->count = s->near.count + s->far.count;
    return old;
}

static void side_load(Side *s, const int64_t *px, const int64_t *qty, ptrdiff_t n) {
    int64_t g = 0, best = INT64_MIN;
    for (ptrdiff_t j = 0; j < n; j++) {
        g = gcd64(g, px[j]);
        if (qty[j] && s->sign * px[j] > best) best = s->sign * px[j];
    }
    s->near.unit = g ? g : 1;
    s->T = best == INT64_MIN ? INT64_MIN : best - (int64_t)TIER_UNITS * s->near.unit;
    for (ptrdiff_t j = 0; j < n; j++)
        if (qty[j]) side_set(s, s->sign * px[j], qty[j], NULL);
}

static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    return near_side_best(&s->near, key, qty) || far_side_best(&s->far, key, qty);
}

static void side_free(Side *s) {
    far_side_free(&s->far);
    near_side_free(&s->near);
}

/* The far tier's hash chained into the near tier's: ascending key order, as every layout. */
static uint64_t side_hash(const Side *s) {
    return near_side_hash_from(&s->near, far_side_hash(&s->far));
}

static size_t side_bytes(const Side *s) { return far_side_bytes(&s->far) + near_side_bytes(&s->near); }
