#!/usr/bin/env python3
"""Every model format qwen-run reads, side by side with ONNX Runtime (and onnxruntime-genai) on the same file.

Usage (through the shell wrapper, which sets up both pinned venvs):
    scripts/bench-formats [--runs 3] [--warmup 1] [--max-tokens 32] [--threads 2] [--json]
                          [--formats q4f16,q4,q8,fp16,genai-int4] [--seed 0]
                          [--model Models/qwen2.5-coder-0.5b-instruct]
                          [--genai Models/qwen2.5-coder-0.5b-instruct-genai-int4]
                          [--binary .build/release/qwen-run]

It does not build: it runs the existing release qwen-run (build it first with
`swift build -c release -Xswiftc -target-cpu -Xswiftc native --product qwen-run`, or `scripts/bench`).

The formats (files made by scripts/build_default_model.sh and scripts/build_format_models.sh):
  q4f16       MODEL/onnx/model_q4f16.onnx     MatMulNBits 4-bit, float16 activations
  q4          MODEL/onnx/model_q4.onnx        MatMulNBits 4-bit, float32 activations
  q8          MODEL/onnx/model_quantized.onnx transformers.js q8 (DynamicQuantizeLinear + MatMulInteger)
  fp16        MODEL/onnx/model_fp16.onnx      transformers.js fp16
  genai-int4  GENAI/model.onnx                onnxruntime-genai model builder, int4 CPU
              (GroupQueryAttention, GatherBlockQuantized, MatMulNBits accuracy_level 4)

The runners, each a process of its own per run (so load time and peak RSS are the process's):
  ours   `qwen-run --model MODEL --dtype D --prompt TEXT --greedy --max-tokens N --json`
         (`--model GENAI` for genai-int4) with QWEN_THREADS=2; every other option at its default.
         Its own stats: load_s, prefill_tokens_per_s, decode_tokens_per_s (peak RSS from wait4).
         The packed-weight cache (~/.cache/qwen-swift) is warm in the timed rounds (the warm-up
         round writes it).
  ORT    onnxruntime 1.31.1 (.venv), CPU EP, InferenceSession with intra_op_num_threads 2,
         inter_op_num_threads 1, ORT_ENABLE_ALL; a Python greedy loop over the same file and the same
         prompt ids, fed by scripts/build_format_models.py's Feeder (input_ids, attention_mask,
         position_ids when the graph has them, past_key_values.* growing from empty; full prefill,
         then one token per step).
  GenAI  (genai-int4 only) onnxruntime-genai 0.18.0 (.venv-genai, on its onnxruntime 1.31.1):
         og.Config(GENAI) with the providers cleared (CPU) and an overlay of the decoder's
         session_options {intra_op_num_threads: 2, inter_op_num_threads: 1,
         graph_optimization_level: ORT_ENABLE_ALL}; og.Generator with do_sample False, top_k 1,
         repetition_penalty 1, max_length = prompt + N (its shared KV buffer is that long);
         append_tokens(prompt ids) is the prefill, then generate_next_token until is_done().
  Each worker reports how many OS threads its process had after generating (/proc/self/task).

Measured the same way for all (as scripts/bench does):
  prefill tok/s = prompt tokens / time of the one run over the whole prompt
  decode tok/s  = (generated - 1) / time from the end of prefill to the last generated token
  load s        = qwen-run: reading, mapping and planning; ORT: InferenceSession creation;
                  GenAI: og.Config + og.Model (imports excluded everywhere)
  peak RSS MB   = the process's high-water resident set, VmHWM of /proc/self/status after generating
                  (qwen-run's own peak_rss_mb reads the same; the Python workers include the
                  interpreter and numpy). Not wait4's ru_maxrss: on Linux a child starts from its
                  parent's high-water mark across fork + exec, here this script's ~320 MB with
                  transformers loaded, so every small process would show that.
The prompt is scripts/bench's chat prompt (~128 tokens with the Qwen2.5 template), ids from HF
transformers (checked against qwen-run's for every format, the genai directory's template
included); greedy, N = 32 new tokens, all stop after an eos id. One untimed warm-up round, then
--runs rounds; in every round the formats come in a fresh random order (seeded) and within a format
the runners take turns going first. Medians per format and runner, the ratios ours / ORT (and ours /
GenAI) of the medians and, round by round, of the same round's runs; greedy ids compared over the
first N (identical, or the first step that differs). The CPU (lscpu model name, AVX2 / AVX-512 /
VNNI flags) is printed first, the FMA probe of scripts/bench before and after, and the CPU other
processes took during each run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
import bench  # noqa: E402  (PROMPT, run_measured, fma_probe; imports only the standard library)

ROOT = SCRIPTS.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ORT_VERSION = bench.ORT_VERSION
GENAI_VERSION = bench.GENAI_VERSION

# format -> (directory kind, qwen-run --dtype, file inside the directory)
FORMATS = {
    "q4f16": ("tjs", "q4f16", "onnx/model_q4f16.onnx"),
    "q4": ("tjs", "q4", "onnx/model_q4.onnx"),
    "q8": ("tjs", "q8", "onnx/model_quantized.onnx"),
    "fp16": ("tjs", "fp16", "onnx/model_fp16.onnx"),
    "genai-int4": ("genai", None, "model.onnx"),
}
METRICS = [("prefill_tokens_per_s", "prefill tok/s", "{:.1f}"), ("decode_tokens_per_s", "decode tok/s", "{:.1f}"),
           ("load_s", "load s", "{:.3f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}")]


def log(msg: str) -> None:
    print(f"[bench-formats {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float | None:
    """This process's high-water resident set (VmHWM), as qwen-run reports its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


# ---------------------------------------------------------------------------------------------
# Workers (each in its own process: `bench_formats.py --ort-worker SPEC.json` / `--genai-worker SPEC.json`)

def ort_worker(spec: dict) -> dict:
    import numpy as np
    import onnxruntime as ort

    import build_format_models as bfm

    if ort.__version__ != ORT_VERSION:
        raise SystemExit(f"onnxruntime {ort.__version__}, expected {ORT_VERSION}")
    threads_before = os_threads()
    t0 = time.perf_counter()
    session = bfm.ort_session(Path(spec["model"]), "enable_all", spec["threads"])
    load_s = time.perf_counter() - t0
    feeder = bfm.Feeder(session, tuple(spec["kv_shape"]) if spec.get("kv_shape") else None)
    prompt, eos = spec["prompt_ids"], set(spec["eos"])
    t0 = time.perf_counter()
    logits = feeder.step(prompt)
    prefill_s = time.perf_counter() - t0
    generated = []
    t1 = time.perf_counter()
    while True:
        nxt = int(np.argmax(logits[0, -1]))
        generated.append(nxt)
        if nxt in eos or len(generated) >= spec["max_tokens"]:
            break
        logits = feeder.step([nxt])
    decode_s = time.perf_counter() - t1
    return {"load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s, "generated_ids": generated,
            "os_threads": os_threads(), "os_threads_before_load": threads_before, "peak_rss_mb": peak_rss_mb(), "version": ort.__version__}


def genai_worker(spec: dict) -> dict:
    import numpy as np
    import onnxruntime as ort
    import onnxruntime_genai as og

    if og.__version__ != GENAI_VERSION or ort.__version__ != ORT_VERSION:
        raise SystemExit(f"onnxruntime-genai {og.__version__} on onnxruntime {ort.__version__}, "
                         f"expected {GENAI_VERSION} on {ORT_VERSION}")
    prompt = spec["prompt_ids"]
    threads_before = os_threads()
    t0 = time.perf_counter()
    config = og.Config(spec["model_dir"])
    config.clear_providers()  # CPU
    config.overlay(json.dumps({"model": {"decoder": {"session_options": spec["session_options"]}}}))
    model = og.Model(config)
    load_s = time.perf_counter() - t0
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, top_k=1, repetition_penalty=1.0,
                              max_length=len(prompt) + spec["max_tokens"])
    gen = og.Generator(model, params)
    t0 = time.perf_counter()
    gen.append_tokens(np.asarray(prompt, dtype=np.int32))
    prefill_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    while not gen.is_done():
        gen.generate_next_token()
    decode_s = time.perf_counter() - t1
    seq = [int(x) for x in gen.get_sequence(0)]
    if seq[:len(prompt)] != prompt:
        raise SystemExit("onnxruntime-genai's sequence does not start with the prompt ids")
    return {"load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s, "generated_ids": seq[len(prompt):],
            "os_threads": os_threads(), "os_threads_before_load": threads_before, "peak_rss_mb": peak_rss_mb(),
            "version": f"{og.__version__} (onnxruntime {ort.__version__})"}


def worker_main(kind: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    r = ort_worker(spec) if kind == "ort" else genai_worker(spec)
    n = len(r["generated_ids"])
    r["prefill_tokens_per_s"] = len(spec["prompt_ids"]) / r["prefill_s"]
    r["decode_tokens_per_s"] = (n - 1) / r["decode_s"] if n > 1 and r["decode_s"] > 0 else None
    print(json.dumps(r))
    return 0


# ---------------------------------------------------------------------------------------------
# The runners

def run_worker(python: str, kind: str, spec_file: Path) -> dict:
    code, out, err, wall, rss = bench.run_measured([python, __file__, f"--{kind}-worker", str(spec_file)])
    if code != 0:
        raise SystemExit(f"{kind} worker failed ({code}):\n{err[-4000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    r.update(wait4_maxrss_mb=rss, wall_s=wall)
    return r


def run_ours(binary: Path, model_dir: Path, dtype: str | None, max_tokens: int, threads: int, prompt: str) -> dict:
    cmd = [str(binary), "--model", str(model_dir)] + (["--dtype", dtype] if dtype else []) + \
          ["--prompt", prompt, "--greedy", "--max-tokens", str(max_tokens), "--json"]
    code, out, err, wall, rss = bench.run_measured(cmd, env=dict(os.environ, QWEN_THREADS=str(threads)))
    if code != 0:
        raise SystemExit(f"qwen-run failed ({code}): {' '.join(cmd[:6])} ...\n{err[-4000:]}")
    r = json.loads(out)
    s = r["stats"]
    return {"load_s": s["load_s"], "prefill_tokens_per_s": s["prefill_tokens_per_s"],
            "decode_tokens_per_s": s["decode_tokens_per_s"], "peak_rss_mb": s["peak_rss_mb"],
            "wait4_maxrss_mb": rss, "wall_s": wall,
            "prompt_ids": r["prompt_ids"], "generated_ids": r["generated_ids"], "stop_reason": r.get("stop_reason")}


def first_difference(a: list[int], b: list[int], n: int) -> int | None:
    """None when the first n ids agree (and both have as many of them), else the first step that differs."""
    a, b = a[:n], b[:n]
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def cpu_summary() -> dict:
    import build_format_models as bfm

    info = bfm.cpu_info()
    return {"model_name": info.get("Model name", platform.processor() or "?"), "cpus": os.cpu_count(),
            "avx2": info["avx2"], "avx512": info["avx512"], "vnni": info["vnni"]}


def git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "Sources", "Package.swift"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+changes in Sources" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] in ("--ort-worker", "--genai-worker"):
        return worker_main(sys.argv[1][2:].split("-")[0], sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "Models/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--genai", type=Path, default=ROOT / "Models/qwen2.5-coder-0.5b-instruct-genai-int4")
    ap.add_argument("--binary", type=Path, default=ROOT / ".build/release/qwen-run")
    ap.add_argument("--genai-python", default=str(Path(os.environ.get("QWEN_GENAI_VENV", ROOT / ".venv-genai"))
                                                  / "bin/python"))
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--runs", type=int, default=3, help="timed rounds (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="threads for every runner")
    ap.add_argument("--seed", type=int, default=0, help="seed of the format order in each round")
    ap.add_argument("--prompt", default=bench.PROMPT, help="the user message (default: scripts/bench's prompt)")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the tables go to stderr)")
    args = ap.parse_args()

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise SystemExit(f"unknown formats {unknown}; known: {list(FORMATS)}")
    model_dir, genai_dir = args.model.resolve(), args.genai.resolve()
    dirs = {"tjs": model_dir, "genai": genai_dir}
    for f in formats:
        path = dirs[FORMATS[f][0]] / FORMATS[f][2]
        if not path.exists():
            raise SystemExit(f"{path} is missing (scripts/build_default_model.sh, scripts/build_format_models.sh)")
    binary = args.binary.resolve()
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: swift build -c release -Xswiftc -target-cpu -Xswiftc native "
                         "--product qwen-run")

    cpu = cpu_summary()
    flags = (f"avx2 {'yes' if cpu['avx2'] else 'no'}, avx512 {' '.join(cpu['avx512']) or 'no'}, "
             f"vnni {' '.join(cpu['vnni']) or 'no'}")
    header = f"CPU: {cpu['model_name']} ({cpu['cpus']} CPUs; {flags})"
    print(header, file=sys.stderr if args.json else sys.stdout, flush=True)
    commit = git_head()
    started = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    binary_time = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(binary.stat().st_mtime))
    log(f"{started}, commit {commit}, binary {binary} built {binary_time}")

    # The prompt ids, from HF (transformers' chat template + tokenizers).
    import transformers
    from transformers import AutoTokenizer

    import build_format_models as bfm

    transformers.logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    text = tok.apply_chat_template([{"role": "user", "content": args.prompt}], tokenize=False, add_generation_prompt=True)
    prompt_ids = [int(i) for i in tok(text, add_special_tokens=False).input_ids]
    eos_tjs = bfm.eos_ids(model_dir)
    genai_cfg = json.loads((genai_dir / "genai_config.json").read_text()) if "genai-int4" in formats else None

    tmp = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    specs: dict[tuple[str, str], Path] = {}
    genai_session_options = {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1,
                             "graph_optimization_level": "ORT_ENABLE_ALL"}
    for f in formats:
        kind, _, rel = FORMATS[f]
        spec = {"model": str(dirs[kind] / rel), "prompt_ids": prompt_ids, "max_tokens": args.max_tokens,
                "threads": args.threads, "eos": eos_tjs}
        if kind == "genai":
            dec = genai_cfg["model"]["decoder"]
            e = genai_cfg["model"]["eos_token_id"]
            spec.update(eos=e if isinstance(e, list) else [e], kv_shape=[dec["num_key_value_heads"], dec["head_size"]])
            specs[(f, "genai")] = tmp / f"{f}-genai.json"
            specs[(f, "genai")].write_text(json.dumps({**spec, "model_dir": str(genai_dir),
                                                       "session_options": genai_session_options}))
        specs[(f, "ort")] = tmp / f"{f}-ort.json"
        specs[(f, "ort")].write_text(json.dumps(spec))
    runners = {f: ["ours", "ort"] + (["genai"] if FORMATS[f][0] == "genai" else []) for f in formats}
    log(f"prompt {len(prompt_ids)} tokens (chat template), {args.max_tokens} new tokens, {args.threads} threads, "
        f"{args.warmup} warm-up + {args.runs} timed rounds over {formats}")

    probes = [bench.fma_probe(tmp)]
    if probes[0]:
        log(f"machine check: float32 FMA {probes[0][0]:.0f} GFLOP/s on one thread, {probes[0][1]:.0f} on two")

    runs: dict[tuple[str, str], list[dict]] = {(f, r): [] for f in formats for r in runners[f]}
    order_log = []
    rng = random.Random(args.seed)
    for round_ in range(args.warmup + args.runs):
        timed = round_ >= args.warmup
        fmt_order = formats[:]
        rng.shuffle(fmt_order)
        order = []
        for f in fmt_order:
            rs = runners[f]
            k = round_ % len(rs)
            order += [(f, r) for r in rs[k:] + rs[:k]]  # take turns going first
        order_log.append({"round": "warm-up" if not timed else round_ - args.warmup + 1,
                          "order": [f"{f}/{r}" for f, r in order]})
        for f, r in order:
            kind, dtype, _ = FORMATS[f]
            if r == "ours":
                res = run_ours(binary, dirs[kind], dtype, args.max_tokens, args.threads, args.prompt)
                if res["prompt_ids"] != prompt_ids:
                    raise SystemExit(f"{f}: qwen-run's prompt ids differ from HF's:\n ours {res['prompt_ids']}\n"
                                     f" HF   {prompt_ids}")
            elif r == "ort":
                res = run_worker(sys.executable, "ort", specs[(f, r)])
            else:
                res = run_worker(args.genai_python, "genai", specs[(f, r)])
            res["others_cpu"] = bench.LAST_OTHERS_CPU
            log(f"{'round ' + str(round_ - args.warmup + 1) if timed else 'warm-up'} {f:10s} {r:5s} "
                + "  ".join(f"{label} " + (fm.format(res[k]) if res.get(k) is not None else "-") for k, label, fm in METRICS)
                + f"  {len(res['generated_ids'])} ids"
                + (f"  {res['os_threads_before_load']}→{res['os_threads']} OS threads" if "os_threads" in res else "")
                + f"  (other processes {res['others_cpu']:.0%} CPU)")
            if timed:
                runs[(f, r)].append(res)
    probes.append(bench.fma_probe(tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    finished = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())

    def med(f: str, r: str, key: str):
        values = [x[key] for x in runs[(f, r)] if x.get(key) is not None]
        return statistics.median(values) if values else None

    summary = {f: {r: {k: med(f, r, k) for k, _, _ in METRICS} for r in runners[f]} for f in formats}
    ids = {(f, r): runs[(f, r)][-1]["generated_ids"] for f in formats for r in runners[f]}
    stable = {f"{f}/{r}": all(x["generated_ids"] == runs[(f, r)][0]["generated_ids"] for x in runs[(f, r)])
              for f in formats for r in runners[f]}
    n = args.max_tokens

    def agreement(a: tuple, b: tuple) -> str:
        d = first_difference(ids[a], ids[b], n)
        m = min(len(ids[a]), len(ids[b]), n)
        return f"identical ({m})" if d is None else f"differ at step {d}"

    def ratio(a, b):
        return a / b if a is not None and b else None

    comparisons = []  # (format, rival)
    for f in formats:
        comparisons += [(f, r) for r in runners[f] if r != "ours"]
    ratios, paired = {}, {}
    for f, rival in comparisons:
        key = f"{f}/{rival}"
        ratios[key] = {k: ratio(summary[f]["ours"][k], summary[f][rival][k]) for k, _, _ in METRICS}
        ratios[key]["greedy_ids"] = agreement((f, "ours"), (f, rival))
        paired[key] = {}
        for k in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            v = sorted(x[k] / y[k] for x, y in zip(runs[(f, "ours")], runs[(f, rival)]) if x.get(k) and y.get(k))
            if v:
                paired[key][k] = {"min": v[0], "median": statistics.median(v), "max": v[-1]}
    if "genai-int4" in formats:
        ratios["genai-int4/genai_vs_ort_ids"] = agreement(("genai-int4", "genai"), ("genai-int4", "ort"))

    def fmt(v, f):
        return f.format(v) if v is not None else "-"

    names = {"ours": "qwen-run", "ort": f"ONNX Runtime {ORT_VERSION}", "genai": f"onnxruntime-genai {GENAI_VERSION}"}
    rival_names = {"ort": "ORT", "genai": "GenAI"}
    lines = [f"| format (file) | runner | {' | '.join(label for _, label, _ in METRICS)} | generated |",
             "|" + "---|" * (len(METRICS) + 3)]
    for f in formats:
        for r in runners[f]:
            label = f"{f} (`{FORMATS[f][2].split('/')[-1]}`)" if r == "ours" else ""
            lines.append(f"| {label} | {names[r]} | " + " | ".join(fmt(summary[f][r][k], fm) for k, _, fm in METRICS)
                         + f" | {len(ids[(f, r)])} |")
    lines += ["", "| format | ours / | prefill | decode | load | peak RSS | greedy ids (first "
              f"{n}) | prefill, rounds | decode, rounds |", "|---|---|---|---|---|---|---|---|---|"]
    for f, rival in comparisons:
        key = f"{f}/{rival}"
        rr, pp = ratios[key], paired[key]

        def rounds(k):
            p = pp.get(k)
            return f"{p['min']:.2f}–{p['max']:.2f}×" if p else "-"
        lines.append(f"| {f} | {rival_names[rival]} | " + " | ".join(fmt(rr[k], "{:.2f}×") for k, _, _ in METRICS)
                     + f" | {rr['greedy_ids']} | {rounds('prefill_tokens_per_s')} | {rounds('decode_tokens_per_s')} |")
    others = [x["others_cpu"] for v in runs.values() for x in v]
    threads_seen = {f"{f}/{r}": sorted({f"{x['os_threads_before_load']}→{x['os_threads']}" for x in runs[(f, r)]})
                    for f in formats for r in runners[f] if r != "ours"}
    notes = [
        f"prompt {len(prompt_ids)} tokens ({'scripts/bench' if args.prompt == bench.PROMPT else 'a given'} chat prompt; "
        "qwen-run's ids equal HF's for every format), "
        f"greedy, {n} new tokens, {args.threads} threads each; medians of {args.runs} rounds after {args.warmup} "
        f"warm-up, formats in a shuffled order per round (seed {args.seed}), runners of a format taking turns first",
        "ratios: of the medians (tok/s: above 1 = ours faster; load and RSS: below 1 = ours smaller); "
        "'rounds': the same round's ours / rival, lowest–highest",
    ]
    if "genai-int4" in formats:
        notes.append(f"genai-int4: onnxruntime-genai greedy ids vs ORT's on the same file: "
                     f"{ratios['genai-int4/genai_vs_ort_ids']}; GenAI session options overlaid: "
                     f"{json.dumps(genai_session_options)}")
    notes += [
        "OS threads of the worker processes before loading → after generating: "
        + ", ".join(f"{k} {' / '.join(v)}" for k, v in threads_seen.items()),
        "greedy ids the same in every round: " + ("yes" if all(stable.values())
                                                  else "no: " + ", ".join(k for k, v in stable.items() if not v)),
        ("machine check (float32 FMA GFLOP/s, one thread / two threads), before and after: "
         + ", ".join(f"{p[0]:.0f} / {p[1]:.0f}" if p else "-" for p in probes)
         + ("  ** two threads got less than 1.6x one thread: cores shared with other tenants **"
            if any(p and p[1] < 1.6 * p[0] for p in probes) else "")),
        f"CPU used by other processes during the runs: {min(others):.0%}–{max(others):.0%} of the machine"
        + ("  ** BUSY MACHINE **" if max(others) > 0.10 else ""),
        f"{started} – {finished}, qwen-run at {commit} (binary built {binary_time})",
    ]
    table = "\n".join([header, ""] + lines + [""] + [f"- {x}" for x in notes])
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps({
            "cpu": cpu, "started_utc": started, "finished_utc": finished, "commit": commit, "binary_built_utc": binary_time,
            "prompt_tokens": len(prompt_ids), "max_tokens": n, "threads": args.threads, "runs": args.runs,
            "warmup": args.warmup, "seed": args.seed, "files": {f: FORMATS[f][2] for f in formats},
            "summary": summary, "ratios_ours_over": ratios, "paired_round_ratios": paired,
            "generated_ids": {f"{f}/{r}": ids[(f, r)] for f in formats for r in runners[f]},
            "generated_ids_same_every_round": stable, "genai_session_options": genai_session_options,
            "worker_os_threads": threads_seen, "fma_gflops_one_two_threads_before_after": probes,
            "order": order_log,
            "raw": {f"{f}/{r}": [{k: v for k, v in x.items() if k != "prompt_ids"} for x in runs[(f, r)]]
                    for f in formats for r in runners[f]},
        }, indent=1))
    else:
        print("\n".join(lines + [""] + [f"- {x}" for x in notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
