#!/usr/bin/env python3
"""sdpa_backward_torch.py - cross-check of the gradients of `attn run --variant sdpa --dout ...`
against PyTorch autograd through torch.nn.functional.scaled_dot_product_attention (float64, the
math path): dq, dk, dv of the loss sum(out * dout), and the gradient of a float attn_mask.
PyTorch's is_causal is the top-left alignment (`--causal --align tl`); GQA repeats each KV head
over its group with repeat_interleave, so autograd sums dk and dv over the group as
attn_sdpa_backward does; a boolean attn_mask is True where a key takes part (attn's
--bool-mask). Files are [B, S, H, D] (--layout bshd) and once [B, H, S, D] (--layout bhsd).

Compared with `attn run` on ref with --out-dtype f64 (1e-10 relative to the largest gradient)
and on cpu (f32: 1e-4). Usage: tests/sdpa_backward_torch.py [ATTN_BINARY] (default
build/tools/attn). Exits 77 (skipped, with the reason) without torch or numpy, or when the
binary's `attn run` has no --dout."""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the cross-check needs both
    print(f"sdpa_backward_torch.py: skipped ({e.name} is not installed)")
    sys.exit(77)

# b, sq, skv, hq, hkv, dk, dv and the options of each case
CASES = [
    dict(b=2, sq=13, skv=17, hq=4, hkv=4, dk=16, dv=16),
    dict(b=1, sq=11, skv=19, hq=2, hkv=2, dk=8, dv=12, causal=True),
    dict(b=2, sq=9, skv=14, hq=8, hkv=2, dk=16, dv=8, scale=0.375),  # exact in f32 (attn stores it so)
    dict(b=1, sq=16, skv=16, hq=4, hkv=1, dk=8, dv=8, causal=True, layout="bhsd"),
    dict(b=2, sq=7, skv=21, hq=4, hkv=2, dk=8, dv=8, mask="add"),
    dict(b=1, sq=12, skv=15, hq=2, hkv=1, dk=16, dv=16, mask="bool"),
]


def has_dout(exe):
    r = subprocess.run([exe, "run", "--variant", "sdpa", "--help"], capture_output=True,
                       text=True)
    return "--dout" in r.stdout + r.stderr


def inputs(c, gen):
    u = lambda *s: (torch.rand(*s, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    t = {"q": u(c["b"], c["sq"], c["hq"], c["dk"]), "k": u(c["b"], c["skv"], c["hkv"], c["dk"]),
         "v": u(c["b"], c["skv"], c["hkv"], c["dv"]), "dout": u(c["b"], c["sq"], c["hq"], c["dv"])}
    if c.get("mask") == "add":  # [Sq, Skv], broadcast over batch and heads
        t["mask"] = u(c["sq"], c["skv"]) * 2
    if c.get("mask") == "bool":  # [B, 1, Sq, Skv]; every row keeps its first key
        m = torch.rand(c["b"], 1, c["sq"], c["skv"], generator=gen) < 0.7
        m[..., 0] = True
        t["bool"] = m
    return t


def torch_grads(c, t):
    """Gradients [B, S, H, D] (and of the float mask) by autograd in float64."""
    q, k, v = (t[n].clone().requires_grad_(True) for n in ("q", "k", "v"))
    g = c["hq"] // c["hkv"]
    qt = q.transpose(1, 2)
    kt = k.transpose(1, 2).repeat_interleave(g, dim=1)
    vt = v.transpose(1, 2).repeat_interleave(g, dim=1)
    leaves = [q, k, v]
    mask = None
    if "mask" in t:
        mask = t["mask"].clone().requires_grad_(True)
        leaves.append(mask)
    elif "bool" in t:
        mask = t["bool"]
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask,
                                         is_causal=c.get("causal", False),
                                         scale=c.get("scale"))
    grads = torch.autograd.grad(out, leaves, t["dout"].transpose(1, 2))
    return dict(zip(["dq", "dk", "dv", "dmask"], grads))


def run_attn(exe, tmp, c, t, backend):
    bhsd = c.get("layout") == "bhsd"
    args = [exe, "run", "--variant", "sdpa", "--backend", backend]
    for n in ("q", "k", "v", "dout"):
        x = t[n].transpose(1, 2) if bhsd else t[n]
        np.save(os.path.join(tmp, n + ".npy"), x.numpy().astype(np.float32))
        args += ["--" + n, os.path.join(tmp, n + ".npy")]
    if "mask" in t:
        np.save(os.path.join(tmp, "mask.npy"), t["mask"].numpy().astype(np.float32))
        args += ["--mask", os.path.join(tmp, "mask.npy"),
                 "--dmask-add", os.path.join(tmp, "dmask.npy")]
    if "bool" in t:
        np.save(os.path.join(tmp, "bool.npy"), t["bool"].numpy())
        args += ["--bool-mask", os.path.join(tmp, "bool.npy")]
    if c.get("causal"):
        args += ["--causal", "--align", "tl"]
    if "scale" in c:
        args += ["--scale", str(c["scale"])]
    if bhsd:
        args += ["--layout", "bhsd"]
    if backend == "ref":
        args += ["--out-dtype", "f64"]
    args += ["--out", os.path.join(tmp, "out.npy")]
    for n in ("dq", "dk", "dv"):
        args += ["--" + n, os.path.join(tmp, n + ".npy")]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        print(" ".join(args))
        print(r.stderr)
        sys.exit(1)
    got = {}
    for n in ("dq", "dk", "dv", "dmask"):
        path = os.path.join(tmp, n + ".npy")
        if os.path.exists(path) and (n != "dmask" or "mask" in t):
            x = torch.from_numpy(np.load(path).astype(np.float64))
            got[n] = x.transpose(1, 2) if bhsd and n != "dmask" else x
            os.remove(path)
    return got


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")
    if not os.path.exists(exe) or not has_dout(exe):
        print(f"sdpa_backward_torch.py: skipped ({exe} has no `attn run --variant sdpa --dout`)")
        sys.exit(77)
    gen = torch.Generator().manual_seed(0)
    backends = subprocess.run([exe, "backends"], capture_output=True, text=True).stdout
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for c in CASES:
            t = inputs(c, gen)
            want = torch_grads(c, t)
            for backend, tol in (("ref", 1e-10), ("cpu", 1e-4)):
                if backend == "cpu" and "cpu" not in backends:
                    continue
                got = run_attn(exe, tmp, c, t, backend)
                err = max(((got[n] - w).abs().max() / w.abs().max()).item()
                          for n, w in want.items())
                if backend == "ref":
                    worst = max(worst, err)
                status = "ok" if err <= tol else "FAILED"
                desc = " ".join(f"{k}={v}" for k, v in c.items())
                print(f"{status:6} {backend:4} {desc:80} {'/'.join(want)} rel = {err:.2e}")
                if err > tol:
                    sys.exit(1)
    print(f"sdpa_backward_torch.py: all gradients agree (ref worst {worst:.2e})")


if __name__ == "__main__":
    main()
