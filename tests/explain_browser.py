#!/usr/bin/env python3
"""explain_browser.py - `attn explain`'s report.html as a browser draws it: a small planted data
set (attn data), a tiny model (attn train), the report of every method (attn explain --data),
then a headless Chromium screenshot of it and of a blank page, decoded with the standard
library (zlib): the report must put enough ink and enough colour on the page (the coloured
tokens, the curves), the blank page almost none.

usage: explain_browser.py ATTN_BINARY [BACKEND]
Exit status: 0 passed, 1 failed, 77 skipped (no chromium or chromium-browser on PATH).
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SCALE = 0.5                # device pixels per CSS pixel: a small PNG to decode in Python
WINDOW = (1100, 4800)      # CSS pixels: the tables, the curves and the first texts
MIN_INK = 0.03             # share of the report's pixels that are not near white
MIN_COLOURED = 0.004       # share that is saturated (tokens, curves)
MIN_HUES = 200             # saturated pixels each of red, blue and orange at least


def run(cmd, timeout=300):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}:\n{r.stdout}")
    return r.stdout


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def unfilter(kind, row, prev, bpp):
    """One scanline of a PNG with its filter (0-4) undone."""
    if kind == 0:
        return row
    out = bytearray(row)
    n = len(out)
    if kind == 1:
        for i in range(bpp, n):
            out[i] = (out[i] + out[i - bpp]) & 0xFF
    elif kind == 2:
        for i in range(n):
            out[i] = (out[i] + prev[i]) & 0xFF
    elif kind == 3:
        for i in range(n):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(n):
            left = out[i - bpp] if i >= bpp else 0
            up_left = prev[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + paeth(left, prev[i], up_left)) & 0xFF
    else:
        raise ValueError(f"PNG filter {kind}")
    return out


def read_png(path):
    """(width, height, channels, rows of bytes) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = hdr
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: bit depth {depth}, colour type {colour}, interlace {interlace}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = unfilter(raw[start], raw[start + 1:start + 1 + stride], prev, channels)
        rows.append(prev)
    return width, height, channels, rows


def census(path):
    """Pixel counts of a screenshot: all, ink (not near white), saturated, and red, blue and
    orange ones among the saturated."""
    width, height, ch, rows = read_png(path)
    c = {"all": width * height, "ink": 0, "coloured": 0, "red": 0, "blue": 0, "orange": 0}
    for row in rows:
        for i in range(0, len(row), ch):
            r, g, b = row[i], row[i + 1], row[i + 2]
            if min(r, g, b) < 235:
                c["ink"] += 1
            if max(r, g, b) - min(r, g, b) < 60:
                continue
            c["coloured"] += 1
            if r > g + 60 and r > b + 60 and g < 120:
                c["red"] += 1
            elif b > r + 60:
                c["blue"] += 1
            elif r > b + 100 and g > b + 30 and g < r - 40:
                c["orange"] += 1
    return c


def screenshot(browser, page, png, profile):
    cmd = [browser, "--headless", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={profile}", f"--force-device-scale-factor={SCALE}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={png}", "file://" + page]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        sys.exit(f"FAIL: {browser} took more than 120 s on {page}")
    if not os.path.exists(png):
        sys.exit(f"FAIL: {browser} wrote no screenshot (exit {r.returncode}):\n{r.stdout}")


def make_report(attn, backend, tmp):
    data, model, out = (os.path.join(tmp, d) for d in ("data", "model", "out"))
    be = ["--backend", backend]
    run([attn, "data", "--task", "planted", "--out", data, "--n-train", "300", "--n-test",
         "40", "--seq", "16", "--min-seq", "8", "--vocab", "60", "--planted", "2",
         "--signals", "2"])
    run([attn, "train", "--data", data, "--out", model, "--layers", "1", "--heads", "2",
         "--hidden", "32", "--intermediate", "64", "--epochs", "2", "--batch", "16", "--lr",
         "3e-3"] + be)
    run([attn, "explain", "--model", model, "--data", data, "--n", "12", "--show", "3",
         "--ig-steps", "16", "--out", out] + be)
    return os.path.join(out, "report.html")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("SKIP: no chromium or chromium-browser on PATH to draw the report")
        return 77
    attn = sys.argv[1]
    backend = sys.argv[2] if len(sys.argv) > 2 else "ref"
    with tempfile.TemporaryDirectory(prefix="attn_explain_browser_") as tmp:
        report = make_report(attn, backend, tmp)
        blank = os.path.join(tmp, "blank.html")
        with open(blank, "w") as f:
            f.write("<!DOCTYPE html><html><body></body></html>\n")
        shots = {}
        for name, page in (("report", report), ("blank", blank)):
            png = os.path.join(tmp, name + ".png")
            screenshot(browser, page, png, os.path.join(tmp, "profile-" + name))
            shots[name] = census(png)
    rep, bl = shots["report"], shots["blank"]
    print(f"report: {rep}\nblank:  {bl}")
    checks = [
        ("the same screenshot size", rep["all"] == bl["all"]),
        (f"ink on at least {MIN_INK:.0%} of the report", rep["ink"] >= MIN_INK * rep["all"]),
        (f"colour on at least {MIN_COLOURED:.1%} of the report",
         rep["coloured"] >= MIN_COLOURED * rep["all"]),
        (f"at least {MIN_HUES} red, blue and orange pixels each",
         min(rep["red"], rep["blue"], rep["orange"]) >= MIN_HUES),
        ("a blank page almost white", bl["ink"] <= 0.001 * bl["all"]),
        ("the report far from the blank page", rep["ink"] >= 20 * max(bl["ink"], 1)),
    ]
    failed = [what for what, ok in checks if not ok]
    for what, ok in checks:
        print(("ok    " if ok else "FAIL  ") + what)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
