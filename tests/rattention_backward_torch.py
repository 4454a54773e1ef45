#!/usr/bin/env python3
"""rattention_backward_torch.py - `attn run --variant rattention --dout` against PyTorch autograd
(float64) through the axlearn-style forward transcription of tests/rattention_torch.py
(imported, not copied): RoPE'd sliding-window softmax plus the right-shifted residual linear
scan from h0, each through its GroupRMSNorm with its gain, summed. The loss is
<out, dO> + <h_T, dH> (h_T the state the next token continues from), so every gradient the
backward writes is checked: q, k, v, both gains, h0 (d_state_in) with d_state_out given.

Windows -1, 0, 3, w = S - 1 and w >= S, both feature maps, both RoPE layouts with offsets,
explicit scale and eps, GQA. On ref with --out-dtype f64 (the reference's f64 chain rule) each
gradient must agree to 1e-11 of its largest element, on cpu (f32) to 1e-4; a backend without
the backward is reported and skipped. Exits 77 (skipped) without torch or numpy.
    python3 tests/rattention_backward_torch.py [ATTN_BINARY]
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401
    import torch  # noqa: F401
except ImportError as e:  # the cross-check needs both
    print(f"SKIPPED rattention_backward_torch.py: {e.name} is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rattention_torch as rt  # noqa: E402
from rattention_torch import np, torch  # noqa: E402

NAMES = ["dq", "dk", "dv", "dgs", "dgr", "dh0"]
OPTS = ["--dq", "--dk", "--dv", "--dgamma-swa", "--dgamma-rla", "--d-state-in"]


def run_attn(exe, tmp, arrays, o, backend):
    """attn run --dout on the arrays; the gradients as float64 tensors, or None when the
    backend has no backward."""
    p = {}
    for name, x in arrays.items():
        p[name] = os.path.join(tmp, name + ".npy")
        np.save(p[name], x.detach().numpy().astype(np.float32))
    cmd = [exe, "run", "--variant", "rattention", "--backend", backend, "--q", p["q"],
           "--k", p["k"], "--v", p["v"], "--gamma-swa", p["gs"], "--gamma-rla", p["gr"],
           "--state-in", p["h0"], "--out", os.path.join(tmp, "o.npy"), "--dout", p["do"],
           "--d-state-out", p["dh"], "--window", str(o["window"]), "--feature", o["feature"],
           "--rope", o["rope"], "--rope-theta", repr(o["theta"]), "--offset", str(o["offset"]),
           "--eps", repr(o["eps"])]
    for name, opt in zip(NAMES, OPTS):
        cmd += [opt, os.path.join(tmp, name + ".npy")]
    if o["scale"]:
        cmd += ["--scale", repr(o["scale"])]
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        if backend != "ref" and "backward" in r.stderr and "unsupported" in r.stderr.lower():
            return None
        raise SystemExit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return [torch.from_numpy(np.load(os.path.join(tmp, n + ".npy")).astype(np.float64))
            for n in NAMES]


CASES = [
    rt.base(),
    rt.base(feature="relu-pair", rope="half", offset=5),
    rt.base(window=-1),
    rt.base(window=0, rope="half"),
    rt.base(window=40, theta=10000.0, offset=7),  # w >= S: the residual branch is h0 only
    rt.base(window=36, feature="relu-pair"),      # w = S - 1: no key leaves the window
    rt.base(window=5, rope="half", feature="relu-pair", scale=0.375, eps=1e-6, offset=-3),
]


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "tools", "attn")
    if not os.path.exists(exe) or not rt.has_runner(exe):
        print(f"rattention_backward_torch.py: skipped ({exe} has no `attn run --variant "
              "rattention`)")
        return 77
    torch.manual_seed(1)
    b, s, hq, hkv, d, dv = 2, 37, 4, 2, 8, 6
    def u(*shape):
        return (torch.rand(*shape, dtype=torch.float64) * 2 - 1).float().double()
    arrays = {"q": u(b, s, hq, d), "k": u(b, s, hkv, d), "v": u(b, s, hkv, dv),
              "gs": (u(hq, dv) * 0.5 + 1).float().double(),
              "gr": (u(hq, dv) * 0.5 + 1).float().double(), "h0": u(b, hkv, 2 * d, dv),
              "do": u(b, s, hq, dv), "dh": u(b, hkv, 2 * d, dv)}
    inputs = [arrays[n].requires_grad_() for n in ("q", "k", "v", "gs", "gr", "h0")]
    backends = subprocess.run([exe, "backends"], capture_output=True, text=True).stdout
    ok, worst = True, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for o in CASES:
            out, state = rt.forward(*inputs, o)
            loss = (out * arrays["do"]).sum() + (state * arrays["dh"]).sum()
            want = torch.autograd.grad(loss, inputs, allow_unused=True)  # w = -1: no gs
            want = [torch.zeros_like(x) if w is None else w for x, w in zip(inputs, want)]
            desc = " ".join(f"{k}={v}" for k, v in o.items())
            for backend, tol in (("ref", 1e-11), ("cpu", 1e-4)):
                if backend == "cpu" and "cpu" not in backends:
                    continue
                got = run_attn(exe, tmp, arrays, o, backend)
                if got is None:
                    print(f"skip   {backend:4} {desc}: no backward on this backend")
                    continue
                err = max(((g - w).abs().max() / w.abs().max().clamp(min=1e-300)).item()
                          for g, w in zip(got, want))
                if backend == "ref":
                    worst = max(worst, err)
                ok &= err <= tol
                print(f"{'ok' if err <= tol else 'FAILED':6} {backend:4} {desc:90} rel = {err:.2e}")
    print("rattention_backward_torch.py:",
          f"all agree (ref worst {worst:.2e})" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
