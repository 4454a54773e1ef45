#!/usr/bin/env python3
"""rope_torch.py - cross-check of `attn run --variant rope` against the RoPE formulas of
HF transformers (rotate_half, GPT-NeoX / Llama-in-HF layout), GPT-J (rotate_every_two, the
interleaved layout) and Meta's Llama (complex multiplication of adjacent pairs), written here
in PyTorch as those code bases write them, in float64.

Usage: rope_torch.py ATTN_BINARY [BACKEND ...]   (default backends: ref cpu)
Exits 77 (skipped, and says so) when torch or numpy is not installed. Never a build
dependency: meson runs it as a test that skips without them."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED rope_torch: {e.name} is not installed")
    sys.exit(77)


def inv_freq(theta, rot):
    # HF LlamaRotaryEmbedding / GPT-NeoX: 1 / base^(arange(0, dim, 2) / dim), here in f64
    return 1.0 / (theta ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))


def hf_rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def hf_apply(x, pos, theta, rot):
    """HF apply_rotary_pos_emb on [B, S, H, D] with partial rotation (GPT-NeoX rotary_pct)."""
    freqs = pos[..., None].double() * inv_freq(theta, rot)          # [B, S, rot/2]
    emb = torch.cat((freqs, freqs), dim=-1)                         # [B, S, rot]
    cos, sin = emb.cos()[:, :, None, :], emb.sin()[:, :, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat((xr * cos + hf_rotate_half(xr) * sin, xp), dim=-1)


def gptj_rotate_every_two(x):
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def gptj_apply(x, pos, theta, rot):
    """GPT-J apply_rotary_pos_emb: sin/cos repeated pairwise (repeat_interleave)."""
    freqs = pos[..., None].double() * inv_freq(theta, rot)
    cos = freqs.cos().repeat_interleave(2, dim=-1)[:, :, None, :]
    sin = freqs.sin().repeat_interleave(2, dim=-1)[:, :, None, :]
    xr, xp = x[..., :rot], x[..., rot:]
    return torch.cat((xr * cos + gptj_rotate_every_two(xr) * sin, xp), dim=-1)


def meta_apply(x, pos, theta):
    """Meta Llama apply_rotary_emb: adjacent pairs as complex numbers times polar(1, angle)."""
    freqs = torch.polar(torch.ones(1, dtype=torch.float64),
                        pos[..., None].double() * inv_freq(theta, x.shape[-1]))
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(xc * freqs[:, :, None, :]).flatten(-2)


def run_attn(attn, backend, x, pos, layout, theta, rot, offset, tmp):
    xf, pf, of = (os.path.join(tmp, n) for n in ("x.npy", "p.npy", "o.npy"))
    np.save(xf, x.numpy().astype(np.float32))
    cmd = [attn, "run", "--variant", "rope", "--backend", backend, "--x", xf, "--out", of,
           "--rope", layout, "--rope-theta", repr(theta), "--rot-dim", str(rot),
           "--offset", str(offset)]
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    if pos is not None:
        np.save(pf, pos.numpy())
        cmd += ["--positions", pf]
    subprocess.run(cmd, check=True)
    return torch.from_numpy(np.load(of).astype(np.float64))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    attn, backends = sys.argv[1], sys.argv[2:] or ["ref", "cpu"]
    g = torch.Generator().manual_seed(7)
    B, S, H, D = 2, 19, 3, 64
    x = (torch.rand(B, S, H, D, generator=g, dtype=torch.float64) * 2 - 1).float().double()
    cases = []  # (name, layout, theta, rot, offset, positions tensor or None, expected)
    for offset in (0, 100000, 1000000):
        pos = torch.arange(S, dtype=torch.int64)[None].expand(B, S) + offset
        cases.append(("hf half", "half", 10000.0, D, offset, None, hf_apply(x, pos, 10000.0, D)))
        cases.append(("neox rotary_pct 0.25", "half", 10000.0, 16, offset, None,
                      hf_apply(x, pos, 10000.0, 16)))
        cases.append(("gptj rotary_dim 32", "interleaved", 10000.0, 32, offset, None,
                      gptj_apply(x, pos, 10000.0, 32)))
        cases.append(("meta llama", "interleaved", 500000.0, D, offset, None,
                      meta_apply(x, pos, 500000.0)))
    pos32 = torch.randint(0, 2**31 - 1, (B, S), generator=g, dtype=torch.int64).to(torch.int32)
    pos64 = torch.randint(0, 10**7, (B, S), generator=g, dtype=torch.int64)
    cases.append(("hf position_ids i32", "half", 10000.0, D, 0, pos32,
                  hf_apply(x, pos32.long(), 10000.0, D)))
    cases.append(("gptj position_ids i64", "interleaved", 10000.0, D, 0, pos64,
                  gptj_apply(x, pos64, 10000.0, D)))
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            for name, layout, theta, rot, offset, pos, want in cases:
                got = run_attn(attn, backend, x, pos, layout, theta, rot, offset, tmp)
                # f64 reference: the f64 angle of positions up to 2^31 (~|angle| 2^-52) and
                # torch's own cos/sin; f32 backends: float rounding (16 u |x| per element)
                tol = 1e-12 if backend == "ref" else 2.0 ** -24 * 16 * 2
                err = (got - want).abs().max().item()
                if backend == "ref":
                    tol = max(tol, 4e-16 * float((pos.double().abs().max() if pos is not None
                                                  else offset + S)))
                worst = max(worst, err)
                status = "ok" if err <= tol else "MISMATCH"
                print(f"{status:8} {backend:6} {name:26} offset={offset:<8} max|diff|={err:.3g}"
                      f" (tol {tol:.3g})")
                if err > tol:
                    return 1
    print(f"rope_torch: all {len(cases) * len(backends)} comparisons agree "
          f"(worst {worst:.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
