#!/usr/bin/env python3
"""Accuracy of qwen-run's quantized-activation modes against ONNX Runtime, teacher-forced over a
fixed text of a few hundred tokens: the logits of every position compared with ONNX Runtime's
(one prefill over the same graph and ids).

qwen-run is run two ways:
  prefill   one `qwen-run graph` over all the ids: the GEMM kernels (float32 activations, the
            default, or int8 with `--int8 always`, what `accuracy_level = 4` selects);
  decode    `qwen-run stepwise-logits`: one token per step through the KV cache, the decode
            kernels: float32 activations (`--decode-activations float32`), int16 (the default)
            or int8 (`--int8 always`).
Against ORT_DISABLE_ALL and ORT_ENABLE_ALL (ORT's default):
  top-1 agreement   positions whose argmax is the same
  KL mean / max     KL(p_ORT || p_ours) of the softmax over the vocabulary, in nats
  max |Δlogit|

Usage:
  .venv/bin/python scripts/int8_accuracy.py MODEL_DIR [--onnx onnx/model_q4f16.onnx] [--qwen-run .build/release/qwen-run] [--json FILE]
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_graph import ORT_LEVELS, feeds_for, ort_session, parse_args_and_encode  # noqa: E402

# Teacher-forced text: a chat turn with code and prose (the kinds of text the coder model sees).
TEXT = ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhy does this Swift function leak memory, and how do I fix it?\n\n"
        "final class Downloader {\n    var onFinish: (() -> Void)?\n    func start() {\n"
        "        onFinish = { self.cleanup() }\n    }\n    func cleanup() { print(\"done\") }\n}\n<|im_end|>\n"
        "<|im_start|>assistant\nThe closure stored in `onFinish` captures `self` strongly, and `self` owns the "
        "closure, so the two keep each other alive: a reference cycle. Neither reference count ever reaches "
        "zero, so `deinit` never runs. Capture `self` weakly to break the cycle:\n\n```swift\n"
        "onFinish = { [weak self] in self?.cleanup() }\n```\n\nWith `[weak self]` the closure holds an optional "
        "reference that becomes nil when the downloader is deallocated. If the closure must not outlive the "
        "object, `[unowned self]` avoids the optional, but it traps if called after deallocation. Another "
        "option is to set `onFinish = nil` once the work is finished, which also breaks the cycle.<|im_end|>\n")


def run_ours(qwen_run, model, feeds, workdir, int8):
    import subprocess
    args = [qwen_run, "graph", model, "--output-dir", os.path.join(workdir, "out"), "--int8", int8]
    for name, value in feeds.items():
        path = os.path.join(workdir, name + ".npy")
        np.save(path, value)
        args += ["--input", f"{name}={path}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return np.load(os.path.join(workdir, "out", "logits.npy"))[0]


def run_ours_stepwise(qwen_run, model_dir, onnx, ids, workdir, int8, decode):
    import subprocess
    out = os.path.join(workdir, f"stepwise-{int8}-{decode}.npy")
    subprocess.run([qwen_run, "stepwise-logits", "--model", model_dir, "--onnx", os.path.basename(onnx),
                    "--ids", ",".join(map(str, ids)), "--output", out, "--int8", int8, "--decode-activations", decode],
                   check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def compare(ours, ref):
    lr, lo = log_softmax(ref), log_softmax(ours)
    kl = (np.exp(lr) * (lr - lo)).sum(-1)
    agree = ours.argmax(-1) == ref.argmax(-1)
    return {"top1_agree": int(agree.sum()), "positions": int(agree.size), "kl_mean": float(kl.mean()),
            "kl_max": float(kl.max()), "max_abs_logit_error": float(np.abs(ours - ref).max())}


# (label, how qwen-run runs, --int8, --decode-activations)
MODES = [
    ("prefill, float32 activations", "graph", "never", "float32"),
    ("prefill, int8 activations", "graph", "always", "float32"),
    ("decode, float32 activations", "stepwise", "never", "float32"),
    ("decode, int16 activations (default)", "stepwise", "never", "int16"),
    ("decode, int8 activations", "stepwise", "always", "int16"),
]


def main():
    a, model, ids = parse_args_and_encode(TEXT)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ours = {}
        for level_name, level in ORT_LEVELS:
            sess = ort_session(model, level)
            feeds = feeds_for(sess, ids)
            names = [o.name for o in sess.get_outputs()]
            ref = dict(zip(names, sess.run(None, feeds)))["logits"][0]
            for label, how, int8, decode in MODES:
                if label not in ours:
                    ours[label] = (run_ours(a.qwen_run, model, feeds, tmp, int8) if how == "graph"
                                   else run_ours_stepwise(a.qwen_run, a.model_dir, a.onnx, ids, tmp, int8, decode))
                r = compare(ours[label], ref)
                r.update({"ours": label, "reference": level_name})
                results.append(r)
        for label in [m[0] for m in MODES[1:]]:
            between = compare(ours[label], ours[MODES[0][0]])
            between.update({"ours": label, "reference": "qwen-run prefill, float32 activations"})
            results.append(between)
    print(f"teacher-forced over {len(ids)} tokens ({model}, ONNX Runtime {ort.__version__})")
    print("| qwen-run | vs | top-1 agree | KL mean (nats) | KL max | max |Δlogit| |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['ours']} | {r['reference']} | {r['top1_agree']}/{r['positions']} | {r['kl_mean']:.2e} | "
              f"{r['kl_max']:.2e} | {r['max_abs_logit_error']:.3g} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": model, "onnxruntime": ort.__version__, "tokens": len(ids), "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
