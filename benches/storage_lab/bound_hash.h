/* A reference point, not a candidate: an open-addressing hash table of key -> quantity
 * that keeps no order at all. It cannot give the best level or walk the book, so it does
 * less than any layout here; its time is what setting a level costs when nothing has to
 * stay sorted. compare.c reports layouts named bound_* without comparing their books.
 *
 * Linear probing in a power-of-two table kept at most half full, Fibonacci hashing, and
 * backward-shift deletion (no tombstones, so probes stay short under heavy churn). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_KEY INT64_MIN

typedef struct {
    int64_t key, qty;
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    ptrdiff_t count;
    int64_t sign;
} Side;

static inline size_t slot_of(const Side *s, int64_t key) {
    return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ULL) >> 32) & s->mask;
}

static void table_alloc(Side *s, size_t n) {
    s->slots = malloc(n * sizeof(Slot));
    for (size_t i = 0; i < n; i++) s->slots[i].key = EMPTY_KEY;
    s->mask = n - 1;
}

static void side_init(Side *s, int64_t sign) {
    memset(s, 0, sizeof(*s));
    s->sign = sign;
    table_alloc(s, 1024);
}

static inline ptrdiff_t side_touch_hint(const Side *s) {
    (void)s;
    return 0;
}

static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint);

static void table_grow(Side *s) {
    Slot *old = s->slots;
    size_t n = s->mask + 1;
    table_alloc(s, 2 * n);
    s->count = 0;
    for (size_t i = 0; i < n; i++)
        if (old[i].key != EMPTY_KEY) side_set(s, old[i].key, old[i].qty, NULL);
    free(old);
}

__attribute__((noinline)) static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint) {
    (void)hint;
    size_t i = slot_of(s, key);
    while (s->slots[i].key != EMPTY_KEY && s->slots[i].key != key) i = (i + 1) & s->mask;
    if (s->slots[i].key == key) {
        int64_t old = s->slots[i].qty;
        if (qty) {
            s->slots[i].qty = qty;
            return old;
        }
        /* Pull back every later entry of the probe run whose home is not after the hole. */
        for (size_t j = (i + 1) & s->mask; s->slots[j].key != EMPTY_KEY; j = (j + 1) & s->mask)
            if (((j - slot_of(s, s->slots[j].key)) & s->mask) >= ((j - i) & s->mask)) {
                s->slots[i] = s->slots[j];
                i = j;
            }
        s->slots[i].key = EMPTY_KEY;
        s->count--;
        return old;
    }
    if (!qty) return 0;
    s->slots[i].key = key;
    s->slots[i].qty = qty;
    if ((size_t)++s->count * 2 > s->mask + 1) table_grow(s);
    return 0;
}

static void side_load(Side *s, const int64_t *px, const int64_t *qty, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++)
        if (qty[j]) side_set(s, s->sign * px[j], qty[j], NULL);
}

/* No order, so no best level: the replay's change count is meaningless here. */
static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    *key = s->count;
    *qty = 0;
    return 1;
}

static void side_free(Side *s) { free(s->slots); }

/* Order-independent (a sum of mixed entries): only a sanity figure for the bound. */
static uint64_t side_hash(const Side *s) {
    uint64_t h = 0;
    for (size_t i = 0; i <= s->mask; i++)
        if (s->slots[i].key != EMPTY_KEY)
            h += ((uint64_t)s->slots[i].key * 1099511628211ULL) ^ (uint64_t)s->slots[i].qty;
    return h;
}

static size_t side_bytes(const Side *s) { return (s->mask + 1) * sizeof(Slot); }
