#!/usr/bin/env python3
"""kvcache_torch.py - cross-check of `attn run --variant kvcache` against the attention of a
KV cache with eviction as HF transformers and StreamingLLM write it, in PyTorch float64: a
sequence of P tokens whose cache kept some of them (StreamingLLM's sinks + recent window, or
an H2O-like scattered subset per KV head) in shuffled slots with holes (NaN inside), GQA
(repeat_kv), queries at the newest positions (causal by original position), and
- positions=original / stored: HF apply_rotary_pos_emb (rotate_half) of q and k at their
  original positions (stored: the keys handed over already rotated), then
  torch.nn.functional.scaled_dot_product_attention over the kept tokens in position order;
- positions=cache: StreamingLLM's pos_shift (keys of the kept tokens at 0 .. T-1, the query at
  the number of kept tokens before it);
- key_score: the softmax probabilities (HF's attn_weights) summed over the queries and the query
  heads of each KV head, per slot.

Usage: kvcache_torch.py ATTN_BINARY [BACKEND ...]   (default backends: ref cpu)
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
    print(f"SKIPPED kvcache_torch: {e.name} is not installed")
    sys.exit(77)

B, SQ, HQ, HKV, D, P, NSLOT = 2, 3, 8, 2, 64, 40, 24
THETA = 10000.0


def hf_rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def hf_rope(x, pos):
    """HF apply_rotary_pos_emb of x [..., D] at integer positions pos [...] (f64)."""
    inv_freq = 1.0 / (THETA ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = pos[..., None].double() * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + hf_rotate_half(x) * emb.sin()


def kept_positions(policy, g):
    """The token positions the cache of KV head g kept (the newest SQ always)."""
    if policy == "streaming":  # 4 sinks + the recent window, the same for every head
        return list(range(4)) + list(range(P - 14, P))
    gen = torch.Generator().manual_seed(11 + g)  # H2O-like: scattered, per head
    older = torch.randperm(P - SQ, generator=gen)[: 17 - SQ].tolist()
    return sorted(older) + list(range(P - SQ, P))


def make_inputs(policy):
    gen = torch.Generator().manual_seed(5)
    q = (torch.rand(B, SQ, HQ, D, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    k = (torch.rand(B, P, HKV, D, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    v = (torch.rand(B, P, HKV, D, generator=gen, dtype=torch.float64) * 2 - 1).float().double()
    qpos = torch.arange(P - SQ, P, dtype=torch.int64)[None].expand(B, SQ).contiguous()
    slot_pos = torch.full((B, NSLOT, HKV), -1, dtype=torch.int64)
    for b in range(B):
        for g in range(HKV):
            kept = kept_positions(policy, g)
            slots = torch.randperm(NSLOT, generator=gen)[: len(kept)]
            slot_pos[b, slots, g] = torch.tensor(kept)
    return q, k, v, qpos, slot_pos


def expected(q, k, v, qpos, slot_pos, mode):
    """HF / StreamingLLM attention per (batch, KV head) over the kept tokens in position order,
    and the key_score of each slot."""
    out = torch.zeros(B, SQ, HQ, D, dtype=torch.float64)
    ks = torch.zeros(B, NSLOT, HKV, dtype=torch.float64)
    group = HQ // HKV
    for b in range(B):
        for g in range(HKV):
            slots = [j for j in range(NSLOT) if slot_pos[b, j, g] >= 0]
            slots.sort(key=lambda j: int(slot_pos[b, j, g]))
            pos = slot_pos[b, slots, g]
            kk, vv = k[b, pos, g], v[b, pos, g]                        # [T, D]
            qq = q[b, :, g * group:(g + 1) * group].transpose(0, 1)  # [group, SQ, D]
            if mode == "cache":  # pos_shift: keys at 0..T-1, query at the kept tokens before it
                kr = hf_rope(kk, torch.arange(len(slots)))
                qr = hf_rope(qq, torch.searchsorted(pos, qpos[b]))
            else:
                kr, qr = hf_rope(kk, pos), hf_rope(qq, qpos[b])
            mask = pos[None, :] <= qpos[b][:, None]                    # causal by position
            o = torch.nn.functional.scaled_dot_product_attention(
                qr[None], kr[None, None], vv[None, None], attn_mask=mask)[0]
            out[b, :, g * group:(g + 1) * group] = o.transpose(0, 1)
            w = torch.softmax((qr @ kr.T / D ** 0.5).masked_fill(~mask, float("-inf")), -1)
            ks[b, slots, g] = w.sum(dim=(0, 1))
    return out, ks


def run_attn(attn, backend, tensors, mode, tmp):
    q, k, v, qpos, slot_pos = tensors
    names = ("q", "qp", "k", "v", "sp", "o", "ks")
    f = {n: os.path.join(tmp, n + ".npy") for n in names}
    if mode == "stored":  # keys rotated at append time, at their original positions
        k = hf_rope(k, torch.arange(P)[None, :, None].expand(B, P, HKV))
        q = hf_rope(q, qpos[:, :, None].expand(B, SQ, HQ))
    # the slots: k and v of the kept token, NaN in empty slots (never read)
    idx = slot_pos.clamp(min=0)
    ks_ = torch.gather(k, 1, idx[..., None].expand(B, NSLOT, HKV, D))
    vs_ = torch.gather(v, 1, idx[..., None].expand(B, NSLOT, HKV, D))
    ks_[slot_pos < 0] = float("nan")
    vs_[slot_pos < 0] = float("nan")
    for n, t in (("q", q), ("k", ks_), ("v", vs_)):
        np.save(f[n], t.numpy().astype(np.float32))
    np.save(f["qp"], qpos.numpy())
    np.save(f["sp"], slot_pos.numpy())
    cmd = [attn, "run", "--variant", "kvcache", "--backend", backend, "--q", f["q"],
           "--q-pos", f["qp"], "--k", f["k"], "--v", f["v"], "--slot-pos", f["sp"],
           "--positions", mode, "--out", f["o"], "--key-score", f["ks"]]
    if backend == "ref":
        cmd += ["--out-dtype", "f64"]
    subprocess.run(cmd, check=True)
    return (torch.from_numpy(np.load(f["o"]).astype(np.float64)),
            torch.from_numpy(np.load(f["ks"]).astype(np.float64)))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    attn, backends = sys.argv[1], sys.argv[2:] or ["ref", "cpu"]
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for policy in ("streaming", "scattered"):
            tensors = make_inputs(policy)
            for mode in ("stored", "original", "cache"):
                want_o, want_ks = expected(*tensors, "cache" if mode == "cache" else "original")
                for backend in backends:
                    got_o, got_ks = run_attn(attn, backend, tensors, mode, tmp)
                    # f64 reference: the rotation's f64 rounding of the stored keys (rounded to
                    # f32 when handed over); f32 backends: float rounding over D and the slots
                    tol = 1e-6 if mode == "stored" else 1e-12
                    tol = tol if backend == "ref" else 2e-5
                    err = max((got_o - want_o).abs().max().item(),
                              (got_ks - want_ks).abs().max().item())
                    status = "ok" if err <= tol else "MISMATCH"
                    print(f"{status:8} {backend:6} {policy:9} positions={mode:8} "
                          f"max|diff|={err:.3g} (tol {tol:.3g})")
                    if err > tol:
                        return 1
                    n += 1
    print(f"kvcache_torch: all {n} comparisons agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
