#!/usr/bin/env python3
"""Small single-node (or tiny multi-node) ONNX models with ONNX Runtime's outputs, for the operator tests.

Usage:  .venv/bin/python scripts/make_op_references.py [--out Tests/RuntimeTests/Data/ops] [--check] [--only SUBSTR]

For each case writes

  <case>/model.onnx                 the graph; weights, caches' rotary tables etc. are initializers,
                                    activations are graph inputs
  <case>/inputs/<k>_<name>.npy      every graph input k (in graph order), native dtype
  <case>/outputs/<k>_<name>.npy     every graph output k, from ONNX Runtime with ORT_DISABLE_ALL
  <case>/case.json                  op, domain, opset, description, inputs/outputs (name, file, dtype,
                                    shape, rtol, atol), rtol/atol (the loosest of the outputs'),
                                    attributes, initializers, how the case was fed (notes), the max
                                    |ORT_ENABLE_ALL - ORT_DISABLE_ALL| per output, and the max
                                    |ORT - numpy reference| per output

and manifest.json (versions, the list of cases, what ORT refused) and README.md. Every case is also
computed by an independent numpy reference in this file (float64 math from the operator's documented semantics); generation
fails when ORT disagrees with it or ORT_ENABLE_ALL disagrees with ORT_DISABLE_ALL beyond the case's
tolerance, so the semantics written down here are the ones ORT 1.31.1 implements.

Everything is seeded (numpy default_rng keyed by the case name); running twice gives byte-identical
files (checked by --check, which regenerates into a temporary directory and compares sha256).

Cases that ONNX Runtime 1.31.1's CPU provider refuses are not written: refusal_probes() tries each
at generation (failing if ORT starts accepting one) and manifest.json / README.md list ORT's message.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests" / "RuntimeTests" / "Data" / "ops"
SEED = 20261205
MS = "com.microsoft"

NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT, np.dtype("float16"): TensorProto.FLOAT16,
    np.dtype("int8"): TensorProto.INT8, np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("int32"): TensorProto.INT32, np.dtype("int64"): TensorProto.INT64,
}
ONNX_NAMES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16", TensorProto.INT8: "int8",
              TensorProto.UINT8: "uint8", TensorProto.INT32: "int32", TensorProto.INT64: "int64",
              TensorProto.INT4: "int4", TensorProto.UINT4: "uint4"}

# What ORT 1.31.1 (CPU) refuses (filled by check_refusals(), which tries each; not generated as cases).
REFUSED: dict[str, str] = {}


def log(msg: str) -> None:
    print(f"[make_op_references] {msg}", file=sys.stderr, flush=True)


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ---------------------------------------------------------------------------------------------
# graph building


class G:
    """A tiny graph builder: graph inputs (with their feeds), initializers, nodes, outputs."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.feeds: dict[str, np.ndarray] = {}
        self.inits: list[onnx.TensorProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []

    def input(self, name: str, value: np.ndarray) -> str:
        value = np.asarray(value)
        self.inputs.append(helper.make_tensor_value_info(name, NP_TO_ONNX[value.dtype], list(value.shape)))
        self.feeds[name] = value
        return name

    def init(self, name: str, value) -> str:
        t = value if isinstance(value, onnx.TensorProto) else numpy_helper.from_array(np.asarray(value), name)
        t.name = name
        self.inits.append(t)
        return name

    def init4(self, name: str, values: np.ndarray, signed: bool, raw: bool = True) -> str:
        """An int4/uint4 initializer: two a byte, element 0 in the low nibble. raw=True stores the bytes in
        raw_data (as quantizers and the genai model builder write them); raw=False uses int32_data, one
        packed byte per int32 (the other form the ONNX spec allows)."""
        import ml_dtypes

        v = np.asarray(values)
        if raw:
            t = numpy_helper.from_array(v.astype(ml_dtypes.int4 if signed else ml_dtypes.uint4), name)
        else:
            t = helper.make_tensor(name, TensorProto.INT4 if signed else TensorProto.UINT4, list(v.shape),
                                   [int(x) for x in v.flatten()])
            assert len(t.raw_data) == 0 and len(t.int32_data) == (v.size + 1) // 2
        self.inits.append(t)
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(self.nodes)}",
                                           domain=domain or None, **attrs))

    def output(self, name: str, elem_type: int) -> str:
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, None))
        return name

    def model(self, opset: int) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "case", self.inputs, self.outputs, self.inits)
        opsets = [helper.make_opsetid("", opset)]
        if any(n.domain == MS for n in self.nodes):
            opsets.append(helper.make_opsetid(MS, 1))
        m = helper.make_model(graph, opset_imports=opsets, ir_version=10 if opset <= 21 else 11,
                              producer_name="make_op_references.py")
        return m  # (outputs are declared without shapes, as ORT accepts; onnx.checker would want them)


# ---------------------------------------------------------------------------------------------
# cases


@dataclass
class Case:
    name: str
    op: str
    domain: str
    description: str
    model: onnx.ModelProto
    feeds: dict[str, np.ndarray]
    reference: Callable[[], list[np.ndarray]] | None  # numpy reference outputs (graph output order)
    tolerance: dict[str, tuple[float, float]] | None = None  # output name -> (rtol, atol); default by dtype
    notes: dict = field(default_factory=dict)


CASES: list[Callable[[], list[Case]]] = []


def cases(fn):
    CASES.append(fn)
    return fn


def tol_for(ref: np.ndarray) -> tuple[float, float]:
    """Fair tolerance for float32 / float16 internals, relative to the magnitude of the output."""
    a = np.asarray(ref)
    if a.dtype.kind in "iub":
        return 0.0, 0.0
    mag = max(1.0, float(np.abs(a.astype(np.float64)).max()) if a.size else 1.0)
    if a.dtype == np.float16:
        return 2e-3, float(f"{2e-3 * mag:.1g}")
    return 1e-5, float(f"{1e-5 * mag:.1g}")


def rne(x):
    return np.rint(x)  # IEEE round half to even


# ----- DynamicQuantizeLinear ------------------------------------------------------------------


def ref_dql(x: np.ndarray) -> list[np.ndarray]:
    x = x.astype(np.float32)
    lo = np.float32(min(0.0, float(x.min())))
    hi = np.float32(max(0.0, float(x.max())))
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        scale = np.float32(1.0)  # ORT: all-zero input gives scale 1, zero point 0
    zp = np.float32(np.clip(rne(np.float32(0) - lo / scale), 0, 255))
    y = np.clip(rne(x / scale) + zp, 0, 255).astype(np.uint8)
    return [y, np.asarray(scale, np.float32), np.asarray(zp, np.uint8)]


@cases
def dynamic_quantize_linear() -> list[Case]:
    out = []
    specs = [
        ("dql_mixed_sign", "range crossing 0 ([-2.3, 4.1] and exact min/max present)", (4, 33)),
        ("dql_all_positive", "all values positive (range widened to include 0: zero point 0)", (2, 17)),
        ("dql_all_negative", "all values negative (range widened to include 0: zero point 255)", (3, 7)),
        ("dql_all_zero", "all zeros (ORT: scale 1, zero point 0, y 0)", (3, 5)),
    ]
    for name, desc, shape in specs:
        r = rng_for(name)
        if name == "dql_mixed_sign":
            x = r.uniform(-2.3, 4.1, shape).astype(np.float32)
            x.flat[0], x.flat[1] = -2.3, 4.1
        elif name == "dql_all_positive":
            x = r.uniform(0.5, 3.0, shape).astype(np.float32)
        elif name == "dql_all_negative":
            x = r.uniform(-3.0, -0.25, shape).astype(np.float32)
        else:
            x = np.zeros(shape, np.float32)
        g = G()
        g.input("x", x)
        g.node("DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"])
        g.output("y", TensorProto.UINT8), g.output("y_scale", TensorProto.FLOAT), g.output("y_zero_point", TensorProto.UINT8)
        out.append(Case(name, "DynamicQuantizeLinear", "", desc, g.model(11), g.feeds, lambda x=x: ref_dql(x),
                        tolerance={"y": (0.0, 1.0), "y_scale": (1e-6, 0.0), "y_zero_point": (0.0, 0.0)},
                        notes={"tolerance": "y: +-1 allowed where x/scale lands within rounding of a .5 tie; "
                                            "ORT's y here is exactly round_half_even(x / scale) + zero_point, "
                                            "saturated to [0, 255]"}))
    return out


# ----- MatMulInteger --------------------------------------------------------------------------


def ref_mmi(a, b, azp=None, bzp=None):
    a = a.astype(np.int64) - (0 if azp is None else np.asarray(azp).astype(np.int64))
    b = b.astype(np.int64) - (0 if bzp is None else np.asarray(bzp).astype(np.int64))
    return [np.matmul(a, b).astype(np.int32)]


@cases
def matmul_integer() -> list[Case]:
    # On x86 without VNNI, ORT's u8 x s8 kernel (vpmaddubsw) saturates pairs of products at int16:
    # with A in [0, 255] and B in [-128, 127] ORT's result is wrong (by up to ~70000 here). The u8 x s8
    # cases keep |B| <= 64 (what reduce_range does), so ORT's output is the exact integer product.
    out = []
    specs = [
        # name, A dtype, B dtype, A shape, (K, N), a_zp, b_zp kind, description
        ("mmi_u8s8_no_zp", np.uint8, np.int8, (5, 40), (40, 7), None, None, "u8 x s8, no zero points, K=40"),
        ("mmi_u8s8_scalar_zp_rank3", np.uint8, np.int8, (2, 3, 40), (40, 9), "scalar", "scalar",
         "u8 x s8, scalar a/b zero points, A rank 3 [2,3,40] broadcast over B [40,9]"),
        ("mmi_u8s8_col_zp", np.uint8, np.int8, (4, 33), (33, 6), "scalar", "col",
         "u8 x s8, scalar a_zero_point, per-column b_zero_point [N], K=33"),
        ("mmi_u8u8_col_zp", np.uint8, np.uint8, (3, 50), (50, 5), "scalar", "col",
         "u8 x u8 full range, scalar a_zero_point, per-column b_zero_point [N], K=50"),
        ("mmi_u8u8_no_zp_rank3", np.uint8, np.uint8, (2, 1, 24), (24, 4), None, None,
         "u8 x u8 full range, no zero points, A rank 3 [2,1,24] (M=1)"),
        ("mmi_s8s8_scalar_zp", np.int8, np.int8, (6, 20), (20, 8), "scalar", "scalar",
         "s8 x s8 full range, scalar zero points"),
        ("mmi_s8s8_col_zp_rank3", np.int8, np.int8, (2, 2, 19), (19, 3), "scalar", "col",
         "s8 x s8 full range, A rank 3, per-column b_zero_point [N], K=19"),
        ("mmi_s8u8_1elem_zp", np.int8, np.uint8, (3, 17), (17, 5), "vec1", "vec1",
         "s8 x u8, zero points as 1-element vectors [1]"),
    ]

    def rand(r, dt, shape, limit=None):
        info = np.iinfo(dt)
        lo, hi = int(info.min), int(info.max)
        if limit is not None:
            lo, hi = max(lo, -limit), min(hi, limit - 1)
        return r.integers(lo, hi + 1, shape).astype(dt)

    for name, adt, bdt, ashape, (k, n), azp_kind, bzp_kind, desc in specs:
        r = rng_for(name)
        u8s8 = adt == np.uint8 and bdt == np.int8
        a = rand(r, adt, ashape)
        b = rand(r, bdt, (k, n), 64 if u8s8 else None)
        g = G()
        g.input("A", a)
        g.init("B", b)
        ins = ["A", "B"]
        azp = bzp = None
        if azp_kind:
            azp = rand(r, adt, () if azp_kind == "scalar" else (1,), 64 if adt == np.int8 else None)
            g.input("a_zero_point", azp)
            ins.append("a_zero_point")
        if bzp_kind:
            if not azp_kind:
                ins.append("")
            shape = {"scalar": (), "vec1": (1,), "col": (n,)}[bzp_kind]
            bzp = rand(r, bdt, shape, 32 if u8s8 else None)
            g.init("b_zero_point", bzp)
            ins.append("b_zero_point")
        g.node("MatMulInteger", ins, ["Y"])
        g.output("Y", TensorProto.INT32)
        notes = {"B": "initializer", "b_zero_point": "initializer" if bzp_kind else "absent",
                 "a_zero_point": "graph input" if azp_kind else "absent"}
        if u8s8:
            notes["data"] = "B (and b_zero_point) kept in [-64, 63] so ORT's u8s8 AVX2 kernel does not saturate"
        out.append(Case(name, "MatMulInteger", "", desc, g.model(10), g.feeds,
                        lambda a=a, b=b, azp=azp, bzp=bzp: ref_mmi(a, b, azp, bzp), notes=notes))
    return out


# ----- quantize_dynamic MatMul pattern --------------------------------------------------------


@cases
def quantize_dynamic_matmul() -> list[Case]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = []
    k, n = 40, 24
    for wt in ["QInt8", "QUInt8"]:
        for per_channel in [False, True]:
            name = f"qdyn_matmul_{wt.lower()}{'_per_channel' if per_channel else ''}"
            r = rng_for(name)
            w = (r.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
            x = r.standard_normal((2, 3, k)).astype(np.float32)
            fg = G()
            fg.input("x", x)
            fg.init("W", w)
            fg.node("MatMul", ["x", "W"], ["y"])
            fg.output("y", TensorProto.FLOAT)
            fm = fg.model(21)
            # u8 x s8 needs reduce_range on x86 without VNNI, else ORT's own result saturates (see matmul_integer).
            reduce_range = wt == "QInt8"
            with tempfile.TemporaryDirectory() as tmp:
                qpath = Path(tmp) / "q.onnx"
                quantize_dynamic(fm, qpath, per_channel=per_channel, reduce_range=reduce_range,
                                 weight_type=getattr(QuantType, wt))
                qm = onnx.load(str(qpath))
            ops = [nd.op_type for nd in qm.graph.node]
            desc = (f"onnxruntime.quantization.quantize_dynamic of x[2,3,40] @ W[40,24]: weight_type {wt}, "
                    f"per_channel {per_channel}, reduce_range {reduce_range} -> {' -> '.join(ops)}")
            out.append(Case(name, "MatMulInteger", "", desc, qm, {"x": x}, lambda qm=qm, x=x: ref_graph(qm, {"x": x}),
                            notes={"nodes": ops, "initializers": "W quantized by quantize_dynamic",
                                   "reduce_range": "u8 x s8 on x86 without VNNI saturates in ORT unless the weights are 7-bit"
                                   if reduce_range else "not needed for u8 x u8"}))
    return out


def ref_graph(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """numpy evaluation of the quantize_dynamic pattern (the ops it emits), node by node."""
    env = dict(feeds)
    for t in model.graph.initializer:
        env[t.name] = numpy_helper.to_array(t)
    for nd in model.graph.node:
        ins = [env[i] if i else None for i in nd.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in nd.attribute}
        if nd.op_type == "DynamicQuantizeLinear":
            res = ref_dql(ins[0])
        elif nd.op_type == "MatMulInteger":
            res = ref_mmi(*ins)
        elif nd.op_type == "Cast":
            res = [ins[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))]
        elif nd.op_type == "Mul":
            res = [(ins[0] * ins[1]).astype(np.float32)]
        elif nd.op_type == "MatMul":
            res = [ins[0] @ ins[1]]
        else:
            raise SystemExit(f"ref_graph: no reference for {nd.op_type}")
        for name, v in zip(nd.output, res):
            env[name] = v
    return [env[o.name] for o in model.graph.output]


# ----- QuantizeLinear / DequantizeLinear ------------------------------------------------------

QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int4": (-8, 7), "uint4": (0, 15)}


def expand_scale(scale: np.ndarray, xshape, axis: int | None, block: int | None) -> np.ndarray:
    s = np.asarray(scale)
    if s.ndim == 0 or s.size == 1 and axis is None:
        return np.broadcast_to(s.reshape(()), xshape)
    if block:
        return np.repeat(s, block, axis=axis).take(np.arange(xshape[axis]), axis=axis)
    shape = [1] * len(xshape)
    shape[axis] = xshape[axis]
    return np.broadcast_to(s.reshape(shape), xshape)


def ref_q(x, scale, zp, qtype, axis=None, block=None):
    s = expand_scale(scale, x.shape, axis, block).astype(np.float32)
    z = 0 if zp is None else expand_scale(zp, x.shape, axis, block).astype(np.float64)
    lo, hi = QRANGE[qtype]
    q = np.clip(rne(x.astype(np.float32) / s) + z, lo, hi)  # round(x / scale), then + zero point
    return q


def ref_dq(q, scale, zp, axis=None, block=None, out_dtype=np.float32):
    s = expand_scale(scale, q.shape, axis, block)
    z = 0 if zp is None else expand_scale(zp, q.shape, axis, block).astype(np.int64)
    return ((q.astype(np.int64) - z).astype(np.float32) * s.astype(np.float32)).astype(out_dtype)


def tie_values(r, shape, scale: np.ndarray, axis, block, qtype, zp) -> np.ndarray:
    """Values x = (k + frac) * scale with frac in {0, .5, -.5, .25, .75}, some far out of range (saturation)."""
    s = expand_scale(scale, shape, axis, block).astype(np.float64)
    lo, hi = QRANGE[qtype]
    z = 0 if zp is None else expand_scale(zp, shape, axis, block).astype(np.float64)
    k = r.integers(lo - 4, hi + 5, shape).astype(np.float64) - z
    frac = r.choice([0.0, 0.5, -0.5, 0.5, -0.5, 0.25, 0.75], shape)
    x = (k + frac) * s
    flat = x.reshape(-1)
    flat[:4] = [1e4, -1e4, (hi + 0.5) * s.reshape(-1)[2], (lo - 0.5) * s.reshape(-1)[3]]
    return x.astype(np.float32)


@cases
def quantize_dequantize_linear() -> list[Case]:
    out = []
    P2 = [0.5, 0.25, 0.125, 1.0, 2.0, 0.0625]  # powers of two: x / scale is exact, ties stay ties

    def q_case(name, desc, shape, qtype, scale, zp, axis=None, block=None, fdt=np.float32, opset=21):
        r = rng_for(name)
        x = tie_values(r, shape, scale, axis, block, qtype, zp).astype(fdt)
        g = G()
        g.input("x", x)
        g.init("y_scale", np.asarray(scale).astype(fdt))
        ins = ["x", "y_scale"]
        attrs = {}
        if axis is not None:
            attrs["axis"] = axis
        if block:
            attrs["block_size"] = block
        four = qtype in ("int4", "uint4")
        if zp is not None:
            if four:
                g.init4("y_zero_point", np.asarray(zp), qtype == "int4")
            else:
                g.init("y_zero_point", np.asarray(zp).astype(qtype))
            ins.append("y_zero_point")
        if four:  # an int4 tensor cannot be a .npy: Cast it to int8 for the output
            g.node("QuantizeLinear", ins, ["q"], **attrs)
            g.node("Cast", ["q"], ["y"], to=TensorProto.INT8)
            g.output("y", TensorProto.INT8)
        else:
            g.node("QuantizeLinear", ins, ["y"], **attrs)
            g.output("y", NP_TO_ONNX[np.dtype(qtype)] if zp is not None else TensorProto.UINT8)
        odt = np.int8 if four else (np.dtype(qtype) if zp is not None else np.uint8)
        ref = lambda: [ref_q(x, np.asarray(scale).astype(fdt), zp, qtype, axis, block).astype(odt)]
        notes = {"y_scale": "initializer", "y_zero_point": "initializer" if zp is not None else "absent",
                 "data": "x = (k + f) * scale with f in {0, +-0.5, 0.25, 0.75} (exact .5 ties) and values far out of range"}
        if four:
            notes["graph"] = "QuantizeLinear -> Cast(to=INT8), since int4 has no .npy form"
        out.append(Case(name, "QuantizeLinear", "", desc, g.model(opset), g.feeds, ref, notes=notes))

    def dq_case(name, desc, shape, qtype, scale, zp, axis=None, block=None, fdt=np.float32, opset=21, raw=True):
        r = rng_for(name)
        lo, hi = QRANGE[qtype]
        q = r.integers(lo, hi + 1, shape)
        q.reshape(-1)[:2] = [lo, hi]
        g = G()
        four = qtype in ("int4", "uint4")
        if four:
            g.init4("x", q, qtype == "int4", raw=raw)
        else:
            g.init("x", q.astype(qtype))
        g.init("x_scale", np.asarray(scale).astype(fdt))
        ins = ["x", "x_scale"]
        if zp is not None:
            if four:
                g.init4("x_zero_point", np.asarray(zp), qtype == "int4", raw=raw)
            else:
                g.init("x_zero_point", np.asarray(zp).astype(qtype))
            ins.append("x_zero_point")
        attrs = {}
        if axis is not None:
            attrs["axis"] = axis
        if block:
            attrs["block_size"] = block
        g.node("DequantizeLinear", ins, ["y"], **attrs)
        g.output("y", NP_TO_ONNX[np.dtype(fdt)])
        ref = lambda: [ref_dq(q, np.asarray(scale).astype(fdt), zp, axis, block, fdt)]
        notes = {"x, x_scale, x_zero_point": "initializers (the graph has no inputs)"
                 + ("" if raw else "; the int4 tensors are stored in int32_data (one packed byte per int32), not raw_data"),
                 "quantized values": q.reshape(-1)[:8].tolist()}
        out.append(Case(name, "DequantizeLinear", "", desc, g.model(opset), {}, ref, notes=notes))

    r = rng_for("qdq-params")
    # --- QuantizeLinear
    q_case("q_per_tensor_u8", "per-tensor uint8, scale 0.5, odd zero point 3: ties round half to even before adding the zero point; saturation",
           (4, 16), "uint8", np.float32(0.5), np.uint8(3))
    q_case("q_per_tensor_s8", "per-tensor int8, scale 0.25, zero point -3 (odd); ties; saturation to [-128, 127]",
           (3, 20), "int8", np.float32(0.25), np.int8(-3))
    q_case("q_per_tensor_no_zp", "per-tensor, no zero point: output uint8 with zero point 0; negatives saturate to 0",
           (2, 24), "uint8", np.float32(0.125), None)
    q_case("q_per_axis0_s8", "per-axis axis=0 int8: scale [3], zero point [3]", (3, 10), "int8",
           np.array([0.5, 0.25, 2.0], np.float32), np.array([1, -5, 0], np.int8), axis=0)
    q_case("q_per_axis1_u8", "per-axis axis=1 uint8: scale [6], zero point [6]", (5, 6), "uint8",
           np.array(P2, np.float32), np.array([0, 1, 127, 128, 200, 255], np.uint8), axis=1)
    q_case("q_blocked_axis1_s8", "blocked axis=1 block_size 32, x [3,72] (last block 8 wide), int8, scale/zp [3,3]",
           (3, 72), "int8", r.choice(P2, (3, 3)).astype(np.float32), r.integers(-9, 10, (3, 3)).astype(np.int8),
           axis=1, block=32)
    q_case("q_blocked_axis0_u8", "blocked axis=0 block_size 32, x [40,4] (last block 8 tall), uint8, scale/zp [2,4]",
           (40, 4), "uint8", r.choice(P2, (2, 4)).astype(np.float32), r.integers(100, 140, (2, 4)).astype(np.uint8),
           axis=0, block=32)
    q_case("q_int4_blocked", "int4 output, blocked axis=1 block 32 on x [2,40], int4 zero point [2,2]; saturation to [-8, 7]",
           (2, 40), "int4", r.choice(P2, (2, 2)).astype(np.float32), np.array([[1, -2], [0, 3]]), axis=1, block=32)
    q_case("q_uint4_per_tensor", "uint4 output, per-tensor scale 0.5, zero point 7; saturation to [0, 15]",
           (3, 9), "uint4", np.float32(0.5), np.array(7))
    q_case("q_fp16_s8", "float16 x and scale (0.25), int8 zero point -1", (4, 12), "int8", np.float16(0.25),
           np.int8(-1), fdt=np.float16)
    q_case("q_per_axis1_s8_opset25", "per-axis axis=1 int8 at opset 25 (newest QuantizeLinear ORT 1.31 registers)",
           (4, 5), "int8", np.array([0.5, 0.25, 1.0, 2.0, 0.125], np.float32), np.array([0, 1, -1, 3, -3], np.int8),
           axis=1, opset=25)
    # --- DequantizeLinear
    dq_case("dq_per_tensor_u8", "per-tensor uint8 with zero point 131", (4, 10), "uint8", np.float32(0.037), np.uint8(131))
    dq_case("dq_per_tensor_s8_no_zp", "per-tensor int8, no zero point", (3, 11), "int8", np.float32(0.0123), None)
    dq_case("dq_per_axis0_s8", "per-axis axis=0 int8, scale/zp [4]", (4, 6), "int8",
            r.uniform(0.01, 0.1, 4).astype(np.float32), r.integers(-5, 6, 4).astype(np.int8), axis=0)
    dq_case("dq_per_axis1_u8", "per-axis axis=1 uint8, scale/zp [7]", (3, 7), "uint8",
            r.uniform(0.01, 0.1, 7).astype(np.float32), r.integers(120, 136, 7).astype(np.uint8), axis=1)
    dq_case("dq_blocked_axis1_s8", "blocked axis=1 block 32, x [3,72] int8 (last block 8 wide), scale/zp [3,3]",
            (3, 72), "int8", r.uniform(0.01, 0.1, (3, 3)).astype(np.float32), r.integers(-4, 5, (3, 3)).astype(np.int8),
            axis=1, block=32)
    dq_case("dq_blocked_axis0_u8", "blocked axis=0 block 32, x [40,3] uint8 (last block 8 tall), scale/zp [2,3]",
            (40, 3), "uint8", r.uniform(0.01, 0.1, (2, 3)).astype(np.float32), r.integers(120, 136, (2, 3)).astype(np.uint8),
            axis=0, block=32)
    dq_case("dq_int4_blocked_axis1", "int4 x [3,72] blocked axis=1 block 32, int4 zero point [3,3] (odd element count 9: last byte half used)",
            (3, 72), "int4", r.uniform(0.01, 0.1, (3, 3)).astype(np.float32), r.integers(-8, 8, (3, 3)), axis=1, block=32)
    dq_case("dq_uint4_blocked_axis0", "uint4 x [33,5] blocked axis=0 block 32 (odd element count 165), uint4 zero point [2,5]",
            (33, 5), "uint4", r.uniform(0.01, 0.1, (2, 5)).astype(np.float32), r.integers(0, 16, (2, 5)), axis=0, block=32)
    dq_case("dq_int4_blocked_int32_data", "as dq_int4_blocked_axis1 on x [2,40] but the int4 initializers are stored in "
            "int32_data (one packed byte per int32) instead of raw_data", (2, 40), "int4",
            r.uniform(0.01, 0.1, (2, 2)).astype(np.float32), r.integers(-8, 8, (2, 2)), axis=1, block=32, raw=False)
    dq_case("dq_int4_per_axis0_no_zp", "int4 x [5,7] per-axis axis=0, no zero point", (5, 7), "int4",
            r.uniform(0.01, 0.1, 5).astype(np.float32), None, axis=0)
    dq_case("dq_uint4_per_tensor", "uint4 x [3,5] (odd count 15) per-tensor, zero point 8", (3, 5), "uint4",
            np.float32(0.3), np.array(8))
    dq_case("dq_fp16_scale_s8", "int8 per-tensor with float16 scale: output float16", (3, 16), "int8",
            np.float16(0.0372), np.int8(2), fdt=np.float16)
    dq_case("dq_fp16_blocked_int4", "int4 blocked axis=1 block 32 with float16 scales [2,2]: output float16",
            (2, 64), "int4", r.uniform(0.01, 0.1, (2, 2)).astype(np.float16), r.integers(-2, 3, (2, 2)), axis=1,
            block=32, fdt=np.float16)
    return out


# ----- MatMulBnb4 -----------------------------------------------------------------------------

FP4_MAP = np.array([0.0, 5.208333333e-03, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25,
                    -0.0, -5.208333333e-03, -0.66666667, -1.0, -0.33333333, -0.5, -0.16666667, -0.25], np.float32)
NF4_MAP = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                    0.7229568362236023, 1.0], np.float32)


def bnb4_dequant(packed, absmax, quant_type, block, n, k) -> np.ndarray:
    """B as [N, K]: the transposed weight flattened row-major, blocks of `block` consecutive elements
    (crossing rows when K is not a multiple), two codes a byte, element 2i in the HIGH nibble."""
    codes = np.empty(packed.size * 2, np.int64)
    codes[0::2] = packed >> 4
    codes[1::2] = packed & 15
    numel = n * k
    table = FP4_MAP if quant_type == 0 else NF4_MAP
    vals = table[codes[:numel]].astype(np.float32) * np.repeat(absmax.astype(np.float32), block)[:numel]
    return vals.reshape(n, k)


@cases
def matmul_bnb4() -> list[Case]:
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer

    out = []
    specs = [  # quant_type, block, K, N, M shape, A dtype
        (0, 16, 40, 12, (1, 40), np.float32),
        (1, 16, 40, 12, (5, 40), np.float32),
        (0, 64, 72, 10, (2, 5, 72), np.float32),
        (1, 64, 72, 10, (1, 1, 72), np.float32),
        (0, 256, 96, 7, (5, 96), np.float32),
        (1, 256, 96, 7, (1, 96), np.float32),
        (1, 64, 72, 10, (5, 72), np.float16),
        (0, 16, 40, 12, (1, 40), np.float16),
    ]
    for qt, block, k, n, ashape, adt in specs:
        m = int(np.prod(ashape[:-1]))
        name = f"bnb4_{'fp4' if qt == 0 else 'nf4'}_b{block}_k{k}_m{m}{'_rank3' if len(ashape) == 3 else ''}" \
               f"{'_fp16' if adt == np.float16 else ''}"
        r = rng_for(name)
        w = (r.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)  # MatMul weight [K, N]
        w.reshape(-1)[:3] = 0.0  # a block-leading zero run
        a = r.standard_normal(ashape).astype(adt)
        q = MatMulBnb4Quantizer(onnx.ModelProto(), qt, block)
        packed, absmax = q.bnb4_block_quant(w)  # ORT's own quantizer (quantize_matmul_bnb4)
        absmax = absmax.astype(adt)
        g = G()
        g.input("A", a)
        g.init("B", packed)
        g.init("absmax", absmax)
        g.node("MatMulBnb4", ["A", "B", "absmax"], ["Y"], domain=MS, K=k, N=n, block_size=block, quant_type=qt)
        g.output("Y", NP_TO_ONNX[np.dtype(adt)])
        desc = (f"{'FP4' if qt == 0 else 'NF4'} block {block}, K={k} (N*K={n * k}: {(n * k) % block} in the last "
                f"block; blocks cross rows of B^T when K % block != 0), N={n}, A {list(ashape)} {np.dtype(adt).name}")

        def ref(a=a, packed=packed, absmax=absmax, qt=qt, block=block, n=n, k=k):
            bt = bnb4_dequant(packed, absmax, qt, block, n, k).astype(np.float64)
            return [(a.astype(np.float64) @ bt.T)]

        out.append(Case(name, "MatMulBnb4", MS, desc, g.model(21), g.feeds, ref,
                        notes={"B": f"uint8 [{(n * k + 1) // 2}] from onnxruntime.quantization.matmul_bnb4_quantizer "
                                    "(MatMulBnb4Quantizer.bnb4_block_quant of W [K, N]); absmax "
                                    f"[{(n * k + block - 1) // block}] {np.dtype(adt).name}"}))
    return out


# ----- GatherBlockQuantized -------------------------------------------------------------------


def pack_low_first(vals: np.ndarray, bits: int) -> np.ndarray:
    """Pack along the last axis, element 0 in the low-order bits."""
    per = 8 // bits
    v = np.asarray(vals, np.int64)
    pad = (-v.shape[-1]) % per
    if pad:
        v = np.concatenate([v, np.zeros(v.shape[:-1] + (pad,), np.int64)], axis=-1)
    v = v.reshape(v.shape[:-1] + (v.shape[-1] // per, per))
    out = np.zeros(v.shape[:-1], np.int64)
    for i in range(per):
        out |= (v[..., i] & ((1 << bits) - 1)) << (bits * i)
    return out.astype(np.uint8)


@cases
def gather_block_quantized() -> list[Case]:
    out = []
    vocab = 11
    specs = [  # name, data type, bits, block, D, zero points?, indices, scale dtype
        ("gbq_u8_bits4_b32_zp", "uint8", 4, 32, 64, True, [[0, 3, 10, 3, 7]], np.float32),
        ("gbq_u8_bits4_b32_no_zp", "uint8", 4, 32, 64, False, [[1, 2, 9, 4, 0]], np.float32),
        ("gbq_u8_bits4_b64_zp_oddblocks", "uint8", 4, 64, 192, True, [[2, 5, 8], [10, 0, 2]], np.float32),
        ("gbq_u8_bits4_b32_zp_fp16", "uint8", 4, 32, 96, True, [[4, 4, 1], [0, 10, 6]], np.float16),
        ("gbq_u8_bits8_b32_zp", "uint8", 8, 32, 64, True, [[6, 1, 0, 10, 2]], np.float32),
        ("gbq_u8_bits8_b64_no_zp_fp16", "uint8", 8, 64, 128, False, [[3, 9, 1], [7, 7, 0]], np.float16),
        ("gbq_u8_bits4_b32_negative_index", "uint8", 4, 32, 64, True, [[-1, 0, -11, 5, 2]], np.float32),
        ("gbq_int4_b32_zp", "int4", 4, 32, 64, True, [[0, 3, 10, 3, 7]], np.float32),
        ("gbq_uint4_b64_no_zp_fp16", "uint4", 4, 64, 128, False, [[5, 0, 2], [1, 9, 10]], np.float16),
        ("gbq_u8_bits4_b32_out_of_range_index", "uint8", 4, 32, 64, True, [[0, 11, -12, 4, 100]], np.float32),
    ]
    for name, dtype, bits, block, d, with_zp, idx, sdt in specs:
        r = rng_for(name)
        nb = (d + block - 1) // block
        hi = (1 << bits) - 1
        if dtype == "int4":
            q = r.integers(-8, 8, (vocab, d))
            zp = r.integers(-3, 4, (vocab, nb)) if with_zp else None
        else:
            q = r.integers(0, hi + 1, (vocab, d))
            zp = r.integers(max(0, hi // 2 - 3), hi // 2 + 4, (vocab, nb)) if with_zp else None
        scales = r.uniform(0.005, 0.05, (vocab, nb)).astype(sdt)
        indices = np.asarray(idx, np.int64)
        g = G()
        notes = {}
        if dtype == "uint8":
            data = pack_low_first(q, bits) if bits < 8 else q.astype(np.uint8)
            g.init("data", data)
            notes["data"] = (f"uint8 [{vocab}, {data.shape[1]}]" + (", two 4-bit codes a byte, element 2j in the LOW nibble"
                                                                     if bits == 4 else ""))
        else:
            g.init4("data", q, dtype == "int4")
            notes["data"] = f"{dtype} [{vocab}, {d}] (ONNX int4 packing: element 2j in the low nibble)"
        g.input("indices", indices)
        g.init("scales", scales)
        ins = ["data", "indices", "scales"]
        if with_zp:
            if dtype == "uint8":
                zpt = pack_low_first(zp, bits) if bits < 8 else zp.astype(np.uint8)
                g.init("zero_points", zpt)
                notes["zero_points"] = f"uint8 {list(zpt.shape)}" + (" packed like data (low nibble first)" if bits < 8 else "")
            else:
                g.init4("zero_points", zp, dtype == "int4")
                notes["zero_points"] = f"{dtype} {list(zp.shape)}"
            ins.append("zero_points")
        else:
            notes["zero_points"] = "absent: default " + ("2^(bits-1) = %d" % (1 << (bits - 1)) if dtype == "uint8" else "0")
        attrs = dict(gather_axis=0, quantize_axis=1, block_size=block)
        if dtype == "uint8":
            attrs["bits"] = bits
        g.node("GatherBlockQuantized", ins, ["output"], domain=MS, **attrs)
        g.output("output", NP_TO_ONNX[np.dtype(sdt)])
        desc = (f"{dtype} data{' bits ' + str(bits) if dtype == 'uint8' else ''}, table [{vocab}, {d}], block {block}, "
                f"{'with' if with_zp else 'without'} zero points, {np.dtype(sdt).name} scales, indices {indices.tolist()}")

        def ref(q=q, zp=zp, scales=scales, indices=indices, dtype=dtype, bits=bits, block=block, sdt=sdt):
            z = zp if zp is not None else np.full(scales.shape, (1 << (bits - 1)) if dtype == "uint8" else 0)
            deq = (q - np.repeat(z, block, axis=1)[:, :q.shape[1]]).astype(np.float32) * \
                np.repeat(scales.astype(np.float32), block, axis=1)[:, :q.shape[1]]
            res = np.zeros(indices.shape + (q.shape[1],), np.float32)
            for pos, i in np.ndenumerate(indices):
                if -vocab <= i < vocab:
                    res[pos] = deq[i]
            return [res.astype(sdt)]

        out.append(Case(name, "GatherBlockQuantized", MS, desc, g.model(21), g.feeds, ref, notes=notes))
    return out


# ----- rotary helpers -------------------------------------------------------------------------


def rope_tables(max_len: int, rot_dim: int, theta: float = 10000.0, dtype=np.float32):
    inv = 1.0 / theta ** (np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    ang = np.arange(max_len, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def rope_apply(x, cos_rows, sin_rows, interleaved: bool, rot_dim: int):
    """x [B, S, N, H] (float64); cos/sin rows [B, S, rot_dim/2]."""
    x = x.astype(np.float64).copy()
    c = cos_rows.astype(np.float64)[:, :, None, :]
    s = sin_rows.astype(np.float64)[:, :, None, :]
    xr = x[..., :rot_dim]
    if interleaved:
        x1, x2 = xr[..., 0::2], xr[..., 1::2]
    else:
        x1, x2 = xr[..., : rot_dim // 2], xr[..., rot_dim // 2:]
    real = c * x1 - s * x2
    imag = s * x1 + c * x2
    if interleaved:
        xr = np.stack([real, imag], axis=-1).reshape(xr.shape)
    else:
        xr = np.concatenate([real, imag], axis=-1)
    x[..., :rot_dim] = xr
    return x


# ----- GroupQueryAttention --------------------------------------------------------------------


def ref_gqa(q, k, v, past_k, past_v, seqlens_k, total_len, cos, sin, *, num_heads, kv_heads, scale=0.0,
            softcap=0.0, local_window=-1, smooth=False, do_rotary=False, interleaved=False):
    """numpy GroupQueryAttention (CPU semantics of ORT 1.31):
      per batch b: T_b = seqlens_k[b] + 1 keys; first prompt (S == total_sequence_length): past length 0 and
      rotary positions 0..S-1; otherwise past length P_b = T_b - S, new tokens at positions P_b..T_b-1.
      present[b, :, :P_b] = past[b, :, :P_b], present[b, :, P_b:P_b+S] = new K/V, rest 0; present length
      max(total_sequence_length, past buffer length). Query i (absolute position P_b + i) sees keys j <= P_b + i
      and, with local_window_size W > 0, j > P_b + i - W (W keys including its own)."""
    B, S, _ = q.shape
    if k is None:  # packed QKV
        H = q.shape[2] // (num_heads + 2 * kv_heads)
        qq = q[..., : num_heads * H]
        k = q[..., num_heads * H: (num_heads + kv_heads) * H]
        v = q[..., (num_heads + kv_heads) * H:]
        q = qq
    H = q.shape[2] // num_heads
    qh = q.reshape(B, S, num_heads, H).astype(np.float64)
    kh = k.reshape(B, S, kv_heads, H).astype(np.float64)
    vh = v.reshape(B, S, kv_heads, H).astype(np.float64)
    past_len_buf = 0 if past_k is None else past_k.shape[2]
    present_len = max(int(total_len), past_len_buf)
    first_prompt = S == int(total_len)
    out = np.zeros((B, S, num_heads, H))
    pk = np.zeros((B, kv_heads, present_len, H))
    pv = np.zeros((B, kv_heads, present_len, H))
    alpha = scale if scale != 0.0 else 1.0 / np.sqrt(H)
    group = num_heads // kv_heads
    for b in range(B):
        T = int(seqlens_k[b]) + 1
        P = 0 if first_prompt else T - S
        pos = np.arange(P, P + S)
        qb, kb = qh[b:b + 1], kh[b:b + 1]
        if do_rotary:
            rot = cos.shape[1] * 2
            qb = rope_apply(qb, cos[pos][None], sin[pos][None], interleaved, rot)
            kb = rope_apply(kb, cos[pos][None], sin[pos][None], interleaved, rot)
        if P > 0:
            pk[b, :, :P] = past_k[b, :, :P]
            pv[b, :, :P] = past_v[b, :, :P]
        pk[b, :, P:P + S] = kb[0].transpose(1, 0, 2)
        pv[b, :, P:P + S] = vh[b].transpose(1, 0, 2)
        for h in range(num_heads):
            kvh = h // group
            for i in range(S):
                p = P + i
                keys = np.arange(0, min(p, T - 1) + 1)
                if local_window > 0:
                    keys = keys[keys > p - local_window]
                sc = (pk[b, kvh, keys] @ qb[0, i, h]) * alpha
                if softcap > 0:
                    sc = softcap * np.tanh(sc / softcap)
                m = sc.max()
                e = np.exp(sc - m)
                den = e.sum() + (np.exp(-m) if smooth else 0.0)
                out[b, i, h] = (e / den) @ pv[b, kvh, keys]
    return [out.reshape(B, S, num_heads * H), pk, pv]


@cases
def group_query_attention() -> list[Case]:
    out = []
    N, KV = 4, 2
    MAXLEN = 16

    def make(name, desc, *, H=8, B=1, S=5, past=0, past_buf=None, seqlens=None, total=None, packed=False,
             rotary=False, interleaved=False, rot_dim=None, scale=None, softcap=None, window=None, smooth=False,
             q_gain=1.0, garbage_tail=False, feeding=""):
        r = rng_for(name)
        past_buf = past if past_buf is None else past_buf
        total = (past + S) if total is None else total
        seqlens = np.asarray(seqlens if seqlens is not None else [total - 1] * B, np.int32)
        q = (r.standard_normal((B, S, N * H)) * q_gain).astype(np.float32)
        k = r.standard_normal((B, S, KV * H)).astype(np.float32)
        v = r.standard_normal((B, S, KV * H)).astype(np.float32)
        g = G()
        if packed:
            g.input("query", np.concatenate([q, k, v], axis=-1))
            ins = ["query", "", ""]
        else:
            g.input("query", q), g.input("key", k), g.input("value", v)
            ins = ["query", "key", "value"]
        pk = pv = None
        if past_buf:
            pk = r.standard_normal((B, KV, past_buf, H)).astype(np.float32)
            pv = r.standard_normal((B, KV, past_buf, H)).astype(np.float32)
            if garbage_tail:  # rows past each batch's valid length hold junk the kernel must ignore
                for b in range(B):
                    valid = int(seqlens[b]) + 1 - S
                    pk[b, :, valid:] = 50.0
                    pv[b, :, valid:] = -50.0
            g.input("past_key", pk), g.input("past_value", pv)
            ins += ["past_key", "past_value"]
        else:
            ins += ["", ""]
        g.input("seqlens_k", seqlens)
        g.input("total_sequence_length", np.asarray(total, np.int32))
        ins += ["seqlens_k", "total_sequence_length"]
        cos = sin = None
        attrs = dict(num_heads=N, kv_num_heads=KV)
        if rotary:
            cos, sin = rope_tables(MAXLEN, rot_dim or H)
            g.init("cos_cache", cos), g.init("sin_cache", sin)
            ins += ["cos_cache", "sin_cache"]
            attrs["do_rotary"] = 1
            if interleaved:
                attrs["rotary_interleaved"] = 1
        if scale is not None:
            attrs["scale"] = scale
        if softcap is not None:
            attrs["softcap"] = softcap
        if window is not None:
            attrs["local_window_size"] = window
        if smooth:
            attrs["smooth_softmax"] = 1
        g.node("GroupQueryAttention", ins, ["output", "present_key", "present_value"], domain=MS, **attrs)
        g.output("output", TensorProto.FLOAT), g.output("present_key", TensorProto.FLOAT)
        g.output("present_value", TensorProto.FLOAT)

        def ref():
            return ref_gqa(q if not packed else np.concatenate([q, k, v], axis=-1), None if packed else k,
                           None if packed else v, pk, pv, seqlens, total, cos, sin, num_heads=N, kv_heads=KV,
                           scale=scale or 0.0, softcap=softcap or 0.0, local_window=window or -1, smooth=smooth,
                           do_rotary=rotary, interleaved=interleaved)

        notes = {"feeding": feeding, "num_heads": N, "kv_num_heads": KV, "head_size": H, "batch": B,
                 "sequence_length": S, "seqlens_k": seqlens.tolist(), "total_sequence_length": int(total),
                 "past_buffer_length": past_buf, "present_length": max(int(total), past_buf)}
        first_prompt = S == total
        if first_prompt:
            notes["present_rows"] = (f"rows [0, {S}) hold the {S} new tokens' K/V (padding tokens of shorter batch rows "
                                     "included)" + (f"; rows [{S}, {past_buf}) are zero in ORT's output" if past_buf > S else ""))
        else:
            notes["present_rows"] = ("per batch b, rows [0, seqlens_k[b]+1) hold past rows [0, seqlens_k[b]+1-S) then the "
                                     "new tokens; ORT zero-fills the rest (past and present are separate buffers here; "
                                     "an in-place shared-buffer implementation leaves those rows as they were)")
        if rotary:
            notes["rotary"] = (f"cos_cache/sin_cache [{MAXLEN}, {(rot_dim or H) // 2}] initializers, theta 10000, "
                               f"{'interleaved' if interleaved else 'half-split'}; rotary_dim = 2 * cos_cache.shape[1]")
        out.append(Case(name, "GroupQueryAttention", MS, desc, g.model(21), g.feeds, ref, notes=notes))

    make("gqa_prompt", "prompt S=5, separate Q/K/V, no past (past_key/past_value absent)",
         feeding="past absent; seqlens_k=[4]; total_sequence_length=5")
    make("gqa_decode", "one decode token after a past of 5 (growing buffer: past [1,2,5,8] -> present [1,2,6,8])",
         S=1, past=5, feeding="past = previous present [1,kv,5,H]; seqlens_k=[5]; total_sequence_length=6")
    make("gqa_packed_prompt", "packed QKV [1,5,(4+2+2)*8] with key/value inputs empty, prompt S=5", packed=True,
         feeding="query = concat(Q, K, V) on the last axis; key/value ''")
    make("gqa_packed_decode", "packed QKV, one decode token after a past of 5", packed=True, S=1, past=5,
         feeding="query packed [1,1,64]; past [1,2,5,8]; seqlens_k=[5]; total=6")
    make("gqa_rotary_prompt", "do_rotary=1 (half-split), head 16, prompt S=5: positions 0..4", H=16, rotary=True,
         feeding="cos/sin initializers; seqlens_k=[4]; total=5")
    make("gqa_rotary_decode", "do_rotary=1 (half-split), head 16, decode after past 5: position 5 (= seqlens_k)", H=16,
         rotary=True, S=1, past=5, feeding="past [1,2,5,16] (already rotated keys); seqlens_k=[5]; total=6")
    make("gqa_rotary_interleaved_prompt", "do_rotary=1 rotary_interleaved=1, head 16, prompt S=5", H=16, rotary=True,
         interleaved=True, feeding="seqlens_k=[4]; total=5")
    make("gqa_rotary_interleaved_decode", "do_rotary=1 rotary_interleaved=1, head 16, decode after past 5", H=16,
         rotary=True, interleaved=True, S=1, past=5, feeding="past [1,2,5,16]; seqlens_k=[5]; total=6")
    make("gqa_scale", "scale attribute 0.2 (instead of 1/sqrt(8)), prompt S=5", scale=0.2,
         feeding="seqlens_k=[4]; total=5")
    make("gqa_softcap", "softcap 30 with large scores (query x12): scores = 30 * tanh(scaled / 30) before softmax",
         softcap=30.0, q_gain=12.0, feeding="seqlens_k=[4]; total=5")
    make("gqa_local_window_prompt", "local_window_size 3, prompt S=6: query i sees keys i-2..i (3 keys, itself included)", S=6, window=3,
         feeding="seqlens_k=[5]; total=6")
    make("gqa_local_window_decode", "local_window_size 3, decode after past 7 (position 7): sees keys 5..7", S=1, past=7, window=3,
         feeding="past [1,2,7,8]; seqlens_k=[7]; total=8")
    make("gqa_smooth_softmax", "smooth_softmax 1: softmax with an extra exp(0) term in the denominator, prompt S=5",
         smooth=True, feeding="seqlens_k=[4]; total=5")
    make("gqa_shared_buffer_prompt", "first prompt into a max-length buffer (onnxruntime-genai): past [1,2,12,8] of zeros, "
         "S=5 -> present [1,2,12,8]", past_buf=12, total=5,
         feeding="past_key/past_value [1,kv,12,H] all zero (fresh shared buffer); seqlens_k=[4]; total=5")
    make("gqa_shared_buffer_decode", "shared-buffer decode: past [1,2,12,8] with the first 5 rows valid (rows 5.. hold junk 50/-50), "
         "S=1 -> present [1,2,12,8]", S=1, past=5, past_buf=12, total=6, garbage_tail=True,
         feeding="past buffer length 12 (max_len); seqlens_k=[5] (= total-1); total_sequence_length=6")
    make("gqa_shared_buffer_rotary_decode", "shared buffer + do_rotary, head 16: past [1,2,12,16] first 5 valid, decode at "
         "position 5", H=16, rotary=True, S=1, past=5, past_buf=12, total=6, garbage_tail=True,
         feeding="seqlens_k=[5]; total=6")
    make("gqa_batch2_prompt", "batch 2 prompt S=5, seqlens_k [4, 2]: batch 1 has 3 real tokens, right-padded", B=2,
         seqlens=[4, 2], total=5, feeding="B=2; seqlens_k=[4,2]; total=5 (max); the padding rows of batch 1 are "
         "compared too (ORT gives them attention over their causal prefix)")
    make("gqa_batch2_rotary_prompt", "batch 2 prompt with do_rotary (head 16), seqlens_k [4, 2]: rotary positions 0..4 "
         "for both rows (first prompt)", B=2, seqlens=[4, 2], total=5, H=16, rotary=True,
         feeding="B=2; seqlens_k=[4,2]; total=5; batch 1 right-padded")
    make("gqa_batch2_decode", "batch 2 decode, past buffer [2,2,5,8] with 5 and 3 valid rows (right-padded), seqlens_k [5, 3]",
         B=2, S=1, past=5, seqlens=[5, 3], total=6, garbage_tail=True,
         feeding="past [2,kv,5,H]: batch 1 rows 3,4 junk; seqlens_k=[5,3]; total=6; batch 1's new K/V lands at row 3")
    make("gqa_batch2_rotary_decode", "batch 2 decode with do_rotary (head 16): positions 5 and 3 from seqlens_k", B=2,
         S=1, past=5, seqlens=[5, 3], total=6, H=16, rotary=True, garbage_tail=True,
         feeding="past [2,kv,5,H]; seqlens_k=[5,3]; total=6")
    make("gqa_subsequent_prompt", "S=3 chunk after a past of 4 (growing buffer): queries at positions 4..6, causal",
         S=3, past=4, feeding="past [1,2,4,8]; seqlens_k=[6]; total=7")
    make("gqa_rotary_subsequent_prompt", "S=3 chunk after a past of 4 with do_rotary (head 16): rotary positions 4..6",
         S=3, past=4, H=16, rotary=True, feeding="past [1,2,4,16]; seqlens_k=[6]; total=7")
    make("gqa_shared_buffer_subsequent_prompt", "S=3 chunk into a shared buffer [1,2,12,8] holding 4 valid rows",
         S=3, past=4, past_buf=12, total=7, garbage_tail=True, feeding="seqlens_k=[6]; total=7")
    make("gqa_h64_rotary_prompt", "head 64 with do_rotary, prompt S=5", H=64, rotary=True,
         feeding="seqlens_k=[4]; total=5")
    make("gqa_h64_rotary_decode", "head 64 with do_rotary, decode after past 5", H=64, rotary=True, S=1, past=5,
         feeding="past [1,2,5,64]; seqlens_k=[5]; total=6")
    make("gqa_h64_partial_rotary_decode", "head 64, cos/sin [16, 16]: rotary on the first 32 dims only, decode after past 5",
         H=64, rotary=True, rot_dim=32, S=1, past=5, feeding="past [1,2,5,64]; seqlens_k=[5]; total=6")
    return out


# ----- RotaryEmbedding ------------------------------------------------------------------------


@cases
def rotary_embedding() -> list[Case]:
    out = []
    MAXLEN = 24

    def ms(name, desc, *, shape4=False, B=2, S=4, N=2, H=16, interleaved=False, rot_dim=None, scalar_pos=None,
           num_heads_attr=False, fdt=np.float32):
        r = rng_for(name)
        rd = rot_dim or H
        cos, sin = rope_tables(MAXLEN, rd, dtype=fdt)
        x = r.standard_normal((B, N, S, H) if shape4 else (B, S, N * H)).astype(fdt)
        pos = (np.array([scalar_pos], np.int64) if scalar_pos is not None
               else r.integers(0, MAXLEN, (B, S)).astype(np.int64))
        g = G()
        g.input("input", x), g.input("position_ids", pos)
        g.init("cos_cache", cos), g.init("sin_cache", sin)
        attrs = {}
        if interleaved:
            attrs["interleaved"] = 1
        if rot_dim:
            attrs["rotary_embedding_dim"] = rot_dim
        if num_heads_attr:
            attrs["num_heads"] = N
        g.node("RotaryEmbedding", ["input", "position_ids", "cos_cache", "sin_cache"], ["output"], domain=MS, **attrs)
        g.output("output", NP_TO_ONNX[np.dtype(fdt)])

        def ref():
            p = (pos[0] + np.arange(S))[None].repeat(B, 0) if scalar_pos is not None else pos
            xb = x.transpose(0, 2, 1, 3) if shape4 else x.reshape(B, S, N, H)
            y = rope_apply(xb, cos[p], sin[p], interleaved, rd)
            return [(y.transpose(0, 2, 1, 3) if shape4 else y.reshape(B, S, N * H)).astype(fdt)]

        out.append(Case(name, "RotaryEmbedding", MS, desc, g.model(21), g.feeds, ref,
                        notes={"position_ids": "scalar offset [1]: positions offset..offset+S-1 for every batch"
                               if scalar_pos is not None else "[B,S] graph input",
                               "cos_cache/sin_cache": f"[{MAXLEN}, {rd // 2}] initializers"}))

    ms("rope_ms_3d_posids", "com.microsoft, 3-D input [2,4,32] (2 heads of 16, inferred from cos_cache), position_ids [2,4]")
    ms("rope_ms_3d_posids_interleaved", "com.microsoft, 3-D input, interleaved=1, position_ids [2,4]", interleaved=True)
    ms("rope_ms_scalar_offset", "com.microsoft, position_ids [1] = 7 (scalar offset form), 3-D input", scalar_pos=7)
    ms("rope_ms_4d", "com.microsoft, 4-D input [B,N,S,H] = [2,2,4,16], position_ids [2,4]", shape4=True)
    ms("rope_ms_partial_num_heads", "com.microsoft, rotary_embedding_dim 8 of head 16 with num_heads 2 (3-D input): "
       "last 8 dims pass through", rot_dim=8, num_heads_attr=True)
    ms("rope_ms_partial_interleaved", "com.microsoft, rotary_embedding_dim 8 of 16, num_heads 2, interleaved=1",
       rot_dim=8, num_heads_attr=True, interleaved=True)
    ms("rope_ms_fp16", "com.microsoft, float16 input and caches, 3-D input, position_ids [2,4]", fdt=np.float16)

    def onnx23(name, desc, *, shape4=True, B=2, S=3, N=2, H=16, interleaved=False, rot_dim=None, posids=True):
        r = rng_for(name)
        rd = rot_dim or H
        cos, sin = rope_tables(MAXLEN, rd)
        x = r.standard_normal((B, N, S, H) if shape4 else (B, S, N * H)).astype(np.float32)
        g = G()
        g.input("X", x)
        pos = r.integers(0, MAXLEN, (B, S)).astype(np.int64)
        if posids:
            g.init("cos_cache", cos), g.init("sin_cache", sin)
            g.input("position_ids", pos)
            ins = ["X", "cos_cache", "sin_cache", "position_ids"]
            crow, srow = cos[pos], sin[pos]
        else:  # caches already gathered per token: [B, S, rd/2]
            crow, srow = cos[pos], sin[pos]
            g.input("cos_cache", crow), g.input("sin_cache", srow)
            ins = ["X", "cos_cache", "sin_cache"]
        attrs = {}
        if interleaved:
            attrs["interleaved"] = 1
        if rot_dim:
            attrs["rotary_embedding_dim"] = rot_dim
        if not shape4:
            attrs["num_heads"] = N
        g.node("RotaryEmbedding", ins, ["Y"], **attrs)
        g.output("Y", TensorProto.FLOAT)

        def ref():
            xb = x.transpose(0, 2, 1, 3) if shape4 else x.reshape(B, S, N, H)
            y = rope_apply(xb, crow, srow, interleaved, rd)
            return [(y.transpose(0, 2, 1, 3) if shape4 else y.reshape(B, S, N * H)).astype(np.float32)]

        out.append(Case(name, "RotaryEmbedding", "", desc, g.model(23), g.feeds, ref,
                        notes={"position_ids": "[B,S] graph input" if posids else "absent: cos/sin [B,S,rd/2] graph inputs",
                               "input order": "X, cos_cache, sin_cache, position_ids (differs from com.microsoft's)"}))

    onnx23("rope23_4d_posids", "ai.onnx opset 23, 4-D X [B,N,S,H] = [2,2,3,16], position_ids [2,3]")
    onnx23("rope23_3d_num_heads_interleaved", "ai.onnx opset 23, 3-D X [2,3,32] with num_heads 2, interleaved=1",
           shape4=False, interleaved=True)
    onnx23("rope23_partial", "ai.onnx opset 23, rotary_embedding_dim 8 of head 16 (4-D X)", rot_dim=8)
    onnx23("rope23_no_posids", "ai.onnx opset 23 without position_ids: cos/sin [B,S,H/2] per token (graph inputs)",
           posids=False)
    return out


# ----- (Skip)SimplifiedLayerNormalization -----------------------------------------------------


def rms(x64, eps):
    return 1.0 / np.sqrt((x64 * x64).mean(-1, keepdims=True) + eps)


@cases
def simplified_layer_norm() -> list[Case]:
    out = []
    eps = 1e-6
    for fdt in [np.float32, np.float16]:
        tag = "f16" if fdt == np.float16 else "f32"
        name = f"sln_{tag}"
        r = rng_for(name)
        x = (r.standard_normal((2, 3, 32)) * 2 + 0.3).astype(fdt)
        gamma = (1 + 0.2 * r.standard_normal(32)).astype(fdt)
        g = G()
        g.input("X", x)
        g.init("scale", gamma)
        g.node("SimplifiedLayerNormalization", ["X", "scale"], ["Y", "inv_std_var"], axis=-1, epsilon=eps)
        g.output("Y", NP_TO_ONNX[np.dtype(fdt)]), g.output("inv_std_var", TensorProto.FLOAT)

        def ref(x=x, gamma=gamma, fdt=fdt):
            x64 = x.astype(np.float64)
            inv = rms(x64, eps)
            return [(x64 * inv * gamma.astype(np.float64)).astype(fdt), inv.astype(np.float32)]

        out.append(Case(name, "SimplifiedLayerNormalization", "", f"ai.onnx-domain SimplifiedLayerNormalization (as ORT "
                        f"registers it, opset 1+) over the last axis, {np.dtype(fdt).name} X [2,3,32], epsilon 1e-6, "
                        "outputs Y and inv_std_var [2,3,1] (float32)", g.model(21), g.feeds, ref,
                        notes={"scale": "initializer", "stash_type": "default (1: float32)"}))

    for fdt in [np.float32, np.float16]:
        for with_bias in [False, True]:
            tag = "f16" if fdt == np.float16 else "f32"
            name = f"sskip_{tag}{'_bias' if with_bias else ''}"
            r = rng_for(name)
            x = (r.standard_normal((2, 3, 48)) * 1.5).astype(fdt)
            skip = r.standard_normal((2, 3, 48)).astype(fdt)
            gamma = (1 + 0.2 * r.standard_normal(48)).astype(fdt)
            bias = (0.3 * r.standard_normal(48)).astype(fdt) if with_bias else None
            g = G()
            g.input("input", x), g.input("skip", skip)
            g.init("gamma", gamma)
            ins = ["input", "skip", "gamma"]
            if with_bias:
                g.init("bias", bias)
                ins.append("bias")
            g.node("SkipSimplifiedLayerNormalization", ins, ["output", "mean", "inv_std_var", "input_skip_bias_sum"],
                   domain=MS, epsilon=eps)
            ft = NP_TO_ONNX[np.dtype(fdt)]
            g.output("output", ft), g.output("mean", TensorProto.FLOAT), g.output("inv_std_var", TensorProto.FLOAT)
            g.output("input_skip_bias_sum", ft)

            def ref(x=x, skip=skip, gamma=gamma, bias=bias, fdt=fdt):
                # float16: the sum is formed in float32 and the statistics use it unrounded; only the
                # input_skip_bias_sum output is rounded to float16.
                s = x.astype(np.float64) + skip.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
                inv = rms(s, eps)
                return [(s * inv * gamma.astype(np.float64)).astype(fdt), np.zeros(inv.shape, np.float32),
                        inv.astype(np.float32), s.astype(fdt)]

            out.append(Case(name, "SkipSimplifiedLayerNormalization", MS,
                            f"{np.dtype(fdt).name} input/skip [2,3,48], {'with' if with_bias else 'without'} bias, epsilon 1e-6, "
                            "all 4 outputs requested (output, mean, inv_std_var, input_skip_bias_sum)",
                            g.model(21), g.feeds, ref,
                            notes={"gamma/bias": "initializers",
                                   "outputs": "mean [2,3,1] is all zeros (ORT fills it with 0 for the simplified form); "
                                              "inv_std_var [2,3,1] float32 = 1/sqrt(mean(s^2) + eps); "
                                              "input_skip_bias_sum = input + skip (+ bias)",
                                   "float16": "sum, statistics and normalisation in float32; outputs rounded to float16 once"}))
    return out


# ----- MultiHeadAttention ---------------------------------------------------------------------


def ref_mha(q, k, v, past_k, past_v, key_padding_mask, attention_bias, *, num_heads, unidirectional=False,
            mask_filter_value=-10000.0):
    """numpy com.microsoft MultiHeadAttention (separate Q/K/V [B,S,D], BNSH past/present)."""
    B, S, D = q.shape
    H = D // num_heads
    L = k.shape[1]
    qh = q.reshape(B, S, num_heads, H).transpose(0, 2, 1, 3).astype(np.float64)
    kh = k.reshape(B, L, num_heads, H).transpose(0, 2, 1, 3).astype(np.float64)
    vh = v.reshape(B, L, num_heads, H).transpose(0, 2, 1, 3).astype(np.float64)
    if past_k is not None:
        kh = np.concatenate([past_k.astype(np.float64), kh], axis=2)
        vh = np.concatenate([past_v.astype(np.float64), vh], axis=2)
    T = kh.shape[2]
    sc = qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(H)
    if attention_bias is not None:
        sc = sc + attention_bias.astype(np.float64)
    if key_padding_mask is not None:  # [B, T]: 0 = masked
        sc = sc + np.where(key_padding_mask[:, None, None, :] == 0, mask_filter_value, 0.0)
    if unidirectional:
        past = T - S
        allowed = np.arange(T)[None, :] <= (past + np.arange(S))[:, None]
        sc = np.where(allowed[None, None], sc, -np.inf)
    sc = sc - sc.max(-1, keepdims=True)
    p = np.exp(sc)
    p /= p.sum(-1, keepdims=True)
    o = (p @ vh).transpose(0, 2, 1, 3).reshape(B, S, D)
    return [o, kh, vh]


@cases
def multi_head_attention() -> list[Case]:
    out = []
    N, H = 2, 8

    def make(name, desc, *, B=1, S=4, past=0, unidirectional=False, padding=None, bias=False):
        r = rng_for(name)
        q = r.standard_normal((B, S, N * H)).astype(np.float32)
        k = r.standard_normal((B, S, N * H)).astype(np.float32)
        v = r.standard_normal((B, S, N * H)).astype(np.float32)
        g = G()
        g.input("query", q), g.input("key", k), g.input("value", v)
        ins = ["query", "key", "value", ""]
        mask = ab = pk = pv = None
        T = past + S
        if padding is not None:
            mask = np.asarray(padding, np.int32)
            g.input("key_padding_mask", mask)
            ins.append("key_padding_mask")
        else:
            ins.append("")
        if bias:
            ab = (0.5 * r.standard_normal((1, N, S, T))).astype(np.float32)
            g.input("attention_bias", ab)
            ins.append("attention_bias")
        else:
            ins.append("")
        outs = ["output"]
        if past:
            pk = r.standard_normal((B, N, past, H)).astype(np.float32)
            pv = r.standard_normal((B, N, past, H)).astype(np.float32)
            g.input("past_key", pk), g.input("past_value", pv)
            ins += ["past_key", "past_value"]
            outs += ["present_key", "present_value"]
        while ins and ins[-1] == "":
            ins.pop()
        attrs = dict(num_heads=N)
        if unidirectional:
            attrs["unidirectional"] = 1
        g.node("MultiHeadAttention", ins, outs, domain=MS, **attrs)
        for o in outs:
            g.output(o, TensorProto.FLOAT)

        def ref():
            res = ref_mha(q, k, v, pk, pv, mask, ab, num_heads=N, unidirectional=unidirectional)
            return res[: len(outs)]

        out.append(Case(name, "MultiHeadAttention", MS, desc, g.model(21), g.feeds, ref,
                        notes={"num_heads": N, "head_size": H}))

    make("mha_self", "separate Q/K/V [1,4,16], 2 heads, no mask, no past (bidirectional)")
    make("mha_causal_past", "unidirectional=1, S=3 after past [1,2,4,8]: present [1,2,7,8], query i sees keys <= 4+i",
         S=3, past=4, unidirectional=True)
    make("mha_key_padding_mask", "batch 2, key_padding_mask [2,4] int32 (0 = masked: adds mask_filter_value -10000)",
         B=2, padding=[[1, 1, 1, 1], [1, 1, 0, 0]])
    make("mha_attention_bias", "attention_bias [1,2,4,4] added to the scaled scores", bias=True)
    return out


# ----- what ORT refuses -----------------------------------------------------------------------


def refusal_probes() -> list[tuple[str, onnx.ModelProto, dict]]:
    """Cases the brief asked for that ORT 1.31.1's CPU provider rejects; run at generation to prove it."""
    probes = []
    r = rng_for("refusals")
    for shape in [(5,), (5, 1)]:
        g = G()
        g.input("A", r.integers(0, 256, (5, 16)).astype(np.uint8))
        g.input("a_zero_point", np.arange(5, dtype=np.uint8).reshape(shape))
        g.init("B", r.integers(-64, 64, (16, 3)).astype(np.int8))
        g.node("MatMulInteger", ["A", "B", "a_zero_point"], ["Y"])
        g.output("Y", TensorProto.INT32)
        probes.append((f"MatMulInteger per-row a_zero_point {list(shape)}", g.model(10), g.feeds))

    def gqa(label, B, S, past, H, rotary):
        g = G()
        g.input("query", r.standard_normal((B, S, 4 * H)).astype(np.float32))
        g.input("key", r.standard_normal((B, S, 2 * H)).astype(np.float32))
        g.input("value", r.standard_normal((B, S, 2 * H)).astype(np.float32))
        ins = ["query", "key", "value"]
        if past:
            g.input("past_key", r.standard_normal((B, 2, past, H)).astype(np.float32))
            g.input("past_value", r.standard_normal((B, 2, past, H)).astype(np.float32))
            ins += ["past_key", "past_value"]
        else:
            ins += ["", ""]
        g.input("seqlens_k", np.full(B, past + S - 1, np.int32))
        g.input("total_sequence_length", np.asarray(past + S, np.int32))
        ins += ["seqlens_k", "total_sequence_length"]
        attrs = dict(num_heads=4, kv_num_heads=2)
        if rotary:
            cos, sin = rope_tables(16, H)
            g.init("cos_cache", cos), g.init("sin_cache", sin)
            ins += ["cos_cache", "sin_cache"]
            attrs["do_rotary"] = 1
        g.node("GroupQueryAttention", ins, ["output", "present_key", "present_value"], domain=MS, **attrs)
        for o in ["output", "present_key", "present_value"]:
            g.output(o, TensorProto.FLOAT)
        probes.append((label, g.model(21), g.feeds))

    gqa("GroupQueryAttention do_rotary with head_size 8 (rotary cases use head 16 and 64)", 1, 5, 0, 8, True)
    gqa("GroupQueryAttention batch 2 with S=3 after a past of 4 (subsequent prompt, batch > 1)", 2, 3, 4, 8, False)
    return probes


def check_refusals() -> None:
    for label, model, feeds in refusal_probes():
        try:
            ort_run(model, feeds, "ORT_DISABLE_ALL")
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            msg = str(e).split("Status Message:")[-1].strip()
            msg = re.sub(r"^/\S+:\d+ [^)]*\) const ", "", msg)  # drop the source path / signature prefix
            REFUSED[label] = msg.splitlines()[0][:300]
            continue
        raise SystemExit(f"ORT now accepts '{label}': make it a case")


# ---------------------------------------------------------------------------------------------
# running, checking, writing


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], level: str) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    if a64.shape != b64.shape:
        return float("inf")
    return float(np.abs(a64 - b64).max()) if a64.size else 0.0


def within(a, ref, rtol, atol) -> bool:
    a64, r64 = np.asarray(a).astype(np.float64), np.asarray(ref).astype(np.float64)
    return a64.shape == r64.shape and bool(np.all(np.abs(a64 - r64) <= atol + rtol * np.abs(r64)))


def save_npy(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(a), version=(1, 0))


def attr_json(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [x.decode() if isinstance(x, bytes) else x for x in v]
    if isinstance(v, float):
        return float(np.float32(v))
    return v


def write_case(c: Case, root: Path) -> dict:
    outs = ort_run(c.model, c.feeds, "ORT_DISABLE_ALL")
    fused = ort_run(c.model, c.feeds, "ORT_ENABLE_ALL")
    ref = c.reference() if c.reference else None
    out_names = [o.name for o in c.model.graph.output]
    d = root / c.name
    if d.exists():
        shutil.rmtree(d)
    (d / "inputs").mkdir(parents=True)
    (d / "outputs").mkdir(parents=True)
    (d / "model.onnx").write_bytes(c.model.SerializeToString())
    inputs = []
    for k, vi in enumerate(c.model.graph.input):
        a = c.feeds[vi.name]
        f = f"inputs/{k}_{sanitize(vi.name)}.npy"
        save_npy(d / f, a)
        inputs.append({"name": vi.name, "file": f, "dtype": a.dtype.name, "shape": list(a.shape)})
    outputs, fused_diff, ref_diff, problems = [], {}, {}, []
    for k, (name, a) in enumerate(zip(out_names, outs)):
        rtol, atol = (c.tolerance or {}).get(name) or tol_for(a)
        f = f"outputs/{k}_{sanitize(name)}.npy"
        save_npy(d / f, a)
        outputs.append({"name": name, "file": f, "dtype": a.dtype.name, "shape": list(a.shape), "rtol": rtol, "atol": atol})
        fused_diff[name] = max_abs_diff(fused[k], a)
        if not within(fused[k], a, rtol, atol):
            problems.append(f"{name}: ORT_ENABLE_ALL differs from ORT_DISABLE_ALL by {fused_diff[name]:.3g}")
        if ref is not None:
            rr = np.asarray(ref[k])
            ref_diff[name] = max_abs_diff(a, rr)
            if not within(a, rr, rtol, atol):
                problems.append(f"{name}: ORT differs from the numpy reference by {ref_diff[name]:.3g} "
                                f"(rtol {rtol}, atol {atol}; shapes {a.shape} vs {rr.shape})")
    if problems:
        raise SystemExit(f"{c.name}: " + "; ".join(problems))
    node_ops = [n.op_type for n in c.model.graph.node]
    meta = {
        "op": c.op,
        "domain": c.domain,
        "opset": {o.domain or "ai.onnx": o.version for o in c.model.opset_import},
        "description": c.description,
        "nodes": node_ops,
        "attributes": {a.name: attr_json(a) for a in c.model.graph.node[0].attribute} if len(node_ops) == 1 else {},
        "inputs": inputs,
        "outputs": outputs,
        "initializers": [{"name": t.name, "dtype": ONNX_NAMES.get(t.data_type, str(t.data_type)), "shape": list(t.dims)}
                         for t in c.model.graph.initializer],
        "rtol": max(o["rtol"] for o in outputs),
        "atol": max(o["atol"] for o in outputs),
        "notes": c.notes,
        "enable_all_max_abs_diff": fused_diff,
        "numpy_reference_max_abs_diff": ref_diff,
    }
    (d / "case.json").write_text(dump_json(meta), encoding="utf-8")
    return meta


def dump_json(obj) -> str:
    """json with indent 1, lists of scalars kept on one line."""
    flat: list[str] = []

    def walk(o):
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            if all(not isinstance(x, (dict, list)) for x in o):
                flat.append(json.dumps(o))
                return f"@@list{len(flat) - 1}@@"
            return [walk(x) for x in o]
        return o

    text = json.dumps(walk(obj), indent=1)
    return re.sub(r'"@@list(\d+)@@"', lambda m: flat[int(m.group(1))], text) + "\n"


def versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ["onnxruntime", "onnx", "numpy"]}


def file_table(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def readme(index: dict) -> str:
    lines = [
        "# Operator references from ONNX Runtime",
        "",
        "Generated by `scripts/make_op_references.py` (do not edit; `--check` proves the files reproduce byte for",
        "byte). Each directory is one case: `model.onnx` (weights as initializers), `inputs/<k>_<name>.npy` for",
        "every graph input k, `outputs/<k>_<name>.npy` for every graph output k from ONNX Runtime "
        f"{versions()['onnxruntime']}",
        "(CPU, one thread, ORT_DISABLE_ALL; ORT_ENABLE_ALL checked to agree), and `case.json` (op, domain,",
        "description, inputs/outputs with dtype, shape and per-output rtol/atol, how the case was fed, the",
        "ENABLE_ALL and numpy-reference differences). A comparison passes when",
        "`|got - want| <= atol + rtol * |want|` element-wise.",
        "",
        "| case | op | what it covers |",
        "|---|---|---|",
    ]
    for name, c in index.items():
        op = c["op"] if not c["domain"] else f"{c['domain']}.{c['op']}"
        lines.append(f"| `{name}` | {op} | {c['description'].replace('|', '/')} |")
    lines += ["", "Refused by ONNX Runtime (not generated):", ""]
    lines += [f"- {k}: {v}" for k, v in REFUSED.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out byte for byte")
    ap.add_argument("--only", help="only cases whose name contains this (no manifest written)")
    args = ap.parse_args()
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.ERROR)
    out_root = Path(args.out)

    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, __file__, "--out", tmp], check=True)
            a, b = file_table(out_root), file_table(Path(tmp))
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if diff:
                log(f"--check: {len(diff)} files differ: {diff[:20]}")
                return 1
            log(f"--check: {len(a)} files identical")
            return 0

    all_cases = [c for fn in CASES for c in fn()]
    names = [c.name for c in all_cases]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(names) >= 100, f"{len(names)} cases: ORTOpCaseTests expects the full set (105 when it was written)"
    if args.only:
        all_cases = [c for c in all_cases if args.only in c.name]
    else:
        if out_root.exists():
            shutil.rmtree(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    check_refusals()
    index = {}
    for c in all_cases:
        meta = write_case(c, out_root)
        index[c.name] = {"op": c.op, "domain": c.domain, "description": c.description}
        log(f"{c.name}: ok (enable_all diff {max(meta['enable_all_max_abs_diff'].values()):.3g}, "
            f"numpy diff {max(meta['numpy_reference_max_abs_diff'].values() or [0]):.3g})")
    if not args.only:
        manifest = {
            "generator": "scripts/make_op_references.py",
            "seed": SEED,
            "ort": {"execution_provider": "CPUExecutionProvider", "intra_op_num_threads": 1,
                    "outputs_from": "ORT_DISABLE_ALL", "checked_against": "ORT_ENABLE_ALL"},
            "versions": versions(),
            "refused_by_ort": REFUSED,
            "cases": index,
        }
        (out_root / "manifest.json").write_text(dump_json(manifest), encoding="utf-8")
        (out_root / "README.md").write_text(readme(index), encoding="utf-8")
        total = sum(p.stat().st_size for p in out_root.rglob("*") if p.is_file())
        log(f"wrote {len(index)} cases, {total} bytes, to {out_root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
