/* transfer_stats.c - the statistics `attn transfer` reports over seeds: mean, sample standard
 * deviation and the 95% confidence interval of the mean from Student's t distribution. */
#include "transfer_tool.h"

#include <math.h>

/* t_{0.975, df} for df = 1 .. 30 (to 9 decimals). */
static const double t975_table[30] = {
    12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
    2.364624252,  2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
    2.160368656,  2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
    2.093024054,  2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
    2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456};

double attn_transfer_tool_t975(int64_t df)
{
    if (df < 1)
        return NAN;
    if (df <= 30)
        return t975_table[df - 1];
    /* Beyond the table the Cornish-Fisher expansion about the normal quantile z is within
     * 1e-7 (Abramowitz & Stegun 26.7.5). */
    const double z = 1.959963984540054, v = (double)df, z2 = z * z;
    const double g1 = (z2 + 1) * z / 4;
    const double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
    const double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
    const double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
    return z + (g1 + (g2 + (g3 + g4 / v) / v) / v) / v;
}

void attn_transfer_tool_mean_ci(const double *v, int64_t n, double *mean, double *sd,
                                double *half)
{
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    *mean = n > 0 ? s / (double)n : NAN;
    for (int64_t i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
    *half = n > 1 ? attn_transfer_tool_t975(n - 1) * *sd / sqrt((double)n) : NAN;
}
