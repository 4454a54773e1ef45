#!/usr/bin/env python3
"""explain_captum.py - cross-check of the explain room (`attn explain`) against captum and
Hugging Face transformers' BertForSequenceClassification (eager attention, eval mode):
- a tiny seeded model (vocab 50, d 32, 2 layers, 4 heads, MLP 64, 3 labels), its weights drawn
  with std 0.3 and every bias and LayerNorm moved off its initial value, so that the pooler's
  tanh saturates in part (DeepLIFT then differs from input x gradient) and the attention maps
  are far from uniform; written by save_pretrained (safetensors) and explained by
  `attn explain` on two unpadded rows of 15 ids, for a class that is not the predicted one of
  the first row;
- the references, all computed on the same weights in float64 with respect to the embedding
  layer's output e = bert.embeddings(ids) (algos.md C.2): captum's Saliency (abs), InputXGradient,
  IntegratedGradients (100 Gauss-Legendre nodes, zero baseline) and DeepLift (rescale at the
  pooler's tanh only) on f(e) = classifier(pooler(encoder(e))), each token's score the sum over
  the embedding dimension; the attention received (output_attentions summed over layers, heads
  and query rows; last layer only); rollout (numpy: 0.5 mean_h A + 0.5 I, product over layers,
  row [CLS]); flow (networkx max-flow on the layered graph; without networkx only
  0 <= flow <= 1 is checked); LIME on masks given to both sides (--lime-samples), against
  (a) the float64 minimum-norm weighted least-squares fit of the same masks and (b) captum's
  Lime with a perturb_func returning those masks, asserted only where sklearn's float32 fit
  has rank n - 1 (algos.md C.2b, 3: otherwise captum's output is float32 rounding noise);
  random must give each row a permutation of 1..S;
- before attn runs, the references are checked against themselves: captum against plain
  autograd re-derivations of each formula (Gauss-Legendre weights rounded to float32 as captum
  does, the DeepLIFT multiplier at the pooler), so a change of captum's defaults shows.

Each figure is max|got - want| / max|want| (the largest difference relative to the largest
score magnitude of the float64 reference), gated at 1e-4: the f32 bound of the model room
(docs/model.md, tests/model_hf.py) for f32 dense layers summed in different orders, which
holds for every method here because each score is a short sum (d = 32 terms, 100 quadrature
nodes with weights summing to 1, 2 x 4 x 15 attention entries each <= 1, a well-conditioned
40 x 480 least-squares fit whose condition number is printed) of quantities that carry that
bound. The same figure for the references run in float32 (torch's f32 against the f64 gold)
is printed next to each method as the yardstick of plain float code.

Usage: explain_captum.py ATTN_BINARY [BACKEND ...]   (default backends: ref cpu)
Exits 77 (skipped, and says so) when torch, numpy, transformers, captum or safetensors is not
installed. Never a build dependency: meson runs it as a test that skips without them. sklearn
(captum's LIME, check b) and networkx (flow) are optional: their checks are skipped without
them."""
import copy
import os
import subprocess
import sys
import tempfile
import warnings

try:
    import numpy as np
    import torch
    import transformers
    import captum
    import safetensors  # noqa: F401 (save_pretrained writes safetensors through it)
    from captum.attr import DeepLift, InputXGradient, IntegratedGradients, Lime, Saliency
    from transformers import BertConfig, BertForSequenceClassification
except ImportError as e:  # pragma: no cover
    print(f"SKIPPED explain_captum: {e.name} is not installed")
    sys.exit(77)

TOL = 1e-4
SELF_TOL = 1e-10  # captum against the re-derivations, both float64
CONFIG = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=64, max_position_embeddings=40, num_labels=3, type_vocab_size=2,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
              initializer_range=0.3)
B, S = 2, 15
IG_STEPS, LIME_SAMPLES, LIME_WIDTH, DEEPLIFT_EPS = 100, 40, 1000.0, 1e-10
GRADIENT_METHODS = ("vanilla_gradient", "input_x_gradient", "integrated_gradients", "deeplift")
METHODS = ("all_attention", "last_attention", "rollout", "flow") + GRADIENT_METHODS + \
    ("lime", "random")


# ---- the model ------------------------------------------------------------------------------
def tiny_model():
    """the seeded float32 model in eval mode with eager attention"""
    torch.manual_seed(0)
    cfg = BertConfig(**CONFIG)
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # biases 0 and LayerNorm 1 would make the zero baseline special
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


class FromEmbeddings(torch.nn.Module):
    """f(e): the logits as a function of the embedding layer's output (no mask: unpadded)"""

    def __init__(self, model):
        super().__init__()
        self.encoder, self.pooler = model.bert.encoder, model.bert.pooler
        self.classifier = model.classifier

    def forward(self, e):
        return self.classifier(self.pooler(self.encoder(e).last_hidden_state))


def make_ids():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, CONFIG["vocab_size"], (B, S), generator=g)
    ids[:, 0] = 2  # a [CLS]-like first token (any id works: the model has no special ids)
    return ids


def lime_masks(e):
    """the LIME samples given to both sides: Bernoulli(0.5) per scalar, [B, n, S, d] uint8"""
    g = torch.Generator().manual_seed(2)
    return (torch.rand((B, LIME_SAMPLES) + tuple(e.shape[1:]), generator=g) < 0.5).to(
        torch.uint8)


# ---- the references -------------------------------------------------------------------------
def attention_maps(model, ids):
    """[L, B, H, S, S] float64 numpy: transformers' output_attentions"""
    with torch.no_grad():
        out = model.bert(input_ids=ids, output_attentions=True)
    return torch.stack(out.attentions).double().numpy()


def rollout(att):
    """row [CLS] of prod_l (0.5 mean_h A_l + 0.5 I), [B, S] (algos.md C.3)"""
    a = 0.5 * att.mean(axis=2) + 0.5 * np.eye(att.shape[-1])  # [L, B, S, S]
    r = a[0]
    for layer in a[1:]:
        r = layer @ r
    return r[:, 0, :]


def flow(att, nx):
    """max-flow from ([CLS], last layer) to each input node on the layered graph whose edge
    (l, i) -> (l - 1, j) has capacity 0.5 mean_h A_l[i, j] + 0.5 [i == j], [B, S]"""
    a = 0.5 * att.mean(axis=2) + 0.5 * np.eye(att.shape[-1])
    L, n = a.shape[0], a.shape[-1]
    out = np.zeros((a.shape[1], n))
    for b in range(a.shape[1]):
        g = nx.DiGraph()
        for l in range(1, L + 1):
            for i in range(n):
                for j in range(n):
                    g.add_edge((l, i), (l - 1, j), capacity=float(a[l - 1, b, i, j]))
        for j in range(n):
            out[b, j] = nx.maximum_flow_value(g, (L, 0), (0, j))
    return out


def lime_fit(f, e, z, target):
    """the float64 minimum-norm weighted fit (algos.md C.2b, 2): Zc = Z - weighted mean, the
    rows scaled by sqrt(pi), beta = lstsq's minimum-norm solution; scores [B, S] and the
    condition number sigma_1 / sigma_(n-1) of each row's centred samples"""
    scores, conds = np.zeros((B, S)), []
    for b in range(B):
        zb, eb = z[b].double(), e[b].double()  # [n, S, d], [S, d]
        with torch.no_grad():
            y = f((zb * eb).to(e.dtype)).double()[:, target].numpy()
        d2 = (((1 - zb) * eb) ** 2).sum(dim=(1, 2)).numpy()
        pi = np.exp(-d2 / (2 * LIME_WIDTH ** 2))
        Z = zb.reshape(zb.shape[0], -1).numpy()
        zc = Z - (pi[:, None] * Z).sum(0) / pi.sum()
        yc = y - (pi * y).sum() / pi.sum()
        w = np.sqrt(pi)
        beta = np.linalg.lstsq(w[:, None] * zc, w * yc, rcond=None)[0]
        sv = np.linalg.svd(w[:, None] * zc, compute_uv=False)
        conds.append(sv[0] / sv[-2])
        scores[b] = beta.reshape(S, -1).sum(axis=1)
    return scores, conds


def references(model, ids, target, z, nx):
    """every method's scores [B, S] as float64 numpy, computed in the model's dtype"""
    f = FromEmbeddings(model)
    with torch.no_grad():
        e = model.bert.embeddings(input_ids=ids)
    att = attention_maps(model, ids)
    zero = torch.zeros_like(e)
    ref = {"all_attention": att.sum(axis=(0, 2, 3)), "last_attention": att[-1].sum(axis=(1, 2)),
           "rollout": rollout(att),
           "vanilla_gradient": Saliency(f).attribute(e, target=target, abs=True),
           "input_x_gradient": InputXGradient(f).attribute(e, target=target),
           "integrated_gradients": IntegratedGradients(f).attribute(
               e, baselines=zero, target=target, n_steps=IG_STEPS, method="gausslegendre"),
           "deeplift": DeepLift(f, eps=DEEPLIFT_EPS).attribute(e, baselines=zero,
                                                                target=target)}
    for k in GRADIENT_METHODS:
        ref[k] = ref[k].detach().sum(dim=2).double().numpy()
    if nx is not None:
        ref["flow"] = flow(att, nx)
    ref["lime"], conds = lime_fit(f, e, z, target)
    return ref, conds


# ---- the references against themselves (float64) ------------------------------------------
def embedding_grads(f, e, target):
    e = e.clone().requires_grad_()
    f(e)[:, target].sum().backward()
    return e.grad


def gauss_legendre(n):
    """captum's nodes alpha_m = (1 + x_m) / 2 and its float32 step sizes w_m = W_m / 2"""
    x, w = np.polynomial.legendre.leggauss(n)
    return (1 + x) / 2, (w / 2).astype(np.float32).astype(np.float64)


def deeplift_by_hand(model, f, e, target):
    """e . d logit / d e with (tanh(z) - tanh(z0)) / (z - z0) in place of tanh' at the pooler,
    z0 the pooler's input for the all-zero embedding"""
    def pooler_in(x):
        return model.bert.pooler.dense(f.encoder(x).last_hidden_state[:, 0])
    with torch.no_grad():
        z0 = pooler_in(torch.zeros_like(e[:1]))
    x = e.clone().requires_grad_()
    z = pooler_in(x)
    zd = z.detach()
    dz = zd - z0
    slope = torch.where(dz.abs() < DEEPLIFT_EPS, 1 - torch.tanh(zd) ** 2,
                        (torch.tanh(zd) - torch.tanh(z0)) / torch.where(dz == 0, 1, dz))
    t = torch.tanh(zd) + slope * (z - zd)  # the value of tanh(z), the slope of the rule
    model.classifier(t)[:, target].sum().backward()
    return (e * x.grad).sum(dim=2), dz.abs().min().item()


def check_references(model64, ids, target, ref, compare):
    """captum against plain autograd; also f(e) against the model's own logits"""
    f = FromEmbeddings(model64)
    with torch.no_grad():
        e = model64.bert.embeddings(input_ids=ids)
        ok = compare("self", "f(e) logits", f(e).numpy(), model64(input_ids=ids).logits.numpy(),
                     SELF_TOL)
    g = embedding_grads(f, e, target)
    ok &= compare("self", "vanilla_gradient", ref["vanilla_gradient"],
                  g.abs().sum(dim=2).numpy(), SELF_TOL)
    ok &= compare("self", "input_x_gradient", ref["input_x_gradient"],
                  (e * g).sum(dim=2).numpy(), SELF_TOL)
    alphas, weights = gauss_legendre(IG_STEPS)
    ig = sum(w * embedding_grads(f, a * e, target) for a, w in zip(alphas, weights))
    ig = (e * ig).sum(dim=2).numpy()
    ok &= compare("self", "integrated_gradients", ref["integrated_gradients"], ig, SELF_TOL)
    dl, gap = deeplift_by_hand(model64, f, e, target)
    ok &= compare("self", "deeplift", ref["deeplift"], dl.numpy(), SELF_TOL)
    with torch.no_grad():
        total = (f(e) - f(torch.zeros_like(e)))[:, target].numpy()
    completeness = np.abs(ref["integrated_gradients"].sum(axis=1) - total).max()
    rescale = np.abs(ref["deeplift"] - ref["input_x_gradient"]).max() / \
        np.abs(ref["deeplift"]).max()
    print(f"         IG completeness: sum_j s_j - (f(e) - f(0)) = {completeness:.3g}; "
          f"DeepLIFT vs input x gradient: max|diff| / max|ref| = {rescale:.3g} (the rescale "
          f"rule matters); min |z - z0| at the pooler {gap:.3g}")
    return ok


def captum_lime(model64, ids, target, z):
    """captum's Lime on the given masks (perturb_func) with SkLearnLinearRegression, [B, S],
    and the rank sklearn reports for each row's fit (refitted on the data captum passes)"""
    import sklearn.linear_model
    from captum._utils.models.linear_model import SkLearnLinearRegression
    from captum.attr._core.lime import get_exp_kernel_similarity_function

    class Ranked(SkLearnLinearRegression):
        def fit(self, train_data, **kw):
            x, y, w = next(iter(train_data))
            self.rank = sklearn.linear_model.LinearRegression().fit(
                x.numpy(), y.numpy(), sample_weight=w.numpy()).rank_
            return super().fit(train_data, **kw)

    f = FromEmbeddings(model64)
    with torch.no_grad():
        e = model64.bert.embeddings(input_ids=ids)
    scores, ranks = np.zeros((B, S)), []
    for b in range(B):
        def given(inputs, **kw):
            for m in z[b]:
                yield m.reshape(1, -1).to(inputs.dtype)
        fit = Ranked()
        lime = Lime(f, interpretable_model=fit, perturb_func=given,
                    similarity_func=get_exp_kernel_similarity_function(
                        "euclidean", kernel_width=LIME_WIDTH))
        a = lime.attribute(e[b:b + 1], target=target, n_samples=LIME_SAMPLES,
                           perturbations_per_eval=16)
        scores[b] = a[0].detach().double().sum(dim=1).numpy()
        ranks.append(int(fit.rank))
    return scores, ranks


# ---- attn -----------------------------------------------------------------------------------
def run(cmd):
    """runs an attn command; its output goes to the log, a failure raises"""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        raise RuntimeError("exit status %d: %s" % (r.returncode, " ".join(cmd)))


def attn_scores(attn, backend, model_dir, target, tmp):
    """`attn explain` for every method of METHODS, [B, S] float64 each"""
    out, got = os.path.join(tmp, "s.npy"), {}
    for method in METHODS:
        if os.path.exists(out):
            os.remove(out)
        cmd = [attn, "explain", "--model", model_dir, "--ids", os.path.join(tmp, "ids.npy"),
               "--method", method, "--target", str(target), "--out", out, "--backend", backend]
        if method == "lime":
            cmd += ["--lime-samples", os.path.join(tmp, "z.npy")]
        run(cmd)
        got[method] = np.load(out).astype(np.float64)
    return got


def compare(label, name, got, want, tol=TOL, yardstick=None):
    """prints the figure (and the f32 references' figure); True when it passes"""
    if got.shape != want.shape:
        print(f"MISMATCH {label:8} {name:22} shape {got.shape}, reference {want.shape}")
        return False
    ref = float(np.abs(want).max())
    err = float(np.abs(got - want).max())
    rel = err / ref if ref > 0 else err
    ok = rel <= tol and bool(np.isfinite(got).all())
    extra = ""
    if yardstick is not None:
        extra = f"; torch f32 {float(np.abs(yardstick - want).max()) / ref:.3g}"
    print(f"{'ok' if ok else 'MISMATCH':8} {label:8} {name:22} max|diff| {err:.3g} / "
          f"max|ref| {ref:.3g} = {rel:.3g} (tol {tol:g}){extra}")
    return ok


def check_backend(backend, got, ref, f32, lime_b, ranks):
    ok = True
    for method in METHODS:
        g = got[method]
        if method == "random":
            good = g.shape == (B, S) and all(
                sorted(r) == list(range(1, S + 1)) for r in g.tolist())
            print(f"{'ok' if good else 'MISMATCH':8} {backend:8} {'random':22} "
                  f"each row a permutation of 1..{S}")
            ok &= good
        elif method == "flow" and "flow" not in ref:
            good = g.shape == (B, S) and bool(((g >= 0) & (g <= 1 + TOL)).all())
            print(f"{'ok' if good else 'MISMATCH':8} {backend:8} {'flow':22} 0 <= flow <= 1 "
                  f"(networkx not installed: no max-flow reference)")
            ok &= good
        else:
            ok &= compare(backend, method, g, ref[method], yardstick=f32.get(method))
    if lime_b is None:
        print(f"skipped  {backend:8} {'lime vs captum':22} (sklearn not installed)")
        return ok
    for b in range(B):
        asserted = ranks[b] == LIME_SAMPLES - 1
        label = f"lime vs captum, row {b}"
        good = compare(backend, label, got["lime"][b], lime_b[b])
        if not asserted:
            print(f"         (not asserted: sklearn's float32 fit has rank {ranks[b]}, "
                  f"not {LIME_SAMPLES - 1}; algos.md C.2b, 3)")
        ok &= good or not asserted
    return ok


def optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    attn, backends = sys.argv[1], sys.argv[2:] or ["ref", "cpu"]
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", module="captum")  # inputs made to require grad, hooks
    nx, sk = optional("networkx"), optional("sklearn")
    print(f"explain_captum: torch {torch.__version__}, transformers {transformers.__version__}, "
          f"captum {captum.__version__}, networkx {nx.__version__ if nx else 'absent'}, "
          f"sklearn {sk.__version__ if sk else 'absent'}; backends {' '.join(backends)}")
    model = tiny_model()
    model64 = copy.deepcopy(model).double()
    ids = make_ids()
    with torch.no_grad():
        logits = model64(input_ids=ids).logits
        z = lime_masks(model64.bert.embeddings(input_ids=ids))
    target = (int(logits[0].argmax()) + 1) % CONFIG["num_labels"]
    print(f"ids [{B}, {S}], target class {target} (predicted: {logits.argmax(dim=1).tolist()})")
    ref, conds = references(model64, ids, target, z, nx)
    f32, _ = references(model, ids, target, z, nx)
    print("LIME: condition number of the centred samples per row: "
          + ", ".join(f"{c:.3g}" for c in conds))
    ok = check_references(model64, ids, target, ref, compare)
    lime_b = ranks = None
    if sk is not None:
        lime_b, ranks = captum_lime(model64, ids, target, z)
        print(f"LIME: sklearn's rank per row {ranks} (captum asserted where {LIME_SAMPLES - 1})")
        for b in range(B):
            if ranks[b] == LIME_SAMPLES - 1:
                ok &= compare("self", f"lime captum, row {b}", lime_b[b], ref["lime"][b])
    with tempfile.TemporaryDirectory() as tmp:
        try:
            model_dir = os.path.join(tmp, "model")
            model.save_pretrained(model_dir)
            np.save(os.path.join(tmp, "ids.npy"), ids.to(torch.int32).numpy())
            np.save(os.path.join(tmp, "z.npy"), z.numpy())
            for backend in backends:
                got = attn_scores(attn, backend, model_dir, target, tmp)
                ok &= check_backend(backend, got, ref, f32, lime_b, ranks)
        except RuntimeError as e:
            print(f"FAILED {e}")
            return 1
    print("explain_captum: all comparisons agree" if ok else
          "explain_captum: MISMATCH (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
