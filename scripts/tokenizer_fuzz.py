#!/usr/bin/env python3
"""Differential fuzzing of the Swift tokenizer against Hugging Face tokenizers, through the CLI.

Generates random strings (seeded): random code points of every kind, mixtures of the corpus
fragments, whitespace/apostrophe/digit-heavy strings and combining-mark pile-ups; encodes them with
HF tokenizers; runs `qwen-run tokenize --model DIR --jsonl -` on the same strings; reports every
difference. Exit status 1 if any.

Usage: .venv/bin/python scripts/tokenizer_fuzz.py [--count N] [--seed S] [--qwen-run PATH] [--model DIR]
"""
import argparse
import json
import pathlib
import random
import subprocess
import sys
import unicodedata

from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tokenizer_corpus  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def strings(rng, count):
    pools = tokenizer_corpus.code_point_pools()
    fragments = tokenizer_corpus.fragments()
    marks = [c for c in range(0x300, 0x30000) if not 0xD800 <= c < 0xE000 and unicodedata.combining(chr(c))]
    bases = [ord(x) for x in "aeioAEOnNcCsS "] + [0x1100, 0x1161, 0x11A8, 0xAC00, 0x0915, 0x0BC6, 0x0BBE, 0x3046]
    small = [" ", "  ", "\t", "\n", "\r\n", "\r", "'", "'s", "'S", "'ll", "'LL", "1", "23", "!", "?!", ".", "a", "B",
             "é", "中", "\u00a0", "\u3000", "\u0301", "<|im_end|>", "<|", "ſ", "٣", "\u2028", "\x0b", "\x85", "😀", "\u200d"]
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            yield tokenizer_corpus.fuzz_string(rng, pools, rng.randint(1, 60))
        elif kind < 0.65:
            yield "".join(rng.choice(fragments)[rng.randint(0, 20):][: rng.randint(1, 30)] for _ in range(rng.randint(1, 5)))
        elif kind < 0.85:
            yield "".join(rng.choice(small) for _ in range(rng.randint(1, 25)))
        else:
            yield "".join(chr(rng.choice([rng.choice(bases), rng.choice(marks), rng.choice(marks), 0x0301, 0x0323]))
                          for _ in range(rng.randint(1, 8)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--qwen-run", default=str(ROOT / ".build/release/qwen-run"))
    parser.add_argument("--model", default=str(ROOT / "Models/tokenizer/qwen2.5"))
    args = parser.parse_args()

    tok = Tokenizer.from_file(str(pathlib.Path(args.model) / "tokenizer.json"))
    texts = list(strings(random.Random(args.seed), args.count))
    expected = [e.ids for e in tok.encode_batch(texts)]
    jsonl = "".join(json.dumps(t, ensure_ascii=True) + "\n" for t in texts)
    out = subprocess.run([args.qwen_run, "tokenize", "--model", args.model, "--jsonl", "-"], input=jsonl,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == len(texts), f"{len(out)} lines of output for {len(texts)} strings"
    bad = 0
    for text, want, line in zip(texts, expected, out):
        got = json.loads(line)
        if got != want:
            bad += 1
            if bad <= 10:
                print(f"MISMATCH {text!r}\n  swift {got}\n  hf    {want}")
    print(f"{bad} mismatches of {len(texts)} strings (seed {args.seed})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
