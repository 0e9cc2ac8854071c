/* One replay of a level stream (see dump_levels.py) through the layout in LAYOUT_HEADER,
 * compiled once per layout with LAB_RUN naming the entry point. Per message, like the
 * core's _apply_parsed: read both best levels, set every bid then every ask (the hint
 * starts at the touch and follows the event's levels), read both best levels again. */
#include <time.h>

#include LAYOUT_HEADER

typedef struct {
    double ns;        /* the messages only, not the snapshot load */
    size_t levels, messages, bbo_changes, bytes, book_levels;
    uint64_t hash;    /* both sides after the replay */
} LabResult;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

LabResult LAB_RUN(const int64_t *p) {
    LabResult r = {0};
    int64_t nb = *p++, na = *p++;
    int64_t *px = malloc((nb + na) * sizeof(int64_t)), *qty = malloc((nb + na) * sizeof(int64_t));
    for (int64_t j = 0; j < nb + na; j++) {
        px[j] = *p++;
        qty[j] = *p++;
    }
    Side bids, asks;
    side_init(&bids, 1);
    side_init(&asks, -1);
    side_load(&bids, px, qty, nb);
    side_load(&asks, px + nb, qty + nb, na);
    r.messages = (size_t)*p++;
    double t0 = now_ns();
    for (size_t m = 0; m < r.messages; m++) {
        int64_t kb = *p++, ka = *p++;
        int64_t bk0 = 0, bq0 = 0, ak0 = 0, aq0 = 0, bk = 0, bq = 0, ak = 0, aq = 0;
        side_best(&bids, &bk0, &bq0);
        side_best(&asks, &ak0, &aq0);
        ptrdiff_t hint = side_touch_hint(&bids);
        for (int64_t j = 0; j < kb; j++, p += 2) side_set(&bids, p[0], p[1], &hint);
        hint = side_touch_hint(&asks);
        for (int64_t j = 0; j < ka; j++, p += 2) side_set(&asks, -p[0], p[1], &hint);
        side_best(&bids, &bk, &bq);
        side_best(&asks, &ak, &aq);
        r.bbo_changes += (bk != bk0) | (bq != bq0) | (ak != ak0) | (aq != aq0);
        r.levels += kb + ka;
    }
    r.ns = now_ns() - t0;
    r.hash = side_hash(&bids) * 31 + side_hash(&asks);
    r.bytes = side_bytes(&bids) + side_bytes(&asks);
    r.book_levels = (size_t)(bids.count + asks.count);
    side_free(&bids);
    side_free(&asks);
    free(px);
    free(qty);
    return r;
}
