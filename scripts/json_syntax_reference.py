#!/usr/bin/env python3
"""Reference verdicts for the JSON-object constraint (`JSONSyntax`, `response_format` json_object).

Usage:  python3 scripts/json_syntax_reference.py [--out Tests/QwenTests/Data/json_syntax_reference.json]
        python3 scripts/json_syntax_reference.py --check   # regenerate in memory, compare with the file

Writes seeded cases, each a byte string (base64) and whether Python's own parser accepts it as one
JSON object: the bytes decoded as strict UTF-8 (json.loads(bytes) itself would let UTF-8-encoded
surrogates through), then `json.loads` (control characters refused in strings) with NaN and
Infinity refused (RFC 8259 has neither), and the value a dict. The cases:

  valid      `json.dumps` of random nested objects (strings with escapes, every UTF-8 length and
             astral characters, numbers with fractions and exponents, true/false/null, arrays,
             empty containers), compact or indented (1-4 spaces, at most 6 levels: whitespace runs
             stay within the constraint's bound of 24), `ensure_ascii` on and off, a few with hand-
             written escapes (\\u, \\/), trailing whitespace
  mutated    each valid case with one byte deleted, inserted (from a set of JSON-significant and
             invalid bytes: quotes, brackets, commas, colons, backslashes, digits, letters, control
             bytes, 0x80, 0xC0, 0xF5, 0xFF) or replaced, and truncated at a random point
  handmade   top-level arrays, numbers and strings; leading zeros, `1.`, `.5`, `1e`, `-`, `+1`;
             bad escapes; lone UTF-8 continuation bytes, overlong forms (C0 80, E0 80 80), UTF-16
             surrogates encoded in UTF-8 (ED A0 80), code points over U+10FFFF (F4 90 80 80); NaN;
             two objects in a row; a comma before `}`

Mutations that leave a whitespace run over 24 bytes or whitespace before the first `{` (which the
constraint refuses although JSON allows them) are left out. The Swift test
(Tests/QwenTests/JSONConstraintTests.swift) reads every case through `JSONSyntax` byte by byte: the
verdict "accepts every byte and ends complete" must be Python's. For a valid case it also checks
that every prefix is accepted (a constrained generation can get there).
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests/QwenTests/Data/json_syntax_reference.json"
SEED = 20261206
MAX_WHITESPACE = 24


def python_verdict(data: bytes) -> bool:
    def refuse(name):
        raise ValueError(name)
    try:
        # Strict UTF-8 first: json.loads(bytes) would decode with 'surrogatepass' and let UTF-8
        # encoded surrogates (ED A0 80...) through, which RFC 3629 and RFC 8259 8.1 do not.
        value = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(value, dict)


def within_constraint_bounds(data: bytes) -> bool:
    """Whitespace limits the constraint adds to JSON (documented in JSONSyntax)."""
    if data[:1] in (b" ", b"\t", b"\n", b"\r"):
        return False
    return all(len(run) <= MAX_WHITESPACE for run in re.findall(rb"[ \t\n\r]+", data))


def random_string(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randrange(0, 8)):
        kind = rng.randrange(7)
        if kind == 0:
            pieces.append(rng.choice(["a", "key", "Hello", "x y", "snake_case", "0"]))
        elif kind == 1:
            pieces.append(rng.choice(['"', "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f"]))
        elif kind == 2:
            pieces.append(chr(rng.randrange(0x80, 0x800)))
        elif kind == 3:
            pieces.append(chr(rng.choice([rng.randrange(0x800, 0xD800), rng.randrange(0xE000, 0x10000)])))
        elif kind == 4:
            pieces.append(chr(rng.randrange(0x10000, 0x110000)))
        elif kind == 5:
            pieces.append("\u00e9t\u00e9 \u4e2d\u6587 \U0001f600")
        else:
            pieces.append(" ")
    return "".join(pieces)


def random_number(rng: random.Random):
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randrange(-10**6, 10**6)
    if kind == 1:
        return 0
    if kind == 2:
        return rng.uniform(-1e3, 1e3)
    if kind == 3:
        return rng.choice([1e-7, -2.5e21, 6.02e23, 1.5e-300])
    return rng.randrange(10**20)


def random_value(rng: random.Random, depth: int):
    kind = rng.randrange(8 if depth < 5 else 5)
    if kind == 0:
        return random_string(rng)
    if kind == 1:
        return random_number(rng)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return random_string(rng)
    if kind == 4:
        return random_number(rng)
    if kind in (5, 6):
        return random_object(rng, depth + 1)
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def random_object(rng: random.Random, depth: int = 0) -> dict:
    return {random_string(rng): random_value(rng, depth) for _ in range(rng.randrange(0, 5))}


def valid_cases(rng: random.Random) -> list[bytes]:
    out = []
    for i in range(120):
        doc = random_object(rng)
        indent = None if i % 3 == 0 else rng.randrange(1, 5)
        text = json.dumps(doc, ensure_ascii=i % 2 == 0, indent=indent)
        data = text.encode("utf-8")
        if i % 7 == 0:
            data += b"\n"
        out.append(data)
    out += [b"{}", b'{"a":[]}', b'{"a":{}}', b'{"k":"\\u00e9\\/\\uD83D\\ude00"}', b'{"n":-0.5e+10,"m":0E0,"z":-0}',
            b'{"t":true,"f":false,"x":null}', b'{ "a" : [ 1 , 2 ] }', b'{"a":"\xe4\xb8\xad"}', b'{"a":"\xf0\x9f\x98\x80"}']
    return [d for d in out if within_constraint_bounds(d)]


SIGNIFICANT = list(b'"{}[],:\\0123456789-+.eEtfnul aZ\t\n') + [0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]


def mutations(rng: random.Random, valid: list[bytes]) -> list[bytes]:
    out = []
    for data in valid:
        n = len(data)
        i = rng.randrange(n)
        out.append(data[:i] + data[i + 1:])
        out.append(data[:i] + bytes([rng.choice(SIGNIFICANT)]) + data[i:])
        out.append(data[:i] + bytes([rng.choice(SIGNIFICANT)]) + data[i + 1:])
        out.append(data[:rng.randrange(n)])
    return [d for d in out if d and within_constraint_bounds(d)]


HANDMADE = [b"[]", b"[1]", b"1", b'"s"', b"true", b"null", b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":1e}',
            b'{"a":-}', b'{"a":+1}', b'{"a":1e+}', b'{"a":"\\x"}', b'{"a":"\\u12"}', b'{"a":"\\u12G4"}',
            b'{"a":"\x80"}', b'{"a":"\xc0\x80"}', b'{"a":"\xe0\x80\x80"}', b'{"a":"\xed\xa0\x80"}',
            b'{"a":"\xf4\x90\x80\x80"}', b'{"a":"\xc3"}', b'{"a":"\x7f"}', b'{"a":NaN}', b'{"a":Infinity}', b"{}{}",
            b'{"a":1,}', b'{"a" 1}', b'{a:1}', b"{'a':1}", b'{"a":[1,]}', b'{"a":[,1]}', b'{"a":tru}', b'{"a":nul}',
            b'{"a":truee}', b'{"a":1 2}', b'{"a":"b"}x', b'{"a":"b"} ', b'{"a":"\t"}', b'{"a":"b\\"}', b"{",
            b'{"a"', b'{"a":', b'{"a":[', b'{"a":"', b'{"\xe4\xb8\xad":0}', b'{"a":-0.0e-0}', b'{"a":00}', b'{"a":-01}']


def build() -> dict:
    rng = random.Random(SEED)
    valid = valid_cases(rng)
    cases = valid + mutations(rng, valid) + [d for d in HANDMADE if within_constraint_bounds(d)]
    entries = [{"bytes": base64.b64encode(d).decode("ascii"), "valid": python_verdict(d)} for d in cases]
    return {
        "generator": "scripts/json_syntax_reference.py",
        "python": sys.version.split()[0],
        "seed": SEED,
        "max_whitespace": MAX_WHITESPACE,
        "valid_count": sum(e["valid"] for e in entries),
        "cases": entries,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare a fresh build with --out instead of writing it")
    args = ap.parse_args()
    data = build()
    text = json.dumps(data, indent=1) + "\n"
    if args.check:
        old = json.loads(args.out.read_text())
        same = old["cases"] == data["cases"]
        print(f"json_syntax_reference: {len(data['cases'])} cases, {'same as' if same else 'DIFFERENT from'} {args.out}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"json_syntax_reference: wrote {len(data['cases'])} cases ({data['valid_count']} valid) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
