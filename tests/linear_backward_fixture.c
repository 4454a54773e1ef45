/* linear_backward_fixture.c - the small linear attention backward problem of the tests
 * (linear_backward_fixture.h). */
#include "linear_backward_fixture.h"

#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t lbw_n(const lbw *x, const char *name)
{
    const lbw_shape *s = &x->s;
    if (!strcmp(name, "q"))
        return s->B * s->S * s->Hq * s->Dk;
    if (!strcmp(name, "k"))
        return s->B * s->S * s->Hkv * s->Dk;
    if (!strcmp(name, "v"))
        return s->B * s->S * s->Hkv * s->Dv;
    if (!strcmp(name, "out"))
        return s->B * s->S * s->Hq * s->Dv;
    if (!strcmp(name, "state"))
        return s->B * s->Hkv * x->Df * s->Dv;
    return s->B * s->Hkv * x->Df; /* z */
}

/* Values on a 2^-12 grid in [lo, hi]; with `away`, at least 1/32 from 0. */
static float *filled(const lbw *x, const char *name, uint64_t seed, uint64_t stream, double lo,
                     double hi, int away)
{
    const int64_t n = lbw_n(x, name);
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert(a != NULL);
    for (int64_t i = 0; i < n; i++) {
        double v = nearbyint(attn_rng_uniform(seed, stream, (uint64_t)i, lo, hi) * 4096.0) / 4096.0;
        if (away && fabs(v) < 1.0 / 32)
            v += v >= 0 ? 1.0 / 16 : -1.0 / 16;
        a[i] = (float)v;
    }
    return a;
}

static attn_tensor state_view(float *p, const lbw *x, int64_t cols)
{
    return attn_tensor_bshd(p, ATTN_F32, x->s.B, x->s.Hkv, x->Df, cols);
}

void lbw_init(lbw *x, const lbw_shape *s, uint64_t seed)
{
    memset(x, 0, sizeof *x);
    x->s = *s;
    x->Df = attn_linear_features(s->feature, s->Dk);
    x->q = filled(x, "q", seed, 1, -1.5, 1.5, 1);
    x->k = filled(x, "k", seed, 2, -1.5, 1.5, 1);
    x->v = filled(x, "v", seed, 3, -1, 1, 0);
    x->dout = filled(x, "out", seed, 4, -1, 1, 0);
    x->dq = filled(x, "q", seed, 5, 0, 0, 0);
    x->dk = filled(x, "k", seed, 6, 0, 0, 0);
    x->dv = filled(x, "v", seed, 7, 0, 0, 0);
    x->tq = attn_tensor_bshd(x->q, ATTN_F32, s->B, s->S, s->Hq, s->Dk);
    x->tk = attn_tensor_bshd(x->k, ATTN_F32, s->B, s->S, s->Hkv, s->Dk);
    x->tv = attn_tensor_bshd(x->v, ATTN_F32, s->B, s->S, s->Hkv, s->Dv);
    x->tdout = attn_tensor_bshd(x->dout, ATTN_F32, s->B, s->S, s->Hq, s->Dv);
    x->tdq = attn_tensor_bshd(x->dq, ATTN_F32, s->B, s->S, s->Hq, s->Dk);
    x->tdk = attn_tensor_bshd(x->dk, ATTN_F32, s->B, s->S, s->Hkv, s->Dk);
    x->tdv = attn_tensor_bshd(x->dv, ATTN_F32, s->B, s->S, s->Hkv, s->Dv);
    x->desc = attn_linear_desc_default();
    x->desc.feature = s->feature;
    x->desc.normalize = s->normalize;
    x->desc.causal = s->causal;
    x->desc.decay = s->decay;
    if (s->decay == ATTN_LINEAR_DECAY_GIVEN) {
        for (int g = 0; g < 8; g++)
            x->decay_values[g] = 0.9f - 0.125f * (float)g;
        x->desc.decay_values = x->decay_values;
    }
    x->grads = (attn_linear_grads){.dq = &x->tdq, .dk = &x->tdk, .dv = &x->tdv};
    if (s->state_in) {
        /* positive running sums keep the normaliser's denominator away from 0 */
        x->s0 = filled(x, "state", seed, 8, -1, 1, 0);
        x->z0 = filled(x, "z", seed, 9, 0.5, 2, 0);
        x->ds0 = filled(x, "state", seed, 10, 0, 0, 0);
        x->dz0 = filled(x, "z", seed, 11, 0, 0, 0);
        x->ts0 = state_view(x->s0, x, s->Dv);
        x->tds0 = state_view(x->ds0, x, s->Dv);
        x->st.state_in = &x->ts0;
        x->grads.d_state_in = &x->tds0;
        if (s->normalize) {
            x->tz0 = state_view(x->z0, x, 1);
            x->tdz0 = state_view(x->dz0, x, 1);
            x->st.z_in = &x->tz0;
            x->grads.d_z_in = &x->tdz0;
        }
    }
    if (s->state_out) {
        x->dsT = filled(x, "state", seed, 12, -1, 1, 0);
        x->dzT = filled(x, "z", seed, 13, -1, 1, 0);
        x->tdsT = state_view(x->dsT, x, s->Dv);
        x->tdzT = state_view(x->dzT, x, 1);
        x->grads.d_state_out = &x->tdsT;
        if (s->normalize)
            x->grads.d_z_out = &x->tdzT;
    }
}

void lbw_free(lbw *x)
{
    float *all[] = {x->q,  x->k,  x->v,   x->dout, x->dq,  x->dk, x->dv,
                    x->s0, x->z0, x->ds0, x->dz0,  x->dsT, x->dzT};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

void lbw_problem(lbw *x, attn_linear_problem *p)
{
    const attn_status st = attn_linear_validate_backward(&x->desc, &x->tq, &x->tk, &x->tv, &x->st,
                                                         &x->tdout, &x->grads, p);
    ck_assert_msg(st == ATTN_OK, "validate: %s", attn_last_error());
}
