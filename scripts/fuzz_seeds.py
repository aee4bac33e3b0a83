"""Writes the seed inputs of the libFuzzer targets (Fuzz/seeds/<target>/, committed).

    .venv/bin/python scripts/fuzz_seeds.py [--out Fuzz/seeds]

Seeds are small valid (and a few nearly valid) inputs that reach deep into each reader, made by
the reference tools (onnx, tokenizers) or taken from the committed test data:

- onnx: tiny models built with onnx.helper: raw/typed/external initializers (the external ones
  name the files of the fuzz entry's scratch folder: weights.bin, sub/more.bin, escape.bin),
  every attribute type, If subgraphs, Constant nodes, MatMulNBits as the q4f16 exports use it,
  symbolic shapes, metadata, plus the graph of the tiny-qwen2 q4f16 fixture with its weights cut
  down to external references;
- tokenizer-json: the fixture's Qwen2-style tokenizer.json and variants (GPT-2 byte-level regex,
  cl100k split, added-token flags), a tiny BPE trained with tokenizers;
- pretokenizer: texts from the tokenizer corpus (code, CJK, emoji, combining marks, whitespace);
- jinja: the chat templates and Jinja snippets of the tokenizer tests.

scripts/fuzz then grows working corpora; `scripts/fuzz --merge` keeps a minimal set of what the
fuzzer found beyond the seeds in Fuzz/corpus/<target>/.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def model_bytes(graph, opsets=(("", 18),)):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          producer_name="fuzz-seed")
    m.ir_version = 9
    helper.set_model_props(m, {"source": "scripts/fuzz_seeds.py"})
    return m.SerializeToString()


def external(tensor, location, offset, length):
    tensor.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
        e = tensor.external_data.add()
        e.key, e.value = k, v
    tensor.ClearField("raw_data")
    return tensor


def onnx_seeds(out):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 4])
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "W")

    g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"], name="add")], "raw", [x], [y], [w])
    write(out, "add-raw.onnx", model_bytes(g))

    typed = helper.make_tensor("W", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    ints = helper.make_tensor("I", TensorProto.INT64, [2], [7, -1])
    i32 = helper.make_tensor("J", TensorProto.INT32, [3], [1, 2, 3])
    dbl = helper.make_tensor("D", TensorProto.DOUBLE, [1], [0.5])
    u64 = helper.make_tensor("U", TensorProto.UINT64, [1], [9])
    strs = helper.make_tensor("S", TensorProto.STRING, [2], [b"a", b"bc"])
    f16 = helper.make_tensor("H", TensorProto.FLOAT16, [2], np.array([1, 2], dtype=np.float16).view(np.uint16).tolist())
    g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], "typed", [x], [y],
                          [typed, ints, i32, dbl, u64, strs, f16])
    write(out, "typed-fields.onnx", model_bytes(g))

    for name, location, offset, length in [
        ("external-weights", "weights.bin", 16, 16),
        ("external-sub", "sub/more.bin", 0, 16),
        ("external-escape", "escape.bin", 0, 16),
        ("external-dotdot", "../outside.bin", 0, 16),
        ("external-absolute", "/etc/hostname", 0, 16),
        ("external-past-end", "weights.bin", 4090, 16),
    ]:
        t = external(numpy_helper.from_array(np.zeros(4, dtype=np.float32), "W"), location, offset, length)
        g = helper.make_graph([helper.make_node("Add", ["X", "W"], ["Y"])], name, [x], [y], [t])
        write(out, name + ".onnx", model_bytes(g))

    attrs = helper.make_node(
        "Custom", ["X"], ["Y"], domain="com.example", name="attrs",
        f=1.5, i=-3, s=b"text", t=numpy_helper.from_array(np.ones(2, dtype=np.float32), "t"),
        floats=[1.0, 2.0], ints=[1, -2, 3], strings=[b"a", b"b"],
        tensors=[numpy_helper.from_array(np.zeros(1, dtype=np.int64), "z")])
    g = helper.make_graph([attrs], "attrs", [x], [y])
    write(out, "attributes.onnx", model_bytes(g, opsets=(("", 18), ("com.example", 1))))

    then_g = helper.make_graph([helper.make_node("Identity", ["X"], ["T"])], "then", [],
                               [helper.make_tensor_value_info("T", TensorProto.FLOAT, [4])])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["E"], value=numpy_helper.from_array(np.ones(4, dtype=np.float32), "c"))],
        "else", [], [helper.make_tensor_value_info("E", TensorProto.FLOAT, [4])])
    cond = helper.make_tensor_value_info("C", TensorProto.BOOL, [])
    g = helper.make_graph([helper.make_node("If", ["C"], ["Y"], then_branch=then_g, else_branch=else_g)],
                          "if", [cond, x], [y])
    write(out, "if-subgraphs.onnx", model_bytes(g))

    # MatMulNBits as in the q4f16 exports: B [N, K/32, 16] uint8, scales [N, K/32] float16.
    n, k = 8, 64
    b = numpy_helper.from_array(np.arange(n * 2 * 16, dtype=np.uint8).reshape(n, 2, 16), "B")
    s = numpy_helper.from_array(np.full((n, 2), 0.5, dtype=np.float16), "scales")
    a = helper.make_tensor_value_info("A", TensorProto.FLOAT16, [1, "seq", k])
    o = helper.make_tensor_value_info("O", TensorProto.FLOAT16, [1, "seq", n])
    node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["O"], domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=32, accuracy_level=4)
    g = helper.make_graph([node], "q4", [a], [o], [b, s])
    write(out, "matmulnbits.onnx", model_bytes(g, opsets=(("", 18), ("com.microsoft", 1))))

    # The start of the tiny-qwen2 q4f16 graph (embedding, first layer norm, attention
    # projections...), its initializers made external references into weights.bin, so that the
    # seed stays small and the decoder sees a real export's nodes and value_info.
    fixture = os.path.join(ROOT, "Models/fixtures/tiny-qwen2/onnx/model_q4f16.onnx")
    m = onnx.load(fixture, load_external_data=False)
    nodes = list(m.graph.node[:70])
    used = {i for n in nodes for i in n.input}
    inits = [t for t in m.graph.initializer if t.name in used]
    for t in inits:
        if t.data_location == TensorProto.EXTERNAL or len(t.raw_data) > 64:
            t.ClearField("external_data")
            external(t, "weights.bin", 0, 16)
    values = [v for v in m.graph.value_info if v.name in used][:30]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    del m.graph.value_info[:]
    m.graph.value_info.extend(values)
    write(out, "tiny-qwen2-q4f16-start.onnx", m.SerializeToString())
    return len(os.listdir(out))


def tokenizer_seeds(out):
    base = json.load(open(os.path.join(ROOT, "Models/fixtures/tiny-qwen2/tokenizer.json")))
    write(out, "tiny-qwen2.json", json.dumps(base, ensure_ascii=False))

    gpt2 = json.loads(json.dumps(base))
    gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    gpt2["normalizer"] = None
    write(out, "gpt2-bytelevel.json", json.dumps(gpt2, ensure_ascii=False))

    cl100k = json.loads(json.dumps(base))
    cl100k["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    cl100k["model"]["ignore_merges"] = True
    write(out, "cl100k-split.json", json.dumps(cl100k, ensure_ascii=False))

    flags = json.loads(json.dumps(base))
    for i, t in enumerate(flags["added_tokens"][:6]):
        t["lstrip"], t["rstrip"], t["single_word"], t["normalized"] = bool(i & 1), bool(i & 2), bool(i & 4), i == 5
    flags["added_tokens"].append({"id": 999999, "content": "ﬁ", "single_word": False, "lstrip": False,
                                  "rstrip": False, "normalized": True, "special": False})
    write(out, "added-token-flags.json", json.dumps(flags, ensure_ascii=False))

    compact = json.loads(json.dumps(base))
    compact["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in compact["model"]["merges"]]
    write(out, "merges-as-pairs.json", json.dumps(compact, ensure_ascii=False, indent=1))

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog " * 3, "def f(x):\n    return x + 1\n"], trainer)
    write(out, "trained-bpe.json", tok.to_str())
    write(out, "empty-object.json", "{}")
    return len(os.listdir(out))


def text_seeds(out):
    rows = [json.loads(line) for line in open(os.path.join(ROOT, "Tests/TokenizerTests/Data/qwen2.5_corpus.jsonl"))]
    texts = sorted({r["text"] for r in rows if 0 < len(r["text"].encode("utf-8")) <= 400}, key=lambda t: (len(t), t))
    # A spread of lengths and scripts, not all 1,600 strings.
    picked = texts[:: max(1, len(texts) // 120)]
    for t in picked:
        write(out, hashlib.sha1(t.encode("utf-8")).hexdigest()[:12] + ".txt", t)
    write(out, "invalid-utf8.txt", b"ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98 end")
    write(out, "special-tokens.txt", "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>")
    return len(os.listdir(out))


def jinja_seeds(out):
    templates = json.load(open(os.path.join(ROOT, "Tests/TokenizerTests/Data/chat_templates.json")))
    for name, source in templates.items():
        write(out, "template-" + name + ".jinja", source)
    for line in open(os.path.join(ROOT, "Tests/TokenizerTests/Data/jinja_snippets.jsonl")):
        source = json.loads(line)["template"]
        write(out, "snippet-" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:12] + ".jinja", source)
    return len(os.listdir(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "Fuzz/seeds"))
    args = ap.parse_args()
    for target, make in [("onnx", onnx_seeds), ("tokenizer-json", tokenizer_seeds),
                         ("pretokenizer", text_seeds), ("jinja", jinja_seeds)]:
        n = make(os.path.join(args.out, target))
        print(f"{target}: {n} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
