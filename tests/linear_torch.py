#!/usr/bin/env python3
"""linear_torch.py - `attn run --variant linear` against PyTorch formulations of kernel linear
attention written the way their authors' code writes them, in float64:

* fast-transformers (Katharopoulos): phi = elu + 1, causal numerator through cumulative sums of
  phi(k)^T v, denominator phi(q) . cumsum(phi(k)) + eps; and the non-causal form;
* Lightning Attention / TransNormerLLM: the masked left product (Q K^T .* M_lambda) V with
  M[i, j] = lambda^(i-j), lambda = exp(-slope) from ALiBi's slopes, no denominator;
* RATTENTION's residual branch with shift 0 (w = -1): [softmax(x), softmax(-x)] features, no
  denominator, an initial state h0, and the final state;
* GQA by repeating KV heads.

Each case runs on the ref backend with --out-dtype f64 (must agree to 1e-12) and on the cpu
backend in f32 (to 1e-4 of the output's magnitude). PyTorch is a peer, never a dependency:
without it (or numpy) the script says so and exits 77 (skipped under meson).
    python3 tests/linear_torch.py [ATTN_BINARY]
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED linear_torch.py: {e.name} is not installed")
    sys.exit(77)

torch.set_default_dtype(torch.float64)
ATTN = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")


def phi(x, name):
    """The feature maps, as the authors' code writes them."""
    if name == "elu1":
        return torch.nn.functional.elu(x) + 1
    if name == "softmax_pair":
        return torch.cat([torch.softmax(x, -1), torch.softmax(-x, -1)], -1)
    if name == "relu_pair":
        return torch.cat([torch.relu(x), torch.relu(-x)], -1)
    if name == "silu":
        return torch.nn.functional.silu(x)
    raise ValueError(name)


def repeat_kv(x, hq):
    """[B, S, Hkv, D] -> [B, S, Hq, D] (query head h uses KV head h // (Hq/Hkv))."""
    return x.repeat_interleave(hq // x.shape[2], dim=2)


def fast_transformers(q, k, v, feat, causal, eps=1e-6):
    Q, K = phi(q, feat), phi(repeat_kv(k, q.shape[2]), feat)
    V = repeat_kv(v, q.shape[2])
    if not causal:
        kv = torch.einsum("bshd,bshm->bhdm", K, V)
        z = 1 / (torch.einsum("bshd,bhd->bsh", Q, K.sum(1)) + eps)
        return torch.einsum("bshd,bhdm,bsh->bshm", Q, kv, z)
    kv = torch.einsum("bshd,bshm->bshdm", K, V).cumsum(1)
    num = torch.einsum("bshd,bshdm->bshm", Q, kv)
    den = torch.einsum("bshd,bshd->bsh", Q, K.cumsum(1)) + eps
    return num / den[..., None]


def alibi_slopes(n):
    def pow2(m):
        return [2 ** (-8 * (i + 1) / m) for i in range(m)]
    p = 2 ** int(np.floor(np.log2(n)))
    return pow2(p) + pow2(2 * p)[0::2][: n - p]


def lightning(q, k, v, feat):
    B, S, H, _ = q.shape
    Q, K, V = phi(q, feat), phi(k, feat), v
    s = torch.tensor(alibi_slopes(k.shape[2]))
    i = torch.arange(S)
    dist = (i[:, None] - i[None, :]).double()
    M = torch.where(dist >= 0, torch.exp(-s[:, None, None] * dist), torch.zeros(()))  # [H,S,S]
    A = torch.einsum("bihd,bjhd->bhij", Q, K) * M
    return torch.einsum("bhij,bjhm->bihm", A, V)


def rla_with_state(q, k, v, feat, h0):
    """The residual branch's linear scan (update, then read), state per KV head."""
    B, S, Hq, _ = q.shape
    G = Hq // k.shape[2]
    Q, K = phi(q, feat), phi(k, feat)
    h = h0.clone()
    out = torch.zeros(B, S, Hq, v.shape[3])
    for t in range(S):
        h = h + torch.einsum("bgd,bgm->bgdm", K[:, t], v[:, t])
        out[:, t] = torch.einsum("bhd,bhdm->bhm", Q[:, t], h.repeat_interleave(G, dim=1))
    return out, h


def run_attn(backend, tmp, args, outs):
    cmd = [ATTN, "run", "--variant", "linear", "--backend", backend] + args
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return [np.load(os.path.join(tmp, o)) for o in outs]


def check(name, got, want, tol):
    want = want.numpy() if isinstance(want, torch.Tensor) else want
    err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    status = "ok" if err <= tol else "FAILED"
    print(f"{status:7s} {name}: max relative difference {err:.3g} (limit {tol:g})")
    return err <= tol


def main():
    if not os.path.exists(ATTN):
        print(f"SKIPPED linear_torch.py: no attn binary at {ATTN}")
        return 77
    rng = np.random.default_rng(7)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        def save(name, a):
            np.save(os.path.join(tmp, name), a.astype(np.float32))
            return torch.from_numpy(a.astype(np.float32).astype(np.float64))

        B, S, HQ, HKV, D = 2, 37, 4, 2, 8
        q = save("q.npy", rng.uniform(-1, 1, (B, S, HQ, D)))
        k = save("k.npy", rng.uniform(-1, 1, (B, S, HKV, D)))
        v = save("v.npy", rng.uniform(-1, 1, (B, S, HKV, D)))
        h0 = save("h0.npy", rng.uniform(-1, 1, (B, HKV, 2 * D, D)))
        # Lightning's decay belongs to the KV head: its case has no GQA (Hkv = Hq).
        kl = save("kl.npy", rng.uniform(-1, 1, (B, S, HQ, D)))
        vl = save("vl.npy", rng.uniform(-1, 1, (B, S, HQ, D)))
        files = ["--q", f"{tmp}/q.npy", "--k", f"{tmp}/k.npy", "--v", f"{tmp}/v.npy",
                 "--out", f"{tmp}/o.npy"]
        cases = [
            ("fast-transformers causal elu+1", ["--feature", "elu1"], ["o.npy"],
             [fast_transformers(q, k, v, "elu1", True)]),
            ("fast-transformers non-causal elu+1", ["--feature", "elu1", "--causal", "0"],
             ["o.npy"], [fast_transformers(q, k, v, "elu1", False)]),
            ("lightning slopes silu", ["--feature", "silu", "--normalize", "0", "--decay",
                                       "slopes", "--k", f"{tmp}/kl.npy", "--v",
                                       f"{tmp}/vl.npy"], ["o.npy"],
             [lightning(q, kl, vl, "silu")]),
            ("rattention RLA softmax-pair h0", ["--feature", "softmax_pair", "--normalize", "0",
                                                "--state-in", f"{tmp}/h0.npy", "--state-out",
                                                f"{tmp}/h1.npy"], ["o.npy", "h1.npy"],
             list(rla_with_state(q, k, v, "softmax_pair", h0))),
            ("rattention RLA relu-pair", ["--feature", "relu_pair", "--normalize", "0"],
             ["o.npy"], [rla_with_state(q, k, v, "relu_pair", torch.zeros_like(h0))[0]]),
        ]
        for name, args, outs, want in cases:
            a = files + args if "--k" not in args else files[:2] + files[6:] + args  # own k, v
            for backend, tol in (("ref", 1e-12), ("cpu", 1e-4)):
                got = run_attn(backend, tmp, a, outs)
                for o, g, w in zip(outs, got, want):
                    ok &= check(f"{name} [{backend}] {o}", g, w, tol)
    print("linear_torch.py:", "all agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
