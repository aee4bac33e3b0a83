#!/usr/bin/env python3
"""Tiny random-weight Qwen2 fixtures made by the onnxruntime-genai model builder, with references.

Usage:  scripts/setup_venv_genai.sh
        .venv-genai/bin/python scripts/make_genai_fixtures.py [--out Models/fixtures/tiny-qwen2-genai] [--check]

The builder (onnxruntime-genai 0.18.0) needs transformers >= 5, so it runs from its own pinned venv
(.venv-genai, scripts/requirements-genai.txt); the main venv keeps transformers 4.57.6.

Writes <out>/:

  hf/config.json, hf/generation_config.json   the seeded HF Qwen2 checkpoint's config (the weights are
                                              remade by this script; they are not committed)
  <variant>/model.onnx, model.onnx.data,      what `python -m onnxruntime_genai.models.builder -i <hf dir>
  genai_config.json, tokenizer.json,          -o <variant> -p <precision> -e cpu [--extra_options ...]`
  tokenizer_config.json, chat_template.jinja  writes, unchanged
  <variant>/reference/...                     ONNX Runtime feeds and outputs (.npy), genai's greedy ids
  <variant>/manifest.json                     dims, files, graph description, margins, versions
  README.md                                   generated summary

The checkpoint has tiny-qwen2-tied's dims (make_fixtures.py: tied embeddings, vocab 512, hidden 96,
2 layers, intermediate 200, 2 kv heads) except the number of query heads: 6 instead of 4, so that
head_dim is 16. ONNX Runtime's CPU GroupQueryAttention rejects head_dim 24 ("head_size shall be a
multiple of 16"), so a genai CPU model with tiny-qwen2-tied's heads would not run at all.
The tokenizer files are tiny-qwen2-tied's (a 512-token prefix of Qwen2.5's, Qwen2.5's chat template);
the builder re-saves them through transformers 5's AutoTokenizer.

Everything is seeded; running twice gives byte-identical files (--check regenerates into a temporary
directory and compares sha256 of every file).
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_SRC = ROOT / "Models" / "fixtures" / "tiny-qwen2-tied"
DEFAULT_OUT = ROOT / "Models" / "fixtures" / "tiny-qwen2-genai"

# Seed and scales were picked by building every GroupQueryAttention variant for 10 (seed, embedding
# scale, out-proj scale) candidates, the best of a torch-only sweep over seeds 1..16 x {6, 8, 10} x
# {3, 4, 6}: with 5 / 8 / 6 no variant's 16 greedy ids contain a special token (onnxruntime-genai would
# stop at <|im_end|> / <|endoftext|>), each greedy run picks 5-7 distinct ids, and the smallest
# top-1/top-2 margin over all variants' greedy steps is ~0.2 (see each manifest.json and the README).
SEED = int(os.environ.get("GENAI_FIXTURE_SEED", "5"))
EMBED_SCALE = float(os.environ.get("GENAI_FIXTURE_EMBED_SCALE", "8.0"))   # std of embedding rows * sqrt(hidden)
OUT_PROJ_SCALE = float(os.environ.get("GENAI_FIXTURE_OUT_SCALE", "6.0"))  # o_proj / down_proj std * sqrt(fan_in)
VOCAB = 512
ENDOFTEXT, IM_START, IM_END = 509, 510, 511
DIMS = dict(
    vocab_size=VOCAB,
    hidden_size=96,          # MatMulNBits K = 96: three 32-blocks
    intermediate_size=200,   # down_proj K = 200: 6 full blocks + an 8-wide tail
    num_hidden_layers=2,
    num_attention_heads=6,   # head_dim 16 (ORT CPU GroupQueryAttention needs head_dim % 16 == 0)
    num_key_value_heads=2,   # GQA, 3 query heads per kv head
    max_position_embeddings=256,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
)

PROMPT_TEXT = "<|im_start|>user\nfib(10) in C?<|im_end|>\n<|im_start|>assistant\n"
DECODE_STEPS = 16
GREEDY_STEPS = 16
DECODE_IDS_SEED = 4  # make_fixtures.py's seed: the same 16 teacher-forced ids as the other fixtures

# name: (precision, execution provider, extra options, what the variant shows)
VARIANTS: dict[str, tuple[str, str, dict[str, str], str]] = {
    "int4": ("int4", "cpu", {},
             "builder default for int4 CPU: MatMulNBits (symmetric, block 32, accuracy_level 4); the tied "
             "embedding reads lm_head's 4-bit weight through GatherBlockQuantized (shared_embeddings "
             "defaults to tie_word_embeddings)"),
    "int4_unshared": ("int4", "cpu", {"shared_embeddings": "false"},
                      "int4 with shared_embeddings=false: float32 Gather embedding + 4-bit lm_head"),
    "int4_asym": ("int4", "cpu", {"is_symmetric": "false", "shared_embeddings": "false"},
                  "int4 with is_symmetric=false: uint4 with zero points in every MatMulNBits; "
                  "shared_embeddings=false because is_symmetric=false with the shared (GatherBlockQuantized) "
                  "embedding gives a graph ONNX Runtime cannot load (see the probes)"),
    "int4_acc1": ("int4", "cpu", {"accuracy_level": "1"},
                  "int4 with accuracy_level=1: ONNX Runtime computes MatMulNBits in float32 instead of "
                  "quantizing the activations to int8 (accuracy_level 4)"),
    "int8": ("int8", "cpu", {},
             "int8 CPU: MatMulNBits bits=8; GatherBlockQuantized is 4-bit only, so the embedding stays a "
             "float32 Gather"),
    "fp16": ("fp16", "cpu", {},
             "fp16 CPU (not in the builder's list of valid combinations, built anyway): no "
             "GroupQueryAttention on CPU fp16, so RotaryEmbedding + MultiHeadAttention with a float16 "
             "attention bias, position_ids input, growing (Concat) KV cache"),
    "fp32": ("fp32", "cpu", {},
             "fp32 CPU: MatMul with float32 weights; tied embedding is Gather(Transpose(lm_head weight))"),
    "cuda_int4": ("int4", "cuda", {},
                  "the CUDA int4 model people download (q4f16): float16 I/O, MatMulNBits with float16 scales and "
                  "no accuracy_level, GatherBlockQuantized with float16 scales, float16 GroupQueryAttention; "
                  "genai_config names the cuda provider; run here on the CPU EP"),
    "cuda_fp16": ("fp16", "cuda", {},
                  "the CUDA fp16 model: float16 MatMul weights, float16 GroupQueryAttention with shared KV "
                  "buffer; run here on the CPU EP"),
}

# Builder options tried but not committed: (precision, ep, extra options, committed variant to compare with).
# Each is built, loaded by ONNX Runtime and run once; the outcome is in the README.
PROBES: dict[str, tuple[str, str, dict[str, str], str | None]] = {
    "int4_acc4": ("int4", "cpu", {"accuracy_level": "4"}, "int4"),
    "int4_shared": ("int4", "cpu", {"shared_embeddings": "true"}, "int4"),
    "int4_rtn": ("int4", "cpu", {"algo_config": "rtn"}, "int4"),
    "int4_asym_shared": ("int4", "cpu", {"is_symmetric": "false"}, None),
    "int4_asym_rtn": ("int4", "cpu", {"is_symmetric": "false", "algo_config": "rtn"}, None),
    "int4_k_quant": ("int4", "cpu", {"algo_config": "k_quant"}, None),
    "int4_block64": ("int4", "cpu", {"block_size": "64"}, None),
    "int8_shared": ("int8", "cpu", {"shared_embeddings": "true"}, "int8"),
}

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def write_json(path: Path, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# HF checkpoint


def make_hf_model(src: Path) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    cfg = Qwen2Config(**DIMS, tie_word_embeddings=True, bos_token_id=ENDOFTEXT, eos_token_id=IM_END,
                      dtype="float32")
    model = Qwen2ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(SEED)
    hidden = DIMS["hidden_size"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "model.embed_tokens.weight":  # also lm_head (tied): logits std ~EMBED_SCALE
                p.copy_(torch.randn(p.shape, generator=g) * (EMBED_SCALE / hidden ** 0.5))
            elif name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                # Larger layer outputs so the residual stream is not just the input embedding (a tied
                # model otherwise keeps predicting its last input token).
                p.copy_(torch.randn(p.shape, generator=g) * (OUT_PROJ_SCALE / p.shape[1] ** 0.5))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                raise SystemExit(f"unexpected parameter {name} {tuple(p.shape)}")
    model.generation_config = GenerationConfig(
        bos_token_id=ENDOFTEXT, eos_token_id=[IM_END, ENDOFTEXT], pad_token_id=ENDOFTEXT, do_sample=False,
    )
    model.save_pretrained(src, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json"]:  # includes Qwen2.5's chat template
        shutil.copy(TOKENIZER_SRC / f, src / f)


def prompt_ids(tokenizer_json: Path) -> list[int]:
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_json)).encode(PROMPT_TEXT).ids
    if not all(0 <= i < VOCAB for i in ids):
        raise SystemExit(f"prompt ids out of range: {ids}")
    return ids


# ---------------------------------------------------------------------------------------------
# builder


def builder_args(precision: str, ep: str, extra: dict[str, str]) -> list[str]:
    return ["-p", precision, "-e", ep] + (["--extra_options"] + [f"{k}={v}" for k, v in extra.items()] if extra else [])


def run_builder(src: Path, out: Path, precision: str, ep: str, extra: dict[str, str], cache: Path,
                must_succeed: bool = True) -> str | None:
    """Runs the builder; returns None, or (must_succeed=False) the last line of a failure."""
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(src), "-o", str(out),
           "-p", precision, "-e", ep, "-c", str(cache)]
    if extra:
        cmd += ["--extra_options"] + [f"{k}={v}" for k, v in extra.items()]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        if not must_succeed:
            return (r.stderr.strip().splitlines() or ["?"])[-1]
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"builder failed: {' '.join(cmd)}")
    return None


# ---------------------------------------------------------------------------------------------
# graph description


def _dims(v) -> list:
    return [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]


def describe(model_path: Path) -> dict:
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(model_path), load_external_data=False)
    g = m.graph
    dtname = lambda t: TensorProto.DataType.Name(t).lower()
    inits = {i.name: {"dtype": dtname(i.data_type), "shape": list(i.dims)} for i in g.initializer}
    hist = collections.Counter(f"{n.domain or 'ai.onnx'}.{n.op_type}" for n in g.node)

    def attrs(n) -> dict:
        out = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, onnx.TensorProto):
                arr = onnx.numpy_helper.to_array(v)
                v = {"tensor": dtname(v.data_type), "value": arr.tolist() if arr.size <= 8 else f"{arr.shape}"}
            elif isinstance(v, float):
                v = float(np.float32(v))
            out[a.name] = v
        return dict(sorted(out.items()))

    def value_info() -> dict:
        vi = {v.name: {"dtype": dtname(v.type.tensor_type.elem_type), "shape": _dims(v)}
              for v in list(g.value_info) + list(g.input) + list(g.output)}
        return vi

    vi = value_info()

    def io(n) -> list:
        return [{"name": x, **(inits.get(x) or vi.get(x) or {})} if x else {"name": ""} for x in n.input]

    def per_op(op: str, with_inputs: bool) -> list:
        rows = []
        for n in g.node:
            if n.op_type == op:
                r = {"name": n.name, "domain": n.domain or "ai.onnx", "attributes": attrs(n)}
                if with_inputs:
                    r["inputs"] = io(n)
                    r["outputs"] = list(n.output)
                rows.append(r)
        return rows

    def distinct(rows: list) -> list:
        seen, out = set(), []
        for r in rows:
            k = json.dumps(r["attributes"], sort_keys=True)
            if k not in seen:
                seen.add(k)
                out.append(r["attributes"])
        return out

    mnb = per_op("MatMulNBits", True)
    return {
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "ir_version": m.ir_version,
        "inputs": [{"name": i.name, "dtype": dtname(i.type.tensor_type.elem_type), "shape": _dims(i)} for i in g.input],
        "outputs": [{"name": o.name, "dtype": dtname(o.type.tensor_type.elem_type), "shape": _dims(o)} for o in g.output],
        "node_count": len(g.node),
        "op_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializer_count": len(g.initializer),
        "initializer_dtypes": dict(sorted(collections.Counter(v["dtype"] for v in inits.values()).items())),
        "initializers": dict(sorted(inits.items())),
        "group_query_attention": per_op("GroupQueryAttention", True),
        "multi_head_attention": per_op("MultiHeadAttention", True),
        "rotary_embedding": per_op("RotaryEmbedding", True),
        "gather_block_quantized": per_op("GatherBlockQuantized", True),
        "matmulnbits": [{"name": r["name"], "attributes": r["attributes"],
                         "zero_points": len(r["inputs"]) > 3 and bool(r["inputs"][3]["name"]),
                         "inputs": r["inputs"]} for r in mnb],
        "matmulnbits_attribute_sets": distinct(mnb),
        "simplified_layer_normalization": distinct(per_op("SimplifiedLayerNormalization", False)),
        "skip_simplified_layer_normalization": distinct(per_op("SkipSimplifiedLayerNormalization", False)),
        "nodes": [{"op": f"{n.domain + '.' if n.domain else ''}{n.op_type}", "name": n.name,
                   "inputs": list(n.input), "outputs": list(n.output)} for n in g.node],
    }


# ---------------------------------------------------------------------------------------------
# ONNX Runtime references, fed the way onnxruntime-genai feeds the graph


OPT_LEVELS = {"disable_all": "ORT_DISABLE_ALL", "enable_all": "ORT_ENABLE_ALL"}
NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
            "tensor(int32)": np.int32}


def ort_session(model_path: Path, level: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[level])
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(model_path), sess_options=so, providers=["CPUExecutionProvider"])


class GenAIFeeder:
    """Feeds a builder graph as onnxruntime-genai does (batch 1, one sequence).

    input_ids [1, n]; attention_mask ones [1, past + n] (dtype of the graph input); position_ids
    past..past+n-1 only if the graph has that input; past_key_values.* either a zero buffer
    [1, kv_heads, max_length, head] that present.* is written into (past_present_share_buffer: genai
    binds the same buffer as past and present) or, without sharing, empty [1, kv_heads, 0, head] then
    the previous present.*. With sharing, present positions >= past + n are set to zero before they are
    kept (InferenceSession.run gives present its own buffer, whose unwritten tail is undefined; genai's
    buffer there holds zeros, and GroupQueryAttention never reads it)."""

    def __init__(self, session, genai_config: dict, max_length: int):
        self.session = session
        self.inputs = {i.name: i for i in session.get_inputs()}
        self.output_names = [o.name for o in session.get_outputs()]
        dec = genai_config["model"]["decoder"]
        self.kv_heads, self.head = dec["num_key_value_heads"], dec["head_size"]
        self.share = bool(genai_config["search"]["past_present_share_buffer"])
        self.max_length = max_length
        self.past_names = [n for n in self.inputs if n.startswith("past_key_values.")]
        self.length = 0
        self.past: dict[str, np.ndarray] | None = None

    def feeds_for(self, ids: list[int]) -> dict[str, np.ndarray]:
        n = len(ids)
        total = self.length + n
        f = {"input_ids": np.asarray([ids], dtype=NP_TYPES[self.inputs["input_ids"].type]),
             "attention_mask": np.ones((1, total), dtype=NP_TYPES[self.inputs["attention_mask"].type])}
        if "position_ids" in self.inputs:
            f["position_ids"] = np.arange(self.length, total, dtype=NP_TYPES[self.inputs["position_ids"].type])[None]
        if self.past is None:
            cap = self.max_length if self.share else 0
            for name in self.past_names:
                f[name] = np.zeros((1, self.kv_heads, cap, self.head), dtype=NP_TYPES[self.inputs[name].type])
        else:
            f.update(self.past)
        unknown = set(self.inputs) - set(f)
        if unknown:
            raise SystemExit(f"graph inputs this feeder does not know: {sorted(unknown)}")
        return f

    def step(self, ids: list[int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        feeds = self.feeds_for(ids)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
        self.length += len(ids)
        presents = {k: v for k, v in outs.items() if k.startswith("present.")}
        if self.share:
            for k, v in presents.items():
                if v.shape[2] != self.max_length:
                    raise SystemExit(f"{k}: shared buffer came back as {v.shape}")
                v = v.copy()
                v[:, :, self.length:, :] = 0
                presents[k] = v
        self.past = {k.replace("present.", "past_key_values.", 1): v for k, v in presents.items()}
        return outs["logits"], presents


def save_npy(path: Path, array: np.ndarray) -> dict:
    """Little-endian .npy (format 1.0) in the array's own dtype (float16 stays <f2)."""
    a = np.asarray(array)
    a = a.astype(a.dtype.newbyteorder("<"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(a), version=(1, 0))
    return {"shape": list(a.shape), "dtype": a.dtype.str}


def top2_margin(logits: np.ndarray) -> float:
    s = np.sort(np.asarray(logits, dtype=np.float64))
    return float(s[-1] - s[-2])


def genai_greedy(variant_dir: Path, prompt: list[int], max_length: int) -> dict:
    """onnxruntime_genai's own greedy search; also what it fed the graph on a decode step."""
    import onnxruntime_genai as og

    config = og.Config(str(variant_dir))
    config.clear_providers()  # CPU
    model = og.Model(config)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=max_length)
    gen = og.Generator(model, params)
    gen.append_tokens(np.asarray(prompt, dtype=np.int32))
    logits, fed = [], {}
    while not gen.is_done():
        logits.append(np.array(gen.get_logits(), dtype=np.float32).reshape(-1))
        gen.generate_next_token()
    seq = [int(x) for x in gen.get_sequence(0)]
    # What genai fed on the last step (shapes/dtypes/values of the small inputs).
    for name in ["input_ids", "attention_mask", "position_ids", "past_key_values.0.key"]:
        try:
            t = np.array(gen.get_input(name))
        except Exception:  # noqa: BLE001 - an input the graph does not have
            continue
        fed[name] = {"shape": list(t.shape), "dtype": str(t.dtype)}
        if t.size <= 64:
            fed[name]["value"] = t.tolist()
    return {"ids": seq[len(prompt):], "step_logits": logits, "last_step_inputs": fed}


def decode_error(model_dir: Path, prompt: list[int]) -> str | None:
    """None if ONNX Runtime runs the prompt and one decode step at both levels, else the first error."""
    cfg = json.loads((model_dir / "genai_config.json").read_text())
    for level in OPT_LEVELS:
        try:
            f = GenAIFeeder(ort_session(model_dir / "model.onnx", level), cfg, len(prompt) + 1)
            f.step(prompt)
            f.step([prompt[-1]])
        except Exception as e:  # noqa: BLE001 - reported
            return f"{level}: " + " ".join(str(e).split())[:400]
    return None


def without_value_info(src: Path, dst: Path) -> list[dict]:
    """Copy of a variant directory whose model.onnx has no graph.value_info (nodes, initializers and
    I/O unchanged); returns the removed entries that name a repeat_kv output."""
    import onnx

    shutil.copytree(src, dst)
    m = onnx.load(str(src / "model.onnx"), load_external_data=False)
    removed = [{"name": v.name, "declared_shape": _dims(v)} for v in m.graph.value_info
               if "repeat_kv/Reshape_4" in v.name]
    del m.graph.value_info[:]
    onnx.save(m, str(dst / "model.onnx"))
    return removed


def references(variant_dir: Path, prompt: list[int], decode_ids: list[int], model_dir: Path | None = None) -> dict:
    """Writes variant_dir/reference/; runs model_dir's graph (default: variant_dir's)."""
    ref = variant_dir / "reference"
    model_dir = model_dir or variant_dir
    genai_config = json.loads((variant_dir / "genai_config.json").read_text())
    max_length = len(prompt) + max(DECODE_STEPS, GREEDY_STEPS)
    files: dict[str, dict] = {}

    def put(rel: str, array) -> None:
        files[rel] = save_npy(ref / rel, array)

    results, greedy_logits = {}, {}
    for level in OPT_LEVELS:
        session = ort_session(model_dir / "model.onnx", level)
        if level == "disable_all":
            feeder = GenAIFeeder(session, genai_config, max_length)
            for name, value in feeder.feeds_for(prompt).items():
                put(f"feeds/prefill/{name}.npy", value)
            put("feeds/decode_input_ids.npy", np.asarray(decode_ids, dtype=np.int64))
        # prefill + teacher-forced decode
        r = GenAIFeeder(session, genai_config, max_length)
        logits, presents = r.step(prompt)
        put(f"{level}/prefill_logits.npy", logits)
        for k, v in presents.items():
            put(f"{level}/prefill_{k}.npy", v)
        step_logits = []
        for tok in decode_ids:
            lg, presents = r.step([tok])
            step_logits.append(lg[0, -1])
        put(f"{level}/decode_logits.npy", np.stack(step_logits))
        for k, v in presents.items():
            put(f"{level}/decode_last_{k}.npy", v)
        # greedy
        g = GenAIFeeder(session, genai_config, max_length)
        lg, _ = g.step(prompt)
        greedy, margins, glog = [], [], []
        for _ in range(GREEDY_STEPS):
            last = lg[0, -1].astype(np.float32)
            glog.append(last)
            nxt = int(np.argmax(last))
            greedy.append(nxt)
            margins.append(round(top2_margin(last), 6))
            lg, _ = g.step([nxt])
        put(f"{level}/greedy_ids.npy", np.asarray(greedy, dtype=np.int64))
        greedy_logits[level] = glog
        results[level] = {
            "greedy_ids": greedy,
            "greedy_top2_margins": margins,
            "greedy_min_top2_margin": min(margins),
            "prefill_last_top2_margin": round(top2_margin(logits[0, -1]), 6),
            "decode_min_top2_margin": round(min(top2_margin(x) for x in step_logits), 6),
        }

    a = np.load(ref / "disable_all/prefill_logits.npy").astype(np.float32)
    b = np.load(ref / "enable_all/prefill_logits.npy").astype(np.float32)
    da = np.load(ref / "disable_all/decode_logits.npy").astype(np.float32)
    db = np.load(ref / "enable_all/decode_logits.npy").astype(np.float32)

    og_run = genai_greedy(model_dir, prompt, max_length)
    put("genai_greedy_ids.npy", np.asarray(og_run["ids"], dtype=np.int64))
    n = min(len(og_run["step_logits"]), GREEDY_STEPS)
    og_vs_ort = {lvl: float(max(np.abs(og_run["step_logits"][i] - greedy_logits[lvl][i]).max() for i in range(n)))
                 for lvl in OPT_LEVELS}
    genai = {
        "greedy_ids": og_run["ids"],
        "equals_ort_greedy": {lvl: og_run["ids"] == results[lvl]["greedy_ids"] for lvl in OPT_LEVELS},
        "step_logits_max_abs_diff_vs_ort_greedy": og_vs_ort,
        "last_step_inputs": og_run["last_step_inputs"],
        "search_options": {"do_sample": False, "max_length": max_length},
    }
    return {
        "feeding": {
            "past_present_share_buffer": genai_config["search"]["past_present_share_buffer"],
            "max_length": max_length,
            "kv_buffer": (f"[1, kv_heads, max_length={max_length}, head_size], zeros, present written in place "
                          "(positions >= past+n zeroed when saved / fed back)"
                          if genai_config["search"]["past_present_share_buffer"]
                          else "[1, kv_heads, 0, head_size] empty, then the previous present (grows by Concat)"),
            "position_ids": "fed (past..past+n-1)" if (ref / "feeds/prefill/position_ids.npy").exists()
                            else "not a graph input",
        },
        "results": results,
        "disable_vs_enable_all_max_abs_diff": {"prefill_logits": float(np.abs(a - b).max()),
                                                "decode_logits": float(np.abs(da - db).max())},
        "onnxruntime_genai": genai,
        "files": dict(sorted(files.items())),
    }


# ---------------------------------------------------------------------------------------------
# driver


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for p in ["onnxruntime-genai", "onnxruntime", "transformers", "tokenizers", "torch", "onnx", "onnx-ir",
              "numpy", "safetensors", "protobuf"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def file_sizes(d: Path) -> dict[str, int]:
    return {str(p.relative_to(d)): p.stat().st_size for p in sorted(d.rglob("*")) if p.is_file()}


def graph_equal(a: Path, b: Path) -> dict:
    """Byte comparison, and what differs if the bytes do."""
    import onnx

    same_onnx = (a / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()
    same_data = (a / "model.onnx.data").read_bytes() == (b / "model.onnx.data").read_bytes()
    out = {"model.onnx identical": same_onnx, "model.onnx.data identical": same_data}
    if not same_onnx:
        ma, mb = (onnx.load(str(p / "model.onnx"), load_external_data=False) for p in (a, b))
        diffs = []
        for field in ["ir_version", "producer_name", "producer_version", "doc_string", "metadata_props",
                      "opset_import"]:
            if getattr(ma, field) != getattr(mb, field):
                diffs.append(field)
        ga, gb = ma.graph, mb.graph
        for field in ["node", "initializer", "input", "output", "value_info"]:
            if list(getattr(ga, field)) != list(getattr(gb, field)):
                diffs.append(f"graph.{field}")
        na = {n.name: n for n in ga.node}
        changed = sorted(n.name for n in gb.node if n.name in na and na[n.name] != n)
        if changed:
            diffs.append(f"{len(changed)} nodes differ, e.g. {changed[0]}")
        out["differs_in"] = diffs
    return out


def build(out_root: Path, work: Path) -> dict:
    import onnx

    src = work / "hf"
    log(f"HF checkpoint (seed {SEED}, embed scale {EMBED_SCALE}, out-proj scale {OUT_PROJ_SCALE})")
    make_hf_model(src)
    hf_out = out_root / "hf"
    hf_out.mkdir(parents=True)
    for f in ["config.json", "generation_config.json"]:
        shutil.copy(src / f, hf_out / f)
    prompt = prompt_ids(src / "tokenizer.json")
    rng = np.random.default_rng(DECODE_IDS_SEED)
    decode_ids = [int(x) for x in rng.integers(0, ENDOFTEXT, DECODE_STEPS)]
    config = json.loads((src / "config.json").read_text())

    manifests = {}
    for name, (precision, ep, extra, what) in VARIANTS.items():
        log(f"{name}: builder -p {precision} -e {ep} {extra}")
        vdir = out_root / name
        run_builder(src, vdir, precision, ep, extra, work / "cache")
        cmd = ["python -m onnxruntime_genai.models.builder", "-i", "<hf dir>", "-o", "<variant dir>"] + \
            builder_args(precision, ep, extra)
        try:  # SimplifiedLayerNormalization is an ONNX Runtime op in the ai.onnx domain: the checker refuses it
            onnx.checker.check_model(str(vdir / "model.onnx"))
            checker = "ok"
        except onnx.checker.ValidationError as e:
            checker = str(e).strip().splitlines()[0]
        builder_files = file_sizes(vdir)
        out_prompt = prompt_ids(vdir / "tokenizer.json")
        if out_prompt != prompt:
            raise SystemExit(f"{name}: the builder's tokenizer.json encodes the prompt differently: {out_prompt}")
        log(f"{name}: references")
        err = decode_error(vdir, prompt)
        if err is None:
            ref_model = {"model": "model.onnx as the builder wrote it"}
            ref = references(vdir, prompt, decode_ids)
        else:
            # fp16 CPU: the builder declares value_info [batch_size, sequence_length, hidden] for the
            # repeat_kv outputs, which hold past+current positions; ONNX Runtime plans buffers from those
            # dims and fails on the first decode step (onnxruntime-genai too). The references run the same
            # graph without value_info.
            fixed = work / "ort" / name
            removed = without_value_info(vdir, fixed)
            if decode_error(fixed, prompt) is not None:
                raise SystemExit(f"{name}: ONNX Runtime cannot decode, even without value_info: {err}")
            ref_model = {"model": "model.onnx with graph.value_info removed (nodes, initializers, I/O unchanged)",
                         "why": f"ONNX Runtime fails to decode the builder's file: {err}",
                         "suspect_value_info": removed}
            log(f"{name}: ONNX Runtime fails to decode the builder's file; references use it without value_info")
            ref = references(vdir, prompt, decode_ids, model_dir=fixed)
        manifest = {
            "fixture": f"tiny-qwen2-genai/{name}",
            "what": what,
            "builder": {"command": cmd, "precision": precision, "execution_provider": ep, "extra_options": extra},
            "seed": SEED,
            "weight_scales": {"embedding_std_times_sqrt_hidden": EMBED_SCALE,
                              "o_proj_down_proj_std_times_sqrt_fan_in": OUT_PROJ_SCALE},
            "dims": {
                "vocab_size": config["vocab_size"],
                "hidden_size": config["hidden_size"],
                "intermediate_size": config["intermediate_size"],
                "num_hidden_layers": config["num_hidden_layers"],
                "num_attention_heads": config["num_attention_heads"],
                "num_key_value_heads": config["num_key_value_heads"],
                "head_dim": config["hidden_size"] // config["num_attention_heads"],
                "max_position_embeddings": config["max_position_embeddings"],
                "rope_theta": config["rope_parameters"]["rope_theta"],
                "rms_norm_eps": config["rms_norm_eps"],
                "tie_word_embeddings": config["tie_word_embeddings"],
            },
            "builder_files": builder_files,
            "onnx_checker": checker,
            "genai_config": json.loads((vdir / "genai_config.json").read_text()),
            "graph": describe(vdir / "model.onnx"),
            "reference": {
                "reference_model": ref_model,
                "layout": "reference/feeds/prefill/<input>.npy; reference/feeds/decode_input_ids.npy; "
                          "reference/<disable_all|enable_all>/{prefill_logits, prefill_present.N.key|value, "
                          "decode_logits, decode_last_present.N.key|value, greedy_ids}.npy; "
                          "reference/genai_greedy_ids.npy",
                "ort": {"execution_provider": "CPUExecutionProvider", "intra_op_num_threads": 1,
                        "levels": OPT_LEVELS},
                "prompt_text": PROMPT_TEXT,
                "prompt_ids": prompt,
                "decode_input_ids": decode_ids,
                "procedure": {
                    "feeds": GenAIFeeder.__doc__.split("\n\n", 1)[1].replace("\n   ", "").strip(),
                    "prefill": "one run over prompt_ids (T tokens) from the initial past feeds",
                    "decode": "after prefill, one run per decode_input_ids[i] with input_ids [[id]], attention_mask "
                              "ones [1, T+i+1], past = previous present; decode_logits[i] = logits[0, -1] of step "
                              "i; decode_last_present.* = presents after the last step",
                    "greedy": "after prefill, repeatedly feed argmax(logits[0, -1]) for 16 steps (no eos stop); "
                              "greedy_ids are the 16 chosen ids",
                    "genai_greedy": "onnxruntime_genai.Model(<variant dir>, providers cleared = CPU), "
                                    "GeneratorParams do_sample=False, max_length=T+16, append_tokens(prompt_ids), "
                                    "generate_next_token until done; genai_greedy_ids = the new ids",
                    "dtypes": "arrays keep the graph's dtype (float16 graphs give <f2 logits and presents)",
                },
                **ref,
            },
            "versions": versions(),
        }
        write_json(vdir / "manifest.json", manifest)
        manifests[name] = manifest

    probes = {}
    for name, (precision, ep, extra, compare_to) in PROBES.items():
        log(f"probe {name}: builder -p {precision} -e {ep} {extra}")
        pdir = work / "probes" / name
        p = {"builder_args": builder_args(precision, ep, extra), "compared_with": compare_to}
        failure = run_builder(src, pdir, precision, ep, extra, work / "cache", must_succeed=False)
        if failure:
            p["builder"] = f"fails: {failure}"
        else:
            p["builder"] = "ok"
            p["op_histogram"] = describe(pdir / "model.onnx")["op_histogram"]
            try:
                session = ort_session(pdir / "model.onnx", "disable_all")
                cfg = json.loads((pdir / "genai_config.json").read_text())
                GenAIFeeder(session, cfg, len(prompt) + 1).step(prompt)
                p["onnxruntime"] = "loads and runs the prompt"
            except Exception as e:  # noqa: BLE001 - recorded, not fatal
                msg = str(e).strip().splitlines()[0].replace(str(pdir), "<probe dir>")
                p["onnxruntime"] = "fails: " + msg[:300]
            if compare_to:
                p.update(graph_equal(pdir, out_root / compare_to))
        probes[name] = p
    return {"prompt": prompt, "decode_ids": decode_ids, "manifests": manifests, "probes": probes}


# ---------------------------------------------------------------------------------------------
# README


def render_readme(info: dict, out_root: Path) -> str:
    ms = info["manifests"]
    any_m = next(iter(ms.values()))
    d = any_m["dims"]
    L = []
    L.append("# `tiny-qwen2-genai`: onnxruntime-genai model-builder fixtures\n")
    L.append("Generated by `scripts/make_genai_fixtures.py` (this file too). Do not edit by hand; regenerate with\n")
    L.append("```sh\nscripts/setup_venv_genai.sh\n.venv-genai/bin/python scripts/make_genai_fixtures.py"
             "           # writes Models/fixtures/tiny-qwen2-genai/\n"
             ".venv-genai/bin/python scripts/make_genai_fixtures.py --check   # regenerates in a temp dir, "
             "compares sha256\n```\n")
    L.append("A seeded random-weight HF `Qwen2ForCausalLM` (tied embeddings) → "
             "`python -m onnxruntime_genai.models.builder -i <hf dir> -o <variant> -p <precision> -e cpu "
             "[--extra_options ...]` → each variant directory is exactly what the builder wrote "
             "(`model.onnx`, `model.onnx.data`, `genai_config.json`, tokenizer files, `chat_template.jinja`), "
             "plus `reference/` and `manifest.json`. `hf/` holds the checkpoint's config.json and "
             "generation_config.json (the weights are remade by the script).\n")
    L.append("Dims are tiny-qwen2-tied's except the query heads: 6 instead of 4, so head_dim is 16 — ONNX Runtime's "
             "CPU GroupQueryAttention fails on head_dim 24 (\"head_size shall be a multiple of 16\").\n")
    L.append("| vocab | hidden | layers | heads | kv heads | head_dim | intermediate | max pos | rope θ | rms eps | tied |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    L.append(f"| {d['vocab_size']} | {d['hidden_size']} | {d['num_hidden_layers']} | {d['num_attention_heads']} | "
             f"{d['num_key_value_heads']} | {d['head_dim']} | {d['intermediate_size']} | {d['max_position_embeddings']} | "
             f"{d['rope_theta']} | {d['rms_norm_eps']} | {d['tie_word_embeddings']} |\n")
    L.append("## Variants\n")
    L.append("| variant | builder options | what it shows | model.onnx + .data (bytes) |")
    L.append("|---|---|---|---|")
    for name, m in ms.items():
        b = m["builder"]
        opts = f"`-p {b['precision']} -e {b['execution_provider']}`" + (
            " `--extra_options " + " ".join(f"{k}={v}" for k, v in b["extra_options"].items()) + "`"
            if b["extra_options"] else "")
        f = m["builder_files"]
        L.append(f"| `{name}` | {opts} | {m['what']} | {f['model.onnx']} + {f['model.onnx.data']} |")
    L.append("")
    L.append("### Options tried and not committed\n")
    L.append("| builder args | builder | ONNX Runtime (CPU) | compared with a committed variant |")
    L.append("|---|---|---|---|")
    for p in info["probes"].values():
        cmp = ""
        if p.get("compared_with") and "model.onnx identical" in p:
            cmp = (f"`{p['compared_with']}`: model.onnx {'identical' if p['model.onnx identical'] else 'differs'}, "
                   f"model.onnx.data {'identical' if p['model.onnx.data identical'] else 'differs'}")
        L.append(f"| `{' '.join(p['builder_args'])}` | {p['builder']} | {p.get('onnxruntime', '')} | {cmp} |")
    L.append("")
    L.append("## Graph inputs and outputs\n")
    L.append("dtype per variant (— = not a graph input/output); the dim names are the builder's.\n")
    names, shapes = [], {}
    for m in ms.values():
        for kind in ["inputs", "outputs"]:
            for v in m["graph"][kind]:
                key = (kind[:-1], v["name"])
                if key not in shapes:
                    names.append(key)
                    shapes[key] = v["shape"]
    L.append("| | name | shape | " + " | ".join(ms) + " |")
    L.append("|---|---|---|" + "---|" * len(ms))
    for kind, name in names:
        dts = []
        for m in ms.values():
            v = {x["name"]: x for x in m["graph"][kind + "s"]}.get(name)
            dts.append(v["dtype"] if v else "—")
        L.append(f"| {kind} | `{name}` | {shapes[(kind, name)]} | " + " | ".join(dts) + " |")
    L.append("")
    L.append("""## Notes for a runtime

- **No position_ids** in the GroupQueryAttention graphs: rotary is inside GroupQueryAttention (`do_rotary=1`,
  half-split `rotary_interleaved=0`, `cos_cache`/`sin_cache` [max_pos 256, head_dim/2 8] initializers).
  Positions come from `seqlens_k` = `Cast<int32>(ReduceSum(attention_mask, axis 1, keepdims 0) - 1)`
  ([batch]) and `total_sequence_length` = `Cast<int32>(Shape(attention_mask)[1])` (scalar).
- **Packed QKV**: GroupQueryAttention input 0 is one MatMul(NBits) + Add(bias) output of width
  (6 + 2·2)·16 = 160; `key`/`value` are empty, and so are inputs 9-11 (position_ids, attention_bias, head_sink).
  No `smooth_softmax`/`qk_output` attributes are written; `scale` is 1/sqrt(16) = 0.25, `softcap` 0,
  `local_window_size` -1.
- **Shared KV buffer** (`search.past_present_share_buffer` true for every GroupQueryAttention variant):
  onnxruntime-genai feeds past as a [1, kv_heads, max_length, head_dim] buffer and binds present to the
  same memory; attention_mask stays ones of the *current* total length. The genai runs confirm this
  (`reference.onnxruntime_genai.last_step_inputs` in each manifest, and its step logits equal the
  references' enable_all greedy logits exactly).
- **fp16 on CPU** is not GroupQueryAttention: RotaryEmbedding (`num_heads=0`, `rotary_embedding_dim=0`, so
  heads come from cos_cache: 3D input width / 16) + repeat_kv (Expand) + MultiHeadAttention with a float16
  4D attention bias (causal + padding, -65504) built from attention_mask, position_ids input, KV grown by
  Concat. Its value_info declares the repeat_kv outputs [batch_size, sequence_length, 96] although they
  hold past + current positions: ONNX Runtime 1.31.1 (and onnxruntime-genai) fail on the first decode step
  ("Shape mismatch attempting to re-use buffer"); the references run the same graph without value_info
  (see `reference.reference_model` in fp16/manifest.json). A runtime must not trust value_info shapes.
- **SimplifiedLayerNormalization** is in the ai.onnx domain (an ONNX Runtime op; `onnx.checker` refuses it),
  SkipSimplifiedLayerNormalization (input, skip, gamma) in com.microsoft: the first one takes the embedding
  as input and o_proj's output as skip; outputs 1-2 are empty and output 3 (input + skip, the residual
  stream) is the next one's input; the final norm writes output 0 only.
- **4-bit weights**: MatMulNBits B is uint8 [N, K/32 rounded up, 16] (low nibble first), scales [N, blocks];
  symmetric variants have no zero_points input (implicit 8), `int4_asym` has packed uint8 zero points
  [N, ceil(blocks/2)]. GatherBlockQuantized reads lm_head's B reshaped to [512, 48] with lm_head's scales
  (`gather_axis` 0, `quantize_axis` 1, `block_size` 32, `bits` 4, no zero points = 8).
- `accuracy_level` 4 (the CPU default) makes ONNX Runtime quantize MatMulNBits activations to int8 per
  block; `int4_acc1` is the same weights computed in float32 (compare the two variants' references).
""")
    L.append("## Op histograms\n")
    ops = sorted({op for m in ms.values() for op in m["graph"]["op_histogram"]},
                 key=lambda op: (-max(m["graph"]["op_histogram"].get(op, 0) for m in ms.values()), op))
    L.append("| op | " + " | ".join(ms) + " |")
    L.append("|---|" + "---|" * len(ms))
    for op in ops:
        L.append(f"| {op} | " + " | ".join(str(m["graph"]["op_histogram"].get(op, 0)) for m in ms.values()) + " |")
    L.append("")
    L.append("## Attention, quantization and norm attributes\n")
    for name, m in ms.items():
        g = m["graph"]
        L.append(f"### `{name}`\n")
        for key, title in [("group_query_attention", "GroupQueryAttention"), ("multi_head_attention", "MultiHeadAttention"),
                           ("rotary_embedding", "RotaryEmbedding"), ("gather_block_quantized", "GatherBlockQuantized")]:
            rows = g[key]
            if not rows:
                continue
            r = rows[0]
            ins = ", ".join(f"`{i['name'] or '∅'}`" + (f" {i['dtype']} {i['shape']}" if i.get("dtype") else "")
                            for i in r["inputs"])
            L.append(f"- {title} ×{len(rows)}, attributes `{json.dumps(r['attributes'])}`; inputs of `{r['name']}`: {ins}")
        if g["matmulnbits_attribute_sets"]:
            zp = sorted({r["zero_points"] for r in g["matmulnbits"]})
            L.append(f"- MatMulNBits ×{len(g['matmulnbits'])}, zero points {zp}, attribute sets: " +
                     "; ".join(f"`{json.dumps(a)}`" for a in g["matmulnbits_attribute_sets"]))
        for key, title in [("simplified_layer_normalization", "SimplifiedLayerNormalization"),
                           ("skip_simplified_layer_normalization", "SkipSimplifiedLayerNormalization")]:
            if g[key]:
                L.append(f"- {title} attributes: " + "; ".join(f"`{json.dumps(a)}`" for a in g[key]))
        L.append(f"- genai_config search.past_present_share_buffer: "
                 f"{m['genai_config']['search']['past_present_share_buffer']}\n")

    r0 = any_m["reference"]
    L.append("## References (ONNX Runtime, CPU EP, 1 thread; and onnxruntime-genai)\n")
    L.append(f"Prompt: `{r0['prompt_text']!r}` → ids `{r0['prompt_ids']}` ({len(r0['prompt_ids'])} tokens).\n")
    L.append(f"Teacher-forced decode ids: `{r0['decode_input_ids']}`.\n")
    L.append(f"Layout: `{r0['layout']}`. Every file's shape and dtype is in the variant's `manifest.json` "
             "(`reference.files`); .npy format 1.0, little-endian, in the graph's dtype (`<f2` for the fp16 variant).\n")
    for k, v in r0["procedure"].items():
        L.append(f"- **{k}**: {v}")
    L.append("")
    L.append("| variant/level | greedy ids | min greedy top-2 margin | genai greedy = ORT greedy | "
             "genai vs ORT step logits max abs diff | disable vs enable prefill max abs diff |")
    L.append("|---|---|---|---|---|---|")
    for name, m in ms.items():
        ref = m["reference"]
        for lvl, res in ref["results"].items():
            og = ref["onnxruntime_genai"]
            L.append(f"| {name}/{lvl} | `{res['greedy_ids']}` | {res['greedy_min_top2_margin']:.4f} | "
                     f"{og['equals_ort_greedy'][lvl]} | {og['step_logits_max_abs_diff_vs_ort_greedy'][lvl]:.3g} | "
                     f"{ref['disable_vs_enable_all_max_abs_diff']['prefill_logits']:.3g} |")
    L.append("")
    L.append("## Tool versions\n")
    L.append(", ".join(f"{k} {v}" for k, v in any_m["versions"].items()))
    return "\n".join(L) + "\n"


def file_table(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with --out byte for byte")
    args = ap.parse_args()
    out_root = Path(args.out)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, __file__, "--out", str(Path(tmp) / "out")], check=True)
            a, b = file_table(out_root), file_table(Path(tmp) / "out")
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if diff:
                print(f"[make_genai_fixtures] --check: {len(diff)} files differ: {diff[:20]}", file=sys.stderr)
                return 1
            print(f"[make_genai_fixtures] --check: {len(a)} files identical", file=sys.stderr)
            return 0

    if out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as work:
        info = build(out_root, Path(work))
    (out_root / "README.md").write_text(render_readme(info, out_root), encoding="utf-8")
    log(f"wrote {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
