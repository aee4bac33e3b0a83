#!/usr/bin/env python3
"""Side-by-side benchmark: qwen-run vs ONNX Runtime (and llama.cpp when given) on the same model.

Usage (through the shell wrapper, which sets up the pinned venv):
    scripts/bench [--runs 3] [--json] [--model Models/qwen2.5-coder-0.5b-instruct]
                  [--scratch-path .build] [--no-build] [--max-tokens 64] [--threads 2]
                  [--positions 128,1024,4096] [--position-steps 16] [--no-int8]
                  [--prompt-lengths 512,1024] [--prompt-rounds 2]
    LLAMA_CPP_BIN=/path/to/llama-bench scripts/bench     # adds llama.cpp on the GGUF
    LLAMA_CPP_GGUF=Models/gguf/synthetic-qwen2.5-1.5b-q4_0-pure.gguf LLAMA_CPP_BIN=... scripts/bench \
        --model Models/synthetic-qwen2.5-1.5b --genai Models/synthetic-qwen2.5-1.5b-genai-int4
                                  # the 1.5B's shape, random weights, speed only (build_synthetic_model.sh)

What runs, in interleaved rounds (after one untimed warm-up round that also fills the page cache):
  ours   `qwen-run --model DIR --onnx model_q4f16.onnx --prompt TEXT --greedy --max-tokens 64 --json`
         (release build with -Xswiftc -target-cpu -Xswiftc native); its own stats: load_s, prefill and
         decode tok/s, peak RSS. The packed-weight cache (~/.cache/qwen-swift) is warm in the rounds
         (the warm-up writes it); one extra run before them with an empty cache directory gives the
         first-ever load time, printed in the notes.
         Its decode steps multiply int16-quantized activations in the float16 MatMulNBits (the default,
         `--decode-activations automatic`; accuracy equal to float32's in scripts/int8_accuracy.py).
  ours-f32   the same with `--decode-activations float32` (float32 decode activations, as ORT computes).
  ours-generic  the same binary built without -target-cpu (generic x86-64; what a package that
         depends on this one builds; --no-generic leaves it out)
  ours-int8  the same with `--int8 always` (int8 activations in every MatMulNBits; --no-int8 skips it).
  ORT    onnxruntime 1.31.1 (pinned), CPU EP, intra_op_num_threads 2, ORT_ENABLE_ALL, a Python greedy
         loop over the same onnx/model_q4f16.onnx and the same prompt ids, in its own process (imports
         only numpy + onnxruntime).
  GenAI  onnxruntime-genai 0.18.0 (in .venv-genai, QWEN_GENAI_VENV; its builder needs transformers >= 5)
         on its model builder's int4 CPU model of the same weights
         (Models/qwen2.5-coder-0.5b-instruct-genai-int4, scripts/build_format_models.sh), its own
         Generator loop (`bench_formats.py --genai-worker`: append_tokens(prompt), then
         generate_next_token), the same prompt ids, 2 intra-op threads; skipped with --no-genai or when
         the model or the venv is missing.
  llama  when LLAMA_CPP_BIN is set: `llama-bench -p <prompt tokens> -n 64 -t 2 -o json` (synthetic
         prompt of the same length) or `llama-cli` (same prompt text, raw, greedy, timings parsed from
         its log) on the same weights as pure Q4_0 (Models/gguf/...-q4_0-pure.gguf, made once from
         Models/gguf/qwen2.5-coder-0.5b-instruct.gguf with the llama-quantize next to LLAMA_CPP_BIN;
         without one, the fetched Q5_0/Q6_K/Q8_0 file itself). LLAMA_CPP_GGUF names a file to use as is.

Measured the same way for ours and ORT:
  prefill tok/s = prompt tokens / time of the one run over the whole prompt
  decode tok/s  = (generated - 1) / time from the end of prefill to the last generated token
                  (each step: argmax over the vocabulary + one single-token run with the KV cache)
  load s        = model load (qwen-run: reading, mapping and planning; ORT: InferenceSession creation)
  peak RSS      = the process's maximum resident set (wait4 ru_maxrss; the Python process of the ORT
                  run includes the interpreter and numpy, ~40 MB)
Decode speed at context lengths (second table): `qwen-run decode-speed` and the ORT worker each fill
the KV cache with N zero positions, run one untimed step, then time single-token steps (the work of
a step at that length does not depend on the values).
Prefill at prompt lengths (third table): the prompt's text repeated in one user message to about
512 and 1024 tokens (ids from HF, checked against qwen-run's), one token generated, qwen-run and the
ORT worker run alternately, medians.

Both stop after an eos id (as qwen-run does), so the prompt is one that makes the model write >64
tokens; the table says how many were generated, and a note names any system that stopped early
(the random weights of Models/synthetic-qwen2.5-1.5b may hit an eos id). Medians over the timed
rounds. The CPU time other processes take during each run is measured (/proc/stat minus the run's
own) and a busy machine is flagged: on 2 cores, ONNX Runtime's spinning intra-op threads collapse when a core is taken.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ORT_VERSION = "1.31.1"
GENAI_VERSION = "0.18.0"

# A chat prompt of ~128 tokens (Qwen2.5 template with its default system message) asking for code,
# so that greedy decoding writes well over 64 tokens.
PROMPT = """Here is a Python function that computes running statistics over a list of numbers:

def stats(xs):
    total = 0
    for x in xs:
        total += x
    mean = total / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    return mean, var

Rewrite it in Swift as a generic function over BinaryFloatingPoint with a single pass (Welford's algorithm). Explain each step."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (/proc/stat), or 0 where there is none."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


LAST_OTHERS_CPU = 0.0


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[int, str, str, float, float]:
    """Runs cmd; returns (exit code, stdout, stderr, wall seconds, peak RSS MB of that process).
    Sets LAST_OTHERS_CPU: the fraction of the machine's CPU time used by other processes meanwhile."""
    global LAST_OTHERS_CPU
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy0 = busy_cpu_seconds()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        busy = busy_cpu_seconds() - busy0
        LAST_OTHERS_CPU = max(0.0, busy - usage.ru_utime - usage.ru_stime) / (wall * (os.cpu_count() or 1))
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                wall, usage.ru_maxrss / 1024)


# ---------------------------------------------------------------------------------------------
# ONNX Runtime worker (runs in its own process: `bench.py --ort-worker SPEC.json`)

def ort_worker(spec_path: str) -> int:
    import numpy as np
    import onnxruntime as ort

    spec = json.loads(Path(spec_path).read_text())
    if ort.__version__ != ORT_VERSION:
        raise SystemExit(f"onnxruntime {ort.__version__}, expected {ORT_VERSION} (scripts/requirements.txt)")
    t0 = time.perf_counter()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = spec["threads"]
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    session = ort.InferenceSession(spec["model"], sess_options=so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0

    inputs = {i.name: i for i in session.get_inputs()}
    output_names = [o.name for o in session.get_outputs()]
    past_names = [n for n in inputs if n.startswith("past_key_values.")]
    present_of = {n: n.replace("past_key_values.", "present.", 1) for n in past_names}
    index = {n: output_names.index(present_of[n]) for n in past_names}
    logits_index = output_names.index("logits")

    def zero_past(length: int) -> dict:
        return {n: np.zeros((1, int(inputs[n].shape[1]), length, int(inputs[n].shape[3])), dtype=np.float32)
                for n in past_names}

    past = zero_past(0)
    length = 0

    def step(ids: list[int]):
        nonlocal past, length
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, length + len(ids)), dtype=np.int64),
            "position_ids": np.arange(length, length + len(ids), dtype=np.int64)[None, :],
        }
        feeds.update(past)
        outs = session.run(output_names, {k: v for k, v in feeds.items() if k in inputs})
        past = {n: outs[index[n]] for n in past_names}
        length += len(ids)
        return outs[logits_index][0, -1]

    if spec.get("mode") == "context":
        # Decode speed with N positions already cached (zeros), as `qwen-run decode-speed` measures.
        rates = {}
        for position in spec["positions"]:
            past, length = zero_past(position), position
            step([0])  # untimed
            t0 = time.perf_counter()
            for _ in range(spec["steps"]):
                step([0])
            rates[str(position)] = spec["steps"] / (time.perf_counter() - t0)
        print(json.dumps({"decode_tokens_per_s": rates, "steps": spec["steps"]}))
        return 0

    prompt = spec["prompt_ids"]
    eos = set(spec["eos"])
    t0 = time.perf_counter()
    logits = step(prompt)
    prefill_s = time.perf_counter() - t0
    generated = []
    t1 = time.perf_counter()
    while True:
        nxt = int(np.argmax(logits))
        generated.append(nxt)
        if nxt in eos or len(generated) >= spec["max_tokens"]:
            break
        logits = step([nxt])
    decode_s = time.perf_counter() - t1
    print(json.dumps({
        "load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s,
        "prompt_tokens": len(prompt), "generated_ids": generated,
        "prefill_tokens_per_s": len(prompt) / prefill_s,
        "decode_tokens_per_s": (len(generated) - 1) / decode_s if decode_s > 0 else 0.0,
    }))
    return 0


# ---------------------------------------------------------------------------------------------
# The systems

# A machine check: float32 FMA throughput of one and of two threads (12 independent AVX2 FMA
# chains each, ~0.5 s). On a VM whose vCPUs share physical cores with other tenants, two threads
# can get one core's worth or less for minutes at a time; this shows it next to the figures.
FMA_PROBE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float sink[2];
#define F(x) x = _mm256_fmadd_ps(x, m, c)
static void *spin(void *arg) {
    long id = (long)arg;
    __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
    __m256 a0 = _mm256_set1_ps(id), a1 = _mm256_set1_ps(id + 1), a2 = _mm256_set1_ps(id + 2), a3 = _mm256_set1_ps(id + 3);
    __m256 a4 = _mm256_set1_ps(id + 4), a5 = _mm256_set1_ps(id + 5), a6 = _mm256_set1_ps(id + 6), a7 = _mm256_set1_ps(id + 7);
    __m256 a8 = _mm256_set1_ps(id + 8), a9 = _mm256_set1_ps(id + 9), a10 = _mm256_set1_ps(id + 10), a11 = _mm256_set1_ps(id + 11);
    for (long i = 0; i < 20000000; i++) { F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11); }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float o[8]; _mm256_storeu_ps(o, s); sink[id] = o[0];
    return 0;
}
int main(void) {
    double flops = 20000000.0 * 12 * 16, t = now();
    spin((void *)0);
    double one = flops / (now() - t) / 1e9;
    pthread_t th; t = now();
    pthread_create(&th, 0, spin, (void *)1); spin((void *)0); pthread_join(th, 0);
    printf("%.1f %.1f %g\n", one, 2 * flops / (now() - t) / 1e9, sink[0] + sink[1]);
    return 0;
}
"""


def fma_probe(workdir: Path) -> tuple[float, float] | None:
    """(GFLOP/s of one thread, of two threads), or None without a C compiler or AVX2."""
    exe = workdir / "fma-probe"
    if not exe.exists():
        src = workdir / "fma-probe.c"
        src.write_text(FMA_PROBE)
        for cc in ("clang", "cc", "gcc"):
            try:
                if subprocess.run([cc, "-O2", "-mavx2", "-mfma", str(src), "-o", str(exe), "-lpthread"],
                                  capture_output=True).returncode == 0:
                    break
            except FileNotFoundError:
                continue
        else:
            return None
    try:
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
        return float(out[0]), float(out[1])
    except (subprocess.CalledProcessError, OSError, ValueError, IndexError):
        return None


def run_ours(binary: Path, model_dir: Path, onnx_name: str, max_tokens: int, int8: str = "accuracyLevel4",
             cache_dir: str | None = None, decode: str = "automatic", prompt: str = PROMPT) -> dict:
    cmd = [str(binary), "--model", str(model_dir), "--onnx", onnx_name, "--prompt", prompt,
           "--greedy", "--max-tokens", str(max_tokens), "--json", "--int8", int8, "--decode-activations", decode]
    env = None
    if cache_dir is not None:
        env = dict(os.environ, QWEN_CACHE_DIR=cache_dir)
    code, out, err, wall, rss = run_measured(cmd, env=env)
    if code != 0:
        raise SystemExit(f"qwen-run failed ({code}):\n{err}")
    r = json.loads(out)
    s = r["stats"]
    return {"load_s": s["load_s"], "prefill_tokens_per_s": s["prefill_tokens_per_s"],
            "decode_tokens_per_s": s["decode_tokens_per_s"], "peak_rss_mb": rss,
            "self_reported_peak_rss_mb": s["peak_rss_mb"], "wall_s": wall,
            "weight_bytes_per_token": s.get("weight_bytes_per_token"), "kernel_isa": s.get("kernel_isa"),
            "prompt_ids": r["prompt_ids"], "generated_ids": r["generated_ids"]}


def run_worker(cmd: list[str], what: str) -> dict:
    """A worker process printing one JSON object as its last line, with its peak RSS and wall time."""
    code, out, err, wall, rss = run_measured(cmd)
    if code != 0:
        raise SystemExit(f"{what} worker failed ({code}):\n{err[-4000:]}")
    r = json.loads(out.strip().splitlines()[-1])
    r["peak_rss_mb"] = rss
    r["wall_s"] = wall
    return r


def run_ort(spec_file: Path) -> dict:
    return run_worker([sys.executable, __file__, "--ort-worker", str(spec_file)], "ONNX Runtime")


def run_llama(binary: str, gguf: Path, prompt_tokens: int, max_tokens: int, threads: int) -> dict:
    name = Path(binary).name
    if "bench" in name:
        cmd = [binary, "-m", str(gguf), "-p", str(prompt_tokens), "-n", str(max_tokens), "-t", str(threads),
               "-r", "1", "-o", "json"]
        code, out, err, wall, rss = run_measured(cmd)
        if code != 0:
            raise SystemExit(f"{name} failed ({code}):\n{err}")
        rows = json.loads(out)
        pp = next(r for r in rows if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0)
        tg = next(r for r in rows if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0)
        return {"prefill_tokens_per_s": pp["avg_ts"], "decode_tokens_per_s": tg["avg_ts"], "load_s": None,
                "peak_rss_mb": rss, "wall_s": wall, "how": "llama-bench (synthetic prompt of the same length)"}
    # llama-cli: greedy on the same prompt text (raw; its own chat handling is off), timings from its log.
    cmd = [binary, "-m", str(gguf), "-p", PROMPT, "-n", str(max_tokens), "-t", str(threads), "--temp", "0",
           "-no-cnv", "--no-warmup"]
    code, out, err, wall, rss = run_measured(cmd)
    if code != 0:
        raise SystemExit(f"{name} failed ({code}):\n{err}")
    text = out + err

    def rate(label: str) -> float | None:
        m = re.search(label + r" time =\s*[\d.]+ ms /\s*\d+ (?:tokens|runs).*?([\d.]+) tokens per second", text)
        return float(m.group(1)) if m else None

    load = re.search(r"load time =\s*([\d.]+) ms", text)
    return {"prefill_tokens_per_s": rate("prompt eval"), "decode_tokens_per_s": rate(r"(?<!prompt )eval"),
            "load_s": float(load.group(1)) / 1000 if load else None, "peak_rss_mb": rss, "wall_s": wall,
            "how": "llama-cli (raw prompt text, greedy)"}


def run_genai(python: Path, spec_file: Path) -> dict:
    """onnxruntime-genai's own Generator loop, in its venv (bench_formats.py's worker)."""
    return run_worker([str(python), str(ROOT / "scripts/bench_formats.py"), "--genai-worker", str(spec_file)],
                      "onnxruntime-genai")


@functools.cache
def cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (empty elsewhere), read once."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            k, _, v = line.partition(":")
            fields.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return fields


def cpu_flags() -> set[str]:
    return set(cpuinfo().get("flags", "").split())


def cpu_model() -> str:
    """The CPU's model name, family and model (Linux), e.g. 'AMD EPYC (family 25 model 17)'."""
    f = cpuinfo()
    if not f:
        return platform.machine()
    return f"{f.get('model name', platform.machine())} (family {f.get('cpu family', '?')} model {f.get('model', '?')})"


def isa_used(system: str, runs: dict, llama_bin: str | None) -> str:
    """What instruction sets each side used, as far as it can be told from outside."""
    if system.startswith("ours"):
        levels = {r.get("kernel_isa") for r in runs[system]} - {None}
        return f"{system} kernels {', '.join(sorted(levels)) or '?'} (QWEN_ISA={os.environ.get('QWEN_ISA', 'unset')})"
    if system in ("ort", "genai"):
        flags = cpu_flags()
        top = ("AVX-512" + (" VNNI" if "avx512_vnni" in flags else "") if "avx512f" in flags
               else "AVX2" if "avx2" in flags else "SSE")
        return f"{system} MLAS dispatch by CPUID ({top} on this CPU)"
    if system == "llama.cpp" and llama_bin:
        isa = Path(llama_bin).parent.parent / "isa.txt"
        return f"llama.cpp built for {isa.read_text().strip() if isa.exists() else 'unknown flags'}"
    return f"{system} ?"


def llama_gguf(binary: str, source: Path, explicit: bool) -> Path:
    """The GGUF llama.cpp runs. The fetched file's tensors are Q5_0/Q6_K/Q8_0; the fair rival of our
    4-bit block-32 weights is pure Q4_0 (also 4.5 bits/weight), made once with the llama-quantize next
    to LLAMA_CPP_BIN when there is one. LLAMA_CPP_GGUF names a file to use as is."""
    if not source.exists():
        raise SystemExit(f"LLAMA_CPP_BIN is set but {source} is missing (scripts/fetch_gguf.sh)")
    if explicit:
        return source
    q4 = source.with_name(source.stem + "-q4_0-pure.gguf")
    if q4.exists():
        return q4
    quantize = Path(binary).with_name("llama-quantize")
    if quantize.exists():
        log(f"making {q4.name} with {quantize} (--pure Q4_0)")
        subprocess.run([str(quantize), "--allow-requantize", "--pure", str(source), str(q4), "Q4_0"],
                       check=True, stdout=sys.stderr, stderr=sys.stderr)
        return q4
    log(f"no llama-quantize next to {binary}: llama.cpp runs {source.name} as fetched (Q5_0/Q6_K/Q8_0, not Q4_0)")
    return source


# ---------------------------------------------------------------------------------------------

METRICS = [("prefill_tokens_per_s", "prefill tok/s", "{:.1f}"), ("decode_tokens_per_s", "decode tok/s", "{:.1f}"),
           ("load_s", "load s", "{:.3f}"), ("peak_rss_mb", "peak RSS MB", "{:.0f}")]


def median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--ort-worker":
        return ort_worker(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "Models/qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--onnx", default="model_q4f16.onnx", help="file inside MODEL/onnx/")
    ap.add_argument("--runs", type=int, default=3, help="timed interleaved rounds (after one warm-up)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads, llama.cpp threads")
    ap.add_argument("--scratch-path", type=Path, default=ROOT / ".build", help="SwiftPM scratch path")
    ap.add_argument("--no-build", action="store_true", help="use the existing release qwen-run")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the table goes to stderr)")
    ap.add_argument("--positions", default="128,1024,4096",
                    help="context lengths for the decode-vs-context table ('' to skip)")
    ap.add_argument("--position-steps", type=int, default=16, help="timed decode steps per context length")
    ap.add_argument("--prompt-lengths", default="512,1024",
                    help="about how many prompt tokens for the prefill-vs-prompt-length table ('' to skip)")
    ap.add_argument("--prompt-rounds", type=int, default=2, help="interleaved runs per prompt length and system")
    ap.add_argument("--genai", type=Path, default=ROOT / "Models/qwen2.5-coder-0.5b-instruct-genai-int4",
                    help="onnxruntime-genai builder model directory (int4 CPU) run by its own Generator")
    ap.add_argument("--no-genai", action="store_true", help="leave onnxruntime-genai out")
    ap.add_argument("--no-generic", action="store_true",
                    help="leave out the row for qwen-run built without -target-cpu (what a dependent package gets)")
    ap.add_argument("--generic-scratch-path", type=Path, default=ROOT / ".build-generic",
                    help="SwiftPM scratch path of that build")
    ap.add_argument("--no-int8", action="store_true",
                    help="skip the qwen-run row with int8 activations (--int8 always; accuracy: scripts/int8_accuracy.py)")
    args = ap.parse_args()

    model_dir = args.model.resolve()
    onnx_path = model_dir / "onnx" / args.onnx
    if not onnx_path.exists():
        raise SystemExit(f"{onnx_path} is missing: build the default model with scripts/build_default_model.sh")

    scratch = args.scratch_path if args.scratch_path.is_absolute() else (Path.cwd() / args.scratch_path)
    if not args.no_build:
        log(f"building qwen-run (release, -target-cpu native, scratch {scratch})")
        subprocess.run(["swift", "build", "-c", "release", "-Xswiftc", "-target-cpu", "-Xswiftc", "native",
                        "--product", "qwen-run", "--scratch-path", str(scratch)], cwd=ROOT, check=True,
                       stdout=sys.stderr)
    binary = scratch / "release" / "qwen-run"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing (drop --no-build)")
    # The same program built for the generic x86-64 target (no -target-cpu): what a package that
    # depends on this one builds. The C kernels choose their ISA at run time either way.
    generic = None
    if not args.no_generic:
        gscratch = args.generic_scratch_path if args.generic_scratch_path.is_absolute() else Path.cwd() / args.generic_scratch_path
        if not args.no_build:
            log(f"building qwen-run (release, generic x86-64: no -target-cpu, scratch {gscratch})")
            subprocess.run(["swift", "build", "-c", "release", "--product", "qwen-run", "--scratch-path", str(gscratch)],
                           cwd=ROOT, check=True, stdout=sys.stderr)
        generic = gscratch / "release" / "qwen-run"
        if not generic.exists():
            raise SystemExit(f"{generic} is missing (drop --no-build, or --no-generic)")

    # The prompt ids, from HF (transformers' chat template + tokenizers), checked against qwen-run's.
    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(str(model_dir))

    def chat_ids(content: str) -> list[int]:
        """HF's ids for `content` as one user message in the chat template, with the generation prompt."""
        text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
        return tok(text, add_special_tokens=False).input_ids

    prompt_ids = chat_ids(PROMPT)
    gen = json.loads((model_dir / "generation_config.json").read_text())
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    spec_file = Path(tempfile.mkstemp(prefix="bench-ort-", suffix=".json")[1])
    spec_file.write_text(json.dumps({"model": str(onnx_path), "prompt_ids": prompt_ids, "eos": eos,
                                     "max_tokens": args.max_tokens, "threads": args.threads}))
    log(f"prompt: {len(prompt_ids)} tokens (chat template), {args.max_tokens} new tokens, "
        f"{args.runs} timed rounds after {args.warmup} warm-up")

    llama_bin = os.environ.get("LLAMA_CPP_BIN")
    gguf = Path(os.environ.get("LLAMA_CPP_GGUF", ROOT / "Models/gguf/qwen2.5-coder-0.5b-instruct.gguf"))
    if llama_bin:
        gguf = llama_gguf(llama_bin, gguf, explicit="LLAMA_CPP_GGUF" in os.environ)

    genai_python = Path(os.environ.get("QWEN_GENAI_VENV", ROOT / ".venv-genai")) / "bin" / "python"
    genai_dir = args.genai.resolve()
    genai_spec = None
    if not args.no_genai:
        if not (genai_dir / "genai_config.json").exists() or not genai_python.exists():
            log(f"onnxruntime-genai left out: {genai_dir} or {genai_python} is missing "
                "(scripts/setup_venv_genai.sh, scripts/build_format_models.sh)")
        else:
            dec = json.loads((genai_dir / "genai_config.json").read_text())["model"]
            e = dec["eos_token_id"]
            genai_spec = Path(tempfile.mkstemp(prefix="bench-genai-", suffix=".json")[1])
            genai_spec.write_text(json.dumps({
                "model_dir": str(genai_dir), "prompt_ids": prompt_ids, "max_tokens": args.max_tokens,
                "eos": e if isinstance(e, list) else [e],
                "session_options": {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1,
                                    "graph_optimization_level": "ORT_ENABLE_ALL"}}))

    probe_dir = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    probes = [fma_probe(probe_dir)]
    if probes[0]:
        log(f"machine check: float32 FMA {probes[0][0]:.0f} GFLOP/s on one thread, {probes[0][1]:.0f} on two")

    # The first load of a model packs its weights and writes the packed-weight cache; later loads
    # map it. Measured once with an empty cache directory, then every round runs with the cache warm.
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cold:
        first = run_ours(binary, model_dir, args.onnx, 1, cache_dir=cold)
        packed_mb = sum(p.stat().st_size for p in Path(cold).rglob("*") if p.is_file()) / 1e6
    log(f"first load with an empty packed-weight cache: {first['load_s']:.3f} s (packs the weights and writes the cache)")

    systems = (["ours", "ours-f32"] + ([] if args.no_int8 else ["ours-int8"]) + (["ours-generic"] if generic else [])
               + ["ort"] + (["genai"] if genai_spec else []) + (["llama.cpp"] if llama_bin else []))
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    for round_ in range(args.warmup + args.runs):
        timed = round_ >= args.warmup
        order = systems[round_ % len(systems):] + systems[:round_ % len(systems)]  # rotate who goes first
        for s in order:
            if s in ("ours", "ours-f32", "ours-int8", "ours-generic"):
                r = run_ours(generic if s == "ours-generic" else binary, model_dir, args.onnx, args.max_tokens,
                             int8="always" if s == "ours-int8" else "accuracyLevel4",
                             decode="float32" if s == "ours-f32" else "automatic")
                if r["prompt_ids"] != prompt_ids:
                    raise SystemExit(f"qwen-run's prompt ids differ from HF's:\n ours {r['prompt_ids']}\n HF   {prompt_ids}")
            elif s == "ort":
                r = run_ort(spec_file)
            elif s == "genai":
                r = run_genai(genai_python, genai_spec)
            else:
                r = run_llama(llama_bin, gguf, len(prompt_ids), args.max_tokens, args.threads)
            r["others_cpu"] = LAST_OTHERS_CPU
            log(f"{'round ' + str(round_ - args.warmup + 1) if timed else 'warm-up'} {s:9s} "
                + "  ".join(f"{label} " + (fmt.format(r[k]) if r.get(k) is not None else "-") for k, label, fmt in METRICS)
                + f"  (other processes: {LAST_OTHERS_CPU:.0%} CPU)")
            if timed:
                runs[s].append(r)
    spec_file.unlink(missing_ok=True)
    if genai_spec:
        genai_spec.unlink(missing_ok=True)

    probes.append(fma_probe(probe_dir))
    shutil.rmtree(probe_dir, ignore_errors=True)
    summary = {s: {k: median(runs[s], k) for k, _, _ in METRICS} for s in systems}
    others = [r["others_cpu"] for s in systems for r in runs[s]]
    ours_ids, ort_ids = runs["ours"][-1]["generated_ids"], runs["ort"][-1]["generated_ids"]
    agree = next((i for i, (a, b) in enumerate(zip(ours_ids, ort_ids)) if a != b), min(len(ours_ids), len(ort_ids)))
    ratios = {}
    for k, _, _ in METRICS:
        a, b = summary["ours"][k], summary["ort"][k]
        ratios[k] = a / b if a is not None and b else None

    def fmt(v, f):
        return f.format(v) if v is not None else "-"

    def paired(a: str, b: str) -> dict:
        """Round-by-round ratios a / b of the tok/s metrics: both ran within the same round, a
        minute apart, so each ratio sees about the same machine (the host's slow spells move
        whole rounds); their spread says how far a single ratio can be trusted."""
        out = {}
        for k in ("prefill_tokens_per_s", "decode_tokens_per_s"):
            values = sorted(x[k] / y[k] for x, y in zip(runs[a], runs[b]) if x.get(k) and y.get(k))
            if values:
                out[k] = {"min": values[0], "median": statistics.median(values), "max": values[-1]}
        return out

    pairs = {f"{a}/{b}": paired(a, b) for a, b in (("ours", "ort"), ("ours-f32", "ort"), ("ours", "genai"),
                                                    ("ours", "llama.cpp"), ("ours-int8", "llama.cpp"),
                                                    ("ours-generic", "ours"))
             if a in systems and b in systems}

    lines = []
    header = f"| system | {' | '.join(label for _, label, _ in METRICS)} | generated |"
    lines += [header, "|" + "---|" * (len(METRICS) + 2)]
    names = {"ours": f"qwen-run ({args.onnx})", "ours-f32": f"qwen-run --decode-activations float32 ({args.onnx})",
             "ours-int8": f"qwen-run --int8 always ({args.onnx}, int8 activations)",
             "ours-generic": f"qwen-run built for generic x86-64, no -target-cpu ({args.onnx})",
             "ort": f"ONNX Runtime {ORT_VERSION} ({args.onnx}, ENABLE_ALL, {args.threads} thr)",
             "genai": f"onnxruntime-genai {GENAI_VERSION} ({genai_dir.name}, builder int4, {args.threads} thr)",
             "llama.cpp": f"llama.cpp ({gguf.name}, {args.threads} thr)"}
    for s in systems:
        gen_count = len(runs[s][-1]["generated_ids"]) if "generated_ids" in runs[s][-1] else args.max_tokens
        lines.append(f"| {names[s]} | " + " | ".join(fmt(summary[s][k], f) for k, _, f in METRICS) + f" | {gen_count} |")
    lines.append("| **ours / ORT** | " + " | ".join(fmt(ratios[k], "{:.2f}×") for k, _, _ in METRICS) + " | |")
    for variant, label in (("ours-f32", "ours float32 decode / ORT"), ("ours-int8", "ours int8 / ORT")):
        if variant not in systems:
            continue
        vr = {k: (summary[variant][k] / summary["ort"][k]) if summary[variant][k] is not None and summary["ort"][k] else None
              for k, _, _ in METRICS}
        lines.append(f"| **{label}** | " + " | ".join(fmt(vr[k], "{:.2f}×") for k, _, _ in METRICS) + " | |")
    for a, b, label in (("ours", "genai", "ours / GenAI"), ("ours", "llama.cpp", "ours / llama.cpp"),
                        ("ours-int8", "llama.cpp", "ours int8 / llama.cpp"),
                        ("ours-generic", "ours", "generic build / ours")):
        if a not in systems or b not in systems:
            continue
        lr = {k: (summary[a][k] / summary[b][k]) if summary[a][k] is not None and summary[b][k] else None for k, _, _ in METRICS}
        lines.append(f"| **{label}** | " + " | ".join(fmt(lr[k], "{:.2f}×") for k, _, _ in METRICS) + " | |")
    wbytes = runs["ours"][-1].get("weight_bytes_per_token")
    bandwidth = (f"decode reads {wbytes / 1e6:.0f} MB of weights per token (MatMulNBits weights+scales, one embedding row): "
                 + ", ".join(f"{names[s]} {summary[s]['decode_tokens_per_s'] * wbytes / 1e9:.1f} GB/s"
                             for s in systems if summary[s].get("decode_tokens_per_s"))) if wbytes else None
    notes = ([bandwidth] if bandwidth else []) + [f"prompt {len(prompt_ids)} tokens (chat template; ids identical for qwen-run and HF), "
             f"greedy, up to {args.max_tokens} new tokens; medians of {args.runs} interleaved rounds",
             *[f"{pair} round by round (same round's runs): "
               + ", ".join(f"{k.split('_')[0]} {v['median']:.2f}× (rounds {v['min']:.2f}–{v['max']:.2f}×)" for k, v in d.items())
               for pair, d in pairs.items() if d],
             *[f"{names[s]} stopped at an eos id after {len(runs[s][-1]['generated_ids'])} of {args.max_tokens} tokens: "
               f"its decode tok/s is over {len(runs[s][-1]['generated_ids']) - 1} steps"
               for s in systems if len(runs[s][-1].get("generated_ids", [None] * args.max_tokens)) < args.max_tokens],
             f"generated ids, ours vs ORT ENABLE_ALL: {'identical' if ours_ids == ort_ids else f'first difference at step {agree}'}",
             f"load: with the packed-weight cache warm (the warm-up writes it); first load with an empty cache "
             f"{first['load_s']:.3f} s (packs the weights and writes a {packed_mb:.0f} MB cache)",
             f"machine: {cpu_model()}, {os.cpu_count()} CPUs; higher is better for tok/s, lower for load and RSS",
             "instruction sets: " + "; ".join(isa_used(s, runs, llama_bin) for s in systems),
             ("machine check (float32 FMA GFLOP/s, one thread / two threads), before and after the rounds: "
              + ", ".join(f"{p[0]:.0f} / {p[1]:.0f}" if p else "-" for p in probes)
              + ("  ** two threads got less than 1.6x one thread: cores shared with other tenants, figures not"
                 " comparable with a quiet run **" if any(p and p[1] < 1.6 * p[0] for p in probes) else "")),
             f"CPU used by other processes during the runs: {min(others):.0%}–{max(others):.0%} of the machine"
             + ("  ** BUSY MACHINE: not comparable with a quiet run (ONNX Runtime's spinning threads suffer most) **"
                if max(others) > 0.10 else "")]
    def versus_ort(title: str, columns: list[str], ours: dict, ort: dict, fmt: str) -> list[str]:
        """A table of ours and ORT by column (keys of `ours` and `ort`), with their ratio."""
        return ["", f"| {title} | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1),
                f"| {names['ours']} | " + " | ".join(fmt.format(ours[c]) for c in columns) + " |",
                f"| {names['ort']} | " + " | ".join(fmt.format(ort[c]) for c in columns) + " |",
                "| **ours / ORT** | " + " | ".join(f"{ours[c] / ort[c]:.2f}×" for c in columns) + " |"]

    context = None
    positions = [int(p) for p in args.positions.split(",") if p.strip()]
    if positions:
        log(f"decode speed at context lengths {positions} ({args.position_steps} steps each, synthetic cache)")
        context = {}
        code, out, err, _, _ = run_measured([str(binary), "decode-speed", "--model", str(model_dir), "--onnx", args.onnx,
                                             "--positions", ",".join(map(str, positions)),
                                             "--steps", str(args.position_steps), "--json"])
        if code != 0:
            raise SystemExit(f"qwen-run decode-speed failed ({code}):\n{err}")
        context["ours"] = json.loads(out)["decode_tokens_per_s"]
        context_others = [LAST_OTHERS_CPU]
        ctx_spec = Path(tempfile.mkstemp(prefix="bench-ort-ctx-", suffix=".json")[1])
        ctx_spec.write_text(json.dumps({"model": str(onnx_path), "mode": "context", "positions": positions,
                                        "steps": args.position_steps, "threads": args.threads}))
        context["ort"] = run_ort(ctx_spec)["decode_tokens_per_s"]
        context_others.append(LAST_OTHERS_CPU)
        ctx_spec.unlink(missing_ok=True)
        lines += versus_ort("decode tok/s at context length", [str(p) for p in positions], context["ours"], context["ort"],
                            "{:.2f}")
        notes.append(f"context table: one single-token step after N cached positions (zeros; no prefill), "
                     f"{args.position_steps} timed steps after one untimed, one run each; "
                     f"other processes {min(context_others):.0%}–{max(context_others):.0%} CPU")
    prefill_at = None
    targets = [int(p) for p in args.prompt_lengths.split(",") if p.strip()]
    if targets:
        # Longer prompts: the bench prompt's text repeated in one user message (chat template),
        # ids from HF and checked against qwen-run's; one token generated.
        prefill_at = {}
        per_copy = len(tok("\n\n" + PROMPT, add_special_tokens=False).input_ids)
        length_others = []
        for target in targets:
            copies = max(1, round((target - len(prompt_ids)) / per_copy) + 1)
            content = "\n\n".join([PROMPT] * copies)
            ids = chat_ids(content)
            log(f"prefill at a {len(ids)}-token prompt ({copies} copies of the prompt), {args.prompt_rounds} runs each")
            spec = Path(tempfile.mkstemp(prefix="bench-ort-long-", suffix=".json")[1])
            spec.write_text(json.dumps({"model": str(onnx_path), "prompt_ids": ids, "eos": eos, "max_tokens": 1,
                                        "threads": args.threads}))
            rates = {"ours": [], "ort": []}
            for _ in range(args.prompt_rounds):
                r = run_ours(binary, model_dir, args.onnx, 1, prompt=content)
                length_others.append(LAST_OTHERS_CPU)
                if r["prompt_ids"] != ids:
                    raise SystemExit(f"qwen-run's ids for the {len(ids)}-token prompt differ from HF's")
                rates["ours"].append(r["prefill_tokens_per_s"])
                rates["ort"].append(run_ort(spec)["prefill_tokens_per_s"])
                length_others.append(LAST_OTHERS_CPU)
            spec.unlink(missing_ok=True)
            prefill_at[str(len(ids))] = {k: statistics.median(v) for k, v in rates.items()} | {"runs": rates}
        lines += versus_ort("prefill tok/s at prompt length", list(prefill_at),
                            {n: r["ours"] for n, r in prefill_at.items()}, {n: r["ort"] for n, r in prefill_at.items()}, "{:.1f}")
        notes.append(f"prompt-length table: the prompt's text repeated in one user message, ids identical for qwen-run and HF, "
                     f"one token generated, medians of {args.prompt_rounds} interleaved runs; "
                     f"other processes {min(length_others):.0%}–{max(length_others):.0%} CPU")
    f32 = runs["ours-f32"][-1]["generated_ids"]
    notes.append(f"generated ids, ours float32 decode vs ORT ENABLE_ALL: {'identical' if f32 == ort_ids else 'differ'}")
    if "ours-int8" in systems:
        i8 = runs["ours-int8"][-1]["generated_ids"]
        d8 = next((i for i, (a, b) in enumerate(zip(i8, ort_ids)) if a != b), min(len(i8), len(ort_ids)))
        notes.append(f"generated ids, ours int8 vs ORT ENABLE_ALL: {'identical' if i8 == ort_ids else f'first difference at step {d8}'}"
                     " (int8 activations change the numerics; teacher-forced accuracy: scripts/int8_accuracy.py)")
    table = "\n".join(lines + [""] + notes)

    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps({"prompt_tokens": len(prompt_ids), "max_tokens": args.max_tokens, "runs": args.runs,
                          "first_load_s_empty_cache": first["load_s"],
                          "fma_gflops_one_two_threads_before_after": probes,
                          "threads": args.threads, "onnx": args.onnx, "cpu": cpu_model(),
                          "instruction_sets": {s: isa_used(s, runs, llama_bin) for s in systems}, "summary": summary, "ratios_ours_over_ort": ratios,
                          "paired_round_ratios": pairs,
                          "other_processes_cpu_fraction": {s: [r["others_cpu"] for r in runs[s]] for s in systems},
                          "decode_tokens_per_s_at_context": context,
                          "prefill_tokens_per_s_at_prompt_length": prefill_at,
                          "generated_ids_identical": ours_ids == ort_ids, "first_difference": None if ours_ids == ort_ids else agree,
                          "raw": {s: [{k: v for k, v in r.items() if k not in ("prompt_ids",)} for r in runs[s]] for s in systems}},
                         indent=1))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
