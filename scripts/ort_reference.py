#!/usr/bin/env python3
"""ONNX Runtime reference outputs for the real model (what the Swift real-model tests compare to).

Usage:  .venv/bin/python scripts/ort_reference.py MODEL_DIR [--out DIR] [--model onnx/model_q4f16.onnx]
                                                   [--max-new 64] [--threads 1]

Default --out is MODEL_DIR/reference. For both graph optimisation levels (ORT_DISABLE_ALL,
ORT_ENABLE_ALL; CPU EP, 1 intra-op thread unless --threads) it writes:

  DIR/prompts.json                       the 3 chat prompts: messages, rendered text (HF chat
                                         template, add_generation_prompt), token ids (HF tokenizers)
  DIR/<level>/prefill_logits.npy         prompt 0, all positions: [1, T, 151936] float32
  DIR/<level>/greedy_<k>.npy             prompt k: greedy ids (int64), at most --max-new, stopping
                                         after (and including) the first eos id of generation_config
  DIR/<level>/greedy.json                per prompt: ids, decoded text, stopped_at_eos, per-step
                                         top-2 margin and top-5 (id, logit), robust_prefix_length
                                         (steps before the first margin < 0.05), seconds per token
  DIR/manifest.json                      files, shapes, dtypes, versions, model sha256

Greedy = argmax of logits[0, -1] (lowest id on ties, numpy argmax), no sampling, no penalties.
Feeding: prefill with attention_mask ones, position_ids 0..T-1, empty past [1, 2, 0, 64];
then one token per step, present.* → past_key_values.*.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

import qwen_onnx as qo

PROMPTS = [
    [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number."}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "What is 2+2? Answer with just the number."}],
    [{"role": "user", "content": "用 Swift 写一个函数，计算数组的平均值。"}],
]


ROBUST_MARGIN = 0.05


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--out")
    ap.add_argument("--model", default="onnx/model_q4f16.onnx")
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    model_dir = Path(args.model_dir)
    out = Path(args.out) if args.out else model_dir / "reference"
    model_path = model_dir / args.model

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    gen = json.loads((model_dir / "generation_config.json").read_text())
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]

    prompts = []
    for messages in PROMPTS:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False).input_ids
        prompts.append({"messages": messages, "text": text, "ids": ids})
    out.mkdir(parents=True, exist_ok=True)
    qo.save_npy  # noqa: B018 (format helper used below)
    (out / "prompts.json").write_text(json.dumps(prompts, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    files = {}
    summary = {}
    for level in qo.OPT_LEVELS:
        qo.log(f"{level}: loading {model_path}")
        session = qo.ort_session(model_path, level, threads=args.threads)
        results = []
        for k, p in enumerate(prompts):
            r = qo.KVRunner(session)
            t0 = time.time()
            logits, _ = r.step(p["ids"])
            prefill_s = time.time() - t0
            if k == 0:
                files[f"{level}/prefill_logits.npy"] = qo.save_npy(out / level / "prefill_logits.npy", logits)
            ids, margins, top5 = [], [], []
            t0 = time.time()
            for step in range(args.max_new):
                last = logits[0, -1].astype(np.float64)
                order = np.argsort(-last, kind="stable")[:5]
                nxt = int(np.argmax(last))
                ids.append(nxt)
                margins.append(round(float(last[order[0]] - last[order[1]]), 5))
                top5.append([[int(i), round(float(last[i]), 5)] for i in order])
                if nxt in eos:
                    break
                logits, _ = r.step([nxt])
            decode_s = time.time() - t0
            files[f"{level}/greedy_{k}.npy"] = qo.save_npy(out / level / f"greedy_{k}.npy",
                                                          np.asarray(ids, dtype=np.int64))
            results.append({
                "prompt": k, "prompt_tokens": len(p["ids"]), "ids": ids,
                "text": tok.decode(ids, skip_special_tokens=False),
                "stopped_at_eos": ids[-1] in eos, "min_top2_margin": min(margins),
                # Steps before the first top-1/top-2 margin under 0.05: ids a runtime with slightly
                # different rounding should still reproduce exactly.
                "robust_prefix_length": next((i for i, m in enumerate(margins) if m < ROBUST_MARGIN), len(ids)),
                "top2_margins": margins, "top5": top5,
                "prefill_seconds": round(prefill_s, 3),
                "seconds_per_token": round(decode_s / max(1, len(ids) - 1), 4),
            })
            qo.log(f"{level}: prompt {k}: {len(ids)} tokens, min margin {min(margins):.4f}, "
                   f"{results[-1]['seconds_per_token'] * 1000:.1f} ms/token: {results[-1]['text'][:80]!r}")
        (out / level / "greedy.json").write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n",
                                                  encoding="utf-8")
        summary[level] = [r["ids"] for r in results]

    same = summary["disable_all"] == summary["enable_all"]
    qo.log(f"greedy ids identical across optimisation levels: {same}")
    manifest = {
        "model": str(args.model),
        "model_sha256": sha256(model_path),
        "model_data_sha256": sha256(model_path.with_name(model_path.name + "_data"))
        if model_path.with_name(model_path.name + "_data").exists() else None,
        "eos_token_ids": eos,
        "max_new_tokens": args.max_new,
        "ort": {"execution_provider": "CPUExecutionProvider", "intra_op_num_threads": args.threads,
                "levels": qo.OPT_LEVELS},
        "greedy_identical_across_levels": same,
        "files": files,
        "versions": qo.versions(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    qo.log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
