"""Shared tool chain: optimum export → q4 (MatMulNBits) → q4f16 (+ transformers.js dtypes), and the ONNX Runtime oracle.

Used by make_fixtures.py (tiny random models) and build_real_model.py (the real 0.5B), so both go
through exactly the same steps:

  1. `export_optimum`: optimum's `main_export(task="text-generation-with-past", opset=N)`, the
     way people export Qwen2 for ONNX Runtime / transformers.js. Produces `model.onnx` (fp32) with
     inputs input_ids / attention_mask / position_ids / past_key_values.N.{key,value} and outputs
     logits / present.N.{key,value}.
  2. `quantize_q4`: ONNX Runtime's `MatMulNBitsQuantizer(block_size=32, is_symmetric=True)`
     (default RTN algorithm, accuracy_level unset). Every MatMul with a constant weight becomes
     `com.microsoft.MatMulNBits`, lm_head included; output names are kept.
  3. `convert_q4_to_q4f16`: onnxconverter-common's `convert_float_to_float16(keep_io_types=True)`
     with `Cast` added to the op block list, plus the fixes the real exports need:
       (a) shape inference is run on a weight-less copy of the fp32 graph and passed in as
           value_info (in-memory `infer_shapes` fails beyond 2 GB, and knows nothing of
           com.microsoft ops; the quantizer keeps tensor names, so the fp32 value_info applies);
       (b) exported `Cast(to=FLOAT)` upcasts would keep producing float32 into fp16 ops, so `Cast`
           is blocked (the converter then re-casts its float outputs to fp16), as transformers.js's
           float16 script does;
       (c) onnxconverter-common 1.16.0 iterates `graph.node` while appending the Casts it inserts
           around blocked nodes; with `Cast` blocked those new Casts are visited again forever,
           so we iterate a snapshot;
       (d) with keep_io_types, each `present.*` output becomes `Cast(fp16→fp32)` of a renamed fp16
           tensor, but nodes inside the graph that read `present.*` (the attention MatMuls read
           the concatenated cache) keep reading the float32 name; they are redirected to the fp16
           tensor.
     The same conversion of the fp32 model is transformers.js's "fp16" dtype (`convert_to_fp16`).
     transformers.js runs its own copy of this converter (scripts/float16.py, derived from
     onnxconverter-common) with keep_io_types=True and `Cast` in its block list; its other
     changes are fixes (c) and (d) done in place, names of the inserted Casts, a different
     topological sort, and `Range` not blocked (all Range ops here are int64, so no difference).
  4. transformers.js's 8-bit and bnb4 dtypes, as its scripts/quantize.py makes them from the fp32
     model: `quantize_q8` (ONNX Runtime dynamic quantization: DynamicQuantizeLinear +
     MatMulInteger) for q8 / int8 / uint8, and `quantize_bnb4` (MatMulBnb4, NF4, block 64).
"""
from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import onnx
from onnx import TensorProto


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. export


def export_optimum(src_dir: str | Path, out_dir: str | Path, opset: int) -> Path:
    """optimum export of a Qwen2 checkpoint directory; returns the path of model.onnx."""
    from optimum.exporters.onnx import main_export

    out_dir = Path(out_dir)
    main_export(
        str(src_dir),
        output=str(out_dir),
        task="text-generation-with-past",
        opset=opset,
        device="cpu",
        do_validation=False,
    )
    path = out_dir / "model.onnx"
    if not path.exists():
        raise SystemExit(f"optimum export did not write {path}: {sorted(os.listdir(out_dir))}")
    return path


# ---------------------------------------------------------------------------------------------
# shape inference on a weight-less copy


def inferred_value_info(model_path: str | Path) -> list[onnx.ValueInfoProto]:
    """Shape/type inference on the graph without loading external weights.

    Initializers that live in external data keep their dims and dtype, which is all inference
    needs; small inline initializers (shape constants) stay. Works for models beyond 2 GB."""
    inferred = onnx.shape_inference.infer_shapes(_weightless(model_path), strict_mode=False, data_prop=True)
    return list(inferred.graph.value_info)


def _weightless(model_path: str | Path) -> onnx.ModelProto:
    m = onnx.load(str(model_path), load_external_data=False)
    # Drop large inline payloads too, so the serialized proto stays small.
    for init in m.graph.initializer:
        if init.HasField("raw_data") and len(init.raw_data) > 4096:
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL
            del init.external_data[:]
            e = init.external_data.add()
            e.key, e.value = "location", "__weightless__"
    return m


def inferred_elem_types(model_path: str | Path) -> dict[str, int]:
    """Element type of every tensor. onnx's inference knows no com.microsoft op and stops behind
    one, so the output of MatMulNBits / MatMulBnb4 (typed like input A) is declared and inference
    rerun until nothing new is learnt."""
    m = _weightless(model_path)
    g = m.graph
    while True:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True).graph
        types = {v.name: v.type.tensor_type.elem_type
                 for v in list(inferred.input) + list(inferred.output) + list(inferred.value_info)
                 if v.type.tensor_type.elem_type}
        types.update({i.name: i.data_type for i in g.initializer})
        new = [onnx.helper.make_tensor_value_info(n.output[0], types[n.input[0]], None) for n in g.node
               if n.domain == "com.microsoft" and n.op_type in ("MatMulNBits", "MatMulBnb4")
               and n.input[0] in types and n.output[0] not in types]
        if not new:
            return types
        g.value_info.extend(new)


# ---------------------------------------------------------------------------------------------
# 2. q4


def quantize_q4(model: onnx.ModelProto, block_size: int = 32) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    q = MatMulNBitsQuantizer(model, block_size=block_size, is_symmetric=True)
    q.process()
    return q.model.model


# ---------------------------------------------------------------------------------------------
# transformers.js dtypes: q8 / int8 / uint8 (MatMulInteger) and bnb4 (MatMulBnb4)
#
# Followed: huggingface/transformers.js scripts/quantize.py (last version before the v4 repo
# restructure removed scripts/, commit 3c64b72675cb, 2026-01-23): `quantize_q8` and `quantize_bnb4`,
# with the CLI defaults (per_channel and reduce_range unset, no op_block_list, bnb4 block_size 64,
# quant_type NF4). Both start from the fp32 model.onnx, like transformers.js.

# transformers.js picks QUInt8 weights for "q8" only when the graph has one of these ops (Conv:
# onnxruntime-web has no int8 ConvInteger; GQA/MHA: onnxruntime-genai graphs); otherwise QInt8.
Q8_QUINT8_OPS = ("Conv", "GroupQueryAttention", "MultiHeadAttention")


def q8_weight_type(model: onnx.ModelProto) -> str:
    """transformers.js's weight type for dtype "q8": "QUInt8" or "QInt8"."""
    ops = set()

    def walk(graph):
        for node in graph.node:
            ops.add(node.op_type)
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    walk(model.graph)
    return "QUInt8" if ops & set(Q8_QUINT8_OPS) else "QInt8"


def quantize_q8(model: onnx.ModelProto, weight_type: str) -> onnx.ModelProto:
    """ONNX Runtime dynamic (IntegerOps) quantization exactly as transformers.js's quantize_q8:
    ONNXQuantizer used directly (not quantize_dynamic), every IntegerOpsRegistry op type (Conv,
    MatMul, Attention, LSTM, Gather, Transpose, EmbedLayerNormalization), per_channel and
    reduce_range off (the CLI's None), activations QUInt8, extra_options EnableSubgraph and
    MatMulConstBOnly. weight_type: "QInt8" (dtype int8, and q8 for graphs without Conv/GQA/MHA)
    or "QUInt8" (dtype uint8)."""
    from onnxruntime.quantization import QuantizationMode, QuantType
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    quantizer = ONNXQuantizer(
        model,
        False,  # per_channel (transformers.js default None)
        False,  # reduce_range (transformers.js default None)
        mode=QuantizationMode.IntegerOps,
        static=False,
        weight_qType=getattr(QuantType, weight_type),
        activation_qType=QuantType.QUInt8,
        tensors_range=None,
        nodes_to_quantize=[],
        nodes_to_exclude=[],
        op_types_to_quantize=set(IntegerOpsRegistry.keys()),
        extra_options=dict(EnableSubgraph=True, MatMulConstBOnly=True),
    )
    quantizer.quantize_model()
    return quantizer.model.model


def matmulinteger_b_to_uint8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The same function with every int8 `MatMulInteger` B (and b_zero_point) as uint8: B + 128 and
    b_zero_point + 128, so (A - a_zp)(B - b_zp) is unchanged term by term. For an exact reference:
    on x86 without AVX-VNNI, ONNX Runtime's u8 x s8 kernel (MLAS, `vpmaddubsw`) saturates each
    sum of two adjacent products a[k]b[k] + a[k+1]b[k+1] to int16, so its int8 results are not
    the ONNX definition; its u8 x u8 kernel widens both to int16 (`vpmaddwd`) and is exact.
    Operates on a copy; new initializers get the suffix `_uint8`, the old ones are dropped when
    nothing else reads them (the embedding Gather's DequantizeLinear keeps its own). Returns the
    model and the number of MatMulInteger nodes changed."""
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    init = {t.name: t for t in g.initializer}
    made: dict[str, str] = {}

    def as_uint8(name: str) -> str:
        if name not in made:
            t = init.get(name)
            if t is None or t.data_type != TensorProto.INT8:
                raise SystemExit(f"MatMulInteger B / b_zero_point {name!r} is not an int8 initializer")
            u = (numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8)
            made[name] = name + "_uint8"
            g.initializer.append(numpy_helper.from_array(u, made[name]))
        return made[name]

    changed = 0
    for node in g.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in init:
            continue
        if init[node.input[1]].data_type != TensorProto.INT8:
            continue
        if len(node.input) < 4 or not node.input[3]:
            raise SystemExit(f"{node.name}: int8 B without b_zero_point (would need one of 128)")
        node.input[1] = as_uint8(node.input[1])
        node.input[3] = as_uint8(node.input[3])
        changed += 1
    read = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in read]
    del g.initializer[:]
    g.initializer.extend(keep)
    return model, changed


def check_integer_ops_exact(model: onnx.ModelProto, feeds_list: list[dict[str, np.ndarray]]) -> dict:
    """Runs `model` in ONNX Runtime (ORT_DISABLE_ALL) with every MatMulInteger's inputs and output
    as extra graph outputs, on each feeds dict in turn, and compares each output with the exact
    int64 product (A - a_zp)(B - b_zp) computed in NumPy, at the inputs ONNX Runtime itself
    computed. Returns counts: runs, nodes, outputs checked, outputs differing, largest |error|.
    (Feeds are given, not chained: the caller passes the same feeds its references saw.)"""
    from onnx import numpy_helper

    m = onnx.ModelProto.FromString(model.SerializeToString())
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    nodes = [n for n in m.graph.node if n.op_type == "MatMulInteger"]
    wanted = []
    for n in nodes:
        for name in [*n.input, n.output[0]]:
            if name and name not in init and name not in wanted:
                wanted.append(name)
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=w) for w in wanted if w not in have)
    session = ort_session(m.SerializeToString(), "disable_all")
    outputs = differing = worst = 0
    for feeds in feeds_list:
        got = dict(zip(wanted, session.run(wanted, feeds)))
        val = lambda name: init[name] if name in init else got[name]  # noqa: E731
        for n in nodes:
            a, b = val(n.input[0]).astype(np.int64), val(n.input[1]).astype(np.int64)
            az = val(n.input[2]).astype(np.int64) if len(n.input) > 2 and n.input[2] else np.int64(0)
            bz = val(n.input[3]).astype(np.int64) if len(n.input) > 3 and n.input[3] else np.int64(0)
            if az.size > 1:  # per-row a_zero_point [M]: not in these exports
                raise SystemExit(f"MatMulInteger {n.name}: per-row a_zero_point is not handled here")
            exact = np.matmul(a - az, b - bz)  # b_zero_point scalar or per column [N]
            y = got[n.output[0]].astype(np.int64)
            if y.shape != exact.shape:
                raise SystemExit(f"MatMulInteger {n.name}: shape {y.shape}, expected {exact.shape}")
            error = np.abs(y - exact)
            outputs += y.size
            differing += int((error != 0).sum())
            worst = max(worst, int(error.max(initial=0)))
    return {"runs": len(feeds_list), "matmulinteger_nodes": len(nodes), "outputs_checked": outputs,
            "outputs_differing": differing, "max_abs_error": worst}


def check_like_transformers_js(model: onnx.ModelProto) -> None:
    """transformers.js's scripts/utils.py strict_check_model: full check, ops unknown to onnx allowed."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 (the same filter transformers.js applies)
        if "No Op registered for" not in str(e):
            raise


def quantize_bnb4(model: onnx.ModelProto, block_size: int = 64, quant_type: str = "NF4") -> onnx.ModelProto:
    """ONNX Runtime's MatMulBnb4Quantizer as transformers.js's quantize_bnb4 (defaults block_size
    64, quant_type NF4): every MatMul with a constant 2-D weight becomes com.microsoft.MatMulBnb4."""
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer

    q = MatMulBnb4Quantizer(model, quant_type=getattr(MatMulBnb4Quantizer, quant_type), block_size=block_size)
    q.process()
    return q.model.model


# ---------------------------------------------------------------------------------------------
# 3. fp16


def convert_to_fp16(model: onnx.ModelProto, value_info: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    """fp16 conversion (q4 → q4f16, and fp32 → fp16 for transformers.js's "fp16" dtype, which runs
    the same conversion on the fp32 model.onnx). See the module docstring for the fixes."""
    return convert_q4_to_q4f16(model, value_info)


def convert_q4_to_q4f16(model: onnx.ModelProto, value_info: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
    from onnxconverter_common import float16

    # (a) types of every intermediate tensor, from the fp32 graph (names survive quantization).
    known = {o.name for o in model.graph.output} | {i.name for i in model.graph.input}
    produced = {o for n in model.graph.node for o in n.output}
    del model.graph.value_info[:]
    model.graph.value_info.extend(v for v in value_info if v.name in produced and v.name not in known)
    missing = [o for n in model.graph.node for o in n.output
               if o and o not in {v.name for v in model.graph.value_info} and o not in known]
    if missing:
        log(f"fp16: {len(missing)} node outputs have no inferred type, e.g. {missing[:5]}")

    # (c) iterate a snapshot of graph.node while blocked nodes get Casts appended.
    def process_node_in_block_list(graph, global_input_name_dict, op_block_list, node_block_list):
        for node in list(graph.node):
            if (node.op_type in op_block_list) or (node.name in node_block_list):
                float16.insert_cast32_before_node(graph, node, global_input_name_dict)
                float16.insert_cast16_after_node(graph, node, global_input_name_dict)

    original = float16.process_node_in_block_list
    float16.process_node_in_block_list = process_node_in_block_list
    try:
        # (b) Cast blocked, like transformers.js's float16 conversion.
        out = float16.convert_float_to_float16(
            model,
            keep_io_types=True,
            disable_shape_infer=True,
            op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + ["Cast"],
        )
    finally:
        float16.process_node_in_block_list = original

    # (d) internal readers of a graph output read the fp16 tensor, not the fp32 Cast result.
    graph = out.graph
    producer = {o: n for n in graph.node for o in n.output}
    redirected = 0
    for go in graph.output:
        p = producer.get(go.name)
        if p is None or p.op_type != "Cast" or go.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        src = p.input[0]
        for n in graph.node:
            if n is p:
                continue
            for i, name in enumerate(n.input):
                if name == go.name:
                    n.input[i] = src
                    redirected += 1
    if redirected:
        log(f"fp16: redirected {redirected} internal reads of graph outputs to their fp16 tensors")
    float16.sort_topology(graph)
    return out


# ---------------------------------------------------------------------------------------------
# saving / describing


def save_model(model: onnx.ModelProto, path: str | Path, external_data: bool) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + "_data")
    if data.exists():
        data.unlink()
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=0, convert_attribute=False)
    else:
        onnx.save_model(model, str(path))


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    c = collections.Counter(
        (n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in model.graph.node
    )
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def _dims(t) -> list:
    return [d.dim_param if d.dim_param else d.dim_value for d in t.type.tensor_type.shape.dim]


QUANT_OPS = ("MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "MatMulBnb4")


def quantized_op_signatures(model_path: str | Path) -> list[dict]:
    """For each distinct (op, input types/shapes, attributes) among the quantization ops
    (MatMulInteger, DynamicQuantizeLinear, QuantizeLinear, DequantizeLinear, MatMulBnb4): how many
    nodes have it. Inputs read `init <dtype>[dims]` for initializers (a [] shape is a scalar, i.e.
    per-tensor scale / zero point), `<dtype>` for computed tensors; outputs give their dtype."""
    m = onnx.load(str(model_path), load_external_data=False)
    g = m.graph
    if not any(n.op_type in QUANT_OPS for n in g.node):
        return []
    name = lambda t: TensorProto.DataType.Name(t).lower()
    inits = {i.name: i for i in g.initializer}
    types = inferred_elem_types(model_path)

    def kind(x: str) -> str:
        if x == "":
            return "(absent)"
        if x in inits:
            return f"init {name(inits[x].data_type)}{list(inits[x].dims)}"
        return name(types[x]) if types.get(x) else "?"

    sigs = collections.Counter()
    for n in g.node:
        if n.op_type not in QUANT_OPS:
            continue
        attrs = tuple(sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute))
        sigs[((n.domain + "." if n.domain not in ("", "ai.onnx") else "") + n.op_type,
              tuple(kind(x) for x in n.input), tuple(kind(x) for x in n.output), attrs)] += 1
    return [{"op": op, "inputs": list(i), "outputs": list(o), "attributes": dict(a), "count": c}
            for (op, i, o, a), c in sorted(sigs.items())]


def describe(model_path: str | Path) -> dict:
    m = onnx.load(str(model_path), load_external_data=False)
    g = m.graph
    dt = lambda v: TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()
    initializer_types = collections.Counter(TensorProto.DataType.Name(i.data_type).lower() for i in g.initializer)
    mnb = [n for n in g.node if n.op_type == "MatMulNBits"]
    mnb_attrs = sorted({tuple(sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute))
                        for n in mnb})
    extra = {}  # only for graphs that have these ops, so older manifests' entries stay as they were
    bnb4 = [n for n in g.node if n.op_type == "MatMulBnb4"]
    if bnb4:
        extra["matmulbnb4_attributes"] = [dict(a) for a in sorted(
            {tuple(sorted((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute)) for n in bnb4})]
    sigs = quantized_op_signatures(model_path)
    if sigs:
        extra["quantized_op_signatures"] = sigs
    return {
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "ir_version": m.ir_version,
        "inputs": [{"name": i.name, "dtype": dt(i), "shape": _dims(i)} for i in g.input],
        "outputs": [{"name": o.name, "dtype": dt(o), "shape": _dims(o)} for o in g.output],
        "node_count": len(g.node),
        "op_histogram": op_histogram(m),
        "initializer_count": len(g.initializer),
        "initializer_dtypes": dict(sorted(initializer_types.items())),
        "matmulnbits_attributes": [dict(a) for a in mnb_attrs],
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# ONNX Runtime oracle


OPT_LEVELS = {"disable_all": "ORT_DISABLE_ALL", "enable_all": "ORT_ENABLE_ALL"}


def ort_session(model_path: str | Path | bytes, opt_level: str, threads: int = 1):
    """A CPU session; model_path may also be a serialized model (bytes)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_path if isinstance(model_path, bytes) else str(model_path), sess_options=so, providers=["CPUExecutionProvider"])


class KVRunner:
    """Feeds a text-generation-with-past graph: prefill, then one token per step, present→past."""

    def __init__(self, session):
        self.session = session
        self.inputs = {i.name: i for i in session.get_inputs()}
        self.output_names = [o.name for o in session.get_outputs()]
        self.past_names = [n for n in self.inputs if n.startswith("past_key_values.")]
        self.past = None
        self.length = 0

    def empty_past(self) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self.past_names:
            shape = self.inputs[name].shape  # [batch, kv_heads, past, head_dim]
            feeds[name] = np.zeros((1, int(shape[1]), 0, int(shape[3])), dtype=np.float32)
        return feeds

    def feeds_for(self, ids: list[int]) -> dict[str, np.ndarray]:
        n = len(ids)
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, self.length + n), dtype=np.int64),
            "position_ids": np.arange(self.length, self.length + n, dtype=np.int64)[None, :],
        }
        feeds.update(self.empty_past() if self.past is None else self.past)
        return {k: v for k, v in feeds.items() if k in self.inputs}

    def step(self, ids: list[int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Runs len(ids) tokens; returns logits [1, n, vocab] and the present.* outputs."""
        feeds = self.feeds_for(ids)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
        presents = {k: v for k, v in outs.items() if k.startswith("present.")}
        self.past = {k.replace("present.", "past_key_values.", 1): v for k, v in presents.items()}
        self.length += len(ids)
        return outs["logits"], presents


def save_npy(path: Path, array: np.ndarray) -> dict:
    """Little-endian float32/int64 .npy (format 1.0); returns a manifest entry."""
    a = np.asarray(array)
    if a.dtype.kind == "f":
        a = a.astype("<f4")
    elif a.dtype.kind in "iu":
        a = a.astype("<i8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(a), version=(1, 0))
    return {"shape": list(a.shape), "dtype": a.dtype.str}


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for p in ["torch", "transformers", "tokenizers", "optimum", "optimum-onnx", "onnx", "onnx-ir",
              "onnxruntime", "onnxconverter-common", "numpy", "gguf", "protobuf"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out
