#!/usr/bin/env python3
"""Builds the real default model directory from the GGUF: Models/qwen2.5-coder-0.5b-instruct/.

Usage:  .venv/bin/python scripts/build_real_model.py [--gguf PATH] [--out DIR] [--work DIR] [--intermediates-only]
(normally run through scripts/build_default_model.sh)

Steps (each skipped when its output already exists, so a rerun resumes):
  1. transformers `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` dequantizes the GGUF
     (Q5_0/Q6_K/Q8_0) to float32; the config is set to the official Qwen2.5-Coder-0.5B-Instruct
     values, except `tie_word_embeddings: false` because the GGUF carries its own output.weight
     (Q8_0) distinct from token_embd.weight (Q5_0). save_pretrained → WORK/hf.
  2. optimum export, task text-generation-with-past, opset 18 → WORK/onnx18/model.onnx (+ data).
  3. q4: MatMulNBitsQuantizer(block_size=32, is_symmetric=True) → OUT/onnx/model_q4.onnx + _data.
  4. q4f16: fp16 conversion (keep_io_types, Cast blocked, value_info from a weight-less copy)
     → OUT/onnx/model_q4f16.onnx + model_q4f16.onnx_data.
  5. config.json, generation_config.json (official values), tokenizer.json and
     tokenizer_config.json (scripts/build_tokenizer.py) into OUT.
  6. checks: graph I/O counts, MatMulNBits count, one ONNX Runtime run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import logging

import build_tokenizer as bt
import qwen_onnx as qo

ROOT = Path(__file__).resolve().parent.parent
GGUF = ROOT / "Models" / "gguf" / "qwen2.5-coder-0.5b-instruct.gguf"
OUT = ROOT / "Models" / "qwen2.5-coder-0.5b-instruct"
WORK = ROOT / "downloads" / "real-build"

# Qwen/Qwen2.5-Coder-0.5B-Instruct config.json, as published (except tie_word_embeddings, dtype).
OFFICIAL_CONFIG = dict(
    architectures=["Qwen2ForCausalLM"],
    attention_dropout=0.0,
    bos_token_id=151643,
    eos_token_id=151645,
    hidden_act="silu",
    hidden_size=896,
    initializer_range=0.02,
    intermediate_size=4864,
    max_position_embeddings=32768,
    max_window_layers=24,
    model_type="qwen2",
    num_attention_heads=14,
    num_hidden_layers=24,
    num_key_value_heads=2,
    rms_norm_eps=1e-06,
    rope_scaling=None,
    rope_theta=1000000.0,
    use_cache=True,
    use_sliding_window=False,
    vocab_size=151936,
)
# Qwen/Qwen2.5-Coder-0.5B-Instruct generation_config.json as we believe it is published (Qwen2.5
# small instruct models use repetition_penalty 1.1; the 7B+ use 1.05). Not verifiable offline here.
OFFICIAL_GENERATION_CONFIG = dict(
    bos_token_id=151643,
    pad_token_id=151643,
    do_sample=True,
    eos_token_id=[151645, 151643],
    repetition_penalty=1.1,
    temperature=0.7,
    top_p=0.8,
    top_k=20,
)


def step_hf(gguf: Path, hf_dir: Path) -> None:
    if (hf_dir / ".done").exists():
        qo.log(f"1/6 HF checkpoint: reuse {hf_dir}")
        return
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    qo.log(f"1/6 HF checkpoint: dequantizing {gguf.name} to float32 (transformers GGUF loader)")
    t = time.time()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    if emb.data_ptr() == head.data_ptr():
        raise SystemExit("lm_head is tied to embed_tokens after GGUF load; expected the GGUF's output.weight")
    qo.log(f"    loaded in {time.time() - t:.0f}s: embed {tuple(emb.shape)}, lm_head {tuple(head.shape)}, "
           f"max |lm_head - embed| = {float((head - emb).abs().max()):.4f}")
    cfg = model.config
    for k, v in OFFICIAL_CONFIG.items():
        if k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
                 "num_key_value_heads", "vocab_size") and getattr(cfg, k) != v:
            raise SystemExit(f"GGUF config {k}={getattr(cfg, k)}, official {v}")
        setattr(cfg, k, v)
    cfg.tie_word_embeddings = False
    cfg.sliding_window = None
    model.generation_config = GenerationConfig(**OFFICIAL_GENERATION_CONFIG)
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    (hf_dir / ".done").write_text("ok\n")
    qo.log(f"    saved {hf_dir} in {time.time() - t:.0f}s")
    del model
    gc.collect()


def step_export(hf_dir: Path, export_dir: Path) -> Path:
    path = export_dir / "model.onnx"
    if (export_dir / ".done").exists():
        qo.log(f"2/6 optimum export: reuse {path}")
        return path
    qo.log("2/6 optimum export (text-generation-with-past, opset 18)")
    t = time.time()
    if export_dir.exists():
        shutil.rmtree(export_dir)
    qo.export_optimum(hf_dir, export_dir, opset=18)
    (export_dir / ".done").write_text("ok\n")
    qo.log(f"    exported in {time.time() - t:.0f}s")
    return path


def step_q4(fp32_path: Path, q4_path: Path) -> None:
    if q4_path.exists() and q4_path.with_name(q4_path.name + "_data").exists() and \
            (q4_path.parent / ".q4.done").exists():
        qo.log(f"3/6 q4: reuse {q4_path}")
        return
    import onnx

    qo.log("3/6 q4: MatMulNBitsQuantizer(block_size=32, is_symmetric=True)")
    t = time.time()
    q4 = qo.quantize_q4(onnx.load(str(fp32_path)))
    qo.save_model(q4, q4_path, external_data=True)
    (q4_path.parent / ".q4.done").write_text("ok\n")
    qo.log(f"    quantized + saved in {time.time() - t:.0f}s")
    del q4
    gc.collect()


def step_q4f16(fp32_path: Path, q4_path: Path, f16_path: Path) -> None:
    if f16_path.exists() and (f16_path.parent / ".q4f16.done").exists():
        qo.log(f"4/6 q4f16: reuse {f16_path}")
        return
    import onnx

    qo.log("4/6 q4f16: shape inference on the weight-less fp32 graph, fp16 conversion")
    t = time.time()
    value_info = qo.inferred_value_info(fp32_path)
    f16 = qo.convert_q4_to_q4f16(onnx.load(str(q4_path)), value_info)
    qo.save_model(f16, f16_path, external_data=True)
    (f16_path.parent / ".q4f16.done").write_text("ok\n")
    qo.log(f"    converted + saved in {time.time() - t:.0f}s")


def step_files(hf_dir: Path, gguf: Path, out: Path) -> None:
    qo.log("5/6 config, generation config, tokenizer")
    config = json.loads((hf_dir / "config.json").read_text())
    # The GGUF loader adds these; the official config.json has neither.
    config.pop("_model_name_or_path", None)
    config.pop("pad_token_id", None)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy(hf_dir / "generation_config.json", out / "generation_config.json")
    bt.build_from_gguf(gguf, out)
    bt.verify(out)


def step_check(out: Path) -> dict:
    qo.log("6/6 checks")
    import numpy as np

    report = {}
    for name in ["model_q4.onnx", "model_q4f16.onnx"]:
        d = qo.describe(out / "onnx" / name)
        report[name] = {
            "inputs": len(d["inputs"]), "outputs": len(d["outputs"]), "nodes": d["node_count"],
            "MatMulNBits": d["op_histogram"].get("com.microsoft.MatMulNBits", 0),
            "input_dtypes": sorted({i["dtype"] for i in d["inputs"]}),
            "op_histogram": d["op_histogram"],
            "opset_import": d["opset_import"],
            "matmulnbits_attributes": d["matmulnbits_attributes"],
            "bytes": (out / "onnx" / name).stat().st_size,
            "data_bytes": (out / "onnx" / (name + "_data")).stat().st_size,
        }
        qo.log(f"    {name}: {report[name]['inputs']} inputs, {report[name]['outputs']} outputs, "
               f"{report[name]['nodes']} nodes, {report[name]['MatMulNBits']} MatMulNBits")
    r = report["model_q4f16.onnx"]
    if (r["inputs"], r["outputs"], r["MatMulNBits"]) != (51, 49, 169):
        raise SystemExit(f"unexpected q4f16 graph: {r['inputs']} inputs, {r['outputs']} outputs, "
                         f"{r['MatMulNBits']} MatMulNBits (want 51, 49, 169)")
    runner = qo.KVRunner(qo.ort_session(out / "onnx" / "model_q4f16.onnx", "enable_all", threads=2))
    logits, presents = runner.step([151644, 872, 198, 9707, 1879])
    if logits.dtype != np.float32 or not np.isfinite(logits).all():
        raise SystemExit("q4f16: non-finite or non-float32 logits")
    qo.log(f"    ORT run ok: logits {logits.shape}, present.0.key {presents['present.0.key'].shape} "
           f"{presents['present.0.key'].dtype}")
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=str(GGUF))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--intermediates-only", action="store_true",
                    help="steps 1-2 only: WORK/hf and WORK/onnx18, what scripts/build_format_models.py starts from")
    args = ap.parse_args()
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    gguf, out, work = Path(args.gguf), Path(args.out), Path(args.work)
    if not args.intermediates_only:
        (out / "onnx").mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    timings = {}

    def timed(key, fn, *a):
        t = time.time()
        r = fn(*a)
        timings[key] = round(time.time() - t, 1)
        return r

    hf_dir = work / "hf"
    timed("hf_checkpoint", step_hf, gguf, hf_dir)
    fp32 = timed("optimum_export", step_export, hf_dir, work / "onnx18")
    if args.intermediates_only:
        qo.log(f"done: intermediates in {work} (timings {timings})")
        return 0
    q4 = out / "onnx" / "model_q4.onnx"
    f16 = out / "onnx" / "model_q4f16.onnx"
    timed("q4", step_q4, fp32, q4)
    timed("q4f16", step_q4f16, fp32, q4, f16)
    timed("files", step_files, hf_dir, gguf, out)
    report = timed("check", step_check, out)
    bt.write_json(out / "build_report.json", {"timings_seconds": timings, "graphs": report,
                                              "versions": qo.versions()})
    qo.log(f"done: {out} (timings {timings})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
