#!/usr/bin/env python3
"""Tokenizer speed side by side: Swift (Benchmarks/TokenizerBenchmark) vs Hugging Face tokenizers.

Measures, for the real Qwen2.5 tokenizer (Models/tokenizer/qwen2.5, 151,643 BPE tokens):
  - tokenizer.json load time (each of N loads; HF: Tokenizer.from_file)
  - encode throughput on ~1 MB of mixed text (code, prose in 9 scripts, emoji, whitespace),
    best of N, single-threaded (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false): once as one
    string, once line by line (HF: encode_batch, which then runs sequentially)
Wall time and thread/process CPU time are both reported: on a busy machine CPU time is the
fairer figure. The Swift ids are checked against HF's (count and checksum).

Usage: .venv/bin/python scripts/tokenizer_benchmark.py [--repeats N] [--model DIR]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tokenizer_corpus  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "Benchmarks/TokenizerBenchmark"


def checksum(ids):
    c = 0
    for i, t in enumerate(ids):
        c = (c * 1_000_003 + t + i) % (1 << 64)
    return str(c)


def hf(model, text, repeats):
    path = str(pathlib.Path(model) / "tokenizer.json")
    load_wall, load_cpu = [], []
    tok = None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        tok = Tokenizer.from_file(path)
        load_cpu.append(time.process_time() - c)
        load_wall.append(time.perf_counter() - w)
    size = len(text.encode("utf-8"))
    best_wall = best_cpu = float("inf")
    ids = []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        ids = tok.encode(text).ids
        best_cpu = min(best_cpu, time.process_time() - c)
        best_wall = min(best_wall, time.perf_counter() - w)
    # The same text as many short inputs, one per line (newline kept), encoded one after the other.
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    best_lines_wall = best_lines_cpu = float("inf")
    line_ids = []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        line_ids = [i for e in tok.encode_batch(lines) for i in e.ids]
        best_lines_cpu = min(best_lines_cpu, time.process_time() - c)
        best_lines_wall = min(best_lines_wall, time.perf_counter() - w)
    return {"load_wall_s": load_wall, "load_cpu_s": load_cpu, "encode_wall_mb_s": size / best_wall / 1e6,
            "encode_cpu_mb_s": size / best_cpu / 1e6, "lines_encode_wall_mb_s": size / best_lines_wall / 1e6,
            "lines_encode_cpu_mb_s": size / best_lines_cpu / 1e6, "lines": len(lines),
            "lines_checksum": checksum(line_ids), "bytes": size, "tokens": len(ids), "checksum": checksum(ids)}


def swift(model, text_file, repeats):
    build = ["swift", "build", "-c", "release", "--package-path", str(PACKAGE),
             "-Xswiftc", "-target-cpu", "-Xswiftc", "native"]
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
    binary = subprocess.run(build + ["--show-bin-path"], check=True, capture_output=True, text=True).stdout.strip()
    out = subprocess.run([f"{binary}/tokenizer-benchmark", model, text_file, str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=str(ROOT / "Models/tokenizer/qwen2.5"))
    args = parser.parse_args()
    text = tokenizer_corpus.benchmark_text()
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        text_file = f.name
    try:
        s = swift(args.model, text_file, args.repeats)
        h = hf(args.model, text, args.repeats)
    finally:
        os.unlink(text_file)

    def row(name, sv, hv, unit, better_low):
        ratio = (hv / sv) if better_low else (sv / hv)
        print(f"{name:<28} {sv:>10.3f} {hv:>10.3f} {unit:<6} {ratio:>6.2f}x")

    print(f"{'':<28} {'Swift':>10} {'HF':>10} {'':<6} {'Swift/HF speed':>6}")
    row("load, median wall", statistics.median(s["load_wall_s"]), statistics.median(h["load_wall_s"]), "s", True)
    row("load, median CPU", statistics.median(s["load_cpu_s"]), statistics.median(h["load_cpu_s"]), "s", True)
    row("encode 1 MB, best wall", s["encode_wall_mb_s"], h["encode_wall_mb_s"], "MB/s", False)
    row("encode 1 MB, best CPU", s["encode_cpu_mb_s"], h["encode_cpu_mb_s"], "MB/s", False)
    row(f"encode {s['lines']} lines, wall", s["lines_encode_wall_mb_s"], h["lines_encode_wall_mb_s"], "MB/s", False)
    row(f"encode {s['lines']} lines, CPU", s["lines_encode_cpu_mb_s"], h["lines_encode_cpu_mb_s"], "MB/s", False)
    same = s["tokens"] == h["tokens"] and s["checksum"] == h["checksum"] and s["lines_checksum"] == h["lines_checksum"]
    print(f"{s['bytes']} bytes -> {s['tokens']} tokens (HF {h['tokens']}); ids identical (whole text and per line): {same}")
    print(f"load samples (s): Swift wall {s['load_wall_s']} / HF wall {[round(x, 4) for x in h['load_wall_s']]}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
