/* attn_band.h - the causal / sliding-window band rule of the fast code paths, written once:
 * which keys [lo, hi) a query at aligned position pos may see. cl/common.cl has the one
 * kernel copy (attn_band_range, same name and arguments; tests/check_opencl.c runs it on the
 * device against this one), and reference/sdpa.c keeps its own independent copy on
 * purpose. */
#ifndef ATTN_BAND_H_
#define ATTN_BAND_H_

#include <stdint.h>

/* window_left / window_right: visible keys before / after pos, -1 unlimited (causal means
 * window_right 0). *lo >= *hi means no key is visible (then *hi == *lo). */
static inline void attn_band_range(int64_t pos, int64_t window_left, int64_t window_right,
                                   int64_t skv, int64_t *lo, int64_t *hi)
{
    int64_t l = 0, h = skv;
    /* pos - window_left > 0 and pos + window_right + 1 < skv, written so that windows near
     * INT64_MAX cannot overflow */
    if (window_left >= 0 && pos > window_left)
        l = pos - window_left;
    if (window_right >= 0 && window_right < skv - 1 - pos)
        h = pos + window_right + 1;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

#endif /* ATTN_BAND_H_ */
