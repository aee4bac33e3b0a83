#!/usr/bin/env python3
"""Rebuilds the official Qwen2.5 `tokenizer.json` + `tokenizer_config.json` from a GGUF's metadata.

Usage:  .venv/bin/python scripts/build_tokenizer.py GGUF OUTDIR

The GGUF (llama.cpp layout) stores the byte-level BPE vocabulary as `tokenizer.ggml.tokens`
(151,936 entries: 151,643 BPE tokens, 22 added/control tokens, 271 `[PAD…]` fillers that pad the
embedding matrix), `tokenizer.ggml.token_type` (1 normal, 3 control, 4 user-defined, 5 unused),
`tokenizer.ggml.merges` ("a b" strings) and `tokenizer.chat_template`. From these we write the
files in the layout Qwen ships on the Hub (HF `tokenizers` serialisation, merges as "a b" strings):

  * model: BPE over ids 0..151642, 151,387 merges, no unk, no dropout, no byte fallback;
  * added_tokens: ids 151643..151664, `special: true` except `<tool_call>`/`</tool_call>`
    (token_type 4, user-defined: `special: false`, as in the official file); fillers dropped;
  * normalizer NFC; pre_tokenizer Sequence[Split(Qwen2 regex, Isolated), ByteLevel(no regex)];
    post_processor / decoder ByteLevel.

The module's functions are also used by make_fixtures.py to write a prefix tokenizer.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The 22 added tokens of Qwen2.5 (ids 151643..151664), in id order.
QWEN25_ADDED_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]
NOT_SPECIAL = {"<tool_call>", "</tool_call>"}
# Qwen2.5 tokenizer_config.json lists these as additional_special_tokens.
QWEN25_ADDITIONAL_SPECIAL = QWEN25_ADDED_TOKENS[1:14]

BPE_COUNT = 151_643
MERGE_COUNT = 151_387

GGUF_TOKEN_NORMAL, GGUF_TOKEN_CONTROL, GGUF_TOKEN_USER_DEFINED, GGUF_TOKEN_UNUSED = 1, 3, 4, 5


def read_gguf_tokenizer(path: str | Path) -> dict:
    """Returns tokens, token_types, merges, chat_template and special ids from a GGUF file."""
    import gguf  # type: ignore

    reader = gguf.GGUFReader(str(path))

    def field(name: str):
        f = reader.fields.get(name)
        if f is None:
            raise SystemExit(f"{path}: GGUF metadata has no {name}")
        return f.contents()

    model = field("tokenizer.ggml.model")
    pre = field("tokenizer.ggml.pre")
    if model != "gpt2" or pre != "qwen2":
        raise SystemExit(f"{path}: expected tokenizer gpt2/qwen2, found {model}/{pre}")
    return {
        "tokens": list(field("tokenizer.ggml.tokens")),
        "token_types": [int(t) for t in field("tokenizer.ggml.token_type")],
        "merges": list(field("tokenizer.ggml.merges")),
        "chat_template": field("tokenizer.chat_template"),
        "eos_token_id": int(field("tokenizer.ggml.eos_token_id")),
        "padding_token_id": int(field("tokenizer.ggml.padding_token_id")),
    }


def added_token_entry(token_id: int, content: str) -> dict:
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": content not in NOT_SPECIAL,
    }


def byte_level(**extra) -> dict:
    d = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    d.update(extra)
    return d


def tokenizer_json(bpe_tokens: list[str], merges: list[str], added: list[tuple[int, str]]) -> dict:
    """The HF tokenizers serialisation, key order as in Qwen's published tokenizer.json."""
    vocab = {}
    for i, tok in enumerate(bpe_tokens):
        if tok in vocab:
            raise SystemExit(f"duplicate BPE token {tok!r} at ids {vocab[tok]} and {i}")
        vocab[tok] = i
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added_token_entry(i, c) for i, c in added],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_REGEX},
                 "behavior": "Isolated", "invert": False},
                byte_level(),
            ],
        },
        "post_processor": byte_level(),
        "decoder": byte_level(),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def tokenizer_config(added: list[tuple[int, str]], chat_template: str, *,
                     additional_special: list[str], model_max_length: int = 32768,
                     eos: str = "<|im_end|>", pad: str = "<|endoftext|>") -> dict:
    """tokenizer_config.json as Qwen2.5 ships it (Qwen2Tokenizer, no bos, eos <|im_end|>)."""
    decoder = {}
    for i, c in added:
        e = added_token_entry(i, c)
        decoder[str(i)] = {k: e[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                            "single_word", "special")}
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": additional_special,
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "errors": "replace",
        "model_max_length": model_max_length,
        "pad_token": pad,
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_json(path: Path, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def check_chat_template(template: str) -> None:
    needles = [
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "{%- if tools %}", "<tool_call>", "<tool_response>", "add_generation_prompt",
        "<|im_start|>assistant\\n",
    ]
    missing = [n for n in needles if n not in template]
    if missing:
        raise SystemExit(f"chat template lacks {missing}")


def build_from_gguf(gguf_path: str | Path, outdir: str | Path) -> Path:
    meta = read_gguf_tokenizer(gguf_path)
    tokens, types, merges = meta["tokens"], meta["token_types"], meta["merges"]

    bpe = tokens[:BPE_COUNT]
    bad = [i for i in range(BPE_COUNT) if types[i] != GGUF_TOKEN_NORMAL]
    if bad:
        raise SystemExit(f"expected normal tokens at 0..{BPE_COUNT - 1}, found types at {bad[:5]}")
    added = []
    for k, name in enumerate(QWEN25_ADDED_TOKENS):
        i = BPE_COUNT + k
        if tokens[i] != name:
            raise SystemExit(f"id {i}: GGUF has {tokens[i]!r}, expected {name!r}")
        want_type = GGUF_TOKEN_USER_DEFINED if name in NOT_SPECIAL else GGUF_TOKEN_CONTROL
        if types[i] != want_type:
            raise SystemExit(f"id {i} {name}: GGUF token_type {types[i]}, expected {want_type}")
        added.append((i, name))
    fillers = tokens[BPE_COUNT + len(added):]
    if not all(t.startswith("[PAD") and ty == GGUF_TOKEN_UNUSED
               for t, ty in zip(fillers, types[BPE_COUNT + len(added):])):
        raise SystemExit("tokens after the added ones are not all [PAD…] fillers")
    if len(merges) != MERGE_COUNT:
        raise SystemExit(f"expected {MERGE_COUNT} merges, found {len(merges)}")
    if tokens[meta["eos_token_id"]] != "<|im_end|>" or tokens[meta["padding_token_id"]] != "<|endoftext|>":
        raise SystemExit("GGUF eos/pad ids are not <|im_end|>/<|endoftext|>")
    check_chat_template(meta["chat_template"])

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "tokenizer.json", tokenizer_json(bpe, merges, added))
    write_json(out / "tokenizer_config.json",
               tokenizer_config(added, meta["chat_template"],
                                additional_special=QWEN25_ADDITIONAL_SPECIAL))
    print(f"[build_tokenizer] wrote {out}/tokenizer.json ({len(bpe)} BPE tokens, {len(merges)} merges, "
          f"{len(added)} added tokens, {len(fillers)} [PAD] fillers dropped) and tokenizer_config.json",
          file=sys.stderr)
    return out


def verify(outdir: str | Path) -> None:
    """Checks the written files with HF tokenizers / transformers against known Qwen2.5 ids."""
    from tokenizers import Tokenizer  # type: ignore

    tok = Tokenizer.from_file(str(Path(outdir) / "tokenizer.json"))
    cases = {
        "Hello world": [9707, 1879],
        " Hello world": [21927, 1879],
        "<|im_start|>user": [151644, 872],
    }
    for text, want in cases.items():
        got = tok.encode(text, add_special_tokens=True).ids
        if got != want:
            raise SystemExit(f"verify: {text!r} -> {got}, expected {want}")
    if tok.get_vocab_size(with_added_tokens=True) != BPE_COUNT + len(QWEN25_ADDED_TOKENS):
        raise SystemExit(f"verify: vocab size {tok.get_vocab_size(with_added_tokens=True)}")

    from transformers import AutoTokenizer  # type: ignore

    hf = AutoTokenizer.from_pretrained(str(outdir))
    text = hf.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                  add_generation_prompt=True)
    want = ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    if text != want:
        raise SystemExit(f"verify: chat template rendered {text!r}")
    if hf.eos_token_id != 151645 or hf.pad_token_id != 151643 or hf.bos_token is not None:
        raise SystemExit(f"verify: eos {hf.eos_token_id} pad {hf.pad_token_id} bos {hf.bos_token}")
    print("[build_tokenizer] verified: 'Hello world' -> [9707, 1879], ' Hello world' -> "
          "[21927, 1879], '<|im_start|>user' -> [151644, 872], chat template renders", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    out = build_from_gguf(argv[1], argv[2])
    verify(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
