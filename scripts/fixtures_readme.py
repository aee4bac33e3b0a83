"""Renders Models/fixtures/README.md from the fixtures' manifest.json files (called by make_fixtures.py)."""
from __future__ import annotations

from pathlib import Path

# transformers.js / onnx-community dtypes (make_fixtures.TJS_VARIANTS): described in their own tables.
TJS_VARIANTS = ("fp16", "q8", "int8", "uint8", "bnb4")

TJS_TEXT = """\
The transformers.js / onnx-community dtypes are made from the fp32 `model.onnx` the way
transformers.js's `scripts/quantize.py` makes them (huggingface/transformers.js, last version
before its v4 restructure, commit 3c64b72675cb; see `scripts/qwen_onnx.py`), all saved inline:

- **fp16** `model_fp16.onnx`: float16 conversion with `keep_io_types=True` (inputs and outputs stay
  float32, with `Cast` at the edges) and `Cast` blocked, i.e. the same conversion as q4f16 without
  the q4 step. Every float initializer is float16.
- **q8** `model_quantized.onnx`, **int8** `model_int8.onnx`, **uint8** `model_uint8.onnx`: ONNX
  Runtime dynamic quantization (`ONNXQuantizer`, IntegerOps, per-tensor, no reduce_range,
  `MatMulConstBOnly`, op types of `IntegerOpsRegistry`). q8 picks QInt8 weights unless the graph has
  Conv / GroupQueryAttention / MultiHeadAttention, so here q8 is the int8 file byte for byte.
  Each MatMul with a constant weight becomes `DynamicQuantizeLinear(A)` (uint8 activations, scalar
  scale and zero point; one per distinct A, shared by q/k/v and by gate/up) →
  `MatMulInteger(A_q, B_q [K, N], A_zp, B_zp)` → `Cast(int32→float)` → `Mul(A_scale·B_scale)`.
  B_q is int8 with zero point 0 (symmetric) for int8, uint8 with a computed zero point for uint8;
  scales and zero points are scalars (per-tensor). The `Gather` of `embed_tokens` is quantized too
  (uint8, asymmetric, scalar scale/zero point, also in int8) and followed by `DequantizeLinear`.
  With tied embeddings lm_head is a float `MatMul` on `DequantizeLinear(Transpose(embed uint8))`.
  MatMuls whose B is computed (attention scores) stay float `MatMul`.
- **bnb4** `model_bnb4.onnx`: ONNX Runtime `MatMulBnb4Quantizer` (quant_type 1 = NF4, block 64),
  every MatMul with a constant weight, lm_head included (untied). B is uint8 [(K·N+1)/2]: the
  transposed weight [N, K], flattened row-major, cut into blocks of 64 elements (blocks run across
  rows: K is not a multiple of 64), two 4-bit codes per byte, first element in the high nibble;
  absmax is float [ceil(K·N/64)], the largest |w| of each block; w = NF4[code] · absmax[block]
  with the bitsandbytes NF4 code book.
"""

EXACT_TEXT = """\
**Exact integer references (`reference/q8/exact`, `reference/int8/exact`).** ONNX defines
`MatMulInteger` as exact int32 arithmetic, (A − a_zero_point)·(B − b_zero_point). ONNX Runtime's
CPU kernel for uint8 A × int8 B does not compute that on x86 without AVX-VNNI (the machine these
files were made on): MLAS's AVX2 kernel multiplies the raw bytes with `vpmaddubsw`, which adds
each pair of adjacent products a[k]·b[k] + a[k+1]·b[k+1] with int16 saturation (and corrects the
zero points afterwards), so a few outputs per run are off by hundreds to thousands (counts below);
with VNNI the same file gives different, exact results. The int8/q8 `disable_all` and
`enable_all` references are therefore ONNX Runtime's results on that kernel, kept as they are.
The `exact` references come from ORT_DISABLE_ALL on the same function with every int8 weight
moved to uint8 (B + 128 and b_zero_point + 128, so each B − b_zero_point is unchanged), which runs
ORT's uint8 × uint8 kernel; that kernel widens both operands to int16 (`vpmaddwd`) and is exact.
`make_fixtures.py` checks it: every `MatMulInteger` output of the exact runs (prefill and each
teacher-forced decode step) is compared with NumPy int64 at the inputs ORT computed, and any
difference stops the build. uint8 models already run on that kernel, so `uint8/disable_all` is
checked the same way and is the exact reference. A runtime that computes `MatMulInteger` exactly
should compare int8/q8 with `exact`; what is left is float32 rounding of the other ops, which
can move an element of a `DynamicQuantizeLinear` input across a rounding boundary (one quantum,
then a few tenths in the logits of that step).
"""


def _exact_table(w, exact: dict) -> None:
    w("Exact integer references (`reference.exact_integer` in manifest.json): the reference to use"
      " for exact `MatMulInteger`, and how many `MatMulInteger` outputs ONNX Runtime got wrong in"
      " the prefill and 16 teacher-forced decode runs together (checked against NumPy int64):\n")
    w("| variant | exact reference | ORT disable_all: inexact outputs (max error) | exact run: inexact outputs |"
      " ORT disable_all vs exact: prefill / decode logits, first greedy difference |")
    w("|---|---|---|---|---|")
    for v, e in exact.items():
        raw = e["ort_disable_all_matmulinteger_check"]
        run = e.get("exact_run_matmulinteger_check", raw)
        far = e.get("ort_disable_all_vs_exact")
        far_s = (f"{far['prefill_logits']:.3g} / {far['decode_logits']:.3g}, "
                 + ("none" if far["greedy_first_difference"] is None else f"step {far['greedy_first_difference']}")
                 if far else "(same files)")
        w(f"| {v} | `reference/{e['reference']}` | {raw['outputs_differing']} of {raw['outputs_checked']}"
          f" ({raw['max_abs_error']}) | {run['outputs_differing']} of {run['outputs_checked']} | {far_s} |")
    w("")


def _size(p: Path) -> int:
    return p.stat().st_size if p.exists() else 0


def _io_table(desc: dict) -> str:
    rows = ["| | name | dtype | shape |", "|---|---|---|---|"]
    for kind in ("inputs", "outputs"):
        for v in desc[kind]:
            rows.append(f"| {kind[:-1]} | `{v['name']}` | {v['dtype']} | {v['shape']} |")
    return "\n".join(rows)


def _op_table(w, m: dict, variants: list[str]) -> None:
    hist = {v: m["models"][v]["op_histogram"] for v in variants}
    ops = sorted({op for v in variants for op in hist[v]})
    w("| op | " + " | ".join(variants) + " |")
    w("|---|" + "---|" * len(variants))
    for op in sorted(ops, key=lambda o: (-max(hist[v].get(o, 0) for v in variants), o)):
        w(f"| {op} | " + " | ".join(str(hist[v].get(op, 0)) for v in variants) + " |")
    w("")


def _signature_table(w, m: dict) -> None:
    """Quantization ops: input / output element types (init = initializer, [] = scalar), attributes."""
    groups: dict[str, list[str]] = {}
    for v, desc in m["models"].items():
        sigs = desc.get("quantized_op_signatures")
        if sigs:
            groups.setdefault(repr(sigs), []).append(v)
    if not groups:
        return
    w("Quantization ops (inputs and outputs: `init dtype[dims]` is an initializer, `[]` a scalar;"
      " otherwise the computed tensor's dtype):\n")
    w("| variants | op | count | inputs | outputs | attributes |\n|---|---|---|---|---|---|")
    for key, variants in groups.items():
        for s in m["models"][variants[0]]["quantized_op_signatures"]:
            w(f"| {', '.join(variants)} | {s['op']} | {s['count']} | {', '.join(s['inputs'])} | "
              f"{', '.join(s['outputs'])} | {s['attributes'] or ''} |")
    w("")


def render(manifests: dict, root: Path) -> str:
    out = []
    w = out.append
    w("# Test fixtures: tiny random-weight Qwen2 models\n")
    w("Generated by `scripts/make_fixtures.py` (this file too). Do not edit by hand; regenerate with\n")
    w("```sh\nscripts/setup_venv.sh\n.venv/bin/python scripts/make_fixtures.py           # writes Models/fixtures/\n"
      ".venv/bin/python scripts/make_fixtures.py --check   # regenerates in a temp dir, compares sha256\n```\n")
    w("Each fixture is a complete model directory (config.json, generation_config.json, tokenizer.json,\n"
      "tokenizer_config.json, onnx/…) made by the same tool chain as the real model: HF `Qwen2ForCausalLM`\n"
      "with seeded random weights → optimum `text-generation-with-past` export (fp32) → ONNX Runtime\n"
      "`MatMulNBitsQuantizer` (4 bits, block 32, symmetric, default RTN; lm_head included) → onnxconverter-common\n"
      "fp16 conversion with float32 graph inputs/outputs (see `scripts/qwen_onnx.py` for the fixes it needs).\n")
    w("The tokenizer is a prefix of the real Qwen2.5 tokenizer: ids 0…508 are Qwen2.5's first 509 tokens\n"
      "with its first 253 merges (id 256+i is the result of merge i), and `<|endoftext|>` 509,\n"
      "`<|im_start|>` 510, `<|im_end|>` 511 are added tokens; the chat template is Qwen2.5's.\n"
      "generation_config: eos [511, 509], pad 509, bos 509, do_sample false.\n")
    w("Weights are random, so the text is gibberish; the fixtures test that a runtime executes the\n"
      "graphs it finds the way ONNX Runtime does.\n")
    if any(v in m["models"] for m in manifests.values() for v in TJS_VARIANTS):
        w(TJS_TEXT)
    if any(m["reference"].get("exact_integer") for m in manifests.values()):
        w(EXACT_TEXT)

    for name, m in manifests.items():
        d = m["dims"]
        ref = m["reference"]
        w(f"\n## `{name}`\n")
        w("| vocab | hidden | layers | heads | kv heads | head_dim | intermediate | max pos | rope θ | rms eps | tied |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|\n"
          f"| {d['vocab_size']} | {d['hidden_size']} | {d['num_hidden_layers']} | {d['num_attention_heads']} | "
          f"{d['num_key_value_heads']} | {d['head_dim']} | {d['intermediate_size']} | {d['max_position_embeddings']} | "
          f"{d['rope_theta']} | {d['rms_norm_eps']} | {d['tie_word_embeddings']} |\n")
        w("MatMulNBits K values: hidden 96 (3 blocks of 32) and intermediate 200 for down_proj (6 blocks + an\n"
          "8-element tail; the quantizer zero-pads the last block, so B is [96, 7, 16] and K=200).\n")
        w("### Graph files\n")
        w("| variant | file | opset | nodes | initializers | size (bytes) |\n|---|---|---|---|---|---|")
        for v, desc in m["models"].items():
            p = root / name / desc["path"]
            size = _size(p)
            data = p.with_name(p.name + "_data")
            size_s = f"{size}" + (f" + {_size(data)} (`{data.name}`)" if data.exists() else "")
            opset = ", ".join(f"{k} {v}" for k, v in desc["opset_import"].items())
            inits = ", ".join(f"{k}: {n}" for k, n in desc["initializer_dtypes"].items())
            w(f"| {v} | `{desc['path']}` | {opset} | {desc['node_count']} | {inits} | {size_s} |")
        w("")
        first = next(iter(m["models"].values()))
        w("### Inputs and outputs (identical for every variant)\n")
        same = all(desc["inputs"] == first["inputs"] and desc["outputs"] == first["outputs"]
                   for desc in m["models"].values())
        if not same:
            w("**Note: the variants' I/O differ; see manifest.json.**\n")
        w(_io_table(first) + "\n")
        w("### Op histograms\n")
        _op_table(w, m, [v for v in m["models"] if v not in TJS_VARIANTS])
        attrs = {str(a) for desc in m["models"].values() for a in desc["matmulnbits_attributes"]}
        if attrs:
            w("MatMulNBits attribute sets: " + "; ".join(f"`{a}`" for a in sorted(attrs)) + "\n")
        tjs = [v for v in m["models"] if v in TJS_VARIANTS]
        if tjs:
            w("transformers.js dtypes (fp32 for comparison):\n")
            _op_table(w, m, ["fp32"] + tjs)
            attrs = {str(a) for desc in m["models"].values() for a in desc.get("matmulbnb4_attributes", [])}
            if attrs:
                w("MatMulBnb4 attribute sets (quant_type 1 = NF4): " + "; ".join(f"`{a}`" for a in sorted(attrs)) + "\n")
            _signature_table(w, m)
        w("### References (ONNX Runtime " + m["versions"]["onnxruntime"] + ", CPU EP, 1 thread)\n")
        w(f"Prompt: `{ref['prompt_text']!r}` → ids `{ref['prompt_ids']}` ({len(ref['prompt_ids'])} tokens).\n")
        w(f"Teacher-forced decode ids: `{ref['decode_input_ids']}`.\n")
        w("Layout: `" + ref["layout"] + "`. Every file's shape and dtype is in `manifest.json`"
          " (`reference.files`); all .npy are format 1.0, little-endian `<f4` or `<i8`.\n")
        for k, v in ref["procedure"].items():
            w(f"- **{k}**: {v}")
        w("")
        w("| variant/level | greedy ids | min greedy top-2 margin | prefill max abs diff vs fp32/disable_all |")
        w("|---|---|---|---|")
        for k, r in ref["results"].items():
            w(f"| {k} | `{r['greedy_ids']}` | {min(r['greedy_top2_margins']):.4f} | "
              f"{ref['prefill_logits_max_abs_diff_vs_fp32_disable_all'][k]:.3g} |")
        w("")
        if ref.get("exact_integer"):
            _exact_table(w, ref["exact_integer"])
        levels = ref.get("logits_max_abs_diff_disable_all_vs_enable_all")
        if levels:
            w("Max |logit difference| between ORT_DISABLE_ALL and ORT_ENABLE_ALL (same variant):\n")
            w("| variant | prefill_logits | decode_logits |\n|---|---|---|")
            for v, d in levels.items():
                w(f"| {v} | {d['prefill_logits']:.3g} | {d['decode_logits']:.3g} |")
            w("")
    versions = next(iter(manifests.values()))["versions"]
    w("\n## Tool versions\n")
    w(", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    return "\n".join(out)
