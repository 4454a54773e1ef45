#!/usr/bin/env python3
"""linear_backward_torch.py - `attn run --variant linear --dout` against PyTorch autograd (float64)
through the forward transcriptions of tests/linear_torch.py (imported, not copied):

* fast-transformers (Katharopoulos) elu+1, causal and non-causal, with the normaliser, GQA;
* Lightning Attention's decayed left product (ALiBi slopes, silu, no denominator);
* RATTENTION's residual branch (softmax- and relu-pair maps, no denominator) from an initial
  state h0, with the final state's gradient: loss = <out, dO> + <h_T, dH>, so d_state_in and
  d_state_out are checked too;
* and, for the normaliser's running sum, the definition of docs/ops/linear.md written here with
  S0, z0 and a per-head decay given as values (d_state_in, d_z_in, d_state_out, d_z_out).

Each case runs on the ref backend with --out-dtype f64 (the reference's f64 chain rule: must
agree to 1e-12 of each gradient's largest element) and on the cpu backend in f32 (1e-4). PyTorch
is a peer, never a dependency: without it (or numpy) the script says so and exits 77 (skipped
under meson).
    python3 tests/linear_backward_torch.py [ATTN_BINARY]
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401
    import torch  # noqa: F401
except ImportError as e:  # the cross-check needs both
    print(f"SKIPPED linear_backward_torch.py: {e.name} is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linear_torch as lt  # noqa: E402
from linear_torch import np, torch  # noqa: E402

ATTN = lt.ATTN


def definition(q, k, v, feat, lam, s0, z0, eps=float(np.float32(1e-6))):
    """The causal normalised form with an initial state and a decay per KV head lam [Hkv]:
    S_i = lam S_{i-1} + phi(k_i)^T v_i from S0, out_i = phi(q_i) S_i / (phi(q_i) . z_i + eps)."""
    B, S, Hq, _ = q.shape
    G = Hq // k.shape[2]
    Q, K = lt.phi(q, feat), lt.phi(k, feat)
    st, z = s0, z0
    out = []
    for t in range(S):
        st = lam[None, :, None, None] * st + torch.einsum("bgd,bgm->bgdm", K[:, t], v[:, t])
        z = lam[None, :, None] * z + K[:, t]
        num = torch.einsum("bhd,bhdm->bhm", Q[:, t], st.repeat_interleave(G, dim=1))
        den = torch.einsum("bhd,bhd->bh", Q[:, t], z.repeat_interleave(G, dim=1)) + eps
        out.append(num / den[..., None])
    return torch.stack(out, 1), st, z


def with_terms(results, *grads):
    """(out, final states...) of a forward -> (out, [(final state, its gradient), ...])."""
    return results[0], list(zip(results[1:], grads))


def run_attn(backend, tmp, args, outs):
    cmd = [ATTN, "run", "--variant", "linear", "--backend", backend] + args
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        if backend != "ref" and "backward" in r.stderr and "unsupported" in r.stderr.lower():
            return None  # this backend has no backward yet
        raise SystemExit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return [np.load(os.path.join(tmp, o)) for o in outs]


def main():
    if not os.path.exists(ATTN):
        print(f"SKIPPED linear_backward_torch.py: no attn binary at {ATTN}")
        return 77
    rng = np.random.default_rng(11)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        def save(name, a, positive=False):
            a = np.abs(a) if positive else a
            np.save(os.path.join(tmp, name), a.astype(np.float32))
            return torch.from_numpy(a.astype(np.float32).astype(np.float64)).requires_grad_()

        def path(name):
            return os.path.join(tmp, name)

        B, S, HQ, HKV, D = 2, 29, 4, 2, 8
        u = lambda *shape: rng.uniform(-1, 1, shape)  # noqa: E731
        q, k = save("q.npy", u(B, S, HQ, D)), save("k.npy", u(B, S, HKV, D))
        v = save("v.npy", u(B, S, HKV, D))
        kl, vl = save("kl.npy", u(B, S, HQ, D)), save("vl.npy", u(B, S, HQ, D))
        h0 = save("h0.npy", u(B, HKV, 2 * D, D))
        s0, z0 = save("s0.npy", 4 * u(B, HKV, D, D)), save("z0.npy", 4 * u(B, HKV, D), True)
        dout = save("do.npy", u(B, S, HQ, D))
        dh = save("dh.npy", u(B, HKV, 2 * D, D))
        ds, dz = save("ds.npy", u(B, HKV, D, D)), save("dz.npy", u(B, HKV, D))
        # the descriptor holds the decay values (and eps) as floats
        lam = torch.tensor(np.float32([0.9, 0.75]).astype(np.float64))
        qkv = ["--q", path("q.npy"), "--k", path("k.npy"), "--v", path("v.npy")]
        grads = ["--out", path("o.npy"), "--dout", path("do.npy"), "--dq", path("dq.npy"),
                 "--dk", path("dk.npy"), "--dv", path("dv.npy")]
        G3 = ["dq.npy", "dk.npy", "dv.npy"]
        cases = [  # name, args, output files, inputs, forward -> (out, [extra terms])
            ("fast-transformers causal elu+1 GQA", qkv + ["--feature", "elu1"], G3, [q, k, v],
             lambda: (lt.fast_transformers(q, k, v, "elu1", True), [])),
            ("fast-transformers non-causal elu+1", qkv + ["--feature", "elu1", "--causal", "0"],
             G3, [q, k, v], lambda: (lt.fast_transformers(q, k, v, "elu1", False), [])),
            ("lightning slopes silu", ["--q", path("q.npy"), "--k", path("kl.npy"), "--v",
                                       path("vl.npy"), "--feature", "silu", "--normalize", "0",
                                       "--decay", "slopes"], G3, [q, kl, vl],
             lambda: (lt.lightning(q, kl, vl, "silu"), [])),
            ("rattention RLA softmax-pair h0 dH", qkv + [
                "--feature", "softmax_pair", "--normalize", "0", "--state-in", path("h0.npy"),
                "--d-state-in", path("dh0.npy"), "--d-state-out", path("dh.npy")],
             G3 + ["dh0.npy"], [q, k, v, h0],
             lambda: with_terms(lt.rla_with_state(q, k, v, "softmax_pair", h0), dh)),
            ("rattention RLA relu-pair", qkv + ["--feature", "relu_pair", "--normalize", "0"],
             G3, [q, k, v],
             lambda: (lt.rla_with_state(q, k, v, "relu_pair", torch.zeros_like(h0))[0], [])),
            ("definition elu+1 decay S0 z0 dS dz", qkv + [
                "--feature", "elu1", "--decay", "0.9,0.75", "--state-in", path("s0.npy"),
                "--z-in", path("z0.npy"), "--d-state-in", path("ds0.npy"), "--d-z-in",
                path("dz0.npy"), "--d-state-out", path("ds.npy"), "--d-z-out", path("dz.npy")],
             G3 + ["ds0.npy", "dz0.npy"], [q, k, v, s0, z0],
             lambda: with_terms(definition(q, k, v, "elu1", lam, s0, z0), ds, dz)),
        ]
        backends = subprocess.run([ATTN, "backends"], capture_output=True, text=True).stdout
        for name, args, outs, inputs, fwd in cases:
            out, extra = fwd()
            loss = (out * dout).sum() + sum((t * g).sum() for t, g in extra)
            want = torch.autograd.grad(loss, inputs)
            for backend, tol in (("ref", 1e-12), ("cpu", 1e-4)):
                if backend == "cpu" and "cpu" not in backends:
                    continue  # a build without the cpu backend (reference-only)
                got = run_attn(backend, tmp, args + grads, outs)
                if got is None:
                    print(f"skip    {name} [{backend}]: no backward on this backend")
                    continue
                for o, g, w in zip(outs, got, want):
                    ok &= lt.check(f"{name} [{backend}] {o}", g, w.detach(), tol)
    print("linear_backward_torch.py:", "all agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
