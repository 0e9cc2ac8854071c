/* Interleaved comparison of the layouts named in LAYOUTS, on each stream file given:
 *     compare ROUNDS FILE...
 * Each round replays every layout once, in alternating order; the table gives the median
 * ns per level of the stream, its ratio to the first layout, the bytes per level of the book
 * after the replay, and whether the final books and the best-level changes equal the first
 * layout's (the exit status is 1 if any does not). A layout named bound_* is a reference
 * point that keeps no order (bound_hash.h): its time is reported, its book is not compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double ns;
    size_t levels, messages, bbo_changes, bytes, book_levels;
    uint64_t hash;
} LabResult;

#define X(name) LabResult lab_run_##name(const int64_t *);
LAYOUTS
#undef X
#define X(name) {#name, lab_run_##name},
static const struct {
    const char *name;
    LabResult (*run)(const int64_t *);
} layouts[] = {LAYOUTS};
#undef X
#define N_LAYOUTS (sizeof(layouts) / sizeof(layouts[0]))
#define MAX_ROUNDS 101

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 0;
    if (rounds < 1 || rounds > MAX_ROUNDS || argc < 3) {
        fprintf(stderr, "usage: %s ROUNDS(1-%d) FILE...\n", argv[0], MAX_ROUNDS);
        return 2;
    }
    int differ = 0;
    for (int f = 2; f < argc; f++) {
        FILE *fp = fopen(argv[f], "rb");
        if (!fp) {
            perror(argv[f]);
            return 1;
        }
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        int64_t *data = malloc(size);
        if (fread(data, 1, size, fp) != (size_t)size) {
            fprintf(stderr, "%s: short read\n", argv[f]);
            return 1;
        }
        fclose(fp);
        static double ns[N_LAYOUTS][MAX_ROUNDS];
        LabResult last[N_LAYOUTS];
        for (int r = 0; r < rounds; r++)
            for (size_t k = 0; k < N_LAYOUTS; k++) {
                size_t v = (r & 1) ? k : N_LAYOUTS - 1 - k;
                last[v] = layouts[v].run(data);
                ns[v][r] = last[v].ns;
            }
        const char *name = strrchr(argv[f], '/') ? strrchr(argv[f], '/') + 1 : argv[f];
        double first = 0;
        for (size_t v = 0; v < N_LAYOUTS; v++) {
            qsort(ns[v], rounds, sizeof(double), by_value);
            double med = ns[v][rounds / 2] / last[v].levels;
            if (v == 0) first = med;
            int bound = strncmp(layouts[v].name, "bound_", 6) == 0;
            int same = last[v].hash == last[0].hash && last[v].bbo_changes == last[0].bbo_changes;
            differ |= !same && !bound;
            printf("%-10s %-14s %6.2f ns/level  %.3f  %6.1f B/level  %s\n", name, layouts[v].name, med,
                   med / first, (double)last[v].bytes / last[v].book_levels,
                   bound ? "keeps no order: not compared" : same ? "same book" : "DIFFERENT BOOK");
        }
        free(data);
    }
    return differ;
}
