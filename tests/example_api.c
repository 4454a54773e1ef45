/* example_api.c - a user program built against the installed-style shared library only (public
 * header, exported symbols): causal GQA attention on the cpu backend, checked against the ref
 * backend. Exits 0 on agreement, 1 otherwise. Also the smallest example of the API. */
#include <attn/attn.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

enum { B = 1, S = 37, HQ = 4, HKV = 2, D = 16 };

static int run(const char *backend, const float *q, const float *k, const float *v, float *out,
               float *lse)
{
    attn_backend *be = NULL;
    if (attn_backend_open(backend, NULL, &be) != ATTN_OK) {
        fprintf(stderr, "%s: %s\n", backend, attn_last_error());
        return -1;
    }
    attn_tensor tq = attn_tensor_bshd((void *)q, ATTN_F32, B, S, HQ, D);
    attn_tensor tk = attn_tensor_bshd((void *)k, ATTN_F32, B, S, HKV, D);
    attn_tensor tv = attn_tensor_bshd((void *)v, ATTN_F32, B, S, HKV, D);
    attn_tensor to = attn_tensor_bshd(out, ATTN_F32, B, S, HQ, D);
    attn_tensor tl = attn_tensor_bhsd(lse, ATTN_F32, B, S, HQ, 1);
    attn_sdpa_desc d = attn_sdpa_desc_default();
    d.causal = 1;
    d.window_left = 7;
    attn_status st = attn_sdpa_forward(be, &d, &tq, &tk, &tv, &to, &tl);
    if (st != ATTN_OK)
        fprintf(stderr, "%s: %s: %s\n", backend, attn_status_name(st), attn_last_error());
    attn_backend_close(be);
    return st == ATTN_OK ? 0 : -1;
}

int main(void)
{
    static float q[B * S * HQ * D], k[B * S * HKV * D], v[B * S * HKV * D];
    static float o_ref[B * S * HQ * D], o_cpu[B * S * HQ * D], l_ref[B * HQ * S], l_cpu[B * HQ * S];
    for (int i = 0; i < B * S * HQ * D; i++)
        q[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < B * S * HKV * D; i++) {
        k[i] = cosf(0.11f * (float)i);
        v[i] = sinf(0.05f * (float)i + 1.0f);
    }
    /* the fast backend when this build has it (a reference-only build compares ref with
     * itself) */
    const char *fast = "ref";
    for (const char *const *n = attn_backend_list(); *n; n++)
        if (strcmp(*n, "cpu") == 0)
            fast = "cpu";
    if (run("ref", q, k, v, o_ref, l_ref) || run(fast, q, k, v, o_cpu, l_cpu))
        return 1;
    double worst = 0;
    for (int i = 0; i < B * S * HQ * D; i++)
        worst = fmax(worst, fabs((double)o_ref[i] - o_cpu[i]));
    for (int i = 0; i < B * HQ * S; i++)
        worst = fmax(worst, fabs((double)l_ref[i] - l_cpu[i]) / (1.0 + fabs(l_ref[i])));
    printf("%s vs ref: max difference %.3g (bound 1e-5)\n", fast, worst);
    return worst <= 1e-5 ? 0 : 1;
}
