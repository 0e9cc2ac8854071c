/* The core's storage (src/tickbook/_book.pyx, the side_* functions) ported to C, for
 * comparison with other layouts on the same level streams. Keep in step with the .pyx:
 * same block size, search, split and merge rules. Each layout header defines Side and
 * side_init / side_load / side_touch_hint / side_set / side_best / side_free / side_hash /
 * side_bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_CAP 32
#define MERGE_BELOW (BLOCK_CAP / 4)
#define MERGE_MAX (BLOCK_CAP * 3 / 4)
#define SNAPSHOT_FILL (BLOCK_CAP * 3 / 4)
#ifndef FNV_OFFSET
#define FNV_OFFSET 1469598103934665603ULL
#endif

typedef struct {
    int64_t key, qty;
} Level;

typedef struct {
    int32_t n;
    Level lv[BLOCK_CAP];
} Block;

typedef struct {
    Block **blocks;
    int64_t *firsts;
    ptrdiff_t nblocks, cap, count;
    int64_t sign;
} Side;

static Block *new_block(void) {
    Block *b = malloc(sizeof(Block));
    memset(b, 0, sizeof(Block));
    return b;
}

static void side_init(Side *s, int64_t sign) {
    memset(s, 0, sizeof(*s));
    s->sign = sign;
}

static void side_reserve(Side *s, ptrdiff_t nb) {
    if (nb <= s->cap) return;
    ptrdiff_t cap = nb > s->cap * 2 ? nb : s->cap * 2;
    if (cap < 8) cap = 8;
    s->blocks = realloc(s->blocks, cap * sizeof(Block *));
    s->firsts = realloc(s->firsts, cap * sizeof(int64_t));
    s->cap = cap;
}

static void side_insert_block(Side *s, ptrdiff_t at, Block *b) {
    side_reserve(s, s->nblocks + 1);
    memmove(&s->blocks[at + 1], &s->blocks[at], (s->nblocks - at) * sizeof(Block *));
    memmove(&s->firsts[at + 1], &s->firsts[at], (s->nblocks - at) * sizeof(int64_t));
    s->blocks[at] = b;
    s->firsts[at] = b->lv[0].key;
    s->nblocks++;
}

static void side_remove_block(Side *s, ptrdiff_t at) {
    free(s->blocks[at]);
    memmove(&s->blocks[at], &s->blocks[at + 1], (s->nblocks - at - 1) * sizeof(Block *));
    memmove(&s->firsts[at], &s->firsts[at + 1], (s->nblocks - at - 1) * sizeof(int64_t));
    s->nblocks--;
}

static inline ptrdiff_t count_le_strided(const int64_t *a, ptrdiff_t n, int64_t key) {
    ptrdiff_t g = 0, j, stop;
    for (j = 15; j < n; j += 16) g += a[j] <= key;
    g *= 16;
    stop = g + 16 < n ? g + 16 : n;
    for (j = g; j < stop; j++) g += a[j] <= key;
    return g;
}

/* Where an event's search starts: the touch's block (the core's _apply_parsed does the same). */
static inline ptrdiff_t side_touch_hint(const Side *s) { return s->nblocks - 1; }

static inline ptrdiff_t side_find_block(const Side *s, int64_t key, ptrdiff_t hint) {
    ptrdiff_t hi = s->nblocks - 1, stop;
    if (0 <= hint && hint < hi) {
        if (s->firsts[hint + 1] > key) {
            hi = hint;
        } else {
            stop = hint + 7 < hi ? hint + 7 : hi;
            hint++;
            while (hint < stop && s->firsts[hint + 1] <= key) hint++;
            if (hint == hi || s->firsts[hint + 1] > key) return hint;
        }
    }
    stop = hi > 6 ? hi - 6 : 0;
    while (hi > stop && s->firsts[hi] > key) hi--;
    if (hi == 0 || s->firsts[hi] <= key) return hi;
    hi = count_le_strided(s->firsts, hi, key) - 1;
    return hi > 0 ? hi : 0;
}

static inline int32_t block_lower_bound(const Block *b, int64_t key) {
    const Level *lv = &b->lv[0];
    int32_t n = b->n, g = 0, j;
    for (j = 7; j < BLOCK_CAP; j += 8) g += (lv[j].key < key) & (j < n);
    if (g == BLOCK_CAP / 8) return BLOCK_CAP;
    g *= 8;
    n -= g;
    lv += g;
    for (j = 0; j < 8; j++) g += (lv[j].key < key) & (j < n);
    return g;
}

static void side_merge(Side *s, ptrdiff_t bi) {
    Block *b = s->blocks[bi], *o;
    if (bi + 1 < s->nblocks && b->n + s->blocks[bi + 1]->n <= MERGE_MAX) {
        o = s->blocks[bi + 1];
        memcpy(&b->lv[b->n], o->lv, o->n * sizeof(Level));
        b->n += o->n;
        side_remove_block(s, bi + 1);
    } else if (bi > 0 && b->n + s->blocks[bi - 1]->n <= MERGE_MAX) {
        o = s->blocks[bi - 1];
        memcpy(&o->lv[o->n], b->lv, b->n * sizeof(Level));
        o->n += b->n;
        side_remove_block(s, bi);
    }
}

__attribute__((noinline)) static int64_t side_set(Side *s, int64_t key, int64_t qty, ptrdiff_t *hint) {
    ptrdiff_t bi;
    Block *b, *up;
    int32_t i, half = BLOCK_CAP / 2;
    int64_t old;
    if (s->nblocks == 0) {
        if (!qty) return 0;
        b = new_block();
        b->n = 1;
        b->lv[0].key = key;
        b->lv[0].qty = qty;
        side_insert_block(s, 0, b);
        s->count = 1;
        return 0;
    }
    bi = side_find_block(s, key, (hint && 0 <= *hint && *hint < s->nblocks) ? *hint : s->nblocks - 1);
    if (hint) *hint = bi;
    b = s->blocks[bi];
    i = block_lower_bound(b, key);
    if (i < b->n && b->lv[i].key == key) {
        old = b->lv[i].qty;
        if (qty) {
            b->lv[i].qty = qty;
            return old;
        }
        memmove(&b->lv[i], &b->lv[i + 1], (b->n - i - 1) * sizeof(Level));
        b->n--;
        s->count--;
        if (b->n == 0) {
            side_remove_block(s, bi);
        } else {
            if (i == 0) s->firsts[bi] = b->lv[0].key;
            if (b->n < MERGE_BELOW) side_merge(s, bi);
        }
        return old;
    }
    if (!qty) return 0;
    if (b->n == BLOCK_CAP) {
        up = new_block();
        memcpy(up->lv, &b->lv[half], half * sizeof(Level));
        up->n = half;
        side_insert_block(s, bi + 1, up);
        b->n = half;
        if (i > half) {
            b = up;
            i -= half;
            bi++;
        }
    }
    memmove(&b->lv[i + 1], &b->lv[i], (b->n - i) * sizeof(Level));
    b->lv[i].key = key;
    b->lv[i].qty = qty;
    b->n++;
    if (i == 0) s->firsts[bi] = key;
    s->count++;
    return 0;
}

/* Snapshot levels come best first (descending key): fill blocks 3/4 full. */
static void side_load(Side *s, const int64_t *px, const int64_t *qty, ptrdiff_t n) {
    Block *b = NULL;
    for (ptrdiff_t j = n - 1; j >= 0; j--) {
        if (!qty[j]) continue;
        int64_t key = s->sign * px[j];
        if (!b || b->n == SNAPSHOT_FILL) {
            b = new_block();
            b->n = 1;
            b->lv[0].key = key;
            b->lv[0].qty = qty[j];
            side_insert_block(s, s->nblocks, b);
        } else {
            b->lv[b->n].key = key;
            b->lv[b->n].qty = qty[j];
            b->n++;
        }
        s->count++;
    }
}

static void side_free(Side *s) {
    for (ptrdiff_t i = 0; i < s->nblocks; i++) free(s->blocks[i]);
    free(s->blocks);
    free(s->firsts);
}

static inline int side_best(const Side *s, int64_t *key, int64_t *qty) {
    if (!s->nblocks) return 0;
    const Block *b = s->blocks[s->nblocks - 1];
    *key = b->lv[b->n - 1].key;
    *qty = b->lv[b->n - 1].qty;
    return 1;
}

/* FNV-1a over (key, qty) in ascending key order, continuing from h: equal books hash equal
 * in every layout (side_hash starts from the FNV offset). */
static uint64_t side_hash_from(const Side *s, uint64_t h) {
    for (ptrdiff_t i = 0; i < s->nblocks; i++)
        for (int j = 0; j < s->blocks[i]->n; j++) {
            h = (h ^ (uint64_t)s->blocks[i]->lv[j].key) * 1099511628211ULL;
            h = (h ^ (uint64_t)s->blocks[i]->lv[j].qty) * 1099511628211ULL;
        }
    return h;
}

static uint64_t side_hash(const Side *s) { return side_hash_from(s, FNV_OFFSET); }

static size_t side_bytes(const Side *s) {
    return s->nblocks * sizeof(Block) + s->cap * (sizeof(Block *) + sizeof(int64_t));
}
