"""Runs qwen-run on bad inputs and reports what the user sees for each (docs/robustness.md).

    python3 scripts/bad_inputs.py [--qwen-run .build/release/qwen-run] [--markdown]

Every case is built in a temporary folder from the committed fixture Models/fixtures/tiny-qwen2
(config, tokenizer, onnx/model_q4f16.onnx + its external data), with Python's standard library
only: ONNX files are written with a small protobuf encoder below, so that the bytes are exactly
the broken ones each case names.

A case passes when qwen-run exits with a non-zero status (not killed by a signal, within 60 s)
and prints exactly one line, starting with "Error: ", to stderr; usage errors (exit 64, from
the argument parser) may follow it with the two usage-hint lines. The script prints one row per
case (with --markdown, a Markdown table with the real message text) and exits 1 if any case
fails.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURE = os.path.join(ROOT, "Models/fixtures/tiny-qwen2")


# --- a minimal protobuf / ONNX encoder --------------------------------------------------------

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def vint(field, n):
    return key(field, 0) + varint(n)


def ld(field, payload):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return key(field, 2) + varint(len(payload)) + payload


def value_info(name, elem=1, dims=()):
    shape = b"".join(ld(1, vint(1, d) if isinstance(d, int) else ld(2, d)) for d in dims)
    return ld(1, name) + ld(2, ld(1, vint(1, elem) + ld(2, shape)))


def node(op, inputs, outputs, name="", domain="", attrs=b""):
    out = b"".join(ld(1, i) for i in inputs) + b"".join(ld(2, o) for o in outputs)
    out += ld(3, name) + ld(4, op) + attrs
    if domain:
        out += ld(7, domain)
    return out


def tensor(name, dims, elem=1, raw=None, external=None):
    out = b"".join(vint(1, d) for d in dims) + vint(2, elem) + ld(8, name)
    if raw is not None:
        out += ld(9, raw)
    if external is not None:
        for k, v in external:
            out += ld(13, ld(1, k) + ld(2, v))
        out += vint(14, 1)
    return out


def model(nodes=(), inputs=(), outputs=(), initializers=(), opsets=(("", 18),), ir_version=9):
    graph = b"".join(ld(1, n) for n in nodes) + ld(2, "g")
    graph += b"".join(ld(5, t) for t in initializers)
    graph += b"".join(ld(11, v) for v in inputs) + b"".join(ld(12, v) for v in outputs)
    out = vint(1, ir_version) + ld(2, "bad_inputs.py")
    out += b"".join(ld(8, (ld(1, d) if d else b"") + vint(2, v)) for d, v in opsets)
    return out + ld(7, graph)


X = value_info("X", 1, [4])
Y = value_info("Y", 1, [4])
FLOATS4 = struct.pack("<4f", 1, 2, 3, 4)


def npy(values, dtype, shape):
    descr = {"f4": "<f4", "i8": "<i8"}[dtype]
    fmt = {"f4": "f", "i8": "q"}[dtype]
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{d}, " for d in shape) if len(shape) != 1 else f"{shape[0]},")
    header = header.ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack("<%d%s" % (len(values), fmt), *values)


# --- the cases --------------------------------------------------------------------------------

class Case:
    def __init__(self, group, what, args, setup=None, stdin=None):
        self.group, self.what, self.args, self.setup, self.stdin = group, what, args, setup, stdin


def fixture_copy(base, name):
    d = os.path.join(base, name)
    os.makedirs(os.path.join(d, "onnx"))
    for f in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(FIXTURE, f), d)
    for f in ["model_q4f16.onnx", "model_q4f16.onnx_data"]:
        shutil.copy(os.path.join(FIXTURE, "onnx", f), os.path.join(d, "onnx"))
    return d


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def replace_graph(data):
    """A setup that replaces onnx/model_q4f16.onnx by `data` (bytes)."""
    def setup(d):
        write(os.path.join(d, "onnx/model_q4f16.onnx"), data)
    return setup


def edit(path, transform):
    def setup(d):
        p = os.path.join(d, path)
        with open(p, "rb") as f:
            data = f.read()
        write(p, transform(data))
    return setup


def external_model(location, offset=0, length=16):
    return model([node("Add", ["X", "W"], ["Y"])], [X], [Y],
                 [tensor("W", [4], 1, external=[("location", location), ("offset", str(offset)), ("length", str(length))])])


def nested_graph(depth):
    g = b""
    for _ in range(depth):
        attr = ld(1, "then_branch") + vint(20, 5) + ld(6, g)
        g = ld(1, node("If", ["C"], ["Y"], attrs=ld(5, attr)))
    return g


def cases():
    gen = ["--model", "{dir}", "--prompt", "Hello", "--max-tokens", "4"]
    c = []
    add = lambda *a, **k: c.append(Case(*a, **k))

    # Model directory and files.
    add("directory", "model directory missing", ["--model", "{dir}/nope", "--prompt", "Hi"])
    add("directory", "model path is a file", ["--model", "{dir}/config.json", "--prompt", "Hi"])
    add("directory", "config.json missing", gen, lambda d: os.remove(os.path.join(d, "config.json")))
    add("directory", "tokenizer.json missing", gen, lambda d: os.remove(os.path.join(d, "tokenizer.json")))
    add("directory", "no onnx/*.onnx", gen, lambda d: shutil.rmtree(os.path.join(d, "onnx")))
    add("directory", "--onnx names a missing file", gen + ["--onnx", "model_fp16.onnx"])
    add("directory", "--onnx outside the model folder", gen + ["--onnx", "../../etc/passwd"])

    # Broken .onnx bytes.
    graph_path = os.path.join(FIXTURE, "onnx/model_q4f16.onnx")
    real = open(graph_path, "rb").read()
    add("onnx bytes", "empty .onnx", gen, replace_graph(b""))
    add("onnx bytes", "truncated .onnx (first half)", gen, replace_graph(real[: len(real) // 2]))
    add("onnx bytes", "random bytes .onnx", gen, replace_graph(bytes((i * 7919 + 13) % 251 for i in range(4096))))
    add("onnx bytes", "a text file as .onnx", gen, replace_graph(b"<html>not a model</html>\n"))
    add("onnx bytes", "wrong wire type (graph as varint)", gen, replace_graph(vint(1, 9) + vint(7, 1)))
    add("onnx bytes", "length past the end", gen, replace_graph(vint(1, 9) + key(7, 2) + varint(1000) + b"\x0a\x00"))
    add("onnx bytes", "absurd varint (11 bytes)", gen, replace_graph(key(1, 0) + b"\xff" * 10 + b"\x01"))
    add("onnx bytes", "absurd length (2^63)", gen, replace_graph(vint(1, 9) + key(7, 2) + varint(1 << 63)))
    add("onnx bytes", "recursion bomb (If nested 200 deep)", gen, replace_graph(vint(1, 9) + ld(7, nested_graph(200))))
    add("onnx bytes", "protobuf group (wire type 3)", gen, replace_graph(vint(1, 9) + key(30, 3)))
    add("onnx bytes", "no graph (valid protobuf, not a model)", gen, replace_graph(vint(1, 9) + ld(2, "x")))
    add("onnx bytes", "invalid UTF-8 in a node name", gen,
        replace_graph(vint(1, 9) + ld(7, ld(1, ld(3, b"bad\xff\xfename")))))

    # Tensors.
    add("tensors", "negative dim", gen, replace_graph(model([node("Add", ["X", "W"], ["Y"])], [X], [Y], [tensor("W", [4, -1], 1, raw=FLOATS4)])))
    add("tensors", "overflowing dims (2^40 × 2^40)", gen, replace_graph(model([node("Add", ["X", "W"], ["Y"])], [X], [Y], [tensor("W", [1 << 40, 1 << 40], 1, raw=FLOATS4)])))
    add("tensors", "dims disagree with raw_data size", gen, replace_graph(model([node("Add", ["X", "W"], ["Y"])], [X], [Y], [tensor("W", [5], 1, raw=FLOATS4)])))
    add("tensors", "unknown data type 99", gen, replace_graph(model([node("Add", ["X", "W"], ["Y"])], [X], [Y], [tensor("W", [4], 99, raw=FLOATS4)])))

    # External data.
    add("external data", "data file missing", gen, lambda d: os.remove(os.path.join(d, "onnx/model_q4f16.onnx_data")))
    add("external data", "data file short (truncated to half)", gen, edit("onnx/model_q4f16.onnx_data", lambda b: b[: len(b) // 2]))
    add("external data", "absolute location", gen, replace_graph(external_model("/etc/passwd")))
    add("external data", "'..' in location", gen, replace_graph(external_model("../config.json")))

    def symlink_out(d):
        write(os.path.join(d, "outside.bin"), b"\0" * 64)
        os.symlink(os.path.join(d, "outside.bin"), os.path.join(d, "onnx/link.bin"))
        write(os.path.join(d, "onnx/model_q4f16.onnx"), external_model("link.bin"))
    add("external data", "symlink out of the model folder", gen, symlink_out)
    add("external data", "range past the end of the file", gen,
        lambda d: (write(os.path.join(d, "onnx/w.bin"), b"\0" * 32), write(os.path.join(d, "onnx/model_q4f16.onnx"), external_model("w.bin", 24, 16))))
    add("external data", "negative offset", gen, replace_graph(external_model("model_q4f16.onnx_data", -16)))

    # Graph structure and ops.
    add("graph", "cycle", gen, replace_graph(model(
        [node("Relu", ["B"], ["A"], "a"), node("Relu", ["A"], ["B"], "b"), node("Add", ["X", "A"], ["Y"], "c")], [X], [Y])))
    add("graph", "undefined input", gen, replace_graph(model([node("Add", ["X", "Z"], ["Y"], "add")], [X], [Y])))
    add("graph", "duplicate output", gen, replace_graph(model(
        [node("Relu", ["X"], ["Y"], "r1"), node("Abs", ["X"], ["Y"], "r2")], [X], [Y])))
    add("graph", "output never produced", gen, replace_graph(model([node("Relu", ["X"], ["T"], "r")], [X], [Y])))
    add("graph", "unsupported op", gen, replace_graph(model([node("Einsum", ["X"], ["Y"], "e", attrs=ld(5, ld(1, "equation") + ld(4, "i->i") + vint(20, 3)))], [X], [Y])))
    add("graph", "unsupported opset (ai.onnx 99)", gen, replace_graph(model([node("Relu", ["X"], ["Y"], "r")], [X], [Y], opsets=(("", 99),))))
    add("graph", "unknown domain", gen, replace_graph(model([node("Gelu", ["X"], ["Y"], "g", domain="com.example")], [X], [Y], opsets=(("", 18), ("com.example", 1)))))
    add("graph", "not a decoder (valid graph, no input_ids)", gen, replace_graph(model([node("Relu", ["X"], ["Y"], "r")], [X], [Y])))
    add("graph", "MatMulNBits with bits=3", gen, edit("onnx/model_q4f16.onnx", lambda b: b.replace(ld(1, "bits") + vint(3, 4), ld(1, "bits") + vint(3, 3))))

    # Feeds (qwen-run graph).
    feeds_graph = ["graph", "{dir}/onnx/model_q4f16.onnx", "--output-dir", "{dir}/out"]
    def feed_files(d, ids):
        write(os.path.join(d, "ids.npy"), ids)
        write(os.path.join(d, "mask.npy"), npy([1, 1, 1], "i8", [1, 3]))
        write(os.path.join(d, "pos.npy"), npy([0, 1, 2], "i8", [1, 3]))
        write(os.path.join(d, "past.npy"), npy([], "f4", [1, 2, 0, 24]))
    feed_args = ["--input", "input_ids={dir}/ids.npy", "--input", "attention_mask={dir}/mask.npy",
                 "--input", "position_ids={dir}/pos.npy"] + sum(
        (["--input", f"past_key_values.{i}.{kv}={{dir}}/past.npy"] for i in range(2) for kv in ("key", "value")), [])
    add("feeds", "input_ids fed as float32", feeds_graph + feed_args, lambda d: feed_files(d, npy([1.0, 2.0, 3.0], "f4", [1, 3])))
    add("feeds", "input_ids fed with rank 1", feeds_graph + feed_args, lambda d: feed_files(d, npy([1, 2, 3], "i8", [3])))
    add("feeds", "input_ids file is not .npy", feeds_graph + feed_args, lambda d: feed_files(d, b"1 2 3\n"))
    add("feeds", "a declared input not given", feeds_graph + feed_args[:2], lambda d: feed_files(d, npy([1, 2, 3], "i8", [1, 3])))
    add("feeds", "input_ids with batch 2, the other inputs batch 1", feeds_graph + feed_args,
        lambda d: feed_files(d, npy([1, 2, 3, 4, 5, 6], "i8", [2, 3])))

    # Config and tokenizer files.
    add("config files", "config.json not JSON", gen, lambda d: write(os.path.join(d, "config.json"), "{\"vocab_size\": 512,"))
    add("config files", "config.json wrong type", gen, edit("config.json", lambda b: b.replace(b'"vocab_size": 512', b'"vocab_size": "512"')))
    add("config files", "config.json invalid UTF-8", gen, edit("config.json", lambda b: b.replace(b'"qwen2"', b'"qwen\xff2"')))
    add("config files", "generation_config.json broken", gen, lambda d: write(os.path.join(d, "generation_config.json"), "[1, 2"))
    add("config files", "generation_config.json wrong type", gen, lambda d: write(os.path.join(d, "generation_config.json"), '{"temperature": "hot"}'))
    add("config files", "tokenizer.json not JSON", gen, lambda d: write(os.path.join(d, "tokenizer.json"), "{\"model\": "))
    add("config files", "tokenizer.json invalid UTF-8", gen, edit("tokenizer.json", lambda b: b.replace(b'"version"', b'"ver\xc3sion"', 1)))
    add("config files", "tokenizer.json merge of unknown tokens", gen, edit("tokenizer.json", lambda b: b.replace(b'"merges": [', b'"merges": ["zzqx qqzy", ', 1)))
    add("config files", "tokenizer_config.json chat template syntax error", gen,
        edit("tokenizer_config.json", lambda b: b.replace(b'"chat_template": "', b'"chat_template": "{% if %}', 1)))
    add("config files", "chat_template.jinja invalid UTF-8", gen, lambda d: write(os.path.join(d, "chat_template.jinja"), b"{{ messages \xff }}"))
    add("config files", "chat template raises", gen,
        lambda d: write(os.path.join(d, "chat_template.jinja"), "{{ raise_exception('no system role') }}"))

    # Ids, prompts, parameters.
    add("prompt", "prompt over the context (256)", ["--model", "{dir}", "--raw", "--prompt", "word " * 300])
    add("prompt", "tokenizer ids outside the model's vocabulary", gen, edit("config.json", lambda b: b.replace(b'"vocab_size": 512', b'"vocab_size": 100')))
    add("prompt", "detokenize an id outside the vocabulary", ["detokenize", "--model", "{dir}", "70000"])
    add("prompt", "detokenize a negative id", ["detokenize", "--model", "{dir}", "--", "-5"])
    add("prompt", "prompt on stdin with invalid UTF-8", ["--model", "{dir}", "--max-tokens", "2"], stdin=b"Hello \xff\xfe world")
    add("prompt", "tokenize --jsonl with invalid UTF-8", ["tokenize", "--model", "{dir}", "--jsonl", "{dir}/lines.jsonl"],
        lambda d: write(os.path.join(d, "lines.jsonl"), b'"ok"\n"bad \xff"\n'))
    add("prompt", "tokenize --jsonl line not a string", ["tokenize", "--model", "{dir}", "--jsonl", "{dir}/lines.jsonl"],
        lambda d: write(os.path.join(d, "lines.jsonl"), b'"ok"\n{"text": 1}\n'))
    add("parameters", "top-p 0", gen + ["--top-p", "0"])
    add("parameters", "negative --max-tokens", gen + ["--max-tokens=-3"])
    add("parameters", "temperature NaN", gen + ["--temperature", "nan"])
    add("parameters", "presence penalty infinite", gen + ["--presence-penalty", "inf"])
    add("parameters", "unknown response format", gen + ["--response-format", "yaml"])
    add("parameters", "negative serve --prompt-cache-mb", ["serve", "--model", "{dir}", "--prompt-cache-mb=-1"])
    add("parameters", "--json-schema file missing", gen + ["--json-schema", "{dir}/no-such-schema.json"])
    add("parameters", "--json-schema not JSON", gen + ["--json-schema", "{dir}/schema.json"],
        lambda d: write(os.path.join(d, "schema.json"), '{"type": "object", "properties": {'))
    add("parameters", "--json-schema unsupported keyword", gen + ["--json-schema", "{dir}/schema.json"],
        lambda d: write(os.path.join(d, "schema.json"), '{"type": "object", "properties": {"a": {"type": "string", "format": "idn-hostname"}}}'))
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qwen-run", default=os.path.join(ROOT, ".build/release/qwen-run"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(args.qwen_run):
        sys.exit(f"bad_inputs.py: {args.qwen_run} not found (swift build -c release --product qwen-run)")
    failures = 0
    rows = []
    base = tempfile.mkdtemp(prefix="qwen-bad-inputs-")
    try:
        for i, case in enumerate(cases()):
            d = fixture_copy(base, f"case{i:02d}")
            if case.setup:
                case.setup(d)
            argv = [a.replace("{dir}", d) for a in case.args]
            try:
                p = subprocess.run([args.qwen_run] + argv, input=case.stdin or b"", capture_output=True, timeout=60)
                status, err = p.returncode, p.stderr.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                status, err = "timeout", ""
            lines = [l for l in err.splitlines() if l.strip()]
            message = (lines[0] if lines else "").replace(d, "DIR").replace(base, "TMP")
            usage = status == 64 and all(l.startswith("Usage:") or "--help" in l for l in lines[1:])
            ok = isinstance(status, int) and 0 < status < 128 and message.startswith("Error: ") and (len(lines) == 1 or usage)
            if not ok:
                failures += 1
            shown = " ".join(a if a.startswith("-") or len(a) < 60 else a[:20] + "…" for a in case.args[:8])
            extra = "" if len(lines) <= 1 else " (+ usage)" if usage else f" (+{len(lines) - 1} lines)"
            rows.append((case.group, case.what, shown, status, message, extra, ok))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.markdown:
        print("| input | what the user sees (stderr) | exit |")
        print("|---|---|---|")
        for group, what, shown, status, message, extra, ok in rows:
            m = message.replace("|", "\\|")
            print(f"| {group}: {what} | `{m}`{extra} | {status}{'' if ok else ' **FAIL**'} |")
    else:
        for group, what, shown, status, message, extra, ok in rows:
            print(f"{'ok  ' if ok else 'FAIL'} [{status}] {group}: {what}\n       {message}{extra}")
    print(f"{len(rows) - failures} of {len(rows)} bad inputs give a non-zero exit and one clear line", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
