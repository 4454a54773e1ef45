#!/usr/bin/env python3
"""bench_peers.py - the cpu backend against PyTorch's CPU scaled_dot_product_attention, measured
interleaved in one run (attn, torch, attn, torch, ... for --rounds rounds; medians), on the
default shapes of `attn bench` and the shapes docs/cpu.md reports: prefill, short sequences,
sliding windows, decode, the Sq sweep over a long KV cache and many short sequences. Prints a
markdown table with the CPU named: attn's rate, the same-run BLIS sgemm (or memcpy) rate, the
peer's rate on the same problem (same FLOP or byte count) and the ratio attn / peer. With
--backward: the backward on the four prefill shapes (attn bench --backward against PyTorch's
autograd backward of the same SDPA call, the forward untimed on both sides; 5 products per
attended pair).

With --model: one training step of the BERT classifier (`attn bench --op model`: forward,
cross-entropy, backward into every parameter, at its default shapes B 8, S 128, d 256, 4 layers,
4 heads, MLP 1024, vocab 30522, 2 labels) against transformers' BertForSequenceClassification
of the same configuration in PyTorch eager mode, f32, random weights, dropout 0, the same
step (forward, F.cross_entropy, loss.backward(); gradients cleared untimed before each), with
transformers' sdpa and eager attention both timed (the faster counts, which favours the peer):
tokens/s of each and the ratio.

PyTorch is a peer for measuring, never a dependency: without it the script says so and exits 0.
    python3 tools/bench_peers.py [--attn build/tools/attn] [--rounds 5] [--threads 2]
                                 [--only SUBSTRING] [--json FILE] [--backward | --model]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

# (label, attn bench options). Decode shapes (Sq <= 4) report GB/s of K+V read; the others
# GFLOP/s over attended query-key pairs (attn bench's conventions, used for both sides).
SHAPES = [
    ("D64", "--b 1 --h 8 --sq 2048 --skv 2048 --d 64"),
    ("D64 causal", "--b 1 --h 8 --sq 2048 --skv 2048 --d 64 --causal"),
    ("D128", "--b 1 --h 8 --sq 2048 --skv 2048 --d 128"),
    ("D128 causal", "--b 1 --h 8 --sq 2048 --skv 2048 --d 128 --causal"),
    ("S512 D128 causal", "--b 1 --h 8 --sq 512 --skv 512 --d 128 --causal"),
    ("S1024 D128 causal", "--b 1 --h 8 --sq 1024 --skv 1024 --d 128 --causal"),
    ("S4096 D128 causal", "--b 1 --h 8 --sq 4096 --skv 4096 --d 128 --causal"),
    ("S4096 D128 causal w512", "--b 1 --h 8 --sq 4096 --skv 4096 --d 128 --causal --window 512"),
    ("D128 causal f16 KV", "--b 1 --h 8 --sq 2048 --skv 2048 --d 128 --causal --kv-dtype f16"),
    ("D128 causal bf16 KV", "--b 1 --h 8 --sq 2048 --skv 2048 --d 128 --causal --kv-dtype bf16"),
    ("D128 causal all f16", "--b 1 --h 8 --sq 2048 --skv 2048 --d 128 --causal --dtype f16 --kv-dtype f16"),
    ("B8 S256 D64 causal", "--b 8 --h 8 --sq 256 --skv 256 --d 64 --causal"),
    ("decode Skv1024 f16 KV", "--b 1 --h 32 --hkv 8 --sq 1 --skv 1024 --d 128 --kv-dtype f16"),
    ("decode Skv8192 f16 KV", "--b 1 --h 32 --hkv 8 --sq 1 --skv 8192 --d 128 --kv-dtype f16"),
    ("decode Skv8192 f32 KV", "--b 1 --h 32 --hkv 8 --sq 1 --skv 8192 --d 128"),
] + [("Sq%d Skv8192 Hq32/Hkv8 f16 KV" % sq,
      "--b 1 --h 32 --hkv 8 --sq %d --skv 8192 --d 128 --kv-dtype f16" % sq)
     for sq in (2, 4, 5, 8, 16, 32, 64)]


def opts_of(s):
    """attn bench options -> dict"""
    toks = s.split()
    d = {"b": 1, "h": 8, "hkv": None, "sq": 1, "skv": 1, "d": 64, "causal": False,
         "window": -1, "kv_dtype": "f32", "dtype": "f32"}
    i = 0
    while i < len(toks):
        k = toks[i][2:].replace("-", "_")
        if k == "causal":
            d["causal"] = True
            i += 1
            continue
        v = toks[i + 1]
        d[k] = v if k in ("kv_dtype", "dtype") else int(v)
        i += 2
    d["hkv"] = d["hkv"] or d["h"]
    return d


def run_attn(exe, opts, threads, repeat):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        cmd = [exe, "bench", "--repeat", str(repeat), "--json", path] + opts.split()
        if threads:
            cmd += ["--threads", str(threads)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)[0]
    finally:
        os.unlink(path)


def torch_case(torch, o, dt):
    """inputs and a call of torch's SDPA on the same problem ([B, H, S, D] layout), all in dt"""
    g = torch.Generator().manual_seed(1)
    q = torch.rand(o["b"], o["h"], o["sq"], o["d"], generator=g).to(dt)
    k = torch.rand(o["b"], o["hkv"], o["skv"], o["d"], generator=g).to(dt)
    v = torch.rand(o["b"], o["hkv"], o["skv"], o["d"], generator=g).to(dt)
    mask, causal = None, o["causal"]
    if o["window"] >= 0:  # causal sliding window, bottom-right aligned: keys [i - w, i]
        i = torch.arange(o["sq"]).unsqueeze(1) + (o["skv"] - o["sq"])
        j = torch.arange(o["skv"]).unsqueeze(0)
        mask = (j <= i) & (j >= i - o["window"])
        causal = False
    gqa = o["hkv"] != o["h"]
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def call():
        with torch.no_grad():
            return sdpa(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa)
    return call


def torch_backward_case(torch, o, dt):
    """the backward alone of torch's SDPA on the problem: the forward runs once, each call
    back-propagates a fixed dO through the kept graph into fresh gradients"""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(o["b"], h, s, o["d"], generator=g).to(dt).requires_grad_()
               for h, s in ((o["h"], o["sq"]), (o["hkv"], o["skv"]), (o["hkv"], o["skv"])))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=o["causal"])
    dout = torch.rand(out.shape, generator=g).to(dt)

    def call():
        return torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)
    return call


def torch_dtypes(torch, o):
    """torch takes one dtype: a half KV cache is timed both in that dtype and all in f32 (the
    peer's faster one counts, which favours the peer)"""
    f = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    dts = [f[o["dtype"]]]
    if o["kv_dtype"] != o["dtype"]:
        dts.append(f[o["kv_dtype"]])
    return dts


# Seconds of idle cores before each side's turn: the OpenMP threads of the side that ran last
# keep spinning for a while after their last call and would slow a short run of the other.
IDLE = 0.3


def repeats(least, seconds):
    """timed calls per round: at least `least`, and enough for about 0.25 s of short calls (a
    best-of-3 of millisecond runs mostly measures thread wake-ups)"""
    return max(least, min(200, int(0.25 / max(seconds, 1e-6))))


def time_torch(call, repeat):
    call()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

# --model: `attn bench --op model`'s default shapes, in its option names.
MODEL = {"batch": 8, "seq": 128, "hidden": 256, "layers": 4, "heads": 4, "intermediate": 1024,
         "vocab": 30522, "labels": 2}


def torch_model_step(torch, transformers, m, attn_impl):
    """transformers' BertForSequenceClassification of the configuration m (random weights,
    dropout 0, attention `attn_impl`) and one training step on a random batch: forward,
    cross-entropy, backward (zero_grad before, untimed, sets the gradients to None, so the
    timed backward allocates and fills them; attn bench times its clearing likewise)"""
    cfg = transformers.BertConfig(
        vocab_size=m["vocab"], hidden_size=m["hidden"], num_hidden_layers=m["layers"],
        num_attention_heads=m["heads"], intermediate_size=m["intermediate"],
        max_position_embeddings=max(512, m["seq"]), num_labels=m["labels"],
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg._attn_implementation = attn_impl
    torch.manual_seed(1)
    model = transformers.BertForSequenceClassification(cfg).float().eval()
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, m["vocab"], (m["batch"], m["seq"]), generator=g)
    labels = torch.randint(0, m["labels"], (m["batch"],), generator=g)

    def step():
        model.zero_grad()
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids).logits, labels)
        loss.backward()
        return time.perf_counter() - t
    return step


def time_torch_median(step, repeat):
    step()  # warm-up
    return statistics.median(step() for _ in range(repeat))


def model_main(a, torch, threads):
    """--model: attn bench --op model and transformers' step interleaved, medians"""
    try:
        import transformers
    except ImportError:
        print("bench_peers: transformers is not installed (pip install transformers): skipped")
        return 0
    transformers.logging.set_verbosity_error()
    opts = " ".join("--%s %d" % kv for kv in MODEL.items())
    impls = ("sdpa", "eager")
    steps = {i: torch_model_step(torch, transformers, MODEL, i) for i in impls}
    print("CPU: %s, %d threads; PyTorch %s, transformers %s; %d rounds interleaved (attn, "
          "then transformers with sdpa and eager attention), medians of %d steps each"
          % (cpu_name(), threads, torch.__version__, transformers.__version__, a.rounds,
             a.repeat))
    print("BERT classifier training step (forward, cross-entropy, backward): "
          + opts.replace("--", ""))
    at, js, pt = [], [], {i: [] for i in impls}
    for r in range(a.rounds):
        time.sleep(IDLE)
        j = run_attn(a.attn, "--op model " + opts + (" --all-rows" if a.all_rows else ""),
                     a.threads, a.repeat)
        at.append(j["seconds"])
        js.append(j)
        for i in impls:
            time.sleep(IDLE)
            pt[i].append(time_torch_median(steps[i], a.repeat))
        print("round %d: attn %.1f ms, %s" % (r + 1, 1e3 * at[-1], ", ".join(
            "transformers %s %.1f ms" % (i, 1e3 * pt[i][-1]) for i in impls)), flush=True)
    tokens, flops = js[0]["tokens"], js[0]["flops"]
    run = js[0].get("flops_executed", flops)  # attn's last layer runs on the [CLS] rows only
    ta = statistics.median(at)
    best = min(impls, key=lambda i: statistics.median(pt[i]))
    tp = statistics.median(pt[best])
    sgemm = statistics.median(j["sgemm_gflops"] for j in js)
    share = statistics.median(j["attention_share"] for j in js)
    print("| | step ms | tokens/s | GFLOP/s | / same-run sgemm |")
    print("|---|---|---|---|---|")
    print("| attn (cpu backend) | %.1f | %.0f | %.1f | %.2f |"
          % (1e3 * ta, tokens / ta, run / ta / 1e9, run / ta / 1e9 / sgemm))
    for i in impls:
        t = statistics.median(pt[i])
        print("| transformers, %s attention | %.1f | %.0f | %.1f | %.2f |"
              % (i, 1e3 * t, tokens / t, flops / t / 1e9, flops / t / 1e9 / sgemm))
    print("attn / transformers (%s, the faster): %.2f tokens/s ratio; same-run sgemm %.1f "
          "GFLOP/s; attention's share of attn's step %.1f%%; FLOPs per step %.2f G (the "
          "model's, transformers' rate), %.2f G executed by attn (%s)"
          % (best, tp / ta, sgemm, 100 * share, flops / 1e9, run / 1e9,
             "every layer on every row" if a.all_rows else
             "its last layer on the [CLS] rows only"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu_name(), "threads": threads, "torch": torch.__version__,
                       "transformers": transformers.__version__, "config": MODEL,
                       "attn_seconds": at, "torch_seconds": pt, "torch_faster": best,
                       "attn_tokens_per_s": tokens / ta, "torch_tokens_per_s": tokens / tp,
                       "attn_over_torch": tp / ta, "sgemm_gflops": sgemm,
                       "attention_share": share}, f, indent=1)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attn", default="build/tools/attn")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed calls per round (best), at least; short shapes get more")
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    ap.add_argument("--only", default="", help="shapes whose label contains this")
    ap.add_argument("--json", default="")
    ap.add_argument("--backward", action="store_true",
                    help="the backward on the prefill shapes")
    ap.add_argument("--model", action="store_true",
                    help="a training step of the BERT classifier against transformers' BERT")
    ap.add_argument("--all-rows", action="store_true",
                    help="--model: attn's last layer on every row, as transformers computes")
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_peers: PyTorch is not installed (pip install torch): skipped")
        return 0
    threads = a.threads or os.cpu_count()
    torch.set_num_threads(threads)
    if a.model:
        return model_main(a, torch, threads)
    print("CPU: %s, %d threads; PyTorch %s; %d rounds interleaved, medians of best-of-N "
          "(N >= %d, and about 0.25 s of calls)" % (cpu_name(), threads, torch.__version__,
                                                   a.rounds, a.repeat))
    rows = []
    print("| shape | attn | same-run sgemm / memcpy | attn / sgemm | PyTorch SDPA | attn / PyTorch | attn impl |")
    print("|---|---|---|---|---|---|---|")
    shapes = [(l + " backward", o + " --backward") for l, o in SHAPES[:4]] if a.backward \
        else SHAPES
    for label, opts in shapes:
        if a.only and a.only not in label:
            continue
        o = opts_of(opts.replace(" --backward", ""))
        case = torch_backward_case if a.backward else torch_case
        calls = [(dt, case(torch, o, dt)) for dt in torch_dtypes(torch, o)]
        at, pt, refs, j = [], {dt: [] for dt, _ in calls}, [], None
        repeat = a.repeat
        for _ in range(a.rounds):
            time.sleep(IDLE)
            j = run_attn(a.attn, opts, a.threads, repeat)
            at.append(j["seconds"])
            refs.append(j.get("sgemm_gflops", j.get("memcpy_gbps_rw", 0.0)))
            repeat = repeats(a.repeat, j["seconds"])
            for dt, call in calls:
                time.sleep(IDLE)
                pt[dt].append(time_torch(call, repeat))
        dt = min(pt, key=lambda k: statistics.median(pt[k]))
        ta, tp, ref = statistics.median(at), statistics.median(pt[dt]), statistics.median(refs)
        decode = j["kind"] == "decode"
        work = j["kv_bytes"] if decode else j["flops"]
        unit = "GB/s" if decode else "GFLOP/s"
        ra, rp = work / ta / 1e9, work / tp / 1e9
        row = {"shape": label, "attn_opts": opts, "unit": unit, "attn": ra, "ref": ref,
               "attn_over_ref": ra / ref if ref else 0.0, "torch": rp, "torch_dtype": str(dt),
               "attn_over_torch": tp / ta, "impl": j["impl"]}
        rows.append(row)
        print("| %s | %.1f %s | %.1f | %.2f | %.1f (%s) | %.2f | %s |"
              % (label, ra, unit, ref, row["attn_over_ref"], rp, str(dt).replace("torch.", ""),
                 row["attn_over_torch"], j["impl"]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpu": cpu_name(), "threads": threads, "torch": torch.__version__,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
