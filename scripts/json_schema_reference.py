#!/usr/bin/env python3
"""Reference verdicts for structured outputs (`OutputPattern(jsonSchema:)`, `response_format` json_schema).

Usage:  .venv/bin/pip install -r scripts/requirements-reference.txt   # email-validator, jsonschema, fqdn
        .venv/bin/python scripts/json_schema_reference.py [--out Tests/QwenTests/Data/json_schema_reference.json]
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
  Booking    a model of constrained values (a `pattern`, lengths, datetime, date, time, UUID,
             IPv4Address, integer bounds), instances with edge values now and then (leap days,
             hour 24, offsets past 23:59, bounds ± 1, leading zeros) and the mutations above
  P0, P1...  one model `{"s": str}` per regular expression in PATTERNS (some with lengths beside):
             its examples and their one-character mutations, then the byte mutations above
  formats    one model `{"s": T}` per format (date-time, date, time, uuid, ipv4, duration, ipv6, email,
             uri as AnyUrl and as HttpUrl, hostname as jsonschema's FormatChecker reads it) on
             texts made around its edges (every month's end in common, leap and century years,
             designators out of order, `::` twice, a zone index, ...)
  Pets       unions of models that begin alike: plain (`anyOf` of `$ref`s, first keys shared, a key
             shared with different kinds, one model the other plus a field), a discriminated union
             (`oneOf` with `discriminator`), a list of Literal-tagged models, an Optional union, a
             Literal or any string;
             instances and the mutations above
  Tuples     a model of tuples (`prefixItems`: floats, mixed kinds, Optional, one holding a model,
             the empty tuple, `tuple[int, ...]`), instances and the mutations above
  M0, M1...  one model `{"s": T}` per `multiple_of` in MULTIPLES (integers, floats, some with
             bounds) on multiples, values near them, negative zero, exponents, 16-digit values

A case is valid when Pydantic validates it (`model_validate_json(..., strict=True)`: kinds exact,
every field present, no others), the text is compact (outside strings no whitespace but the one
space after each `,` and `:`, as `json.dumps` writes it), and every model object's keys appear
once each in the order of the model's fields (strict mode's documents, as the pattern writes
them; Pydantic does not look at key order or repeats). The Swift test
(Tests/QwenTests/JSONConstraintTests.swift) reads every case through the schema's pattern byte by
byte: "accepts every byte and ends complete" must be this verdict (for a case marked
`sound_only`, a text beyond ASCII against a pattern with `.` or a shorthand class, it must only
not accept what the verdict refuses; for one marked `narrower`, from NARROWER, it must refuse
what Pydantic accepts). For Booking, the patterns and the formats the valid texts are also the
ones the pattern writes: strings as `json.dumps(ensure_ascii=False)` writes them, and dates,
times and UUIDs in the RFC 3339 / RFC 4122 forms (RFC3339, UUID_TEXT). Left out: texts with an unpaired
UTF-16 surrogate escape (`\\ud83d` alone), which Pydantic refuses and Python's parser, whose
verdicts the JSON syntax follows, accepts.
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import re
import sys
import uuid
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Annotated, Literal, Optional, Union, get_args, get_origin
from uuid import UUID

import jsonschema
from pydantic import (AfterValidator, AnyUrl, BaseModel, ConfigDict, EmailStr, Field, HttpUrl, PositiveInt, ValidationError,
                      WithJsonSchema, create_model)

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


class Booking(Strict):
    """Constrained values: patterns, lengths, formats and integer bounds."""
    ref: Annotated[str, Field(pattern=r"^[A-Z]{3}-[0-9]{4}$")]
    guest: Annotated[str, Field(min_length=1, max_length=12)]
    when: datetime
    day: date
    at: time
    id: UUID
    guests: Annotated[int, Field(ge=1, le=12)]
    floor: Annotated[int, Field(gt=-3, lt=150)]
    count: PositiveInt
    host: IPv4Address
    code: Optional[Annotated[str, Field(pattern=r"[a-z]+[0-9]")]]
    tags: Annotated[list[Annotated[str, Field(max_length=5)]], Field(max_length=3)]
    deposit: Annotated[float, Field(ge=0, lt=500)]
    score: Annotated[float, Field(gt=0, le=1)]
    temp: Annotated[float, Field(ge=-273.15)]


class Tuples(Strict):
    """Pydantic's tuples: `prefixItems` with minItems = maxItems, one holding a model."""
    point: tuple[float, float]
    row: tuple[int, str, list[int]]
    pair: Optional[tuple[str, int]]
    place: tuple[Address, bool]
    empty: tuple[()]
    rest: tuple[int, ...]


class Cat(Strict):
    name: str
    meows: int


class Dog(Strict):
    name: str
    barks: float


class Fish(Strict):
    fins: int


class CatTag(Strict):
    pet_type: Literal["cat"]
    lives: int


class DogTag(Strict):
    pet_type: Literal["dog"]
    lives: int
    good: bool


class Search(Strict):
    kind: Literal["search"]
    query: str


class Answer(Strict):
    kind: Literal["answer"]
    text: str
    sources: list[str]


class Box(Strict):
    value: int


class Label(Strict):
    value: str


class CatOwner(Strict):
    name: str
    meows: int
    owner: str


class Pets(Strict):
    """Unions of models whose branches begin alike (`anyOf` of `$ref`s; a discriminated union's
    `oneOf`): written as one up to where they part."""
    pet: Union[Cat, Dog, Fish]
    tagged: Annotated[Union[CatTag, DogTag], Field(discriminator="pet_type")]
    steps: list[Union[Search, Answer]]
    maybe: Optional[Union[Cat, Dog]]
    content: Union[Box, Label]
    grown: Union[Cat, CatOwner]
    mode: Union[Literal["auto"], str]


MODELS = {"Order": Order, "Survey": Survey, "Booking": Booking}

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


def two(n: int) -> str:
    return f"{n:02d}"


def odd(rng: random.Random) -> bool:
    """Whether a Booking value is drawn from the edge cases (otherwise a plain valid one)."""
    return rng.random() < 0.06


def a_date(rng: random.Random) -> str:
    """Real dates; as edge cases leap days, the 30th of February, month 13, year 0000."""
    if not odd(rng):
        return date.fromordinal(rng.randint(1, date.max.toordinal())).isoformat()
    year = rng.choice([1900, 2000, 2023, 2024, 0, 1, 9999, 400, 100])
    month, day = rng.choice([(2, 29), (2, 30), (4, 31), (12, 31), (13, 1), (0, 5), (6, 0)])
    return f"{year:04d}-{two(month)}-{two(day)}"


def a_time(rng: random.Random) -> str:
    """RFC 3339 times (fractions of 0 to 6 digits, Z or an offset); as edge cases hour 24,
    second 60, 7 fraction digits, offsets +24:00 or +0200, no offset, `z`."""
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    digits, offset = rng.choice([0, 0, 1, 3, 6]), rng.choice(["Z", "+02:00", "-05:30", "+23:59", "-00:00"])
    if odd(rng):
        kind = rng.randrange(4)
        if kind == 0:
            hour, minute, second = rng.choice([(24, 0, 0), (23, 59, 60), (12, 60, 0)])
        elif kind == 1:
            digits = 7
        else:
            offset = rng.choice(["+24:00", "+0200", "", "z", "+2:00"])
    text = f"{two(hour)}:{two(minute)}:{two(second)}"
    if digits:
        text += "." + "".join(rng.choice("0123456789") for _ in range(digits))
    return text + offset


def a_uuid(rng: random.Random) -> str:
    u = str(uuid.UUID(int=rng.getrandbits(128)))
    if odd(rng):
        return rng.choice([u.replace("-", ""), "{" + u + "}", u[:-1], u + "0", u.replace("-", "_", 1)])
    return u.upper() if rng.random() < 0.2 else u


def an_ipv4(rng: random.Random) -> str:
    parts = [str(rng.choice([rng.randint(0, 255), 0, 255, 10])) for _ in range(4)]
    if odd(rng):
        parts[rng.randrange(4)] = rng.choice(["01", "256", "00", "1000"])
    return ".".join(parts)


def booking(rng: random.Random) -> dict:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return {
        "ref": "".join(rng.choice(letters) for _ in range(3)) + "-" + "".join(rng.choice("0123456789") for _ in range(4)),
        "guest": rng.choice([w for w in WORDS if w] + ["twelve chars", "thirteen char"]),
        "when": a_date(rng) + (" " if odd(rng) else "T") + a_time(rng),
        "day": a_date(rng),
        "at": a_time(rng),
        "id": a_uuid(rng),
        "guests": rng.choice([0, 13, -1]) if odd(rng) else rng.randint(1, 12),
        "floor": rng.choice([-3, 150, -4]) if odd(rng) else rng.choice([-2, 149, rng.randint(-2, 149)]),
        "count": rng.choice([0, -1]) if odd(rng) else rng.choice([1, rng.randint(1, 10**6), 10**20]),
        "host": an_ipv4(rng),
        "code": rng.choice([None, "ab1", "x-y9z", "zz12zz"]) if not odd(rng) else rng.choice(["abc", "A1", "é1", ""]),
        "tags": [rng.choice(["", "a", "tea", "日本", "12345", 'q"', "a\\b"] + (["123456"] if odd(rng) else []))
                 for _ in range(rng.randint(0, 3) + (1 if odd(rng) else 0))],
        "deposit": rng.choice([500, 500.0, -0.01, 1e-05, -0.0]) if odd(rng) else
        rng.choice([0, 0.0, 499.99, 250.5, round(rng.uniform(0, 500), rng.randint(0, 4))]),
        "score": rng.choice([0, 0.0, 1.0000001, -0.5]) if odd(rng) else rng.choice([1, 1.0, 0.5, 0.001, round(rng.random(), 6)]),
        "temp": rng.choice([-273.16, -300, -1e300]) if odd(rng) else
        rng.choice([-273.15, 20.5, 0, 1000.0, round(rng.uniform(-273, 1e4), 3)]),
    }


INSTANCES = {"Order": order, "Survey": survey, "Booking": booking}


def tuple_instance(rng: random.Random) -> dict:
    return {"point": [number(rng), number(rng)], "row": [integer(rng), text(rng), listof(rng, integer)],
            "pair": rng.choice([None, [text(rng), integer(rng)]]), "place": [address(rng), rng.random() < 0.5],
            "empty": [], "rest": listof(rng, integer)}

def pets_instance(rng: random.Random) -> dict:
    def cat(r):
        return {"name": text(r), "meows": integer(r)}

    def dog(r):
        return {"name": text(r), "barks": number(r)}

    def step(r):
        return r.choice([{"kind": "search", "query": text(r)}, {"kind": "answer", "text": text(r), "sources": listof(r, text)}])
    return {"pet": rng.choice([cat, dog, lambda r: {"fins": integer(r)}])(rng),
            "tagged": rng.choice([{"pet_type": "cat", "lives": integer(rng)},
                                  {"pet_type": "dog", "lives": integer(rng), "good": rng.random() < 0.5}]),
            "steps": listof(rng, step), "maybe": rng.choice([None, cat(rng), dog(rng)]),
            "content": rng.choice([{"value": integer(rng)}, {"value": text(rng)}]),
            "grown": rng.choice([cat(rng), {**cat(rng), "owner": text(rng)}]), "mode": rng.choice(["auto", text(rng)])}

# JSON Schema `pattern`s, each a model `{"s": str}` of its own (schemas P0, P1, ...), with examples
# the cases mutate character by character. The mutations use ASCII and characters that are no
# letter, digit or space in Unicode either, so that the engines' readings of `\d \w \s .` agree.
PATTERNS = [
    (r"^[A-Z]{3}-\d{4}$", ["ABC-1234", "XYZ-0000"]),
    (r"[a-z]+\d", ["ab1", "--x9--", "Ab1"]),
    (r"^\+?1?[-. ]?\(?\d{3}\)?[-. ]?\d{3}[-. ]?\d{4}$", ["+1 (555) 123-4567", "555.123.4567", "5551234567"]),
    (r"^[\w.+-]+@[\w-]+\.(com|org|net)$", ["a.b+c@ex-ample.com", "x@y.org"]),
    (r'^[^\s"\\]{2,5}$', ["ab", "a-b_c", "a/b"]),
    (r"^(ab|cd)*e?$", ["", "abcd", "cdabe", "e"]),
    (r"^.{0,3}x$", ["x", "€😀ax", 'a"x', "\tx"]),
    (r"^[\u00e0-\u00ff]+$", ["àé", "ÿ"]),
    (r"^a\.b\\c/d$", ["a.b\\c/d"]),
    (r"colou?r", ["color", "my colour!"]),
    (r"^(?:[01]\d|2[0-3]):[0-5]\d$", ["09:30", "23:59"]),
    (r"^\S+ \S+$", ["hi there", "a b"]),
    (r"^[^a-z]*$", ["ABC", "€ 1\n", ""]),
    (r"^\d{2,}?x{0,2}$", ["12", "123xx"]),
    (r"^(?P<year>\d{4})-(?<m>\d\d)$", ["2024-05"]),
    (r"^\x41\u00e9\t$", ["Aé\t"]),
    (r"^cat|dog$", ["cat food", "hotdog"]),
    (r"^\d+$", ["123"]),
    (r"^\w+$", ["abc_1"]),
    (r"^\s$", [" "]),
    (r"^.$", ["a"]),
    (r"^\D$", ["a"]),
    (r"^[^\d]$", ["a"]),
    # With lengths (minLength / maxLength beside the pattern).
    (r"^[a-z ]+$", ["ab", "abc de", "abcdefg"], {"min_length": 2, "max_length": 6}),
    (r"^(a|bbbbbb)$", ["a", "bbbbbb"], {"max_length": 3}),
    (r"^.{2,}$", ["ab", "€😀x", "abcdef"], {"min_length": 3, "max_length": 5}),
]
MUTATION_CHARACTERS = list("aAzZ09_-. :/()+@\"\\\n\t") + ["€", "😀", "§", "—"]

# Texts Pydantic's engine (Rust `regex`, Unicode-aware) accepts and the pattern refuses, by design:
# `\d \w \s` are read as ASCII, so are `\D` and negated classes holding a shorthand, and `.`
# leaves out every line break ECMA-262 names. (pattern index, text)
NARROWER = [(17, "٣٤"), (18, "é"), (19, "\u00a0"), (20, "\r"), (20, "\u2028"), (21, "é"), (22, "é"), (4, "é€")]
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
    if origin is tuple:
        return all(keys_in_order(v, a) for v, a in zip(value, args))
    if origin is list:
        return all(keys_in_order(v, args[0]) for v in value)
    if origin is dict:
        return all(keys_in_order(v, args[1]) for _, v in value)
    if origin is Annotated:
        return keys_in_order(value, args[0])
    if origin is Union:
        models = [b for b in args if isinstance(b, type) and issubclass(b, BaseModel)]
        if models and isinstance(value, Pairs):
            return any(keys_in_order(value, m) for m in models)
        for branch in args:
            if get_origin(branch) is list and isinstance(value, list) and not isinstance(value, Pairs):
                return keys_in_order(value, branch)
    return True


RFC3339 = {
    "day": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    "at": r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})",
}
RFC3339["when"] = RFC3339["day"] + "T" + RFC3339["at"]
UUID_TEXT = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def written_as_the_pattern_writes(model: type[BaseModel], data: bytes) -> bool:
    """For the models of constrained strings (Booking and the patterns'): every string as
    `json.dumps(ensure_ascii=False)` writes it, and Booking's dates, times and UUID in the forms
    JSON Schema's formats name (RFC 3339 date, full-time with an offset, date-time with `T`; RFC
    4122's 8-4-4-4-12 hex digits), its numbers without exponent or negative zero. Pydantic also
    reads other forms; the pattern writes these."""
    value = json.loads(data)
    for token in re.finditer(rb'"(?:[^"\\]|\\.)*"', data, re.DOTALL):
        if token.group() != json.dumps(json.loads(token.group()), ensure_ascii=False).encode():
            return False
    if model is Booking:
        # Bounded numbers: without exponent, and no negative zero.
        odd_forms = []
        json.loads(data, parse_float=lambda t: odd_forms.append("e" in t.lower() or t.startswith("-") and float(t) == 0)
                   or float(t), parse_int=lambda t: odd_forms.append(t == "-0") or int(t))
        if any(odd_forms):
            return False
        shapes = {**RFC3339, "id": UUID_TEXT}
        return all(re.fullmatch(shape, value[key]) for key, shape in shapes.items())
    if model in FORMAT_MODELS.values():
        shape = next(FORMAT_SHAPES[t] for name, t in FORMAT_TYPES if FORMAT_MODELS[name] is model)
        return shape is None or re.fullmatch(shape, value["s"]) is not None
    if model in MULTIPLE_MODELS:
        # Numbers as the pattern writes them: no exponent, no negative zero; floats below 10^6.
        number = data.decode()[len('{"s": '):-1]
        shape = r"-?(0|[1-9][0-9]*)" if model.model_fields["s"].annotation is int else r"-?(0|[1-9][0-9]{0,5})(\.[0-9]+)?"
        return re.fullmatch(shape, number) is not None and not re.fullmatch(r"-0(\.0*)?", number)
    return True


def verdict(model: type[BaseModel], data: bytes) -> bool:
    try:
        decoded = data.decode("utf-8", errors="strict")
        pairs = json.loads(decoded, object_pairs_hook=Pairs,
                           parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        model.model_validate_json(data, strict=True)
    except (UnicodeDecodeError, ValueError, ValidationError):
        return False
    if model is Booking or model in PATTERN_MODELS or model in FORMAT_MODELS.values() or model in MULTIPLE_MODELS:
        return is_compact(data) and keys_in_order(pairs, model) and written_as_the_pattern_writes(model, data)
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


PATTERN_MODELS = [create_model(f"P{i}", __config__=ConfigDict(extra="forbid"),
                               s=(Annotated[str, Field(pattern=p, **(lengths[0] if lengths else {}))], ...))
                  for i, (p, _, *lengths) in enumerate(PATTERNS)]


# The string formats, each a model `{"s": T}` (schemas "date-time", "date", ...), read on texts made
# around their edges: every month's last day and the day after in common, leap and century years,
# hours, minutes and seconds at and past their ends, fractions and offsets of every length.
def conforms_to_hostname(value: str) -> str:
    """JSON Schema's `hostname` as the `jsonschema` package checks it (its FormatChecker, through
    `fqdn`: RFC 1123 labels of at most 63 characters, at most 253 in all, a trailing dot allowed)."""
    if not jsonschema.FormatChecker().conforms(value, "hostname"):
        raise ValueError("not a hostname")
    return value


# Pydantic has no hostname type: a string with the format in its schema and jsonschema's check.
Hostname = Annotated[str, AfterValidator(conforms_to_hostname), WithJsonSchema({"type": "string", "format": "hostname"})]

FORMAT_TYPES = [("date-time", datetime), ("date", date), ("time", time), ("uuid", UUID), ("ipv4", IPv4Address),
                ("duration", timedelta), ("ipv6", IPv6Address), ("email", EmailStr), ("uri", AnyUrl), ("http-uri", HttpUrl),
                ("hostname", Hostname)]
FORMAT_MODELS = {name: create_model(f"F{name}", __config__=ConfigDict(extra="forbid"), s=(t, ...)) for name, t in FORMAT_TYPES}
# RFC 3339 appendix A's duration (ISO 8601's designators in order, `T` before the time's, weeks
# alone; no fraction, no sign), at most 6 digits a component; Pydantic also reads `-P1D`, `P1.5D`,
# `PT1H1S`, `P1M1Y`, `12:00:00`, `1 day, 12:00:00`. IPv6 without a zone index (`fe80::1%eth0`).
N6 = "[0-9]{1,6}"
DURATION_TIME = f"T({N6}H({N6}M({N6}S)?)?|{N6}M({N6}S)?|{N6}S)"
DURATION_TEXT = f"P(({N6}D|{N6}M({N6}D)?|{N6}Y({N6}M({N6}D)?)?)({DURATION_TIME})?|{DURATION_TIME}|{N6}W)"
# Email addresses as the pattern writes them (EmailStr also reads `Name <a@b.com>`, quoted local
# parts, IP literals, Unicode, one-letter and digit-bearing top-level domains, more labels): a
# dot-atom of ASCII atext of at most 64 characters, then two to four labels of at most 40
# (letters and digits, single inner hyphens), the last of letters alone.
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
LABEL = r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*"
EMAIL_TEXT = rf"(?=[^@]{{1,64}}@){ATEXT}+(\.{ATEXT}+)*@((?=[^.]{{1,40}}\.){LABEL}\.){{1,3}}[A-Za-z]{{2,40}}"
# URLs as the pattern writes them (AnyUrl also reads other schemes, user information, IPv6 and
# international hosts, hosts ending in a label that begins with a digit, ports with leading
# zeros, characters beyond ASCII): http or https, a host of labels (letters, digits, single inner
# hyphens; the last beginning with a letter) or dotted-decimal IPv4, a port, then RFC 3986's
# pchar (unreserved, sub-delimiters, `:`, `@`, percent escapes) in the path, query and fragment.
PCHAR = r"([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
URL_TEXT = (rf"https?://((25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9])){{3}}"
            rf"|({LABEL}\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*)(:(0|[1-9][0-9]*))?(/{PCHAR}*)*(\?({PCHAR}|[/?])*)?(#({PCHAR}|[/?])*)?")
FORMAT_SHAPES = {datetime: RFC3339["when"], date: RFC3339["day"], time: RFC3339["at"], UUID: UUID_TEXT, IPv4Address: None,
                 timedelta: DURATION_TEXT, IPv6Address: "[^%]*", EmailStr: EMAIL_TEXT, AnyUrl: URL_TEXT,
                 # HttpUrl's maxLength of 2,083 is more states than a pattern may have beside the
                 # URL's: the pattern writes up to 256 characters (TextPattern.loweredMaximum).
                 HttpUrl: f"(?=.{{1,256}}$){URL_TEXT}",
                 # At most four labels, the last of at most 61 characters (within 253 in all),
                 # no trailing dot.
                 Hostname: r"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){0,3}[A-Za-z0-9]([A-Za-z0-9-]{0,59}[A-Za-z0-9])?"}


def format_texts(name: str, rng: random.Random) -> list[str]:
    dates = []
    for year in [1, 4, 100, 400, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9996, 9999, 0]:
        for month in range(0, 14):
            for day in [0, 1, 28, 29, 30, 31, 32]:
                if rng.random() < 0.25 or (month == 2 and day in (28, 29, 30)):
                    dates.append(f"{year:04d}-{month:02d}-{day:02d}")
    dates += ["2024-1-01", "2024-01-1", "20240101", "2024/01/01", "12024-01-01", "2024-01-01 "]
    times = [f"{h:02d}:{m:02d}:{s:02d}" for h, m, s in [(0, 0, 0), (23, 59, 59), (24, 0, 0), (23, 60, 0), (23, 59, 60),
                                                      (9, 5, 7), (19, 45, 30)]]
    times = [t + f + z for t in times for f in ["", ".1", ".123456", ".1234567", "."]
             for z in ["Z", "+00:00", "-23:59", "+24:00", "+01:60", "", "z", "+0100"] if rng.random() < 0.3]
    times += ["1:02:03Z", "01:02Z", "01:02:3Z", "01:02:03+1:00"]
    if name == "date":
        return dates
    if name == "time":
        return times
    if name == "date-time":
        # Half of them joining a date and a time each valid alone.
        def valid(kind, text):
            return verdict(FORMAT_MODELS[kind], json.dumps({"s": text}).encode())
        good_dates, good_times = [d for d in dates if valid("date", d)], [t for t in times if valid("time", t)]
        return ([rng.choice(dates) + rng.choice(["T", "T", "T", "t", " "]) + rng.choice(times) for _ in range(200)]
                + [rng.choice(good_dates) + "T" + rng.choice(good_times) for _ in range(200)])
    if name == "uuid":
        out = []
        for _ in range(60):
            u = str(uuid.UUID(int=rng.getrandbits(128)))
            out += [u, u.upper(), u.replace("-", ""), "{" + u + "}", u[:-1], u + "a", u.replace("-", "", 1), "g" + u[1:]]
        return out
    if name == "duration":
        return duration_texts(rng)
    if name == "ipv6":
        return ipv6_texts(rng)
    if name == "email":
        return email_texts(rng)
    if name in ("uri", "http-uri"):
        return url_texts(rng)
    if name == "hostname":
        return hostname_texts(rng)
    parts = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300", "01", "00", "1000", ""]
    return [".".join(rng.choice(parts) for _ in range(rng.choice([3, 4, 4, 4, 5]))) for _ in range(300)]


def duration_texts(rng: random.Random) -> list[str]:
    """Designators in and out of order, with and without `T`, numbers of 0 to 7 digits, and the
    forms Pydantic reads beyond RFC 3339's."""
    def number():
        return rng.choice(["0", "1", "12", "000001", "999999", "1234567", str(rng.randint(0, 10**rng.randint(1, 6)))])
    out = []
    for _ in range(260):
        date_part = "".join(number() + d for d in "YMD" if rng.random() < 0.45)
        time_part = "".join(number() + d for d in "HMS" if rng.random() < 0.45)
        week = rng.random() < 0.1
        text = "P" + (number() + "W" if week else date_part) + ("T" + time_part if time_part or rng.random() < 0.05 else "")
        if rng.random() < 0.15:
            text = rng.choice([text.lower(), "-" + text, "+" + text, text.replace("P", ""), text + " ", text[:-1],
                               text.replace("D", "DT1H1S"), text + "1.5S", "P1M1Y", "P1W2D", "PT1.5S", "P1DT"])
        out.append(text)
    return out + ["P", "PT", "12:00:00", "1 day, 12:00:00", "P999999Y999999M999999DT999999H999999M999999S", "P999999W",
                  "P2739726Y", "PT0S", "P0D"]


def ipv6_texts(rng: random.Random) -> list[str]:
    """Addresses of eight groups, with runs of zero groups compressed to `::`, an IPv4 tail,
    upper-case hex, leading zeros; and with too many or too few groups, two `::`, a group of
    five digits, a stray colon, a zone index, an IPv4 tail where it does not fit."""
    out = []
    for _ in range(300):
        groups = [rng.choice(["0", "1", "ff", "abcd", "FFFF", "0db8", "000", "%x" % rng.getrandbits(16)]) for _ in range(8)]
        for i in range(8):
            if rng.random() < 0.3:
                groups[i] = "0"
        tail = None
        if rng.random() < 0.2:
            tail = ".".join(str(rng.choice([0, 1, 10, 127, 255])) for _ in range(4))
            groups = groups[:6]
        zeros = [i for i, g in enumerate(groups) if g == "0"]
        text = ":".join(groups) + (":" + tail if tail else "")
        if zeros and rng.random() < 0.8:
            a = rng.choice(zeros)
            b = a
            while b + 1 < len(groups) and groups[b + 1] == "0" and rng.random() < 0.8:
                b += 1
            head, rest = ":".join(groups[:a]), ":".join(groups[b + 1:])
            text = head + "::" + rest + ((":" if rest else "") + tail if tail else "")
        if rng.random() < 0.25:
            kind = rng.randrange(8)
            if kind == 0:
                text = text + ":1"
            elif kind == 1:
                text = "1:" + text
            elif kind == 2:
                text = text.replace(":", "::", 1) if "::" in text else text.replace(":", "::", 2)
            elif kind == 3:
                text = "12345:" + text
            elif kind == 4:
                text = text + "%eth0"
            elif kind == 5:
                text = ":" + text if not text.startswith("::") else text + ":"
            elif kind == 6:
                text = text.replace(":", ":01.2.3.4:", 1)
            else:
                text = text.upper().replace("F", "G")
        out.append(text)
    return out + ["::", "::1", "1::", "::1.2.3.4", "::ffff:01.2.3.4", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                  "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", ":::", "1:::2"]


def email_texts(rng: random.Random) -> list[str]:
    """Dot-atoms of atext, domains of one to six labels (hyphens, double hyphens, Punycode,
    digits), top-level domains common, special-use (any case), one-letter, with digits; locals
    and labels at and past their lengths; display names, quotes, spaces, Unicode, IP literals."""
    atext = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
    def atom(most=8):
        return "".join(rng.choice(atext if rng.random() < 0.3 else "abcdexyz") for _ in range(rng.randint(1, most)))
    def label():
        if rng.random() < 0.75:
            return rng.choice(["mail", "cs", "x", "a1", "my-site", "9", "a-b-c", str(rng.randint(0, 999))])
        return rng.choice(["b" * 40, "b" * 41, "ab--cd", "xn--abc", "abc--d", "-x", "x-", "under_score"])
    tlds = ["com", "co", "uk", "io", "museum", "c", "c0m", "com1", "test", "TEST", "Local", "localhost", "arpa",
            "onion", "invalid", "example", "tests", "t" * 40, "t" * 41, "123"]
    out = []
    for _ in range(300):
        local = ".".join(atom() for _ in range(rng.choice([1, 1, 2, 3])))
        if rng.random() < 0.05:
            local = rng.choice(["x" * 64, "x" * 65, "a" * 30 + "." + "b" * 33, "a" * 30 + "." + "b" * 34])
        domain = ".".join([label() for _ in range(rng.choice([0, 1, 1, 1, 1, 2, 2, 3, 4, 5]))]
                          + [rng.choice(tlds[:4] if rng.random() < 0.5 else tlds)])
        text = local + "@" + domain
        if rng.random() < 0.15:
            kind = rng.randrange(9)
            text = [text.replace("@", "..@", 1), "." + text, text.replace("@", "@@", 1), text + " ", "John <" + text + ">",
                    '"a b"@' + domain, "é" + text, "a@[1.2.3.4]", text.replace("@", "", 1)][kind]
        out.append(text)
    return out + ["a@b.co", "a@b.c", "a@b", "@b.com", "a@.com", "a@b.com.", "A@B.COM", "first.last@mail.cs.uni.edu"]


def hostname_texts(rng: random.Random) -> list[str]:
    """One to six labels: letters, digits, hyphens inside, at the ends and doubled, underscores,
    non-ASCII, 61 to 64 characters long; trailing dots, empty labels, all-digit names."""
    def label():
        if rng.random() < 0.8:
            return rng.choice(["a", "example", "my-host", "x1", "123", "ab--cd", "xn--abc", "LOCAL", "a" * 61, "b" * 62,
                               "c" * 63])
        return rng.choice(["d" * 64, "-a", "a-", "a_b", "é", "", "a b"])
    out = [".".join(label() for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 5, 6]))) + ("." if rng.random() < 0.05 else "")
           for _ in range(300)]
    return out + ["localhost", "a.com.", "1.2.3.4", "", ".", "a..b"]


def url_texts(rng: random.Random) -> list[str]:
    """http, https and other schemes; hosts of names (long labels, hyphens, Punycode, a last
    label of digits or hex), IPv4 (leading zeros, out of range, three parts), IPv6, user
    information; ports at and past 65535 and with leading zeros; paths, queries and fragments
    with every ASCII punctuation, percent escapes whole and cut, spaces, non-ASCII."""
    def host():
        kind = rng.random()
        if kind < 0.6:
            labels = [rng.choice(["example", "a", "my-site", "x1", "www", "api", "b" * 64, "ab--c", "xn--abc", "-x", "x-",
                                  "a_b", "9"]) for _ in range(rng.randint(0, 3))]
            return ".".join(labels + [rng.choice(["com", "org", "io", "c", "a1", "1a", "123", "0x1f", "localhost", "x-y", "x--y"])])
        if kind < 0.85:
            return ".".join(rng.choice(["0", "1", "10", "127", "255", "256", "01", "999"]) for _ in range(rng.choice([3, 4, 4, 4, 5])))
        return rng.choice(["[::1]", "user:pw@a.com", "é.com", "a b.com", ""])
    def part(extra):
        chars = "abcXYZ019._~!$&'()*+,;=:@-" + extra
        out = ""
        for _ in range(rng.randint(0, 8)):
            r = rng.random()
            out += (rng.choice(["%41", "%2f", "%zz", "%2", "%"]) if r < 0.05 else
                    rng.choice("\"<>[]{}|^` \\#é") if r < 0.07 else rng.choice(chars))
        return out
    out = []
    for _ in range(300):
        text = rng.choice(["http", "https", "https", "HTTP", "ftp", "mailto"]) + "://" + host()
        if rng.random() < 0.3:
            text += ":" + rng.choice(["80", "8080", "0", "65535", "65536", "080", "", "99999"])
        for _ in range(rng.randint(0, 3)):
            text += "/" + part("")
        if rng.random() < 0.3:
            text += "?" + part("/?")
        if rng.random() < 0.2:
            text += "#" + part("/?")
        out.append(text)
    return out + ["http://a.com", "https://example.com/path?q=1#f", "foo:bar", "http://", "http:///x", "http://a.com:/",
                  "http://a.com/" + "x" * 243, "http://a.com/" + "x" * 244, "http://a.com/" + "x" * 2070, "http://a.com/" + "x" * 2071]


# `multipleOf` (Pydantic's `multiple_of`), one model `{"s": T}` each (schemas M0, M1, ...): exact on
# integers; on floats Pydantic allows a remainder of the two doubles within 10^-9 of 0 or of m
# (pydantic-core 2.50, measured: past |x| ~ 10^6 some exact decimal multiples fail), and the
# pattern writes decimal multiples of m without exponent below 10^6, so a text Pydantic allows
# that is no decimal multiple is a `narrower` case: refused by design.
MULTIPLES = [
    (int, {"multiple_of": 7}),
    (int, {"multiple_of": 5, "ge": -100, "le": 100}),
    (int, {"multiple_of": 12, "gt": 0}),
    (float, {"multiple_of": 0.25}),
    (float, {"multiple_of": 0.1, "ge": 0, "lt": 10}),
    (float, {"multiple_of": 2.5, "gt": -50}),
    (float, {"multiple_of": 0.001}),
]
MULTIPLE_MODELS = [create_model(f"M{i}", __config__=ConfigDict(extra="forbid"), s=(Annotated[t, Field(**c)], ...))
                   for i, (t, c) in enumerate(MULTIPLES)]


def multiple_texts(rng: random.Random, kind: type, m: float) -> list[str]:
    """Multiples of m and values near them, as integers and decimals (with trailing zeros,
    exponents, negative zero now and then)."""
    out = []
    for _ in range(220):
        k = rng.choice([0, 1, -1, 2, 3, 7, -13, 40, 399, rng.randint(-10**6, 10**6), rng.randint(-10**9, 10**9),
                        rng.randint(-10**15, 10**15)])
        value = Fraction(str(m)) * k + rng.choice([0, 0, 0, 0, 1, -1, Fraction(1, 10), Fraction(1, 100), Fraction(1, 10**17)])
        if kind is int:
            out.append(str(int(value)) if value.denominator == 1 else str(round(value)))
        else:
            text = decimal_text(value)
            out.append(rng.choice([text, text, text + ("0" if "." in text else ".0"), repr(float(value))]))
    return out + ["-0", "0", "0.0", "-0.0", "1e2", "0.30000000000000004", "1" + "0" * 16, "1" + "0" * 15 + ".5",
                  "999999.5", "1000000", "-999999.75", "-1000000.5"]


def decimal_text(value: Fraction) -> str:
    """A fraction whose denominator divides a power of ten, in plain decimal digits."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = 0
    while (value * 10 ** places).denominator != 1:
        places += 1
    digits = str(int(value * 10 ** places)).rjust(places + 1, "0")
    return sign + (digits[:-places] + "." + digits[-places:] if places else digits)


def near_multiple(text: str, m: float) -> bool:
    """Whether a float case Pydantic allows is not a decimal multiple of m (accepted by Pydantic
    for being within its tolerance): the pattern refuses it."""
    try:
        value = Fraction(text)
    except ValueError:
        return False
    return (value / Fraction(str(m))).denominator != 1


def uses_unicode_classes(pattern: str) -> bool:
    """Whether the pattern holds `.` or a shorthand class (read differently beyond ASCII)."""
    return re.search(r"(?<!\\)\.|\\[dwsDWS]", pattern) is not None


def text_mutations(rng: random.Random, text: str) -> list[str]:
    out = []
    for _ in range(8):
        i = rng.randrange(len(text) + 1)
        kind = rng.randrange(3)
        c = rng.choice(MUTATION_CHARACTERS)
        if kind == 0 and i < len(text):
            out.append(text[:i] + text[i + 1:])
        elif kind == 1:
            out.append(text[:i] + c + text[i:])
        elif i < len(text):
            out.append(text[:i] + c + text[i + 1:])
    return out


def long_numbers(data: bytes) -> dict:
    """`sound_only` for a Booking text with a fraction of more than 15 significant digits (a byte
    mutation can make one): its double may round onto a bound that the decimal passes, and the
    pattern compares decimals, so it checks only that nothing outside the bounds is accepted
    (unbounded numbers, Order's and Survey's, are checked exactly)."""
    digits = [len(m.group().replace(b".", b"").lstrip(b"0")) for m in re.finditer(rb"[0-9]+\.[0-9]+", data)]
    return {"sound_only": True} if any(d > 15 for d in digits) else {}


def build() -> dict:
    rng = random.Random(SEED)
    schemas = {name: model.model_json_schema() for name, model in MODELS.items()}
    cases = []
    seen = set()

    def add(name: str, data: bytes, model=None, **flags):
        if (name, data) in seen or has_lone_surrogate(data):
            return
        seen.add((name, data))
        cases.append({"schema": name, "bytes": base64.b64encode(data).decode(),
                      "valid": verdict(model or MODELS[name], data), **flags})

    def instances(name: str, model, make, count: int, rng: random.Random, flags=lambda data: {}):
        """`count` instances from `make`, each with its structural and byte mutations."""
        for _ in range(count):
            obj = make(rng)
            ascii_only = rng.random() < 0.5
            data = json.dumps(obj, ensure_ascii=ascii_only).encode()
            add(name, data, model)
            for mutated in structural_mutations(rng, obj):
                add(name, json.dumps(mutated, ensure_ascii=ascii_only).encode(), model)
            for mutated in byte_mutations(rng, data):
                add(name, mutated, model, **flags(mutated))

    for name, model in MODELS.items():
        instances(name, model, INSTANCES[name], 150 if name == "Booking" else 40, rng,
                  long_numbers if name == "Booking" else lambda data: {})
    for i, ((pattern, examples, *_), model) in enumerate(zip(PATTERNS, PATTERN_MODELS)):
        name = f"P{i}"
        schemas[name] = model.model_json_schema()
        texts = list(examples)
        for example in examples:
            texts += text_mutations(rng, example)
        for text in texts:
            data = json.dumps({"s": text}, ensure_ascii=False).encode()
            # Beyond ASCII (or with `\r`) the pattern's narrower reading may refuse what Pydantic
            # accepts: such cases check only that nothing refused by Pydantic is accepted.
            flags = {"sound_only": True} if uses_unicode_classes(pattern) and re.search(r"[^\x00-\x7f]|\r", text) else {}
            add(name, data, model, **flags)
            for mutated in byte_mutations(rng, data):
                add(name, mutated, model, **flags)
    for name, model in FORMAT_MODELS.items():
        schemas[name] = model.model_json_schema()
        for text in format_texts(name, rng):
            add(name, json.dumps({"s": text}).encode(), model)
    for i, ((kind, constraints), model) in enumerate(zip(MULTIPLES, MULTIPLE_MODELS)):
        name = f"M{i}"
        schemas[name] = model.model_json_schema()
        m = constraints["multiple_of"]
        for text in multiple_texts(rng, kind, m):
            data = f'{{"s": {text}}}'.encode()
            narrower = kind is float and verdict(model, data) and near_multiple(text, m)
            add(name, data, model, **({"narrower": True} if narrower else {}))
    # Tuples (`prefixItems`), with their own seeded generator so that the cases above stay as
    # they were.
    schemas["Tuples"] = Tuples.model_json_schema()
    instances("Tuples", Tuples, tuple_instance, 60, random.Random(SEED + 1))
    schemas["Pets"] = Pets.model_json_schema()
    instances("Pets", Pets, pets_instance, 80, random.Random(SEED + 2))
    for i, text in NARROWER:
        data = json.dumps({"s": text}, ensure_ascii=False).encode()
        assert verdict(PATTERN_MODELS[i], data), (PATTERNS[i][0], text)
        cases.append({"schema": f"P{i}", "bytes": base64.b64encode(data).decode(), "valid": True, "narrower": True})
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
