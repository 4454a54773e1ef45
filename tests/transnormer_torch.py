#!/usr/bin/env python3
"""transnormer_torch.py - cross-check of `attn run --variant transnormer` against TransNormer's
attention modules re-implemented in PyTorch (float64) exactly as the authors' code computes
them (fairseq-evo NormLinearAttention and NormLocalAttention.forward_chunk, without the input
and output projections):

  NormAttention: q, k = act(q), act(k); causal (q k^T * tril) v, else q (k^T v); heads
                 concatenated; SimpleRMSNorm x / (||x||_2 (H Dv)^-1/2 + 1e-8).
  DiagAttention: q / sqrt(d); q, k, v zero-padded to a block multiple; per block logits q k^T;
                 causal mask -1e8 (softmax) or 0 (relu); softmax or relu; P v; padding dropped;
                 SimpleRMSNorm after relu only.

The authors' zero padding is attn's --pad zero; the default --pad masked is checked against
the same code with the padded keys masked. Usage: tests/transnormer_torch.py [ATTN_BINARY]
(default build/tools/attn). Skips (exit 0, saying so) without torch or numpy."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # the cross-check needs both
    print(f"transnormer_torch.py: skipped ({e.name} is not installed)")
    sys.exit(0)

EPS = 1e-8


def act(x, name):
    if name == "1+elu":
        return 1 + torch.nn.functional.elu(x)
    if name == "elu":
        return torch.nn.functional.elu(x)
    if name == "relu":
        return torch.relu(x)
    return x


def srms(x):  # x [B, S, H*D]: SimpleRMSNorm of fairseq-evo (eps outside the root, no gain)
    return x / (x.norm(dim=-1, keepdim=True) * x.shape[-1] ** -0.5 + EPS)


def norm_attention(q, k, v, feature, causal):
    """q [B,S,H,D] etc. -> [B,S,H,Dv]; the authors' (q k^T * tril) v for causal."""
    q, k = act(q, feature).transpose(1, 2), act(k, feature).transpose(1, 2)
    v = v.transpose(1, 2)
    if causal:
        s = q.shape[2]
        o = (q @ k.transpose(-1, -2) * torch.tril(torch.ones(s, s, dtype=q.dtype))) @ v
    else:
        o = q @ (k.transpose(-1, -2) @ v)
    b, h, s, dv = o.shape
    return srms(o.transpose(1, 2).reshape(b, s, h * dv)).reshape(b, s, h, dv)


def diag_attention(q, k, v, block, scores, causal, mask_pad):
    b, s, h, d = q.shape
    dv = v.shape[-1]
    q = q / d ** 0.5
    n = -(-s // block) * block
    pad = lambda x: torch.nn.functional.pad(x, (0, 0, 0, 0, 0, n - s))
    g = n // block
    rs = lambda x: pad(x).transpose(1, 2).reshape(b, h, g, block, x.shape[-1])
    q, k, v = rs(q), rs(k), rs(v)
    logits = q @ k.transpose(-1, -2)
    future = torch.triu(torch.ones(block, block, dtype=torch.bool), 1)
    if causal:
        logits = logits.masked_fill(future, 0.0 if scores == "relu" else -1e8)
    if mask_pad:  # attn's default: the padded keys of the last block take no part
        real = (torch.arange(n) < s).reshape(g, 1, block)
        logits = logits.masked_fill(~real, -float("inf") if scores == "softmax" else 0.0)
    p = torch.relu(logits) if scores == "relu" else torch.softmax(logits, dim=-1)
    o = (p @ v).reshape(b, h, n, dv)[:, :, :s].transpose(1, 2)
    if scores == "relu":
        o = srms(o.reshape(b, s, h * dv)).reshape(b, s, h, dv)
    return o


def run_attn(exe, tmp, q, k, v, opts, backend):
    paths = {}
    for name, x in (("q", q), ("k", k), ("v", v)):
        paths[name] = os.path.join(tmp, name + ".npy")
        np.save(paths[name], x.numpy().astype(np.float32))
    out = os.path.join(tmp, "o.npy")
    cmd = [exe, "run", "--variant", "transnormer", "--q", paths["q"], "--k", paths["k"], "--v",
           paths["v"], "--out", out, "--backend", backend] + opts
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    subprocess.run(cmd, check=True)
    return torch.from_numpy(np.load(out).astype(np.float64))


CASES = [  # (mode options, feature or block/scores) in attn's option names
    (["--mode", "norm", "--feature", "1+elu", "--causal"], None),
    (["--mode", "norm", "--feature", "elu"], None),
    (["--mode", "norm", "--feature", "relu", "--causal"], None),
    (["--mode", "diag", "--block", "8", "--scores", "softmax", "--causal"], None),
    (["--mode", "diag", "--block", "8", "--scores", "relu"], None),
    (["--mode", "diag", "--block", "8", "--scores", "softmax", "--pad", "zero"], None),
    (["--mode", "diag", "--block", "8", "--scores", "softmax"], None),
    (["--mode", "diag", "--block", "64", "--scores", "softmax", "--causal"], None),
]


def expected(q, k, v, opts):
    o = dict(zip(opts[::2], opts[1::2]))
    causal = "--causal" in opts
    if o["--mode"] == "norm":
        return norm_attention(q, k, v, o["--feature"], causal)
    return diag_attention(q, k, v, int(o["--block"]), o["--scores"], causal,
                          o.get("--pad", "masked") == "masked")


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")
    torch.manual_seed(0)
    b, s, h, d = 2, 37, 3, 16  # 37 tokens: a partial last block of 8
    q, k, v = (torch.rand(b, s, h, d, dtype=torch.float64) * 2 - 1 for _ in range(3))
    q, k, v = (x.float().double() for x in (q, k, v))  # the values attn reads from f32 files
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for opts, _ in CASES:
            want = expected(q, k, v, opts)
            for backend, tol in (("ref", 1e-12), ("cpu", 2e-5)):
                if backend == "cpu" and "cpu" not in subprocess.run(
                        [exe, "backends"], capture_output=True, text=True).stdout:
                    continue
                got = run_attn(exe, tmp, q, k, v, opts, backend)
                err = (got - want).abs().max().item()
                worst = max(worst, err) if backend == "ref" else worst
                status = "ok" if err <= tol else "FAILED"
                print(f"{status:6} {backend:4} {' '.join(opts):60} max|d| = {err:.2e}")
                if err > tol:
                    sys.exit(1)
    print(f"transnormer_torch.py: all cases agree (ref worst {worst:.2e})")


if __name__ == "__main__":
    main()
