#!/usr/bin/env python3
"""model_hf.py - cross-check of the model room against Hugging Face transformers'
BertForSequenceClassification (eager attention, eval mode, float32):
- a tiny seeded model (vocab 50, d 32, 2 layers, 4 heads, MLP 64, 40 positions, 3 labels),
  every parameter moved off its initial value, written by save_pretrained (safetensors), run by
  `attn infer` on random ids [4, 17] with padding at the end of some rows and two token types:
  logits, the attention maps (output_attentions, [L, B, H, S, S]), the hidden states
  (output_hidden_states, [L+1, B, S, d]), the attention residual (the input of each layer's
  attention.output.LayerNorm, caught by a forward pre-hook, [L, B, S, d]), the attention each
  key receives (the maps summed over the queries, [L, B, S, H]) and the gradient of
  logits[:, 1].sum() with respect to the embeddings module's output ([B, S, d]);
- the same model saved in float16 and bfloat16 (model.to(dtype).save_pretrained), read by attn
  and compared with transformers' model loaded from that directory in float32;
- a training round trip: `attn data --task planted`, `attn train` (one epoch), then
  from_pretrained of the result must report no missing, unexpected or mismatched tensor and
  its logits on the test ids must equal `attn infer`'s.
Each figure is max|got - want| / max|want| (the relative max-abs error against the largest
magnitude of transformers' tensor), gated at 1e-4: f32 dense layers in both, summed in
different orders (the f32 policy of the model room, docs/model.md).

Usage: model_hf.py ATTN_BINARY [BACKEND ...]   (default backends: ref cpu)
Exits 77 (skipped, and says so) when torch, numpy or transformers is not installed. Never a
build dependency: meson runs it as a test that skips without them."""
import copy
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import transformers
    from transformers import BertConfig, BertForSequenceClassification
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED model_hf: {e.name} is not installed")
    sys.exit(77)

TOL = 1e-4
CONFIG = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=64, max_position_embeddings=40, num_labels=3, type_vocab_size=2,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              initializer_range=0.2)  # wide enough for attention maps far from uniform
B, S = 4, 17
LENGTHS = (17, 12, 9, 16)  # tokens per row; the rest is padding (mask 0)
# the round trip: `attn data` and `attn train` options
DATA = ["--task", "planted", "--n-train", "512", "--n-test", "128", "--seq", "16", "--vocab", "1000"]
TRAIN = ["--epochs", "1", "--layers", "1", "--heads", "2", "--hidden", "32",
         "--intermediate", "64", "--vocab", "1000"]
OUTPUTS = ("logits", "attentions", "hidden", "attn_residual", "key_score", "grad_embed")


def tiny_model():
    """the seeded model, in eval mode, with eager attention (which returns the maps)"""
    torch.manual_seed(0)
    cfg = BertConfig(**CONFIG)
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # biases 0 and LayerNorm 1 would hide a swapped or ignored tensor
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def load_hf(path, **kw):
    return BertForSequenceClassification.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager", **kw)


def make_inputs():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, CONFIG["vocab_size"], (B, S), generator=g)
    pos = torch.arange(S)[None, :]
    lengths = torch.tensor(LENGTHS)[:, None]
    mask = (pos < lengths).to(torch.uint8)
    types = (pos >= lengths // 2).to(torch.int64) * mask  # segment B: each row's second half
    ids = ids * mask  # [PAD] = 0
    return ids.to(torch.int32), mask, types


def hf_outputs(model, ids, mask, types):
    """what transformers computes: every output of OUTPUTS as float64 numpy arrays"""
    residual, emb, hooks = [], {}, []
    for layer in model.bert.encoder.layer:
        hooks.append(layer.attention.output.LayerNorm.register_forward_pre_hook(
            lambda mod, args: residual.append(args[0].detach().clone())))

    def keep_embeddings(mod, args, out):
        out.retain_grad()
        emb["e"] = out
    hooks.append(model.bert.embeddings.register_forward_hook(keep_embeddings))
    out = model(input_ids=ids.long(), attention_mask=mask.long(), token_type_ids=types,
                output_attentions=True, output_hidden_states=True)
    out.logits[:, 1].sum().backward()
    for h in hooks:
        h.remove()
    attentions = torch.stack(out.attentions).detach()  # [L, B, H, S, S]
    got = {"logits": out.logits.detach(), "attentions": attentions,
           "hidden": torch.stack(out.hidden_states).detach(),
           "attn_residual": torch.stack(residual),
           "key_score": attentions.sum(dim=3).permute(0, 1, 3, 2),  # [L, B, S(key), H]
           "grad_embed": emb["e"].grad}
    return {k: v.double().numpy() for k, v in got.items()}


def run(cmd):
    """runs an attn command; its output goes to the log, a failure raises"""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError("exit status %d: %s" % (r.returncode, " ".join(cmd)))


def attn_outputs(attn, backend, model_dir, inputs, tmp):
    """`attn infer` on the inputs, every output of OUTPUTS, --batch 3 (two batches)"""
    files = {}
    for name, t in zip(("ids", "mask", "types"), inputs):
        files[name] = os.path.join(tmp, name + ".npy")
        np.save(files[name], t.numpy())
    outs = {k: os.path.join(tmp, k + ".npy") for k in OUTPUTS}
    run([attn, "infer", "--model", model_dir, "--ids", files["ids"], "--mask", files["mask"],
         "--types", files["types"], "--out", outs["logits"], "--attentions", outs["attentions"],
         "--hidden", outs["hidden"], "--attn-residual", outs["attn_residual"],
         "--key-score", outs["key_score"], "--grad-embed", outs["grad_embed"],
         "--grad-logit", "1", "--batch", "3", "--backend", backend])
    return {k: np.load(v).astype(np.float64) for k, v in outs.items()}


def compare(label, name, got, want):
    """prints the figure; True when it passes"""
    if got.shape != want.shape:
        print(f"MISMATCH {label:22} {name:14} shape {got.shape}, transformers {want.shape}")
        return False
    ref = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    rel = err / ref if ref > 0 else err
    ok = rel <= TOL and np.isfinite(got).all()
    print(f"{'ok' if ok else 'MISMATCH':8} {label:22} {name:14} max|diff| {err:.3g} / "
          f"max|ref| {ref:.3g} = {rel:.3g} (tol {TOL:g})")
    return ok


def check_checkpoint(attn, backends, model_dir, want, inputs, tmp, what):
    ok = True
    for backend in backends:
        got = attn_outputs(attn, backend, model_dir, inputs, tmp)
        for k in OUTPUTS:
            ok &= compare(f"{backend} {what}", k, got[k], want[k])
    return ok


def check_halves(attn, backends, model, inputs, tmp):
    """the model stored in f16 and bf16 against transformers reading the same files in f32"""
    ok = True
    for dt in (torch.float16, torch.bfloat16):
        d = os.path.join(tmp, "model_" + str(dt).replace("torch.", ""))
        copy.deepcopy(model).to(dt).save_pretrained(d)
        want = hf_outputs(load_hf(d).eval(), *inputs)
        ok &= check_checkpoint(attn, backends, d, want, inputs, tmp,
                               "stored " + str(dt).replace("torch.", ""))
    return ok


def check_round_trip(attn, backends, tmp):
    """attn data + attn train, then transformers loads the result and agrees with attn infer"""
    data, model_dir = os.path.join(tmp, "planted"), os.path.join(tmp, "trained")
    run([attn, "data", "--out", data] + DATA)
    run([attn, "train", "--data", data, "--out", model_dir] + TRAIN)
    hf, info = load_hf(model_dir, output_loading_info=True)
    bad = {k: sorted(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")
           if info[k]}
    print(f"{'ok' if not bad else 'MISMATCH':8} from_pretrained of `attn train`'s output: "
          f"{bad or 'no missing, unexpected or mismatched tensor'}")
    ok = not bad
    ids = np.load(os.path.join(data, "test_ids.npy"))
    mask = np.load(os.path.join(data, "test_mask.npy"))
    with torch.no_grad():
        want = hf.eval()(input_ids=torch.from_numpy(ids).long(),
                         attention_mask=torch.from_numpy(mask).long()).logits.double().numpy()
    for backend in backends:
        out = os.path.join(tmp, "trained_logits.npy")
        run([attn, "infer", "--model", model_dir, "--ids", os.path.join(data, "test_ids.npy"),
             "--mask", os.path.join(data, "test_mask.npy"), "--out", out,
             "--backend", backend])
        ok &= compare(f"{backend} trained", "logits", np.load(out).astype(np.float64), want)
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    attn, backends = sys.argv[1], sys.argv[2:] or ["ref", "cpu"]
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(2)
    print(f"model_hf: torch {torch.__version__}, transformers {transformers.__version__}; "
          f"backends {' '.join(backends)}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model = tiny_model()
            d = os.path.join(tmp, "model_f32")
            model.save_pretrained(d)
            inputs = make_inputs()
            ok = check_checkpoint(attn, backends, d, hf_outputs(model, *inputs), inputs, tmp,
                                  "f32")
            ok &= check_halves(attn, backends, model, inputs, tmp)
            ok &= check_round_trip(attn, backends, tmp)
        except RuntimeError as e:
            print(f"FAILED {e}")
            return 1
    print("model_hf: all comparisons agree" if ok else "model_hf: MISMATCH (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
