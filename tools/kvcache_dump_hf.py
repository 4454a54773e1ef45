#!/usr/bin/env python3
"""kvcache_dump_hf.py - a worked example: dump the per-layer streams `attn decode --streams DIR`
reads from a Hugging Face causal LM (Llama, Mistral, Qwen2 and other pre-norm decoders whose
attention has q_proj / k_proj / v_proj and whose layers live in model.model.layers).

For a prompt of P tokens followed by N greedily generated ones (T = P + N), one causal forward
over the T tokens gives, per decoder layer l (docs/ops/kvcache.md, "Streams"):

  q_<l>.npy  [T, Hq, Dk]   the query projections
  k_<l>.npy  [T, Hkv, Dk]  the key projections
  v_<l>.npy  [T, Hkv, Dv]  the value projections
  x_<l>.npy  [P, D]        the layer's input hidden state (the residual stream before the
                           input norm), prompt tokens only
  y_<l>.npy  [P, D]        x plus the attention block's output (the residual after attention),
                           prompt tokens only: SqueezeAttention's cosine similarity is
                           mean_t cos(x_t, y_t)

--positions stored writes q and k after RoPE at their original positions 0 .. T-1 (replay with
`attn decode --positions stored`); original or cache writes them before RoPE, and the cache
rotates them (`--positions original`, or `cache` for StreamingLLM's in-cache positions), with
the --rope-theta / --rot-dim this script prints. A causal forward gives every token the q, k
and v it gets in token-by-token decoding, so the streams replay the model's decode exactly
(up to the model dtype's rounding).

This script is never a dependency of the build or the tests: without torch and transformers it
prints why and exits 77 (the "skipped" status of the test runners).

  python3 tools/kvcache_dump_hf.py --model HuggingFaceTB/SmolLM2-135M --new 32 --out streams
  attn decode --streams streams --positions original --rope-theta 100000 --sweep
"""
import argparse
import json
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF model id or local path")
    p.add_argument("--prompt", default=None, help="prompt text (default: a built-in paragraph)")
    p.add_argument("--prompt-file", default=None, help="read the prompt from this file")
    p.add_argument("--new", type=int, default=32, help="tokens to generate greedily (N)")
    p.add_argument("--out", required=True, help="directory to write the .npy files into")
    p.add_argument("--positions", choices=["stored", "original", "cache"], default="original",
                   help="stored: q and k after RoPE; original/cache: before RoPE")
    p.add_argument("--layers", type=int, default=0, help="dump only the first L layers")
    p.add_argument("--device", default="cpu")
    return p.parse_args()


DEFAULT_PROMPT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a screw press adapted from wine "
    "making. Within fifty years, presses operated in more than two hundred European cities, "
    "and the number of books in circulation grew from thousands to millions. Scholars argue "
    "about which consequences mattered most: the standardisation of texts, the spread of "
    "literacy, the speed at which scientific results could be checked and contested, or the "
    "religious upheavals that followed. Summarise the argument in two sentences.")


def rope_settings(cfg, head_dim):
    """theta and rot_dim of the model's RoPE as attn's options (HF rotate_half = --rope half)."""
    theta = getattr(cfg, "rope_theta", None)
    if theta is None:
        theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    rot = int(head_dim * getattr(cfg, "partial_rotary_factor", 1.0))
    scaling = getattr(cfg, "rope_scaling", None) or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    return float(theta), rot, (None if kind == "default" else scaling)


def main():
    args = parse_args()
    try:
        import numpy as np
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        print(f"kvcache_dump_hf.py: skipped: needs numpy, torch and transformers ({e})")
        return 77

    prompt = args.prompt or DEFAULT_PROMPT
    if args.prompt_file:
        with open(args.prompt_file, encoding="utf-8") as f:
            prompt = f.read()
    tok = AutoTokenizer.from_pretrained(args.model)
    import transformers  # the dtype keyword was renamed in transformers 5 (float32: exact streams)
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(args.model, **{dtype_kw: torch.float32})
    model.to(args.device).eval()
    ids = tok(prompt, return_tensors="pt").input_ids.to(args.device)
    P = ids.shape[1]
    with torch.no_grad():
        full = model.generate(ids, max_new_tokens=args.new, do_sample=False,
                              min_new_tokens=args.new, pad_token_id=tok.eos_token_id)
    T = full.shape[1]

    cfg = model.config
    layers = model.model.layers
    L = len(layers) if args.layers <= 0 else min(args.layers, len(layers))
    hq = cfg.num_attention_heads
    hkv = getattr(cfg, "num_key_value_heads", None) or hq
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // hq
    theta, rot, scaling = rope_settings(cfg, head_dim)

    grab = {}

    def keep(name, l):
        def hook(_mod, _inp, out):
            grab[(name, l)] = (out[0] if isinstance(out, tuple) else out).detach()
        return hook

    def keep_input(l):
        def hook(_mod, args_, kwargs):
            x = args_[0] if args_ else kwargs["hidden_states"]
            grab[("x", l)] = x.detach()
        return hook

    handles = []
    for l in range(L):
        att = layers[l].self_attn
        handles += [att.q_proj.register_forward_hook(keep("q", l)),
                    att.k_proj.register_forward_hook(keep("k", l)),
                    att.v_proj.register_forward_hook(keep("v", l)),
                    att.register_forward_hook(keep("attn", l)),
                    layers[l].register_forward_pre_hook(keep_input(l), with_kwargs=True)]
    with torch.no_grad():
        model(full, use_cache=False)
    for h in handles:
        h.remove()

    rotate = None
    if args.positions == "stored":
        module = sys.modules[type(layers[0].self_attn).__module__]
        pos = torch.arange(T, device=args.device)[None]
        cos, sin = model.model.rotary_emb(grab[("v", 0)], pos)
        rotate = lambda q, k: module.apply_rotary_pos_emb(q, k, cos, sin)  # noqa: E731

    os.makedirs(args.out, exist_ok=True)
    save = lambda name, l, a: np.save(os.path.join(args.out, f"{name}_{l}.npy"),  # noqa: E731
                                      np.ascontiguousarray(a, dtype=np.float32))
    for l in range(L):
        q = grab[("q", l)][0].reshape(T, hq, head_dim)
        k = grab[("k", l)][0].reshape(T, hkv, head_dim)
        v = grab[("v", l)][0].reshape(T, hkv, -1)
        if rotate is not None:  # HF rotates [B, H, T, D]
            qr, kr = rotate(q.transpose(0, 1)[None], k.transpose(0, 1)[None])
            q, k = qr[0].transpose(0, 1), kr[0].transpose(0, 1)
        x = grab[("x", l)][0, :P]
        y = x + grab[("attn", l)][0, :P]
        for name, a in (("q", q), ("k", k), ("v", v), ("x", x), ("y", y)):
            save(name, l, a.float().cpu().numpy())

    meta = {"model": args.model, "prompt_tokens": P, "new_tokens": T - P, "layers": L,
            "hq": hq, "hkv": hkv, "head_dim": head_dim, "positions": args.positions,
            "rope_theta": theta, "rot_dim": rot, "rope_scaling": scaling}
    with open(os.path.join(args.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, default=str)
    cmd = f"attn decode --streams {args.out} --positions {args.positions}"
    if args.positions != "stored":
        cmd += f" --rope half --rope-theta {theta:g}" + (f" --rot-dim {rot}" if rot != head_dim
                                                          else "")
    print(f"wrote {L} layers of {T} tokens ({P} prompt + {T - P} new), Hq {hq} / Hkv {hkv}, "
          f"D {head_dim} to {args.out}")
    if scaling and args.positions != "stored":
        print(f"note: the model scales RoPE ({scaling}); attn's RoPE does not: use "
              "--positions stored for an exact replay")
    print("replay: " + cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
