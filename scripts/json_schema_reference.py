#!/usr/bin/env python3
"""Reference verdicts for structured outputs (`OutputPattern(jsonSchema:)`, `response_format` json_schema).

Usage:  .venv/bin/python scripts/json_schema_reference.py [--out Tests/QwenTests/Data/json_schema_reference.json]
        .venv/bin/python scripts/json_schema_reference.py --check   # regenerate in memory, compare with the file

The schemas are Pydantic's own (`model_json_schema()` of the models below: what the official
`openai` client sends for `beta.chat.completions.parse(response_format=Model)`), with every field
required and `extra="forbid"`, as OpenAI's strict mode has them. The cases, seeded, each a byte
string (base64) and Pydantic's verdict:

  valid      `json.dumps` (its compact separators `, ` and `: `, `ensure_ascii` on or off) of random
             instances: nested models, lists of models, of strings, of lists, empty lists, dicts
             (`additionalProperties` schemas), Optional models and lists (`anyOf` with null),
             a union of an integer, a string and a list of strings, Literal enums, lists with
             bounded lengths, strings with escapes and non-ASCII characters
  mutated    each valid case with one value swapped for another kind, a key dropped, added,
             repeated or two keys swapped, a list element of the wrong kind, a list one element
             longer or shorter (`min_length` / `max_length`: minItems, maxItems); and with one
             byte deleted, inserted (JSON-significant bytes, spaces, letters, digits; whitespace
             right after a digit) or replaced, or truncated

A case is valid when Pydantic validates it (`model_validate_json(..., strict=True)`: kinds exact,
every field present, no others), the text is compact (outside strings no whitespace but the one
space after each `,` and `:`, as `json.dumps` writes it), and every model object's keys appear
once each in the order of the model's fields (strict mode's documents, as the pattern writes
them; Pydantic does not look at key order or repeats). The Swift test
(Tests/QwenTests/JSONConstraintTests.swift) reads every case through the schema's pattern byte by
byte: "accepts every byte and ends complete" must be this verdict. Left out: texts with an unpaired
UTF-16 surrogate escape (`\\ud83d` alone), which Pydantic refuses and Python's parser, whose
verdicts the JSON syntax follows, accepts.
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests/QwenTests/Data/json_schema_reference.json"
SEED = 20261207


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(Strict):
    city: str
    zip: int


class Item(Strict):
    name: str
    qty: int
    price: float
    tags: list[str]


class Order(Strict):
    id: int
    items: list[Item]
    note: Optional[str]
    meta: dict[str, int]
    status: Literal["open", "closed", "held"]
    shipping: Optional[Address]
    grid: list[list[int]]
    flags: list[bool]
    choice: Union[int, str, list[str]]


class Survey(Strict):
    title: str
    answers: Optional[list[Literal["yes", "no"]]]
    scores: dict[str, list[float]]
    places: list[Address]
    picks: Annotated[list[str], Field(min_length=1, max_length=3)]
    pair: Annotated[list[int], Field(min_length=2)]
    done: bool


MODELS = {"Order": Order, "Survey": Survey}

WORDS = ["a", "Oslo", "tea cup", "naïve", "日本", "😀 x", 'say "hi"', "back\\slash", "line\nbreak", "", "tab\t"]


def text(rng: random.Random) -> str:
    return rng.choice(WORDS)


def integer(rng: random.Random) -> int:
    return rng.choice([0, 1, -7, 42, 100000, -2100000, rng.randint(-10**12, 10**12)])


def number(rng: random.Random) -> float | int:
    return rng.choice([0.5, -3.25, 1e-7, 2.0, 123456.789, 3, rng.uniform(-1e6, 1e6)])


def listof(rng: random.Random, make, most: int = 3) -> list:
    return [make(rng) for _ in range(rng.randint(0, most))]


def address(rng: random.Random) -> dict:
    return {"city": text(rng), "zip": integer(rng)}


def item(rng: random.Random) -> dict:
    return {"name": text(rng), "qty": integer(rng), "price": number(rng), "tags": listof(rng, text)}


def order(rng: random.Random) -> dict:
    return {
        "id": integer(rng),
        "items": listof(rng, item),
        "note": rng.choice([None, text(rng)]),
        "meta": {text(rng): integer(rng) for _ in range(rng.randint(0, 3))},
        "status": rng.choice(["open", "closed", "held"]),
        "shipping": rng.choice([None, address(rng)]),
        "grid": listof(rng, lambda r: listof(r, integer)),
        "flags": listof(rng, lambda r: r.random() < 0.5),
        "choice": rng.choice([integer(rng), text(rng), listof(rng, text)]),
    }


def survey(rng: random.Random) -> dict:
    return {
        "title": text(rng),
        "answers": rng.choice([None, listof(rng, lambda r: r.choice(["yes", "no"]), 4)]),
        "scores": {text(rng): listof(rng, number) for _ in range(rng.randint(0, 2))},
        "places": listof(rng, address),
        "picks": [text(rng) for _ in range(rng.randint(1, 3))],
        "pair": [integer(rng) for _ in range(rng.randint(2, 4))],
        "done": rng.random() < 0.5,
    }


INSTANCES = {"Order": order, "Survey": survey}
OTHER_VALUES = [None, True, 0, -1, 2.5, "x", "", [], ["x"], [1], {}, {"city": "a", "zip": 1}, {"k": 1}]


def is_compact(data: bytes) -> bool:
    """Outside strings, whitespace only as the single space after each `,` and `:`."""
    in_string = escaped = False
    previous = None  # the last byte outside strings
    for b in data:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:
                escaped = True
            elif b == 0x22:
                in_string = False
                previous = b
            continue
        if previous in (ord(","), ord(":")):
            if b != 0x20:
                return False
        elif b in b" \t\r\n":
            return False
        if b == 0x22:
            in_string = True
        previous = b
    return True


class Pairs(list):
    """A JSON object read as its (key, value) pairs in order, repeats kept."""


def keys_in_order(value, annotation) -> bool:
    """Every model object's keys, read with repeats, exactly the model's fields in order (the
    value already validated by Pydantic, so its kinds are the annotation's)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields
        if not isinstance(value, Pairs) or [k for k, _ in value] != list(fields):
            return False
        return all(keys_in_order(v, fields[k].annotation) for k, v in value)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list:
        return all(keys_in_order(v, args[0]) for v in value)
    if origin is dict:
        return all(keys_in_order(v, args[1]) for _, v in value)
    if origin is Union:
        for branch in args:
            if isinstance(branch, type) and issubclass(branch, BaseModel) and isinstance(value, Pairs):
                return keys_in_order(value, branch)
            if get_origin(branch) is list and isinstance(value, list) and not isinstance(value, Pairs):
                return keys_in_order(value, branch)
    return True


def verdict(model: type[BaseModel], data: bytes) -> bool:
    try:
        decoded = data.decode("utf-8", errors="strict")
        pairs = json.loads(decoded, object_pairs_hook=Pairs,
                           parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        model.model_validate_json(data, strict=True)
    except (UnicodeDecodeError, ValueError, ValidationError):
        return False
    return is_compact(data) and keys_in_order(pairs, model)


def structural_mutations(rng: random.Random, obj) -> list:
    """Copies of obj with one value of another kind, a key dropped, added or swapped."""
    out = []
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + [i])
                walk(v, path + [i])
    walk(obj, [])
    for _ in range(6):
        path = rng.choice(paths)
        copy = json.loads(json.dumps(obj))
        parent = copy
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        kind = rng.randrange(5)
        if kind == 4 and isinstance(parent[last], list):
            # One element more or fewer (item counts).
            if parent[last] and rng.random() < 0.5:
                parent[last].pop()
            else:
                parent[last].append(parent[last][0] if parent[last] else "x")
        elif kind == 0 or kind == 4 or not isinstance(parent, dict):
            parent[last] = rng.choice(OTHER_VALUES)
        elif kind == 1:
            del parent[last]
        elif kind == 2:
            parent["extra"] = 1
        else:
            keys = list(parent)
            if len(keys) >= 2:
                i, j = rng.sample(range(len(keys)), 2)
                keys[i], keys[j] = keys[j], keys[i]
                items = dict(parent)
                parent.clear()
                parent.update({k: items[k] for k in keys})
        out.append(copy)
    return out


def byte_mutations(rng: random.Random, data: bytes) -> list[bytes]:
    significant = b'{}[],:" \\-.0123456789eEtfnulx'
    out = []
    # Whitespace right after a digit (a number's end, outside strings or in one).
    digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39]
    if digits:
        i = rng.choice(digits) + 1
        out.append(data[:i] + rng.choice([b" ", b"\n", b"\t"]) + data[i:])
    for _ in range(6):
        i = rng.randrange(len(data) + 1)
        kind = rng.randrange(4)
        if kind == 0 and i < len(data):
            out.append(data[:i] + data[i + 1:])
        elif kind == 1:
            out.append(data[:i] + bytes([rng.choice(significant)]) + data[i:])
        elif kind == 2 and i < len(data):
            out.append(data[:i] + bytes([rng.choice(significant)]) + data[i + 1:])
        else:
            out.append(data[:i])
    return out


def has_lone_surrogate(data: bytes) -> bool:
    """Whether the JSON text holds a \\u escape of an unpaired UTF-16 surrogate (a byte mutation can
    make one): Python's parser reads it, Pydantic's refuses it, and the pattern's JSON syntax
    follows Python's (scripts/json_syntax_reference.py), so such cases are left out."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False

    def strings(v):
        if isinstance(v, str):
            yield v
        elif isinstance(v, list):
            for x in v:
                yield from strings(x)
        elif isinstance(v, dict):
            for k, x in v.items():
                yield k
                yield from strings(x)
    try:
        for s in strings(value):
            s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def build() -> dict:
    rng = random.Random(SEED)
    schemas = {name: model.model_json_schema() for name, model in MODELS.items()}
    cases = []
    seen = set()

    def add(name: str, data: bytes):
        if (name, data) in seen or has_lone_surrogate(data):
            return
        seen.add((name, data))
        cases.append({"schema": name, "bytes": base64.b64encode(data).decode(), "valid": verdict(MODELS[name], data)})

    for name in MODELS:
        for _ in range(40):
            obj = INSTANCES[name](rng)
            ascii_only = rng.random() < 0.5
            data = json.dumps(obj, ensure_ascii=ascii_only).encode()
            add(name, data)
            for mutated in structural_mutations(rng, obj):
                add(name, json.dumps(mutated, ensure_ascii=ascii_only).encode())
            for mutated in byte_mutations(rng, data):
                add(name, mutated)
    return {"seed": SEED, "pydantic": __import__("pydantic").VERSION, "schemas": schemas, "cases": cases}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args()
    reference = build()
    text = json.dumps(reference, indent=1, sort_keys=False) + "\n"
    valid = sum(c["valid"] for c in reference["cases"])
    if args.check:
        same = args.out.read_text() == text
        print(f"{args.out}: {'identical' if same else 'DIFFERS'} ({len(reference['cases'])} cases, {valid} valid)")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out}: {len(reference['cases'])} cases, {valid} valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
