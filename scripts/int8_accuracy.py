#!/usr/bin/env python3
"""Accuracy of qwen-run's int8-activation mode (`--int8 always`, what `accuracy_level = 4` selects)
against ONNX Runtime, teacher-forced: one prefill over a fixed text of a few hundred tokens, the
logits of every position compared with ONNX Runtime's on the same graph and ids.

Reported for qwen-run's float32 mode (the default) and its int8 mode, against ORT_DISABLE_ALL and
ORT_ENABLE_ALL (ORT's default):
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
            for mode in ["never", "always"]:
                if mode not in ours:
                    ours[mode] = run_ours(a.qwen_run, model, feeds, tmp, mode)
                r = compare(ours[mode], ref)
                r.update({"ours": "float32 activations" if mode == "never" else "int8 activations", "reference": level_name})
                results.append(r)
        between = compare(ours["always"], ours["never"])
        between.update({"ours": "int8 activations", "reference": "qwen-run float32 activations"})
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
