"""`coreset report` at scale: a page for N x d embeddings (default 1,000,000 x
128, 1,000 Zipf classes, 10% picked, 8x8 thumbnails from a .npy of images)
written from a memory-mapped .npy, its size, and the time headless chromium
takes to open it and render every figure.

The selection is generated, not selected (a real `coreset.select` at 10^6
takes minutes on 2 cores and is measured by bench_scale.py): a seeded random
10% of each class (proportional budget), weights n_c / k_c (they sum to N),
decreasing gains, and the input fingerprint of the embeddings file, so the
report checks it like any other.

Stages timed (seconds): the in-process `build_report` (check: fingerprint and
inputs; map: sampling and PCA; coverage; examples: thumbnails; render: the
HTML with plotly.js inlined), `save`, then the whole CLI command in a fresh
process (`coreset report SEL --embeddings X.npy --labels y.npy --images
images.npy`, imports included), then the browser (navigation to every plotly
figure rendered; tests/_browser.py). One warm-up report on 5,000 rows first.

    python benchmarks/bench_report.py                 # 1e6 x 128 -> results/report-<machine>.json
    python benchmarks/bench_report.py --n 100000      # smaller
    python benchmarks/bench_report.py --screenshot docs/img/report-digits-lt.png   # the README's picture
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, machine_info

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def log(msg):
    print(f"[bench_report] {msg}", file=sys.stderr, flush=True)


def make_data(folder: Path, n: int, d: int, n_classes: int, fraction: float, seed: int):
    """X.npy (float32), y.npy, images.npy (uint8 8x8) and a generated selection sel.npz."""
    from coreset import Selection
    from coreset.data import input_fingerprint, zipf_class_sizes

    rng = np.random.default_rng(seed)
    sizes = zipf_class_sizes(n, n_classes, 1.1)
    y = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    centers = rng.standard_normal((n_classes, d)).astype(np.float32) * 2
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        X[s:e] = centers[y[s:e]] + rng.standard_normal((e - s, d), dtype=np.float32)
    X.flush()
    np.save(folder / "y.npy", y)
    images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.uint8, shape=(n, 8, 8))
    for s in range(0, n, 200_000):
        e = min(n, s + 200_000)
        images[s:e] = rng.integers(0, 256, (e - s, 8, 8), dtype=np.uint8)
    images.flush()
    picks, weights = [], []
    raw = fraction * sizes  # largest remainder: exactly round(fraction * n) picks, at least one per class
    ks = np.maximum(1, np.floor(raw).astype(np.int64))
    extra = int(round(fraction * n)) - int(ks.sum())
    if extra > 0:
        ks[np.argsort(-(raw - np.floor(raw)), kind="stable")[:extra]] += 1
    order_y = np.argsort(y, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    for c in range(n_classes):
        rows = order_y[bounds[c]:bounds[c + 1]]
        k = int(ks[c])
        picks.append(rng.choice(rows, k, replace=False))
        weights.append(np.full(k, rows.size / k))
    picks, weights = np.concatenate(picks), np.concatenate(weights)
    gains = np.sort(rng.exponential(size=picks.size))[::-1] * 10
    order = rng.permutation(picks.size)
    sel = Selection(picks[order], weights[order], gains, objective=float(gains.sum()), labels=y[picks[order]],
                    meta={"method": "generated", "n_samples": n, "class_budget": "proportional",
                          "metric": "cosine", "random_state": seed,
                          "input_fingerprint": input_fingerprint(folder / "X.npy"), "input": "X.npy"})
    sel.save(folder / "sel.npz")
    return sel, y


def run(args) -> dict:
    from _browser import browser_unavailable, open_page

    from coreset.report import build_report

    import os

    out = {"machine": machine_info(args.machine), "params": vars(args).copy(), "load_average_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        log("warm-up (5,000 rows)")
        (tmp / "w").mkdir()
        wsel, wy = make_data(tmp / "w", 5000, args.d, 50, args.fraction, args.seed)
        build_report(wsel, tmp / "w" / "X.npy", y=wy).save(tmp / "w" / "r.html")

        log(f"generating {args.n:,} x {args.d} ...")
        t0 = time.perf_counter()
        sel, y = make_data(tmp, args.n, args.d, args.classes, args.fraction, args.seed)
        out["generate_s"] = time.perf_counter() - t0
        log(f"  {out['generate_s']:.1f} s; {len(sel):,} picks")

        t0 = time.perf_counter()
        rep = build_report(sel, tmp / "X.npy", y=y, images=tmp / "images.npy", random_state=args.seed)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep.save(tmp / "report.html")
        t_save = time.perf_counter() - t0
        out["in_process"] = {"stages_s": rep.info["timings"], "build_s": t_build, "save_s": t_save,
                             "total_s": t_build + t_save, "size_bytes": rep.info["size_bytes"],
                             "map_rows": rep.info["map_rows"], "map_picks": rep.info["map_picks"],
                             "knee": rep.info["knee"], "coverage_overall": rep.info["coverage_overall"]}
        log(f"  in process: {t_build + t_save:.1f} s, {rep.info['size_bytes'] / 2**20:.1f} MiB, "
            f"stages {json.dumps({k: round(v, 2) for k, v in rep.info['timings'].items()})}")
        del rep

        cmd = [sys.executable, "-m", "coreset.cli", "report", str(tmp / "sel.npz"), "--embeddings", str(tmp / "X.npy"),
               "--labels", str(tmp / "y.npy"), "--images", str(tmp / "images.npy"), "-o", str(tmp / "cli.html"),
               "--json", "--seed", str(args.seed)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"coreset report failed: {res.stderr}")
        cli = json.loads(res.stdout)
        out["cli"] = {"wall_s": wall, "timings_s": cli["timings"], "size_bytes": cli["size_bytes"]}
        log(f"  CLI (fresh process, imports included): {wall:.1f} s, {cli['size_bytes'] / 2**20:.1f} MiB")

        why = browser_unavailable()
        if why is None:
            pages = [open_page(tmp / "cli.html", timeout_s=120) for _ in range(args.opens)]  # fresh browser each
            page = pages[0]
            rows, picks = page.traces["coreset-map"][:2]
            loads, cpus = [p.load_s for p in pages], [p.cpu_s for p in pages]
            out["browser"] = {"load_s": loads, "load_s_median": float(np.median(loads)), "cpu_s": cpus,
                              "map_rows": rows["n"], "map_picks": picks["n"],
                              "requests_per_open": [len(p.requests) for p in pages],
                              "requests_not_the_page": sorted({u for p in pages for u in p.requests if u != p.url}),
                              "console_errors": [m for p in pages for m in p.console if m[0] == "error"],
                              "page_errors": [e for p in pages for e in p.errors]}
            log(f"  browser ({args.opens} opens): every figure rendered after "
                f"{', '.join(f'{t:.1f}' for t in loads)} s (browser CPU {', '.join(f'{c:.1f}' for c in cpus)} s); "
                f"map {rows['n']:,} rows, {picks['n']:,} picks; requests other than the page: "
                f"{out['browser']['requests_not_the_page'] or 'none'}")
        else:
            out["browser"] = {"skipped": why}
            log(f"  browser skipped: {why}")
    out["load_average_end"] = os.getloadavg()
    return out


def screenshot(path: Path) -> None:
    """The README's picture: `coreset select --dataset digits-lt --fraction 0.1` then `coreset report`;
    the page's summary and map, the gain curve and the first classes' thumbnails, stacked, as one small PNG."""
    from _browser import open_page
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        tmp = Path(tmp)
        for cmd in (["select", "--dataset", "digits-lt", "--fraction", "0.1", "-o", str(tmp / "sel.npz"), "-q"],
                    ["report", str(tmp / "sel.npz"), "--dataset", "digits-lt", "-o", str(tmp / "report.html"), "-q"]):
            subprocess.run([sys.executable, "-m", "coreset.cli", *cmd], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        page = open_page(tmp / "report.html", screenshot=tmp / "full.png", width=1100, height=900)
        assert not page.errors and page.requests == [page.url], (page.errors, page.requests)
        full = Image.open(tmp / "full.png").convert("RGB")
        boxes = page.traces["__boxes"]
        parts = []
        for sid, max_h in (("map", None), ("gains", None), ("examples", 560)):
            x, y, w, h = (int(round(v)) for v in boxes[sid])
            parts.append(full.crop((x, y, x + w, y + (h if max_h is None else min(h, max_h)))))
        top = full.crop((0, 0, full.width, int(boxes["summary"][1])))  # the title and the links
        parts.insert(0, top)
        width = max(p.width for p in parts)
        im = Image.new("RGB", (width, sum(p.height for p in parts)), "#fafafa")
        y = 0
        for p in parts:
            im.paste(p, (0, y))
            y += p.height
        scale = 760 / width
        im = im.resize((760, int(im.height * scale)), Image.LANCZOS)
        im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        im.save(path, optimize=True)
    log(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {im.width} x {im.height})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=float, default=1e6)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--machine", default=None)
    ap.add_argument("--opens", type=int, default=3, help="times the page is opened (a fresh browser each)")
    ap.add_argument("--screenshot", type=Path, default=None, help="write the digits-lt screenshot here and stop")
    args = ap.parse_args(argv)
    if args.screenshot is not None:
        return screenshot(args.screenshot)
    args.n = int(args.n)
    out = run(args)
    RESULTS.mkdir(exist_ok=True)
    dest = RESULTS / f"report-{out['machine']['name']}.json"
    dest.write_text(json.dumps(out, indent=1, default=float) + "\n")
    log(f"wrote {dest}")


if __name__ == "__main__":
    main()
