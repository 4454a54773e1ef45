#!/usr/bin/env python3
"""rattention_torch.py - cross-check of `attn run --variant rattention` against RATTENTION's
forward written independently in PyTorch (float64), the way Apple's axlearn computes it
(rattention.py RAttention, utils.py GroupRMSNorm, the linear-scan reference of the residual
branch), without the projections around it:

  SWA:  RoPE on q and k (interleaved pairs (2i, 2i+1), axlearn, or half-split (i, i + D/2)),
        angle pos * theta^(-2i/D); logits scale * q.k over keys j in [i - w, i] (w >= 0),
        softmax, times v. No branch when w = -1.
  RLA:  k and v right-shifted by w + 1 with zero rows in front (axlearn's
        right_shift_and_zero_pad), phi = [softmax(x), softmax(-x)] or [relu(x), relu(-x)] on the
        raw q and k, then the scan h_t = h_{t-1} + phi(k_t)^T v_t, o_t = phi(q_t) h_t from h0.
  out = GroupRMSNorm(swa; gamma_swa) + GroupRMSNorm(rla; gamma_rla), per head over Dv:
        x * rsqrt(mean(x^2) + eps) * gamma.
  state_out = h after the last token (GQA: one state per KV head).

Compared with `attn run` on ref (f64 output: 1e-12) and cpu (f32: 1e-4 relative to the largest
output). Usage: tests/rattention_torch.py [ATTN_BINARY] (default build/tools/attn). Exits 77
(skipped) without torch or numpy, or when the binary has no rattention runner yet."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # the cross-check needs both
    print(f"rattention_torch.py: skipped ({e.name} is not installed)")
    sys.exit(77)


def rope(x, layout, theta, offset):
    """x [B,S,H,D]: every row rotated at position offset + s."""
    b, s, h, d = x.shape
    pos = torch.arange(s, dtype=torch.float64) + offset
    freq = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # theta^(-2i/D)
    ang = pos[:, None] * freq[None, :]                                  # [S, D/2]
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    if layout == "interleaved":
        a, c = x[..., 0::2], x[..., 1::2]
    else:
        a, c = x[..., : d // 2], x[..., d // 2:]
    ra, rc = a * cos - c * sin, c * cos + a * sin
    if layout == "interleaved":
        return torch.stack((ra, rc), dim=-1).reshape(b, s, h, d)
    return torch.cat((ra, rc), dim=-1)


def phi(x, feature):
    if feature == "softmax-pair":
        return torch.cat((torch.softmax(x, -1), torch.softmax(-x, -1)), -1)
    return torch.cat((torch.relu(x), torch.relu(-x)), -1)


def group_rms_norm(x, gamma, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gamma


def repeat_kv(x, group):
    return x.repeat_interleave(group, dim=2)


def swa(q, k, v, w, layout, theta, offset, scale):
    s = q.shape[1]
    qr, kr = rope(q, layout, theta, offset), rope(k, layout, theta, offset)
    group = q.shape[2] // k.shape[2]
    kr, v = repeat_kv(kr, group), repeat_kv(v, group)
    logits = torch.einsum("bihd,bjhd->bhij", qr, kr) * scale
    i, j = torch.arange(s)[:, None], torch.arange(s)[None, :]
    logits = logits.masked_fill((j > i) | (j < i - w), -float("inf"))
    return torch.einsum("bhij,bjhd->bihd", torch.softmax(logits, -1), v)


def rla(q, k, v, w, feature, h0):
    b, s, hkv, _ = k.shape
    shift = min(w + 1, s)
    zero = lambda x: torch.zeros(b, shift, hkv, x.shape[-1], dtype=x.dtype)
    k = torch.cat((zero(k), k[:, : s - shift]), 1)  # right_shift_and_zero_pad(k, w + 1)
    v = torch.cat((zero(v), v[:, : s - shift]), 1)
    fq, fk = phi(q, feature), phi(k, feature)
    group = q.shape[2] // hkv
    h = h0.clone()                                   # [B, Hkv, 2D, Dv]
    out = []
    for t in range(s):                               # update, then read (inclusive scan)
        h = h + torch.einsum("bgf,bgc->bgfc", fk[:, t], v[:, t])
        out.append(torch.einsum("bhf,bhfc->bhc", fq[:, t], repeat_kv(h[:, None], group)[:, 0]))
    return torch.stack(out, 1), h


def forward(q, k, v, gs, gr, h0, o):
    w, eps = o["window"], float(np.float32(o["eps"]))  # the descriptor holds f32 scalars
    scale = float(np.float32(o["scale"])) if o["scale"] else q.shape[-1] ** -0.5
    r, state = rla(q, k, v, w, o["feature"], h0)
    out = group_rms_norm(r, gr, eps)
    if w >= 0:
        out = out + group_rms_norm(swa(q, k, v, w, o["rope"], o["theta"], o["offset"], scale),
                                   gs, eps)
    return out, state


def run_attn(exe, tmp, arrays, o, backend):
    paths = {}
    for name, x in arrays.items():
        paths[name] = os.path.join(tmp, name + ".npy")
        np.save(paths[name], x.numpy().astype(np.float32))
    out, st = os.path.join(tmp, "o.npy"), os.path.join(tmp, "s.npy")
    cmd = [exe, "run", "--variant", "rattention", "--q", paths["q"], "--k", paths["k"],
           "--v", paths["v"], "--gamma-swa", paths["gs"], "--gamma-rla", paths["gr"],
           "--state-in", paths["h0"], "--out", out, "--state-out", st, "--backend", backend,
           "--window", str(o["window"]), "--feature", o["feature"], "--rope", o["rope"],
           "--rope-theta", repr(o["theta"]), "--offset", str(o["offset"]),
           "--eps", repr(o["eps"])]
    if o["scale"]:
        cmd += ["--scale", repr(o["scale"])]
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    subprocess.run(cmd, check=True)
    load = lambda p: torch.from_numpy(np.load(p).astype(np.float64))
    return load(out), load(st)


def base(**kw):
    o = {"window": 3, "feature": "softmax-pair", "rope": "interleaved", "theta": 500000.0,
         "offset": 0, "scale": 0.0, "eps": 1e-8}
    o.update(kw)
    return o


CASES = [
    base(),
    base(feature="relu-pair"),
    base(window=-1),
    base(window=0, rope="half"),
    base(window=40, theta=10000.0, offset=7),   # w >= S: the residual branch is h0 only
    base(window=5, rope="half", feature="relu-pair", scale=0.375, eps=1e-6, offset=-3),
    base(window=36),                            # w = S - 1: only row S - 1 reads token 0
]


def has_runner(exe):
    r = subprocess.run([exe, "run", "--variant", "rattention", "--help"], capture_output=True,
                       text=True)
    return r.returncode == 0 and "rattention" in r.stdout + r.stderr


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")
    if not os.path.exists(exe) or not has_runner(exe):
        print(f"rattention_torch.py: skipped ({exe} has no `attn run --variant rattention`)")
        sys.exit(77)
    torch.manual_seed(0)
    b, s, hq, hkv, d, dv = 2, 37, 4, 2, 8, 6
    u = lambda *shape: (torch.rand(*shape, dtype=torch.float64) * 2 - 1).float().double()
    arrays = {"q": u(b, s, hq, d), "k": u(b, s, hkv, d), "v": u(b, s, hkv, dv),
              "gs": u(hq, dv) * 0.5 + 1, "gr": u(hq, dv) * 0.5 + 1, "h0": u(b, hkv, 2 * d, dv)}
    arrays["gs"], arrays["gr"] = (x.float().double() for x in (arrays["gs"], arrays["gr"]))
    backends = subprocess.run([exe, "backends"], capture_output=True, text=True).stdout
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for o in CASES:
            want, want_state = forward(arrays["q"], arrays["k"], arrays["v"], arrays["gs"],
                                       arrays["gr"], arrays["h0"], o)
            for backend, tol in (("ref", 1e-12), ("cpu", 1e-4)):
                if backend == "cpu" and "cpu" not in backends:
                    continue
                got, state = run_attn(exe, tmp, arrays, o, backend)
                err = max(((got - want).abs().max() / want.abs().max()).item(),
                          ((state - want_state).abs().max() / want_state.abs().max()).item())
                worst = max(worst, err) if backend == "ref" else worst
                status = "ok" if err <= tol else "FAILED"
                desc = " ".join(f"{k}={v}" for k, v in o.items())
                print(f"{status:6} {backend:4} {desc:90} rel = {err:.2e}")
                if err > tol:
                    sys.exit(1)
    print(f"rattention_torch.py: all cases agree (ref worst {worst:.2e})")


if __name__ == "__main__":
    main()
