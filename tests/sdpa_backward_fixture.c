/* sdpa_backward_fixture.c - the small SDPA backward problem of the tests
 * (sdpa_backward_fixture.h). */
#include "sdpa_backward_fixture.h"

#include "attn_rng.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t sbw_n(const sbw *x, const char *name)
{
    const sbw_shape *s = &x->s;
    if (!strcmp(name, "q") || !strcmp(name, "dq"))
        return s->B * s->Sq * s->Hq * s->Dk;
    if (!strcmp(name, "k") || !strcmp(name, "dk"))
        return s->B * s->Skv * s->Hkv * s->Dk;
    if (!strcmp(name, "v") || !strcmp(name, "dv"))
        return s->B * s->Skv * s->Hkv * s->Dv;
    if (!strcmp(name, "out") || !strcmp(name, "dout"))
        return s->B * s->Sq * s->Hq * s->Dv;
    if (!strcmp(name, "lse"))
        return s->B * s->Sq * s->Hq;
    const int64_t *m = !strcmp(name, "mbool") ? s->mbool : s->madd;
    return m[0] * m[1] * m[2] * m[3];
}

/* Values on a 2^-12 grid in [lo, hi]. */
static float *filled(const sbw *x, const char *name, uint64_t seed, uint64_t stream, double lo,
                     double hi)
{
    const int64_t n = sbw_n(x, name);
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    ck_assert(a != NULL);
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)(nearbyint(attn_rng_uniform(seed, stream, (uint64_t)i, lo, hi) * 4096.0) /
                       4096.0);
    return a;
}

static attn_tensor t4(void *data, attn_dtype dt, const int64_t *sh)
{
    return attn_tensor_bshd(data, dt, sh[0], sh[1], sh[2], sh[3]);
}

void sbw_init(sbw *x, const sbw_shape *s, uint64_t seed)
{
    memset(x, 0, sizeof *x);
    x->s = *s;
    x->q = filled(x, "q", seed, 1, -1.5, 1.5);
    x->k = filled(x, "k", seed, 2, -1.5, 1.5);
    x->v = filled(x, "v", seed, 3, -1, 1);
    x->dout = filled(x, "dout", seed, 4, -1, 1);
    x->out = filled(x, "out", seed, 5, 0, 0);
    x->lse = filled(x, "lse", seed, 6, 0, 0);
    x->dq = filled(x, "dq", seed, 7, 0, 0);
    x->dk = filled(x, "dk", seed, 8, 0, 0);
    x->dv = filled(x, "dv", seed, 9, 0, 0);
    x->tq = attn_tensor_bshd(x->q, ATTN_F32, s->B, s->Sq, s->Hq, s->Dk);
    x->tk = attn_tensor_bshd(x->k, ATTN_F32, s->B, s->Skv, s->Hkv, s->Dk);
    x->tv = attn_tensor_bshd(x->v, ATTN_F32, s->B, s->Skv, s->Hkv, s->Dv);
    x->tout = attn_tensor_bshd(x->out, ATTN_F32, s->B, s->Sq, s->Hq, s->Dv);
    x->tdout = attn_tensor_bshd(x->dout, ATTN_F32, s->B, s->Sq, s->Hq, s->Dv);
    x->tlse = attn_tensor_bshd(x->lse, ATTN_F32, s->B, s->Sq, s->Hq, 1);
    x->tdq = attn_tensor_bshd(x->dq, ATTN_F32, s->B, s->Sq, s->Hq, s->Dk);
    x->tdk = attn_tensor_bshd(x->dk, ATTN_F32, s->B, s->Skv, s->Hkv, s->Dk);
    x->tdv = attn_tensor_bshd(x->dv, ATTN_F32, s->B, s->Skv, s->Hkv, s->Dv);
    x->desc = attn_sdpa_desc_default();
    x->grads = (attn_sdpa_grads){.dq = &x->tdq, .dk = &x->tdk, .dv = &x->tdv};
    if (s->madd[0]) {
        x->madd = filled(x, "madd", seed, 10, -1, 1);
        x->dmask = filled(x, "madd", seed, 11, 0, 0);
        x->tmadd = t4(x->madd, ATTN_F32, s->madd);
        x->tdmask = t4(x->dmask, ATTN_F32, s->madd);
        x->desc.mask_add = &x->tmadd;
        x->grads.dmask_add = &x->tdmask;
    }
    if (s->mbool[0]) {
        const int64_t n = sbw_n(x, "mbool");
        x->mbool = malloc((size_t)n);
        ck_assert(x->mbool != NULL);
        for (int64_t i = 0; i < n; i++)
            x->mbool[i] = attn_rng_unit(seed, 12, (uint64_t)i) >= 0.2;
        x->tmbool = t4(x->mbool, ATTN_U8, s->mbool);
        x->desc.mask_bool = &x->tmbool;
    }
}

void sbw_free(sbw *x)
{
    void *all[] = {x->q,  x->k,  x->v,  x->out,  x->lse,   x->dout,
                   x->dq, x->dk, x->dv, x->madd, x->dmask, x->mbool};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

void sbw_problem(sbw *x, attn_backend *be, attn_sdpa_problem *p)
{
    attn_status st = attn_sdpa_forward(be, &x->desc, &x->tq, &x->tk, &x->tv, &x->tout, &x->tlse);
    ck_assert_msg(st == ATTN_OK, "forward: %s", attn_last_error());
    st = attn_sdpa_validate_backward(&x->desc, &x->tq, &x->tk, &x->tv, &x->tout, &x->tlse,
                                     &x->tdout, &x->grads, p);
    ck_assert_msg(st == ATTN_OK, "validate: %s", attn_last_error());
}
