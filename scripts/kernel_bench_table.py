#!/usr/bin/env python3
"""Prints one compact table from a package-benchmark run exported with
`--format histogramSamples --time-units nanoseconds` (scripts/kernel-bench does both).

Each benchmark left one file per metric, `Current_run.QwenBenchmarks.<name>.<metric>.histogram.samples.tsv`
(spaces in <name> written as `_`), holding a header line and one sample per line. The table gives
the median of every metric (wall time, and the MB/s, MFLOP/s and µs/token each iteration recorded
from its own wall time; tok/s is 10^6 / median µs/token) and the fastest iteration's wall time,
the least disturbed by other work on a shared machine (Benchmarks/QwenBenchmarks/Support.swift
says what is counted).

usage: kernel_bench_table.py DIR [--markdown]
"""
import os
import re
import statistics
import sys

METRICS = {"wallClock": "ns", "MB_s": "MB/s", "MFLOP_s": "MFLOP/s", "us_token": "µs/token"}
SUFFIX = ".histogram.samples.tsv"
PREFIX = "Current_run.QwenBenchmarks."

# Row order: kernels first, whole models last; q4f16, q4f16-f32, q4f16-int8, then q4; GEMV before GEMM.
CATEGORIES = ["MatMulNBits", "MatMul ", "Softmax", "RMSNorm", "Rotary", "Session.run", "Decoder layer", "Model decode", "Model prefill"]


def natural_key(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def row_key(name):
    category = next((i for i, c in enumerate(CATEGORIES) if name.startswith(c)), len(CATEGORIES))
    variant = next((i for i, v in enumerate([" q4f16 ", " q4f16-f32 ", " q4f16-int8 "]) if v in name), 3)
    kind = 0 if " GEMV" in name else 1
    return (category, variant, kind, natural_key(name))


def read_samples(path):
    with open(path) as f:
        lines = f.read().split("\n")
    values = []
    for line in lines[1:]:
        line = line.strip()
        if line:
            values.append(float(line))
    return values


def collect(directory):
    results = {}
    for file in os.listdir(directory):
        if not (file.startswith(PREFIX) and file.endswith(SUFFIX)):
            continue
        stem = file[len(PREFIX):-len(SUFFIX)]
        for metric in METRICS:
            if stem.endswith("." + metric):
                name = stem[: -len(metric) - 1].replace("_", " ")
                samples = read_samples(os.path.join(directory, file))
                if samples:
                    results.setdefault(name, {})[metric] = (statistics.median(samples), len(samples), min(samples))
                break
    return results


def format_time(ns):
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 64
    results = collect(args[0])
    if not results:
        print(f"no benchmark samples found in {args[0]}", file=sys.stderr)
        return 1
    header = ["kernel", "shape", "GB/s", "GFLOP/s", "time (p50)", "time (min)", "tok/s", "iters"]
    rows = []
    for name in sorted(results, key=row_key):
        r = results[name]
        kernel, bracket, rest = name.partition(" [")
        shape = (bracket.strip() + rest) if bracket else ""
        gbs = f"{r['MB_s'][0] / 1e3:.2f}" if "MB_s" in r else "-"
        gflops = f"{r['MFLOP_s'][0] / 1e3:.2f}" if "MFLOP_s" in r else "-"
        time = format_time(r["wallClock"][0]) if "wallClock" in r else "-"
        best = format_time(r["wallClock"][2]) if "wallClock" in r else "-"
        tokens = f"{1e6 / r['us_token'][0]:.1f}" if r.get("us_token", (0,))[0] > 0 else ""
        iterations = str(r["wallClock"][1]) if "wallClock" in r else ""
        rows.append([kernel, shape, gbs, gflops, time, best, tokens, iterations])
    numeric = {2, 3, 4, 5, 6, 7}
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return 0
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()

    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
