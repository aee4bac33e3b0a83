#!/usr/bin/env python3
"""Tiny random-weight Qwen2 fixtures, exported by the real tool chain, with ONNX Runtime references.

Usage:  .venv/bin/python scripts/make_fixtures.py [--out Models/fixtures] [--check]

Writes, for each fixture (`tiny-qwen2`: untied lm_head; `tiny-qwen2-tied`: tied embeddings):

  <fixture>/config.json, generation_config.json       HF Qwen2 config (save_pretrained)
  <fixture>/tokenizer.json, tokenizer_config.json     a prefix of the real Qwen2.5 tokenizer
  <fixture>/onnx/model.onnx                           optimum export, opset 18, fp32
  <fixture>/onnx/model_q4.onnx                        MatMulNBits q4 (block 32, symmetric), inline
  <fixture>/onnx/model_q4f16.onnx + .onnx_data        q4 + fp16 internals, external data
  tiny-qwen2/onnx14/model_q4f16.onnx                  opset 14 export, q4f16, weights inline
  <fixture>/onnx/model_fp16.onnx                      transformers.js dtypes, each made from model.onnx the
  <fixture>/onnx/model_quantized.onnx                 way transformers.js's scripts/quantize.py makes it
  <fixture>/onnx/model_int8.onnx                      (fp16: float16 conversion, float32 I/O; q8 = quantized,
  <fixture>/onnx/model_uint8.onnx                     int8, uint8: ORT dynamic quantization, MatMulInteger;
  <fixture>/onnx/model_bnb4.onnx                      bnb4: MatMulBnb4 NF4, block 64), all inline
  <fixture>/reference/...                             ONNX Runtime outputs (.npy) + manifest.json
  <fixture>/reference/{q8,int8}/exact/...             exact-MatMulInteger references (ORT on the model with
                                                      int8 weights shifted to uint8; see
                                                      exact_integer_references)
  README.md                                           generated description (dims, I/O, op histograms)

Everything is seeded; running twice gives byte-identical files (checked by --check, which
regenerates into a temporary directory and compares sha256 of every file).

The tokenizer: in Qwen2.5's vocabulary the first 256 ids are the byte-level alphabet and id 256+i
is the result of merge i, so the first V ids with the first V-256 merges are a valid byte-level BPE
on their own. With vocab_size 512 we keep V = 509 BPE tokens and 253 merges and put
<|endoftext|>, <|im_start|>, <|im_end|> at ids 509, 510, 511.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import logging

import numpy as np

import build_tokenizer as bt
import qwen_onnx as qo

ROOT = Path(__file__).resolve().parent.parent
QWEN_TOKENIZER = ROOT / "Models" / "tokenizer" / "qwen2.5"

# Seed and logit scales were picked (by trying seeds 1..8) so that every greedy step of every
# variant has a top-1/top-2 logit margin well above fp16 rounding noise (see manifest.json):
# a runtime that rounds slightly differently from ONNX Runtime still picks the same ids.
SEED = int(os.environ.get("FIXTURE_SEED", "4"))
LOGIT_SCALE = float(os.environ.get("FIXTURE_LOGIT_SCALE", "6.0"))  # std of the untied logits
TIED_LOGIT_SCALE = float(os.environ.get("FIXTURE_TIED_LOGIT_SCALE", "3.0"))  # tied: also the embedding scale
VOCAB = 512
ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BPE_V = VOCAB - len(ADDED)  # 509
ENDOFTEXT, IM_START, IM_END = BPE_V, BPE_V + 1, BPE_V + 2

DIMS = dict(
    vocab_size=VOCAB,
    hidden_size=96,          # MatMulNBits K = 96: three 32-blocks
    intermediate_size=200,   # down_proj K = 200: 6 full blocks + an 8-wide tail (zero-padded)
    num_hidden_layers=2,
    num_attention_heads=4,   # head_dim = 96 / 4 = 24
    num_key_value_heads=2,   # GQA, 2 query heads per kv head
    max_position_embeddings=256,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
)

PROMPT_TEXT = "<|im_start|>user\nfib(10) in C?<|im_end|>\n<|im_start|>assistant\n"
DECODE_STEPS = 16
GREEDY_STEPS = 16

# transformers.js / onnx-community dtypes made from the fp32 model.onnx (after the variants above,
# so adding them left every earlier file byte-identical).
TJS_VARIANTS = ["fp16", "q8", "int8", "uint8", "bnb4"]
# Variants whose MatMulInteger references are checked against exact int32 arithmetic; those with
# int8 weights also get reference/<variant>/exact/ (see exact_integer_references).
INTEGER_VARIANTS = ["q8", "int8", "uint8"]
FIXTURES = {
    # name: (tie_word_embeddings, variants)
    "tiny-qwen2": (False, ["fp32", "q4", "q4f16", "opset14_q4f16"] + TJS_VARIANTS),
    "tiny-qwen2-tied": (True, ["fp32", "q4", "q4f16"] + TJS_VARIANTS),
}
VARIANT_FILES = {
    "fp32": "onnx/model.onnx",
    "q4": "onnx/model_q4.onnx",
    "q4f16": "onnx/model_q4f16.onnx",
    "opset14_q4f16": "onnx14/model_q4f16.onnx",
    # transformers.js file names (dtype → file: q8 is "model_quantized")
    "fp16": "onnx/model_fp16.onnx",
    "q8": "onnx/model_quantized.onnx",
    "int8": "onnx/model_int8.onnx",
    "uint8": "onnx/model_uint8.onnx",
    "bnb4": "onnx/model_bnb4.onnx",
}


# ---------------------------------------------------------------------------------------------
# HF model + tokenizer


def make_hf_model(src: Path, tied: bool) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    cfg = Qwen2Config(**DIMS, tie_word_embeddings=tied, bos_token_id=ENDOFTEXT, eos_token_id=IM_END,
                      dtype="float32")
    model = Qwen2ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(SEED + (1 if tied else 0))
    # Scales chosen so activations stay O(1) and logits have std ~LOGIT_SCALE (tied: ~TIED_LOGIT_SCALE) (not degenerate, no
    # fp16 overflow): linear weights ~ N(0, 1/fan_in), biases and norm gains perturbed.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "model.embed_tokens.weight":
                std = TIED_LOGIT_SCALE / DIMS["hidden_size"] ** 0.5 if tied else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif name == "lm_head.weight":
                p.copy_(torch.randn(p.shape, generator=g) * (LOGIT_SCALE / p.shape[1] ** 0.5))
            elif name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                raise SystemExit(f"unexpected parameter {name} {tuple(p.shape)}")
    model.generation_config = GenerationConfig(
        bos_token_id=ENDOFTEXT, eos_token_id=[IM_END, ENDOFTEXT], pad_token_id=ENDOFTEXT, do_sample=False,
    )
    model.save_pretrained(src, safe_serialization=True)


def make_tokenizer(out: Path) -> None:
    official = json.loads((QWEN_TOKENIZER / "tokenizer.json").read_text(encoding="utf-8"))
    official_cfg = json.loads((QWEN_TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    id_to_token = {i: t for t, i in official["model"]["vocab"].items()}
    bpe = [id_to_token[i] for i in range(BPE_V)]
    merges = official["model"]["merges"][: BPE_V - 256]
    for i, m in enumerate(merges):  # id 256+i is the result of merge i
        if m.replace(" ", "") != bpe[256 + i]:
            raise SystemExit(f"merge {i} {m!r} does not produce token {256 + i} {bpe[256 + i]!r}")
        a, b = m.split(" ")
        if official["model"]["vocab"][a] >= BPE_V or official["model"]["vocab"][b] >= BPE_V:
            raise SystemExit(f"merge {i} {m!r} uses a token outside the prefix")
    added = [(BPE_V + k, name) for k, name in enumerate(ADDED)]
    bt.write_json(out / "tokenizer.json", bt.tokenizer_json(bpe, merges, added))
    cfg = bt.tokenizer_config(added, official_cfg["chat_template"], additional_special=ADDED[1:],
                              model_max_length=DIMS["max_position_embeddings"])
    bt.write_json(out / "tokenizer_config.json", cfg)


# ---------------------------------------------------------------------------------------------
# ONNX variants


def build_onnx(fixture_dir: Path, src: Path, work: Path, variants: list[str]) -> None:
    import onnx

    v18 = qo.export_optimum(src, work / "export18", opset=18)
    qo.save_model(onnx.load(str(v18)), fixture_dir / VARIANT_FILES["fp32"], external_data=False)
    vi18 = qo.inferred_value_info(v18)
    q4 = qo.quantize_q4(onnx.load(str(v18)))
    qo.save_model(q4, fixture_dir / VARIANT_FILES["q4"], external_data=False)
    f16 = qo.convert_q4_to_q4f16(onnx.load(str(fixture_dir / VARIANT_FILES["q4"])), vi18)
    qo.save_model(f16, fixture_dir / VARIANT_FILES["q4f16"], external_data=True)
    if "opset14_q4f16" in variants:
        v14 = qo.export_optimum(src, work / "export14", opset=14)
        vi14 = qo.inferred_value_info(v14)
        q4_14 = qo.quantize_q4(onnx.load(str(v14)))
        f16_14 = qo.convert_q4_to_q4f16(q4_14, vi14)
        qo.save_model(f16_14, fixture_dir / VARIANT_FILES["opset14_q4f16"], external_data=False)
    # transformers.js dtypes, following huggingface/transformers.js scripts/quantize.py (see
    # qwen_onnx.py): each starts from the fp32 model.onnx; transformers.js saves models under 2 GB
    # inline (scripts/utils.py check_and_save_model), so these are inline too.
    tjs = {
        "fp16": lambda: qo.convert_to_fp16(onnx.load(str(v18)), vi18),
        "q8": lambda: qo.quantize_q8(onnx.load(str(v18)), qo.q8_weight_type(onnx.load(str(v18)))),
        "int8": lambda: qo.quantize_q8(onnx.load(str(v18)), "QInt8"),
        "uint8": lambda: qo.quantize_q8(onnx.load(str(v18)), "QUInt8"),
        "bnb4": lambda: qo.quantize_bnb4(onnx.load(str(v18)), block_size=64, quant_type="NF4"),
    }
    for v in TJS_VARIANTS:
        if v in variants:
            model = tjs[v]()
            qo.check_like_transformers_js(model)
            qo.save_model(model, fixture_dir / VARIANT_FILES[v], external_data=False)
    for v in variants:
        onnx.checker.check_model(str(fixture_dir / VARIANT_FILES[v]))


# ---------------------------------------------------------------------------------------------
# references


def prompt_ids(fixture_dir: Path) -> list[int]:
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(fixture_dir / "tokenizer.json")).encode(PROMPT_TEXT).ids
    if not all(0 <= i < VOCAB for i in ids):
        raise SystemExit(f"prompt ids out of range: {ids}")
    return ids


def top2_margin(logits: np.ndarray) -> float:
    s = np.sort(logits.astype(np.float64))
    return float(s[-1] - s[-2])


def references(fixture_dir: Path, variants: list[str]) -> dict:
    ref = fixture_dir / "reference"
    files: dict[str, dict] = {}
    prompt = prompt_ids(fixture_dir)
    rng = np.random.default_rng(SEED)
    decode_ids = [int(x) for x in rng.integers(0, BPE_V, DECODE_STEPS)]

    def put(rel: str, array) -> None:
        files[rel] = qo.save_npy(ref / rel, array)

    # The exact prefill feeds (identical for every variant).
    runner = qo.KVRunner(qo.ort_session(fixture_dir / VARIANT_FILES["fp32"], "disable_all"))
    for name, value in runner.feeds_for(prompt).items():
        put(f"feeds/prefill/{name}.npy", value)
    put("feeds/decode_input_ids.npy", np.asarray(decode_ids, dtype=np.int64))

    def run(session, base: str) -> tuple[dict, list[dict]]:
        """Writes <base>/*.npy; returns the manifest entry and the prefill + decode feeds."""
        # (1) prefill + (2) teacher-forced decode
        r = qo.KVRunner(session)
        feeds = [r.feeds_for(prompt)]
        logits, presents = r.step(prompt)
        put(f"{base}/prefill_logits.npy", logits)
        for k, v in presents.items():
            put(f"{base}/prefill_{k}.npy", v)
        step_logits = []
        for tok in decode_ids:
            feeds.append(r.feeds_for([tok]))
            lg, presents = r.step([tok])
            step_logits.append(lg[0, -1])
        put(f"{base}/decode_logits.npy", np.stack(step_logits))
        for k, v in presents.items():
            put(f"{base}/decode_last_{k}.npy", v)
        # (3) greedy
        g = qo.KVRunner(session)
        lg, _ = g.step(prompt)
        greedy, margins = [], []
        for _ in range(GREEDY_STEPS):
            last = lg[0, -1]
            nxt = int(np.argmax(last))
            greedy.append(nxt)
            margins.append(round(top2_margin(last), 6))
            lg, _ = g.step([nxt])
        put(f"{base}/greedy_ids.npy", np.asarray(greedy, dtype=np.int64))
        return {
            "greedy_ids": greedy,
            "greedy_top2_margins": margins,
            "prefill_last_top2_margin": round(top2_margin(logits[0, -1]), 6),
            "decode_min_top2_margin": round(min(top2_margin(x) for x in step_logits), 6),
        }, feeds

    results = {}
    exact = {}
    for variant in variants:
        for level in qo.OPT_LEVELS:
            base = f"{variant}/{level}"
            session = qo.ort_session(fixture_dir / VARIANT_FILES[variant], level)
            results[base], feeds = run(session, base)
            if level == "disable_all":
                raw_feeds = feeds
        if variant in INTEGER_VARIANTS:
            exact[variant] = exact_integer_references(fixture_dir, variant, raw_feeds, run, results)

    # How far apart the variants / levels are (max abs diff of prefill logits vs fp32 disable_all).
    base = np.load(ref / "fp32/disable_all/prefill_logits.npy")
    diffs = {}
    for key in results:
        a = np.load(ref / f"{key}/prefill_logits.npy")
        diffs[key] = float(np.abs(a - base).max())

    # How far ORT_ENABLE_ALL moves each variant's logits away from ORT_DISABLE_ALL.
    levels = {}
    for variant in variants:
        levels[variant] = {}
        for kind in ("prefill_logits", "decode_logits"):
            a = np.load(ref / f"{variant}/disable_all/{kind}.npy")
            b = np.load(ref / f"{variant}/enable_all/{kind}.npy")
            levels[variant][kind] = float(np.abs(a - b).max())

    # How far ONNX Runtime's own int8 results are from the exact ones.
    for variant, e in exact.items():
        if e["reference"] == f"{variant}/exact":
            e["ort_disable_all_vs_exact"] = {
                kind: float(np.abs(np.load(ref / f"{variant}/disable_all/{kind}.npy")
                                   - np.load(ref / f"{variant}/exact/{kind}.npy")).max())
                for kind in ("prefill_logits", "decode_logits")
            }
            a, b = results[f"{variant}/disable_all"]["greedy_ids"], results[f"{variant}/exact"]["greedy_ids"]
            e["ort_disable_all_vs_exact"]["greedy_first_difference"] = next(
                (i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)

    return {
        "prompt_text": PROMPT_TEXT,
        "prompt_ids": prompt,
        "decode_input_ids": decode_ids,
        "results": results,
        "prefill_logits_max_abs_diff_vs_fp32_disable_all": diffs,
        "logits_max_abs_diff_disable_all_vs_enable_all": levels,
        "exact_integer": exact,
        "files": dict(sorted(files.items())),
    }


def exact_integer_references(fixture_dir: Path, variant: str, raw_feeds: list[dict], run, results: dict) -> dict:
    """The ONNX definition of MatMulInteger is exact int32 arithmetic. ONNX Runtime's CPU kernel
    for uint8 A x uint8 B is exact; for uint8 A x int8 B on x86 without AVX-VNNI (MLAS AVX2,
    `vpmaddubsw`) each sum of two adjacent products a[k]b[k] + a[k+1]b[k+1] (raw bytes, zero
    points corrected afterwards) saturates to int16, so a few outputs per run are off by up to
    thousands and its int8/q8 references are that kernel's, not ONNX's (and differ between CPUs).

    For a variant with int8 weights, write reference/<variant>/exact/ (the same files as a level
    directory) from ORT_DISABLE_ALL on the equivalent model whose int8 B become uint8 (B + 128,
    b_zero_point + 128: each term (B - b_zp) is unchanged), which takes the exact u8 x u8 kernel.
    Every MatMulInteger output of that run (prefill + teacher-forced decode) is compared with NumPy
    int64 at the inputs ORT computed; any difference stops the build. The raw ORT_DISABLE_ALL run
    is checked the same way and its count of inexact outputs recorded. A uint8 variant is already
    on the exact kernel: it is only checked, and its reference is <variant>/disable_all."""
    import onnx

    model = onnx.load(str(fixture_dir / VARIANT_FILES[variant]))
    raw = qo.check_integer_ops_exact(model, raw_feeds)
    u8, changed = qo.matmulinteger_b_to_uint8(model)
    if not changed:
        if raw["outputs_differing"]:
            raise SystemExit(f"{variant}: ONNX Runtime's uint8 MatMulInteger is not exact: {raw}")
        return {"reference": f"{variant}/disable_all", "ort_disable_all_matmulinteger_check": raw}
    base = f"{variant}/exact"
    results[base], feeds = run(qo.ort_session(u8.SerializeToString(), "disable_all"), base)
    check = qo.check_integer_ops_exact(u8, feeds)
    if check["outputs_differing"]:
        raise SystemExit(f"{variant}: the uint8-weight model's MatMulInteger is not exact in ORT: {check}")
    return {
        "reference": base,
        "how": "ORT_DISABLE_ALL on the model with every int8 MatMulInteger B and b_zero_point "
               "replaced by uint8 B + 128, b_zero_point + 128 (same function; ORT's exact u8 x u8 kernel)",
        "matmulinteger_nodes_converted": changed,
        "exact_run_matmulinteger_check": check,
        "ort_disable_all_matmulinteger_check": raw,
    }


# ---------------------------------------------------------------------------------------------
# driver


def build_fixture(out_root: Path, name: str, tied: bool, variants: list[str], work: Path) -> dict:
    qo.log(f"{name}: building HF model (tie_word_embeddings={tied})")
    fixture_dir = out_root / name
    if fixture_dir.exists():
        shutil.rmtree(fixture_dir)
    fixture_dir.mkdir(parents=True)
    src = work / name / "hf"
    make_hf_model(src, tied)
    make_tokenizer(src)
    for f in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(src / f, fixture_dir / f)
    qo.log(f"{name}: exporting + quantizing {variants}")
    build_onnx(fixture_dir, src, work / name, variants)
    qo.log(f"{name}: ONNX Runtime references")
    ref = references(fixture_dir, variants)
    config = json.loads((fixture_dir / "config.json").read_text())
    manifest = {
        "fixture": name,
        "seed": SEED,
        "dims": {
            "vocab_size": config["vocab_size"],
            "hidden_size": config["hidden_size"],
            "intermediate_size": config["intermediate_size"],
            "num_hidden_layers": config["num_hidden_layers"],
            "num_attention_heads": config["num_attention_heads"],
            "num_key_value_heads": config["num_key_value_heads"],
            "head_dim": config["hidden_size"] // config["num_attention_heads"],
            "max_position_embeddings": config["max_position_embeddings"],
            "rope_theta": config["rope_theta"],
            "rms_norm_eps": config["rms_norm_eps"],
            "tie_word_embeddings": config["tie_word_embeddings"],
        },
        "tokens": {"bpe": BPE_V, "merges": BPE_V - 256, "added": {n: BPE_V + k for k, n in enumerate(ADDED)}},
        "models": {v: {"path": VARIANT_FILES[v], **qo.describe(fixture_dir / VARIANT_FILES[v])} for v in variants},
        "reference": {
            "layout": "reference/feeds/prefill/<input>.npy; reference/feeds/decode_input_ids.npy; "
                      "reference/<variant>/<disable_all|enable_all>/{prefill_logits, prefill_present.N.key|value, "
                      "decode_logits, decode_last_present.N.key|value, greedy_ids}.npy; "
                      "reference/<q8|int8>/exact/ (same files): exact MatMulInteger (see exact_integer)",
            "ort": {"execution_provider": "CPUExecutionProvider", "intra_op_num_threads": 1,
                    "levels": qo.OPT_LEVELS},
            "procedure": {
                "prefill": "one run over prompt_ids: attention_mask ones [1, T], position_ids 0..T-1, "
                           "past_key_values.* empty [1, kv_heads, 0, head_dim] float32",
                "decode": "after prefill, one run per decode_input_ids[i] with input_ids [[id]], attention_mask "
                          "ones [1, T+i+1], position_ids [[T+i]], past = previous present; decode_logits[i] = "
                          "logits[0, -1] of step i; decode_last_present.* = presents after the last step",
                "greedy": "after prefill, repeatedly feed argmax(logits[0, -1]) for 16 steps (no eos stop); "
                          "greedy_ids are the 16 chosen ids",
                "exact": "q8/int8 only: the three procedures above with ORT_DISABLE_ALL on the model whose int8 "
                         "MatMulInteger weights are shifted to uint8 (B + 128, b_zero_point + 128), which ORT "
                         "multiplies exactly; use these, not disable_all/enable_all, to test exact int32 "
                         "MatMulInteger (reference.exact_integer)",
            },
            **ref,
        },
        "versions": qo.versions(),
    }
    qo.log(f"{name}: done")
    return manifest


def file_table(root: Path) -> dict[str, str]:
    """sha256 of the files this script writes (README.md and the FIXTURES directories); other
    fixtures under the same root (tiny-qwen2-genai, made by make_genai_fixtures.py) are not ours."""
    paths = [root / "README.md"] + [p for name in FIXTURES for p in sorted((root / name).rglob("*"))]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in paths if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "Models" / "fixtures"))
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with --out byte for byte")
    args = ap.parse_args()
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    for n in ["onnxruntime.quantization.matmul_nbits_quantizer", "onnxruntime.quantization"]:
        logging.getLogger(n).setLevel(logging.WARNING)

    out_root = Path(args.out)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess_env = dict(os.environ)
            import subprocess

            subprocess.run([sys.executable, __file__, "--out", tmp], check=True, env=subprocess_env)
            a, b = file_table(out_root), file_table(Path(tmp))
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if diff:
                print(f"[make_fixtures] --check: {len(diff)} files differ: {diff[:20]}", file=sys.stderr)
                return 1
            print(f"[make_fixtures] --check: {len(a)} files identical", file=sys.stderr)
            return 0

    out_root.mkdir(parents=True, exist_ok=True)
    manifests = {}
    with tempfile.TemporaryDirectory() as work:
        for name, (tied, variants) in FIXTURES.items():
            manifests[name] = build_fixture(out_root, name, tied, variants, Path(work))
            bt.write_json(out_root / name / "manifest.json", manifests[name])
    import fixtures_readme

    (out_root / "README.md").write_text(fixtures_readme.render(manifests, out_root), encoding="utf-8")
    qo.log(f"wrote {out_root}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
