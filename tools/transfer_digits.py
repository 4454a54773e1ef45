#!/usr/bin/env python3
"""transfer_digits.py - a real-data illustration for `attn transfer`: scikit-learn's bundled
digits (1797 8x8 images, offline: sklearn.datasets.load_digits) written as the six .npy files
of a transfer data set (docs/transfer.md).

Two domains: the source domain is the images of digits 0-4, the target domain those of 5-9.
Source attributes, on the source domain: "is a 0" .. "is a 4" (class membership) and three
stroke-like properties of the ink (more ink in the top half than the bottom, more in the left
half than the right, an open centre: little ink in the central 2x2 pixels). The target
attribute, on the target domain: "is a D" (--target-digit, 8 by default) against the other
digits of 5-9. A few labelled target examples (--target-train, drawn with both labels present)
train the target; the rest of the target domain is the test set. Features are the 64 pixels,
standardised with the source domain's mean and standard deviation. There is no planted
truth: the weights `attn transfer` learns are what the illustration shows (sources.json names
the source attributes in order).

usage: transfer_digits.py --out DIR [--target-digit D] [--target-train N] [--seed N]
Exits 77 (skipped) when scikit-learn or numpy is missing: neither is a dependency of attn
(`pip install --target DIR scikit-learn` and PYTHONPATH=DIR to run it).
"""
import argparse
import json
import os
import sys

SKIP = 77


def stroke_attributes(img):
    """Three binary ink properties of 8x8 images [n, 8, 8] (0..16): top-heavy, left-heavy,
    open centre."""
    import numpy as np
    top = img[:, :4, :].sum(axis=(1, 2)) > img[:, 4:, :].sum(axis=(1, 2))
    left = img[:, :, :4].sum(axis=(1, 2)) > img[:, :, 4:].sum(axis=(1, 2))
    centre = img[:, 3:5, 3:5].sum(axis=(1, 2)) < 16
    return np.stack([top, left, centre], axis=1)


def pick_train(y, n, rng):
    """n indices of the target domain with both labels among them (when n >= 2)."""
    import numpy as np
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = max(1, min(len(pos), int(round(n * len(pos) / len(y))))) if n >= 2 else 0
    chosen = np.concatenate([rng.choice(pos, n_pos, replace=False),
                             rng.choice(neg, n - n_pos, replace=False)])
    return np.sort(chosen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--target-digit", type=int, default=8, choices=range(5, 10))
    ap.add_argument("--target-train", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    try:
        import numpy as np
        from sklearn.datasets import load_digits
    except ImportError as e:
        print(f"transfer_digits.py: skipped: {e} (pip install scikit-learn)", file=sys.stderr)
        return SKIP
    d = load_digits()
    img, label = d.images, d.target
    src, tgt = label < 5, label >= 5
    x = img.reshape(len(img), 64).astype(np.float64)
    mean, sd = x[src].mean(axis=0), x[src].std(axis=0)
    x = ((x - mean) / np.where(sd > 0, sd, 1)).astype(np.float32)

    names = [f"is a {c}" for c in range(5)] + ["top-heavy", "left-heavy", "open centre"]
    source_y = np.concatenate([np.stack([label[src] == c for c in range(5)], axis=1),
                               stroke_attributes(img[src])], axis=1).astype(np.uint8)
    ty = (label[tgt] == a.target_digit).astype(np.uint8)
    if not 1 <= a.target_train < len(ty):
        ap.error(f"--target-train must be in [1, {len(ty) - 1}]")
    train = pick_train(ty, a.target_train, np.random.default_rng(a.seed))
    test = np.setdiff1d(np.arange(len(ty)), train)

    os.makedirs(a.out, exist_ok=True)
    files = {"source_x": x[src], "source_y": source_y,
             "target_x": x[tgt][train], "target_y": ty[train],
             "test_x": x[tgt][test], "test_y": ty[test]}
    for name, v in files.items():
        np.save(os.path.join(a.out, name + ".npy"), np.ascontiguousarray(v))
    with open(os.path.join(a.out, "sources.json"), "w") as f:
        json.dump({"sources": names, "target": f"is a {a.target_digit} (among 5-9)",
                   "target_train": int(len(train)), "test": int(len(test)),
                   "seed": a.seed}, f, indent=2)
        f.write("\n")
    print(f"transfer_digits.py: {int(src.sum())} source images x {len(names)} attributes "
          f"({', '.join(names)}); target 'is a {a.target_digit}': {len(train)} labelled "
          f"({int(ty[train].sum())} positive), {len(test)} test ({int(ty[test].sum())} "
          f"positive); wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
