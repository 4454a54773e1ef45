#!/usr/bin/env python3
"""sdpa_key_score_torch.py - cross-check of `attn run --variant sdpa --key-score FILE` against
PyTorch: the probability matrix written out explicitly in float64 (logits scale * q k^T, the
soft-cap, the additive mask, -inf outside the causal/window band and where the boolean mask is
False, torch.softmax over the keys), then summed over the queries and over the query heads of
each KV head (GQA: head h uses KV head h // (Hq / Hkv)). A row with no visible key gives NaN in
torch.softmax; attn defines it to add nothing, so those rows are zeroed first. Windows use attn's
bottom-right alignment (query i at key position i + Skv - Sq) unless the case says top-left,
which is PyTorch's is_causal.

Compared with `attn run` on ref with --out-dtype f64 (1e-12 relative to the largest score) and
on cpu and opencl (f32: 1e-5); a backend that does not compute key_score yet (exit 1,
ATTN_ERR_UNSUPPORTED) or cannot open is reported and skipped. Files are [B, S, H, D] and once
[B, H, S, D] (--layout bhsd, key_score then [B, Hkv, Skv]). Usage: tests/sdpa_key_score_torch.py
[ATTN_BINARY] (default build/tools/attn). Exits 77 (skipped, with the reason) without torch or
numpy, or when the binary's `attn run` has no --key-score."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # the cross-check needs both
    print(f"sdpa_key_score_torch.py: skipped ({e.name} is not installed)")
    sys.exit(77)

# the inputs of the gradients' cross-check (this directory is on sys.path when run as a script)
from sdpa_backward_torch import inputs as backward_inputs

# b, sq, skv, hq, hkv, dk, dv and the options of each case
CASES = [
    dict(b=2, sq=1, skv=300, hq=8, hkv=2, dk=64, dv=64),  # decode, GQA
    dict(b=1, sq=4, skv=97, hq=8, hkv=2, dk=32, dv=16, causal="br"),
    dict(b=2, sq=13, skv=17, hq=4, hkv=4, dk=16, dv=16),
    dict(b=1, sq=16, skv=16, hq=4, hkv=1, dk=8, dv=8, causal="tl", layout="bhsd"),
    dict(b=1, sq=33, skv=70, hq=4, hkv=2, dk=16, dv=8, causal="br", wl=9),
    dict(b=1, sq=20, skv=40, hq=2, hkv=1, dk=16, dv=16, wl=5, wr=3, align="tl"),
    dict(b=2, sq=7, skv=21, hq=4, hkv=2, dk=8, dv=8, mask="add", softcap=2.5),
    dict(b=1, sq=12, skv=15, hq=2, hkv=1, dk=16, dv=16, mask="bool"),  # row 5 fully hidden
    dict(b=2, sq=9, skv=14, hq=8, hkv=2, dk=16, dv=8, scale=0.375),
]


def has_key_score(exe):
    r = subprocess.run([exe, "run", "--variant", "sdpa", "--help"], capture_output=True,
                       text=True)
    return "--key-score" in r.stdout + r.stderr


def inputs(c, gen):
    """q, k, v (f32 values as float64) and the case's mask; the boolean mask's row 5 sees
    nothing (a row with no visible key)."""
    t = backward_inputs(c, gen)
    if "bool" in t:
        t["bool"][:, :, 5, :] = False
    return t


def visible(c):
    """[Sq, Skv] band of the causal flag and the windows, attn's alignment rules."""
    sq, skv = c["sq"], c["skv"]
    align = c.get("causal") or c.get("align", "br")
    pos = torch.arange(sq)[:, None] + (skv - sq if align == "br" else 0)
    j = torch.arange(skv)[None, :]
    vis = torch.ones(sq, skv, dtype=torch.bool)
    if "wl" in c:
        vis &= j >= pos - c["wl"]
    if c.get("causal"):
        vis &= j <= pos
    if "wr" in c:
        vis &= j <= pos + c["wr"]
    return vis


def torch_key_score(c, t):
    """key_score [B, Skv, Hkv] from the explicit probability matrix, float64."""
    g = c["hq"] // c["hkv"]
    q = t["q"].transpose(1, 2)                                    # [B, Hq, Sq, Dk]
    k = t["k"].transpose(1, 2).repeat_interleave(g, dim=1)        # [B, Hq, Skv, Dk]
    scale = c.get("scale", 1.0 / c["dk"] ** 0.5)
    s = scale * q @ k.transpose(-1, -2)                           # [B, Hq, Sq, Skv]
    if "softcap" in c:
        s = c["softcap"] * torch.tanh(s / c["softcap"])
    if "mask" in t:
        s = s + t["mask"]
    hide = ~visible(c)
    if "bool" in t:
        hide = hide | ~t["bool"]
    s = s.masked_fill(hide, float("-inf"))
    p = torch.softmax(s, dim=-1)
    p = torch.nan_to_num(p, nan=0.0)  # rows with no visible key add nothing
    per_head = p.sum(dim=2)                                       # [B, Hq, Skv]
    per_kv = per_head.reshape(c["b"], c["hkv"], g, c["skv"]).sum(dim=2)
    return per_kv.transpose(1, 2)                                 # [B, Skv, Hkv]


def run_attn(exe, tmp, c, t, backend):
    """key_score of `attn run` as [B, Skv, Hkv] float64, or the reason it did not run."""
    bhsd = c.get("layout") == "bhsd"
    args = [exe, "run", "--variant", "sdpa", "--backend", backend]
    for n in ("q", "k", "v"):
        x = t[n].transpose(1, 2) if bhsd else t[n]
        np.save(os.path.join(tmp, n + ".npy"), x.numpy().astype(np.float32))
        args += ["--" + n, os.path.join(tmp, n + ".npy")]
    if "mask" in t:
        np.save(os.path.join(tmp, "mask.npy"), t["mask"].numpy().astype(np.float32))
        args += ["--mask", os.path.join(tmp, "mask.npy")]
    if "bool" in t:
        np.save(os.path.join(tmp, "bool.npy"), t["bool"].numpy())
        args += ["--bool-mask", os.path.join(tmp, "bool.npy")]
    if c.get("causal"):
        args += ["--causal", "--align", c["causal"]]
    elif "align" in c:
        args += ["--align", c["align"]]
    for opt, key in (("--window-left", "wl"), ("--window-right", "wr"), ("--scale", "scale"),
                     ("--softcap", "softcap")):
        if key in c:
            args += [opt, str(c[key])]
    if bhsd:
        args += ["--layout", "bhsd"]
    if backend == "ref":
        args += ["--out-dtype", "f64"]
    ks = os.path.join(tmp, "ks.npy")
    args += ["--out", os.path.join(tmp, "out.npy"), "--key-score", ks]
    r = subprocess.run(args, capture_output=True, text=True)
    if "ATTN_ERR_UNSUPPORTED" in r.stderr or "ATTN_ERR_BACKEND" in r.stderr:
        return None, r.stderr.strip()  # not computed there yet, or no device
    if r.returncode != 0:
        print(" ".join(args))
        print(r.stderr)
        sys.exit(1)
    x = torch.from_numpy(np.load(ks).astype(np.float64))
    os.remove(ks)
    return (x.transpose(1, 2) if bhsd else x), ""


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")
    if not os.path.exists(exe) or not has_key_score(exe):
        print(f"sdpa_key_score_torch.py: skipped ({exe} has no `attn run --variant sdpa "
              "--key-score`)")
        sys.exit(77)
    gen = torch.Generator().manual_seed(0)
    backends = subprocess.run([exe, "backends"], capture_output=True, text=True).stdout
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            t = inputs(c, gen)
            want = torch_key_score(c, t)
            for backend, tol in (("ref", 1e-12), ("cpu", 1e-5), ("opencl", 1e-5)):
                if backend != "ref" and backend not in backends:
                    continue
                got, why = run_attn(exe, tmp, c, t, backend)
                desc = " ".join(f"{k}={v}" for k, v in c.items())
                if got is None:
                    print(f"skip   {backend:6} {desc:70} ({why})")
                    continue
                err = ((got - want).abs().max() / want.abs().max()).item()
                worst[backend] = max(worst.get(backend, 0.0), err)
                status = "ok" if err <= tol else "FAILED"
                print(f"{status:6} {backend:6} {desc:70} key_score rel = {err:.2e}")
                if err > tol:
                    sys.exit(1)
    figures = ", ".join(f"{b} worst {e:.2e}" for b, e in worst.items())
    print(f"sdpa_key_score_torch.py: key_score agrees with torch ({figures})")


if __name__ == "__main__":
    main()
