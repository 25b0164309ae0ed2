/*
 * hdr.h - a latency histogram for weft-bench: HDR-style log-linear buckets
 * with a bounded relative error, and its percentiles.
 *
 * Values are unsigned 64-bit integers (weft-bench records nanoseconds).
 * Values below 2 * HDR_SUB are counted exactly; above, each power-of-two
 * range [2^k, 2^(k+1)) is cut into HDR_SUB equal buckets, so a bucket is at
 * most 1/HDR_SUB of its lower bound wide: with HDR_SUB = 128 every value
 * is known to within 0.79 %, better than two significant digits, over the
 * whole 64-bit range, in 7424 counters (58 KiB) and one shift to index.
 *
 * A percentile is the highest value of the bucket that holds the wanted
 * rank (HdrHistogram's "highest equivalent value"), clamped to the exact
 * minimum and maximum seen, so p0 = min, p100 = max, and percentiles never
 * decrease as p grows.
 *
 * Header only (static functions) so that tests/test-weft-bench.c can test
 * the arithmetic directly.
 */
#ifndef WEFT_TOOLS_HDR_H
#define WEFT_TOOLS_HDR_H

#include <stdint.h>
#include <string.h>

#define HDR_SUB_BITS 7
#define HDR_SUB (1u << HDR_SUB_BITS) /* buckets per power of two */
/* [0, 2*SUB) exact, then SUB buckets for each k in [SUB_BITS+1, 63]. */
#define HDR_BUCKETS ((64 - HDR_SUB_BITS) * HDR_SUB + HDR_SUB)

struct hdr {
    uint64_t count;            /* values recorded */
    uint64_t min, max;         /* exact extremes (min is UINT64_MAX when empty) */
    long double sum;           /* for the mean */
    uint64_t bucket[HDR_BUCKETS];
};

static inline void hdr_init(struct hdr *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* The bucket of @p v. */
static inline unsigned hdr_index(uint64_t v)
{
    if (v < 2 * (uint64_t)HDR_SUB)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v); /* 2^k <= v, k > SUB_BITS */
    unsigned shift = k - HDR_SUB_BITS;
    return shift * HDR_SUB + (unsigned)(v >> shift);
}

/* The lowest value that falls in bucket @p i. */
static inline uint64_t hdr_lowest(unsigned i)
{
    if (i < 2 * HDR_SUB)
        return i;
    unsigned shift = i / HDR_SUB - 1;
    return (uint64_t)(i - shift * HDR_SUB) << shift;
}

/* The highest value that falls in bucket @p i. */
static inline uint64_t hdr_highest(unsigned i)
{
    if (i < 2 * HDR_SUB)
        return i;
    unsigned shift = i / HDR_SUB - 1;
    return hdr_lowest(i) + (((uint64_t)1 << shift) - 1);
}

static inline void hdr_record(struct hdr *h, uint64_t v)
{
    h->bucket[hdr_index(v)]++;
    h->count++;
    h->sum += (long double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/*
 * The value at percentile @p p (0 .. 100): the smallest recorded value v
 * such that at least p % of the values are <= v, to the bucket's
 * precision.  0 for an empty histogram.
 */
static inline uint64_t hdr_percentile(const struct hdr *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* rank = ceil(p/100 * count), at least 1; the product is nudged down
     * by a relative 1e-12 so that 99.9 % of 1000 (999.0000000000001 in
     * binary) is rank 999, not 1000. */
    long double want = (long double)p / 100.0L * (long double)h->count;
    want -= want * 1e-12L;
    uint64_t rank = (uint64_t)want;
    if ((long double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HDR_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hdr_highest(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

static inline double hdr_mean(const struct hdr *h)
{
    return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

#endif /* WEFT_TOOLS_HDR_H */
