#!/usr/bin/env python3
"""The real Qwen2.5-Coder-0.5B-Instruct in the other formats people have, with reference greedy ids.

Usage (normally through scripts/build_format_models.sh, which picks the venv of each stage):
    .venv/bin/python       scripts/build_format_models.py tjs        [--force]
    .venv-genai/bin/python scripts/build_format_models.py genai      [--force]
    .venv/bin/python       scripts/build_format_models.py ort-refs   [--force]
    .venv-genai/bin/python scripts/build_format_models.py genai-refs [--force]

Starts from what scripts/build_default_model.sh leaves: Models/qwen2.5-coder-0.5b-instruct (tokenizer,
configs) and its intermediates in downloads/real-build (hf/: the float32 HF checkpoint dequantized
from the GGUF; onnx18/model.onnx: optimum's fp32 text-generation-with-past export, opset 18).
Each stage is skipped when its outputs exist (--force redoes it):

  tjs         transformers.js's q8 and fp16 dtypes of the fp32 export, made the way its
              scripts/quantize.py makes them (qwen_onnx.quantize_q8 / convert_to_fp16, as for the
              fixtures), saved inline as transformers.js does below 2 GB, with external data
              (<file>_data) above:
                MODEL/onnx/model_quantized.onnx   q8: dynamic IntegerOps quantization, QInt8 weights
                                                  (DynamicQuantizeLinear + MatMulInteger; embedding
                                                  Gather as uint8 + DequantizeLinear)
                MODEL/onnx/model_fp16.onnx        fp16: float16 conversion, float32 I/O, Cast blocked
              MODEL/format_build_report.json: sizes, sha256, op histograms, seconds.
  genai       `python -m onnxruntime_genai.models.builder -i <hf> -o GENAI -p int4 -e cpu -c <cache>`
              on the same checkpoint (HF_HUB_OFFLINE=1). The builder reads the tokenizer from its
              input directory, so it is given downloads/genai-build/hf: symlinks to hf/'s config,
              generation config and safetensors, plus MODEL's tokenizer.json / tokenizer_config.json
              (the chat template is in the latter); it re-saves them (transformers 5) into GENAI with
              chat_template.jinja. Built into GENAI.partial, renamed when complete.
              GENAI/build_report.json: files and sizes, op histogram, GroupQueryAttention /
              MatMulNBits / GatherBlockQuantized attributes, graph I/O, seconds.
  ort-refs    MODEL/reference/formats.json: for 3 chat prompts (HF chat template,
              add_generation_prompt) x 32 greedy new tokens (stopping after an eos id), ONNX Runtime
              greedy ids of model_quantized.onnx and model_fp16.onnx at ORT_DISABLE_ALL and
              ORT_ENABLE_ALL (1 intra-op thread), fed like scripts/ort_reference.py feeds the q4f16
              graph (input_ids, attention_mask, position_ids, past_key_values.*; full prefill, then
              one token per step). For q8 also "exact": ORT_DISABLE_ALL on the same function with
              the int8 MatMulInteger weights shifted to uint8 (ORT's u8 x u8 kernel is exact; its
              u8 x s8 AVX2 kernel without VNNI saturates pairs of products to int16), and a count
              of ORT's inexact MatMulInteger outputs on prompt 0's prefill. Plus timing runs per
              file: ORT_ENABLE_ALL, 1 and 2 threads, prompt 0: load, prefill, 31 decode steps.
  genai-refs  GENAI/reference/greedy.json: the same prompts; onnxruntime_genai's Generator greedy
              ids (do_sample False, top_k 1, repetition_penalty 1, max_length = prompt + 32), and
              ONNX Runtime InferenceSession greedy ids on GENAI/model.onnx at both levels, fed the
              genai way (no position_ids; attention_mask ones over past + new; past_key_values
              empty [1, 2, 0, 64] then the previous present, growing), agreement, per-step logits
              differences, timings on prompt 0 at 1 and 2 threads (genai: prefill and tokens/s, best
              of 2 rounds after a warm-up; ORT session: as in ort-refs).

--model-dir, --genai-dir, --work, --genai-work move MODEL, GENAI and the two work directories (.ci/run
builds into a cache outside the clone); --no-timings leaves the timing runs out of ort-refs and
genai-refs (their JSON then says "timing": null; the tests read only the ids).

Every JSON file records the CPU (lscpu model name, AVX-512 / VNNI flags present or not), the load
average around the timing runs (a 2-core machine shared with builds: 2-thread runs suffer most when
it is busy), and the package versions.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "Models" / "qwen2.5-coder-0.5b-instruct"
GENAI = ROOT / "Models" / "qwen2.5-coder-0.5b-instruct-genai-int4"
WORK = ROOT / "downloads" / "real-build"
GENAI_WORK = ROOT / "downloads" / "genai-build"

TJS_FILES = {"q8": "onnx/model_quantized.onnx", "fp16": "onnx/model_fp16.onnx"}
PROMPTS = [
    [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number."}],
    [{"role": "user", "content": "Explain what a mutex is in two sentences."}],
    [{"role": "user", "content": "Write quicksort in Swift."}],
]
MAX_NEW = 32
TIMING_THREADS = (1, 2)  # intra-op threads of the timing runs (this machine has 2 cores, often shared)
TWO_GB = 2 ** 31
ROBUST_MARGIN = 0.05
LEVELS = {"disable_all": "ORT_DISABLE_ALL", "enable_all": "ORT_ENABLE_ALL"}


def log(msg: str) -> None:
    print(f"[build_format_models {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    tmp.replace(path)


def shown(path: Path) -> str:
    """`path` relative to the repository when inside it (reports stay machine-independent), else absolute."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_info() -> dict:
    out = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Vendor ID"):
                out[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import bench  # stdlib only at import: usable from either venv

    flags = bench.cpu_flags()
    out["avx2"] = "avx2" in flags
    out["f16c"] = "f16c" in flags
    out["avx512"] = sorted(f for f in flags if f.startswith("avx512"))
    out["avx512_present"] = bool(out["avx512"])
    out["vnni"] = sorted(f for f in flags if "vnni" in f)
    out["vnni_present"] = bool(out["vnni"])
    return out


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for p in ["onnxruntime", "onnxruntime-genai", "onnx", "onnxconverter-common", "transformers",
              "tokenizers", "optimum", "optimum-onnx", "torch", "numpy", "protobuf"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def files_of(directory: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}


def op_histogram(model) -> dict:
    c = collections.Counter((n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type
                            for n in model.graph.node)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def node_attributes(node) -> dict:
    import onnx

    out = {}
    for attr in node.attribute:
        v = onnx.helper.get_attribute_value(attr)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, float):
            v = float(np.float32(v))
        out[attr.name] = v
    return dict(sorted(out.items()))


def attribute_sets(model, op: str) -> list[dict]:
    """Each distinct attribute set of `op`'s nodes, with how many nodes have it."""
    counts = collections.Counter(json.dumps(node_attributes(n), sort_keys=True)
                                 for n in model.graph.node if n.op_type == op)
    return [{**json.loads(k), "count": c} for k, c in counts.most_common()]


def graph_io(model) -> dict:
    from onnx import TensorProto

    def dims(v):
        return [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]

    def row(v):
        return {"name": v.name, "dtype": TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower(),
                "shape": dims(v)}

    g = model.graph
    return {"inputs": [row(i) for i in g.input], "outputs": [row(o) for o in g.output]}


# ---------------------------------------------------------------------------------------------
# prompts


def chat_prompts(tokenizer_dir: Path) -> tuple[list[dict], object]:
    """The PROMPTS rendered with the HF chat template (add_generation_prompt) and their ids; the tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    out = []
    for messages in PROMPTS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False).input_ids
        out.append({"messages": messages, "text": text, "ids": [int(i) for i in ids]})
    return out, tok


def eos_ids(model_dir: Path) -> list[int]:
    gen = json.loads((model_dir / "generation_config.json").read_text())
    e = gen["eos_token_id"]
    return e if isinstance(e, list) else [e]


def margin(last: np.ndarray) -> float:
    s = np.partition(last.astype(np.float64), -2)[-2:]
    return float(abs(s[1] - s[0]))


def greedy_summary(ids: list[int], margins: list[float], eos: list[int], tok) -> dict:
    return {
        "ids": ids,
        "text": tok.decode(ids, skip_special_tokens=False) if tok is not None else None,
        "stopped_at_eos": bool(ids) and ids[-1] in eos,
        "min_top2_margin": round(min(margins), 5) if margins else None,
        "robust_prefix_length": next((i for i, m in enumerate(margins) if m < ROBUST_MARGIN), len(ids)),
        "top2_margins": [round(m, 5) for m in margins],
    }


def first_difference(a: list[int], b: list[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


# ---------------------------------------------------------------------------------------------
# stage tjs


def save_like_transformers_js(model, path: Path) -> dict:
    """transformers.js's scripts/utils.py check_and_save_model: inline below 2 GB, else one
    external data file named <file>_data."""
    import qwen_onnx as qo

    size = model.ByteSize()
    external = size >= TWO_GB
    qo.save_model(model, path, external_data=external)
    return {"proto_bytes": size, "external_data": external}


def stage_tjs(model_dir: Path, work: Path, force: bool) -> None:
    import onnx

    import qwen_onnx as qo

    fp32 = work / "onnx18" / "model.onnx"
    if not (work / "onnx18" / ".done").exists():
        raise SystemExit(f"{fp32} missing: run scripts/build_default_model.sh first")
    report_path = model_dir / "format_build_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report.setdefault("made", {})
    for dtype, rel in TJS_FILES.items():
        path = model_dir / rel
        marker = path.parent / f".{path.stem}.done"
        if not force and path.exists() and marker.exists():
            log(f"tjs {dtype}: reuse {path}")
            continue
        marker.unlink(missing_ok=True)
        t = time.time()
        if dtype == "q8":
            model = onnx.load(str(fp32))
            weight_type = qo.q8_weight_type(model)
            log(f"tjs q8: quantize_q8({weight_type}) of {fp32}")
            model = qo.quantize_q8(model, weight_type)
            recipe = (f"ONNXQuantizer IntegerOps, weight {weight_type}, activations QUInt8, per_channel and "
                      "reduce_range off, IntegerOpsRegistry op types, EnableSubgraph + MatMulConstBOnly "
                      "(transformers.js scripts/quantize.py quantize_q8)")
        else:
            log(f"tjs fp16: shape inference on the weight-less fp32 graph, float16 conversion of {fp32}")
            value_info = qo.inferred_value_info(fp32)
            model = qo.convert_to_fp16(onnx.load(str(fp32)), value_info)
            recipe = ("onnxconverter-common float16 conversion, keep_io_types=True, Cast blocked "
                      "(transformers.js float16 conversion; qwen_onnx.convert_to_fp16)")
        made_s = time.time() - t
        if model.ByteSize() < TWO_GB:
            qo.check_like_transformers_js(model)
        saved = save_like_transformers_js(model, path)
        hist = op_histogram(model)
        del model
        d = qo.describe(path)
        data = path.with_name(path.name + "_data")
        entry = {
            "file": rel,
            "recipe": recipe,
            "bytes": path.stat().st_size,
            "data_file": data.name if data.exists() else None,
            "data_bytes": data.stat().st_size if data.exists() else 0,
            "sha256": sha256(path),
            **saved,
            "seconds": round(time.time() - t, 1),
            "convert_seconds": round(made_s, 1),
            "node_count": d["node_count"],
            "op_histogram": hist,
            "initializer_dtypes": d["initializer_dtypes"],
            "inputs": len(d["inputs"]),
            "outputs": len(d["outputs"]),
            "opset_import": d["opset_import"],
        }
        if "quantized_op_signatures" in d:
            entry["quantized_op_signatures"] = d["quantized_op_signatures"]
        onnx.checker.check_model(str(path))
        report["made"][dtype] = entry
        report["source"] = shown(fp32)
        report["versions"] = versions()
        write_json(report_path, report)
        marker.write_text("ok\n")
        log(f"tjs {dtype}: {path} {entry['bytes'] + entry['data_bytes']} bytes in {entry['seconds']}s")


# ---------------------------------------------------------------------------------------------
# stage genai


def stage_genai(model_dir: Path, work: Path, out: Path, genai_work: Path, force: bool) -> None:
    hf = work / "hf"
    if not (hf / ".done").exists():
        raise SystemExit(f"{hf} missing: run scripts/build_default_model.sh first")
    if not force and (out / "build_report.json").exists():
        log(f"genai: reuse {out}")
        return
    staged = genai_work / "hf"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir(parents=True)
    for name in ["config.json", "generation_config.json", "model.safetensors"]:
        (staged / name).symlink_to((hf / name).resolve())
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(model_dir / name, staged / name)
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    cache = genai_work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(staged), "-o", str(partial),
           "-p", "int4", "-e", "cpu", "-c", str(cache)]
    log("genai: " + " ".join(cmd))
    t = time.time()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = round(time.time() - t, 1)
    (genai_work / "builder.log").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise SystemExit(f"builder failed (exit {r.returncode}); log in {genai_work / 'builder.log'}")
    for need in ["model.onnx", "model.onnx.data", "genai_config.json", "tokenizer.json", "tokenizer_config.json"]:
        if not (partial / need).exists():
            raise SystemExit(f"builder did not write {need}: {sorted(os.listdir(partial))}")
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    import onnx

    m = onnx.load(str(out / "model.onnx"), load_external_data=False)
    cfg = json.loads((out / "genai_config.json").read_text())
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    report = {
        "command": ["python", "-m", "onnxruntime_genai.models.builder", "-i", "downloads/genai-build/hf",
                    "-o", shown(out), "-p", "int4", "-e", "cpu",
                    "-c", "downloads/genai-build/cache"],
        "input": {"checkpoint": shown(hf),
                  "tokenizer_from": shown(model_dir)},
        "seconds": seconds,
        "files": files_of(out),
        "chat_template": ("chat_template.jinja" if (out / "chat_template.jinja").exists()
                          else "tokenizer_config.json" if "chat_template" in tok_cfg else None),
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "ir_version": m.ir_version,
        "node_count": len(m.graph.node),
        "op_histogram": op_histogram(m),
        **graph_io(m),
        "group_query_attention_attributes": attribute_sets(m, "GroupQueryAttention"),
        "matmulnbits_attributes": attribute_sets(m, "MatMulNBits"),
        "gather_block_quantized_attributes": attribute_sets(m, "GatherBlockQuantized"),
        "skip_simplified_layer_normalization_attributes": attribute_sets(m, "SkipSimplifiedLayerNormalization"),
        "simplified_layer_normalization_attributes": attribute_sets(m, "SimplifiedLayerNormalization"),
        "genai_config": cfg,
        "versions": versions(),
    }
    write_json(out / "build_report.json", report)
    log(f"genai: {out} in {seconds}s: {report['files']}")


# ---------------------------------------------------------------------------------------------
# ONNX Runtime runs


def ort_session(model_path: Path | bytes, level: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_path if isinstance(model_path, bytes) else str(model_path),
                                sess_options=so, providers=["CPUExecutionProvider"])


NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
            "tensor(int32)": np.int32}


class Feeder:
    """Full prefill, then one token per step; present.* becomes past_key_values.* (growing).
    position_ids only when the graph has that input (optimum/transformers.js graphs do; genai's
    GroupQueryAttention graphs do not)."""

    def __init__(self, session, kv_shape: tuple[int, int] | None = None):
        """kv_shape: (kv heads, head size) of the past inputs, for graphs that leave them symbolic
        (the builder's past_key_values are [batch_size, 2, past_sequence_length, kv_cache_dim])."""
        self.session = session
        self.kv_shape = kv_shape
        self.inputs = {i.name: i for i in session.get_inputs()}
        self.output_names = [o.name for o in session.get_outputs()]
        self.past = None
        self.length = 0

    def feeds_for(self, ids: list[int]) -> dict:
        n, total = len(ids), self.length + len(ids)
        f = {"input_ids": np.asarray([ids], dtype=NP_TYPES[self.inputs["input_ids"].type]),
             "attention_mask": np.ones((1, total), dtype=NP_TYPES[self.inputs["attention_mask"].type])}
        if "position_ids" in self.inputs:
            f["position_ids"] = np.arange(self.length, total, dtype=NP_TYPES[self.inputs["position_ids"].type])[None]
        if self.past is None:
            for name, i in self.inputs.items():
                if name.startswith("past_key_values."):
                    heads, head = (i.shape[1], i.shape[3])
                    if not (isinstance(heads, int) and isinstance(head, int)):
                        if self.kv_shape is None:
                            raise SystemExit(f"{name}: symbolic shape {i.shape} and no kv_shape given")
                        heads, head = self.kv_shape
                    f[name] = np.zeros((1, heads, 0, head), dtype=NP_TYPES[i.type])
        else:
            f.update(self.past)
        unknown = set(self.inputs) - set(f)
        if unknown:
            raise SystemExit(f"graph inputs this feeder does not know: {sorted(unknown)}")
        return f

    def step(self, ids: list[int]) -> np.ndarray:
        outs = dict(zip(self.output_names, self.session.run(self.output_names, self.feeds_for(ids))))
        self.past = {k.replace("present.", "past_key_values.", 1): v for k, v in outs.items()
                     if k.startswith("present.")}
        self.length += len(ids)
        return outs["logits"]


def prefill_feeds_for(model, ids: list[int]) -> dict:
    """An optimum graph's prefill feeds (as Feeder gives them) from the ModelProto's inputs."""
    feeds = {}
    for i in model.graph.input:
        if i.name == "input_ids":
            feeds[i.name] = np.asarray([ids], dtype=np.int64)
        elif i.name == "attention_mask":
            feeds[i.name] = np.ones((1, len(ids)), dtype=np.int64)
        elif i.name == "position_ids":
            feeds[i.name] = np.arange(len(ids), dtype=np.int64)[None]
        elif i.name.startswith("past_key_values."):
            d = i.type.tensor_type.shape.dim
            feeds[i.name] = np.zeros((1, d[1].dim_value, 0, d[3].dim_value), dtype=np.float32)
        else:
            raise SystemExit(f"unexpected graph input {i.name}")
    return feeds


def ort_greedy(session, prompt: list[int], eos: list[int], max_new: int = MAX_NEW,
               keep_logits: bool = False, kv_shape: tuple[int, int] | None = None) -> tuple[list[int], list[float], dict, list]:
    f = Feeder(session, kv_shape)
    t0 = time.perf_counter()
    logits = f.step(prompt)
    prefill = time.perf_counter() - t0
    ids, margins, step_times, kept = [], [], [], []
    for _ in range(max_new):
        last = logits[0, -1].astype(np.float32)
        if keep_logits:
            kept.append(last)
        nxt = int(np.argmax(last))
        ids.append(nxt)
        margins.append(margin(last))
        if nxt in eos or len(ids) == max_new:
            break
        t0 = time.perf_counter()
        logits = f.step([nxt])
        step_times.append(time.perf_counter() - t0)
    timing = {"prefill_seconds": round(prefill, 4), "decode_steps": len(step_times),
              "decode_seconds_per_token_mean": round(statistics.fmean(step_times), 4) if step_times else None,
              "decode_seconds_per_token_median": round(statistics.median(step_times), 4) if step_times else None}
    return ids, margins, timing, kept


def timing_runs(model_path: Path | bytes, prompt: list[int], kv_shape: tuple[int, int] | None = None) -> dict:
    return {f"{n}_thread{'s' if n > 1 else ''}": timing_run(model_path, prompt, n, kv_shape) for n in TIMING_THREADS}


def timing_run(model_path: Path | bytes, prompt: list[int], threads: int,
               kv_shape: tuple[int, int] | None = None) -> dict:
    """ORT_ENABLE_ALL, `threads` intra-op threads: session load, prefill of the prompt, then decode
    steps up to MAX_NEW tokens (eos ignored: always MAX_NEW - 1 decode steps)."""
    before = loadavg()
    t0 = time.perf_counter()
    session = ort_session(model_path, "enable_all", threads)
    load = time.perf_counter() - t0
    ids, _, t, _ = ort_greedy(session, prompt, eos=[], max_new=MAX_NEW, kv_shape=kv_shape)
    return {
        "level": "ORT_ENABLE_ALL", "intra_op_num_threads": threads, "prompt": 0, "prompt_tokens": len(prompt),
        "load_seconds": round(load, 2),
        "prefill_seconds": t["prefill_seconds"],
        "prefill_tokens_per_s": round(len(prompt) / t["prefill_seconds"], 1),
        "decode_steps": t["decode_steps"],
        "decode_ms_per_token_median": round(1000 * t["decode_seconds_per_token_median"], 1),
        "decode_ms_per_token_mean": round(1000 * t["decode_seconds_per_token_mean"], 1),
        "decode_tokens_per_s": round(1 / t["decode_seconds_per_token_mean"], 2),
        "loadavg_before": before, "loadavg_after": loadavg(),
    }


# ---------------------------------------------------------------------------------------------
# stage ort-refs


def stage_ort_refs(model_dir: Path, force: bool, timings: bool = True) -> None:
    import onnx

    import qwen_onnx as qo

    out = model_dir / "reference" / "formats.json"
    newest = max((model_dir / rel).stat().st_mtime for rel in TJS_FILES.values())
    if not force and out.exists() and out.stat().st_mtime > newest:
        log(f"ort-refs: reuse {out}")
        return
    prompts, tok = chat_prompts(model_dir)
    eos = eos_ids(model_dir)
    t_stage = time.time()
    models = {}
    for dtype, rel in TJS_FILES.items():
        path = model_dir / rel
        entry = {"file": rel, "bytes": path.stat().st_size, "runs": {}, "greedy_seconds": {}}
        for level in LEVELS:
            t = time.time()
            session = ort_session(path, level, threads=1)
            load = time.time() - t
            runs = []
            for k, p in enumerate(prompts):
                ids, margins, timing, _ = ort_greedy(session, p["ids"], eos)
                runs.append({"prompt": k, **greedy_summary(ids, margins, eos, tok), "timing_1_thread": timing})
                log(f"ort-refs {dtype} {level} prompt {k}: {len(ids)} ids, min margin "
                    f"{min(margins):.4f}, {timing['decode_seconds_per_token_mean']}s/token: {runs[-1]['text'][:60]!r}")
            entry["runs"][level] = runs
            entry["greedy_seconds"][level] = round(time.time() - t, 1)
            entry.setdefault("load_seconds_1_thread", {})[level] = round(load, 2)
            del session
        a = [r["ids"] for r in entry["runs"]["disable_all"]]
        b = [r["ids"] for r in entry["runs"]["enable_all"]]
        entry["levels_agree"] = a == b
        entry["levels_first_difference"] = [first_difference(x, y) for x, y in zip(a, b)]
        if dtype == "q8":
            t = time.time()
            model = onnx.load(str(path))
            u8, changed = qo.matmulinteger_b_to_uint8(model)
            if changed:
                serialized = u8.SerializeToString()
                session = ort_session(serialized, "disable_all", threads=1)
                runs = []
                for k, p in enumerate(prompts):
                    ids, margins, timing, _ = ort_greedy(session, p["ids"], eos)
                    runs.append({"prompt": k, **greedy_summary(ids, margins, eos, tok)})
                    log(f"ort-refs q8 exact prompt {k}: {len(ids)} ids: {runs[-1]['text'][:60]!r}")
                del session
                entry["runs"]["exact"] = runs
                ex = [r["ids"] for r in runs]
                prefill_feeds = [prefill_feeds_for(model, prompts[0]["ids"])]
                entry["exact"] = {
                    "how": "ORT_DISABLE_ALL on the model with every int8 MatMulInteger B and b_zero_point replaced "
                           "by uint8 B + 128, b_zero_point + 128 (same function; ORT's exact u8 x u8 kernel); "
                           "qwen_onnx.matmulinteger_b_to_uint8",
                    "matmulinteger_nodes_converted": changed,
                    "disable_all_equals_exact": a == ex,
                    "enable_all_equals_exact": b == ex,
                    "disable_all_vs_exact_first_difference": [first_difference(x, y) for x, y in zip(a, ex)],
                    "enable_all_vs_exact_first_difference": [first_difference(x, y) for x, y in zip(b, ex)],
                    "matmulinteger_check_prompt0_prefill": {
                        "ort_disable_all": qo.check_integer_ops_exact(model, prefill_feeds),
                        "exact_model": qo.check_integer_ops_exact(u8, prefill_feeds),
                    },
                    "seconds": round(time.time() - t, 1),
                }
                del serialized
            del model, u8
        if timings:
            log(f"ort-refs {dtype}: timing runs ({TIMING_THREADS} threads, ORT_ENABLE_ALL)")
            entry["timing"] = timing_runs(path, prompts[0]["ids"])
            log(f"ort-refs {dtype}: {entry['timing']}")
        else:
            entry["timing"] = None
        models[dtype] = entry
    result = {
        "what": "ONNX Runtime greedy ids of the transformers.js q8 and fp16 files of Qwen2.5-Coder-0.5B-Instruct "
                "(scripts/build_format_models.py ort-refs)",
        "feeding": "input_ids, attention_mask ones [1, past+n], position_ids past..past+n-1, past_key_values.* "
                   "empty [1, 2, 0, 64] then the previous present.* (growing); full prefill, then one token per step",
        "greedy": f"argmax of the last position's logits (numpy argmax, lowest id on ties), at most {MAX_NEW} new "
                  "tokens, stopping after (and including) the first eos id; no penalties",
        "reference_threads": 1,
        "max_new_tokens": MAX_NEW,
        "eos_token_ids": eos,
        "prompts": prompts,
        "models": models,
        "cpu": cpu_info(),
        "versions": versions(),
        "seconds": round(time.time() - t_stage, 1),
        "note": "q8 is QInt8 (u8 activations x s8 weights). On x86 without AVX-VNNI, ORT's u8 x s8 MatMulInteger "
                "kernel (MLAS AVX2 vpmaddubsw) saturates each sum of two adjacent products to int16, so ORT's q8 "
                "ids are that kernel's; runs.exact is the exact integer computation of the same graph.",
    }
    write_json(out, result)
    log(f"ort-refs: wrote {out} in {result['seconds']}s")


# ---------------------------------------------------------------------------------------------
# stage genai-refs


def genai_model(genai_dir: Path, threads: int | None = None):
    import onnxruntime_genai as og

    config = og.Config(str(genai_dir))
    config.clear_providers()  # CPU
    if threads is not None:
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    return og.Model(config)


def genai_greedy(model, prompt: list[int], keep_logits: bool = False) -> dict:
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, top_k=1, repetition_penalty=1.0, max_length=len(prompt) + MAX_NEW)
    gen = og.Generator(model, params)
    t0 = time.perf_counter()
    gen.append_tokens(np.asarray(prompt, dtype=np.int32))
    prefill = time.perf_counter() - t0
    logits = []
    t0 = time.perf_counter()
    while not gen.is_done():
        if keep_logits:
            logits.append(np.array(gen.get_logits(), dtype=np.float32).reshape(-1))
        gen.generate_next_token()
    decode = time.perf_counter() - t0
    seq = [int(x) for x in gen.get_sequence(0)]
    new = seq[len(prompt):]
    return {"ids": new, "logits": logits, "prefill_seconds": prefill, "decode_seconds": decode,
            "prompt_echoed": seq[:len(prompt)] == prompt,
            "search_options": params.get_search_options() if hasattr(params, "get_search_options") else None}


def genai_timing(genai_dir: Path, prompt: list[int], threads: int) -> dict:
    """Generator greedy on `prompt` (MAX_NEW tokens): one warm-up, then 2 rounds; the round with the
    shortest decode is reported."""
    before = loadavg()
    t0 = time.perf_counter()
    model = genai_model(genai_dir, threads=threads)
    load = time.perf_counter() - t0
    genai_greedy(model, prompt)  # warm-up
    best = min((genai_greedy(model, prompt) for _ in range(2)), key=lambda r: r["decode_seconds"])
    n = len(best["ids"])
    return {
        "intra_op_num_threads": threads, "load_seconds": round(load, 2),
        "rounds": 2, "warm_up_rounds": 1, "of_rounds": "the round with the shortest decode",
        "new_tokens": n,
        "prefill_seconds": round(best["prefill_seconds"], 4),
        "prefill_tokens_per_s": round(len(prompt) / best["prefill_seconds"], 1),
        "decode_seconds": round(best["decode_seconds"], 4),
        "decode_tokens_per_s": round((n - 1) / best["decode_seconds"], 2) if n > 1 else None,
        "decode_tokens_per_s_note": "(new tokens - 1) / time of the generate_next_token loop (the first new "
                                    "token comes from the prefill's logits)",
        "end_to_end_tokens_per_s": round(n / (best["prefill_seconds"] + best["decode_seconds"]), 2),
        "loadavg_before": before, "loadavg_after": loadavg(),
    }


def stage_genai_refs(model_dir: Path, genai_dir: Path, force: bool, timings: bool = True) -> None:
    out = genai_dir / "reference" / "greedy.json"
    if not force and out.exists() and out.stat().st_mtime > (genai_dir / "model.onnx.data").stat().st_mtime:
        log(f"genai-refs: reuse {out}")
        return
    import onnxruntime_genai as og

    t_stage = time.time()
    prompts, tok = chat_prompts(genai_dir)
    eos = eos_ids(genai_dir if (genai_dir / "generation_config.json").exists() else model_dir)
    cfg = json.loads((genai_dir / "genai_config.json").read_text())
    cfg_eos = cfg["model"]["eos_token_id"]
    cfg_eos = cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]
    dec = cfg["model"]["decoder"]
    kv_shape = (dec["num_key_value_heads"], dec["head_size"])
    checks = {"genai_config_eos_token_id": cfg_eos, "generation_config_eos_token_id": eos}
    formats = model_dir / "reference" / "formats.json"
    if formats.exists():
        ref_prompts = json.loads(formats.read_text())["prompts"]
        checks["prompt_ids_equal_formats_json"] = [p["ids"] for p in prompts] == [p["ids"] for p in ref_prompts]
        checks["prompt_text_equal_formats_json"] = [p["text"] for p in prompts] == [p["text"] for p in ref_prompts]

    # onnxruntime_genai's own greedy search
    model = genai_model(genai_dir)
    og_tok = og.Tokenizer(model)
    checks["og_tokenizer_ids_equal"] = [[int(i) for i in og_tok.encode(p["text"])] for p in prompts] == \
        [p["ids"] for p in prompts]
    og_runs, og_logits = [], []
    for k, p in enumerate(prompts):
        r = genai_greedy(model, p["ids"], keep_logits=True)
        margins = [margin(x) for x in r["logits"]]
        og_runs.append({"prompt": k, **greedy_summary(r["ids"], margins, eos, tok),
                        "og_decoded": og_tok.decode(np.asarray(r["ids"], dtype=np.int32)),
                        "prompt_echoed_in_sequence": r["prompt_echoed"],
                        "prefill_seconds": round(r["prefill_seconds"], 4),
                        "decode_seconds": round(r["decode_seconds"], 4)})
        og_logits.append(r["logits"])
        log(f"genai-refs og prompt {k}: {len(r['ids'])} ids: {og_runs[-1]['text'][:60]!r}")
    search_options = {"do_sample": False, "top_k": 1, "repetition_penalty": 1.0, "max_length": "prompt + 32"}
    del model

    # ONNX Runtime on the builder's graph, genai-style feeds, growing past
    ort_runs, ort_logits = {}, {}
    for level in LEVELS:
        session = ort_session(genai_dir / "model.onnx", level, threads=1)
        runs, kept = [], []
        for k, p in enumerate(prompts):
            ids, margins, timing, lg = ort_greedy(session, p["ids"], eos, keep_logits=True, kv_shape=kv_shape)
            runs.append({"prompt": k, **greedy_summary(ids, margins, eos, tok), "timing_1_thread": timing})
            kept.append(lg)
            log(f"genai-refs ORT {level} prompt {k}: {len(ids)} ids: {runs[-1]['text'][:60]!r}")
        ort_runs[level], ort_logits[level] = runs, kept
        del session

    og_ids = [r["ids"] for r in og_runs]
    agreement = {"ort_levels_agree": [r["ids"] for r in ort_runs["disable_all"]] ==
                 [r["ids"] for r in ort_runs["enable_all"]]}
    for level in LEVELS:
        ids = [r["ids"] for r in ort_runs[level]]
        agreement[f"genai_equals_ort_{level}"] = og_ids == ids
        agreement[f"genai_vs_ort_{level}_first_difference"] = [first_difference(a, b) for a, b in zip(og_ids, ids)]
        diffs = []
        for k in range(len(prompts)):
            n = first_difference(og_ids[k], ids[k])
            n = min(len(og_logits[k]), len(ort_logits[level][k])) if n is None else n + 1
            diffs.append(round(float(max(np.abs(og_logits[k][i] - ort_logits[level][k][i]).max()
                                         for i in range(n))), 5) if n else None)
        agreement[f"genai_vs_ort_{level}_step_logits_max_abs_diff"] = diffs
    # Against the transformers.js / q4f16 files of formats.json (different quantization: for orientation only).
    if formats.exists():
        f = json.loads(formats.read_text())
        agreement["vs_formats_json"] = {
            f"{dtype}/{run}": [first_difference(a, r["ids"]) for a, r in zip(og_ids, runs)]
            for dtype, m in f["models"].items() for run, runs in m["runs"].items()}

    # timings on prompt 0: genai's Generator and an ORT session, 1 and 2 intra-op threads
    timing = None
    if timings:
        timing = {"prompt": 0, "prompt_tokens": len(prompts[0]["ids"]), "onnxruntime_genai": {}}
        for threads in TIMING_THREADS:
            timing["onnxruntime_genai"][f"{threads}_thread{'s' if threads > 1 else ''}"] = genai_timing(
                genai_dir, prompts[0]["ids"], threads)
        timing["onnxruntime_session"] = timing_runs(genai_dir / "model.onnx", prompts[0]["ids"], kv_shape=kv_shape)
        log(f"genai-refs timing: {timing}")

    result = {
        "what": "Greedy ids of the onnxruntime-genai builder's int4 CPU model of Qwen2.5-Coder-0.5B-Instruct "
                "(scripts/build_format_models.py genai-refs)",
        "prompts": prompts,
        "max_new_tokens": MAX_NEW,
        "eos_token_ids": eos,
        "checks": checks,
        "onnxruntime_genai": {"search_options": search_options, "genai_config_search": cfg.get("search"),
                              "runs": og_runs},
        "onnxruntime_session": {
            "feeding": "input_ids, attention_mask ones [1, past+n] (no position_ids: the graph has none); "
                       "past_key_values.* empty [1, 2, 0, 64], then the previous present.* (growing, not genai's "
                       "shared max_length buffer); full prefill, then one token per step; 1 intra-op thread",
            "runs": ort_runs,
        },
        "agreement": agreement,
        "timing": timing,
        "cpu": cpu_info(),
        "versions": versions(),
        "seconds": round(time.time() - t_stage, 1),
    }
    write_json(out, result)
    log(f"genai-refs: wrote {out} in {result['seconds']}s; {agreement}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["tjs", "genai", "ort-refs", "genai-refs"])
    ap.add_argument("--model-dir", default=str(MODEL))
    ap.add_argument("--genai-dir", default=str(GENAI))
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--genai-work", default=str(GENAI_WORK))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--no-timings", action="store_true",
                    help="ort-refs, genai-refs: no timing runs (their JSON says \"timing\": null); CI uses it")
    args = ap.parse_args()
    import logging

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    model_dir, genai_dir, work = Path(args.model_dir), Path(args.genai_dir), Path(args.work)
    if args.stage == "tjs":
        stage_tjs(model_dir, work, args.force)
    elif args.stage == "genai":
        stage_genai(model_dir, work, genai_dir, Path(args.genai_work), args.force)
    elif args.stage == "ort-refs":
        stage_ort_refs(model_dir, args.force, timings=not args.no_timings)
    else:
        stage_genai_refs(model_dir, genai_dir, args.force, timings=not args.no_timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
