#!/usr/bin/env python3
"""Generates Sources/Tokenizer/PreTokenization/UnicodeTables.swift.

The Qwen2 / GPT-2 split patterns use the classes \\p{L}, \\p{N} and \\s. Hugging Face `tokenizers`
evaluates them with its own regex engine (Oniguruma), whose Unicode tables are older than the Swift
standard library's: about 4,600 code points are letters for Swift but not for the reference. To be
exact we take the classes from the reference itself: every code point is run through a `Split`
pre-tokenizer with the class as pattern, and the members are written out as ranges.

Also generated: NFC data as the reference normalizer knows it (its Unicode version, 9.0, is
older than Python's or Swift's, so using either of those would normalize new characters the
reference leaves alone): combining classes, canonical decompositions and compositions, found by
probing the reference's NFD/NFC with candidates from Python's `unicodedata`; and the "NFC-unsafe"
code points (non-zero class, decomposable, or second half of a composition). Text made only of
other code points is already NFC, so the normalizer only works around unsafe spans.

Also checked here (and encoded in the Swift scanner): which characters the case-insensitive
contraction group `(?i:'s|'t|'re|'ve|'m|'ll|'d)` accepts for each letter.

Usage: .venv/bin/python scripts/tokenizer_unicode_tables.py
"""
import pathlib

import tokenizers
from tokenizers import Regex, normalizers, pre_tokenizers

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Sources/Tokenizer/PreTokenization/UnicodeTables.swift"

CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
ALL_TEXT = "".join(map(chr, CODE_POINTS))


def members(pattern):
    """Code points that the reference regex engine matches with `pattern` (one char each)."""
    split = pre_tokenizers.Split(Regex(pattern), behavior="removed")
    left = set()
    for piece, _ in split.pre_tokenize_str(ALL_TEXT):
        left.update(piece)
    return [c for c in CODE_POINTS if chr(c) not in left]


def ranges(points):
    out = []
    for c in points:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def nfc_tables():
    """Canonical combining classes, decompositions and compositions as the reference normalizer
    knows them (its Unicode version is older than Python's: probing it, not Python's tables, is
    what makes our NFC exact). Python's `unicodedata` (a newer Unicode) supplies the candidates."""
    import unicodedata

    nfd = normalizers.NFD()
    nfc = normalizers.NFC()
    candidates = [c for c in CODE_POINTS if unicodedata.combining(chr(c))]
    # Combining classes: place each candidate next to a representative mark of every class and see
    # whether the reference reorders the pair.
    def known(m, v):
        """Whether the reference reorders mark `m` (class `v` for Python) against U+0300 (230) or,
        for class 230, against U+0316 (220): then it knows the mark."""
        if v < 230:
            return nfd.normalize_str("a\u0300" + chr(m)) == "a" + chr(m) + "\u0300"
        if v > 230:
            return nfd.normalize_str("a" + chr(m) + "\u0300") == "a\u0300" + chr(m)
        return nfd.normalize_str("a" + chr(m) + "\u0316") == "a\u0316" + chr(m)

    reps = {}  # class -> a mark of that class the reference knows
    for c in candidates:
        v = unicodedata.combining(chr(c))
        if v not in reps and nfd.normalize_str("a" + chr(c)) == "a" + chr(c) and known(c, v):
            reps[v] = c
    known_reps = reps
    classes = {}
    for c in candidates:
        below, above = [], []
        for v, m in sorted(known_reps.items()):
            if m == c:
                continue
            if nfd.normalize_str(chr(m) + chr(c)) == chr(c) + chr(m):
                below.append(v)  # ccc(c) < v
            if nfd.normalize_str(chr(c) + chr(m)) == chr(m) + chr(c):
                above.append(v)  # ccc(c) > v
        if not below and not above:
            continue  # a starter for the reference
        equal = [v for v, m in known_reps.items() if v not in below and v not in above and m != c]
        if c in known_reps.values():
            equal.append(unicodedata.combining(chr(c)))
        lo, hi = max(above, default=0), min(below, default=255)
        inside = [v for v in equal if lo < v < hi]
        classes[c] = inside[0] if inside else (lo + hi) // 2
    # Decompositions (full, canonical), except Hangul syllables (algorithmic).
    decompositions = {}
    for c in CODE_POINTS:
        if 0xAC00 <= c <= 0xD7A3:
            continue
        d = nfd.normalize_str(chr(c))
        if d != chr(c):
            decompositions[c] = [ord(x) for x in d]
    # Compositions: Python's two-character canonical mappings that the reference also composes.
    compositions = []
    for c in CODE_POINTS:
        m = unicodedata.decomposition(chr(c))
        if not m or m.startswith("<") or 0xAC00 <= c <= 0xD7A3:
            continue
        parts = [int(x, 16) for x in m.split()]
        if len(parts) != 2 or c not in decompositions:
            continue
        full = nfd.normalize_str(chr(c))
        if nfc.normalize_str(full) == chr(c) and nfd.normalize_str(chr(parts[0]) + chr(parts[1])) == full:
            compositions.append((parts[0], parts[1], c))
    # Self-check: every composite the reference produces is in the table.
    composed = {p for _, _, p in compositions}
    for c, d in decompositions.items():
        if nfc.normalize_str("".join(map(chr, d))) == chr(c) and len(d) > 1:
            assert c in composed, f"U+{c:04X} composes in the reference but has no pair"
    return classes, decompositions, compositions


def nfc_unsafe(classes, decompositions, compositions):
    """Code points near which text may change under NFC: a non-zero combining class, a
    decomposition, or the second half of a composition (quick-check Maybe)."""
    unsafe = set(classes) | set(decompositions) | {second for _, second, _ in compositions}
    unsafe.update(range(0xAC00, 0xD7A4))  # Hangul syllables decompose
    unsafe.update(range(0x1161, 0x1176))  # Hangul vowels and trailing consonants compose
    unsafe.update(range(0x11A8, 0x11C3))
    return sorted(unsafe)


def swift_flat(name, doc, rows, per_line=4):
    lines = [f"/// {doc}", f"let {name}: [UInt32] = ["]
    for i in range(0, len(rows), per_line):
        lines.append("    " + " ".join(", ".join(f"0x{x:X}" for x in row) + "," for row in rows[i:i + per_line]))
    lines.append("]")
    return "\n".join(lines)


def swift_array(name, doc, rs):
    lines = [f"/// {doc}", f"/// {len(rs)} ranges as flattened (first, last) pairs.", f"let {name}: [UInt32] = ["]
    row = []
    for a, b in rs:
        row.append(f"0x{a:X}, 0x{b:X},")
        if len(row) == 6:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append("]")
    return "\n".join(lines)


def main():
    letters = members(r"\p{L}")
    numbers = members(r"\p{N}")
    spaces = members(r"\s")
    classes, decompositions, compositions = nfc_tables()
    unsafe = nfc_unsafe(classes, decompositions, compositions)
    # The contraction letters the scanner hard-codes: check them against the reference.
    expected = {"s": [0x53, 0x73, 0x17F], "t": [0x54, 0x74], "r": [0x52, 0x72], "e": [0x45, 0x65],
                "v": [0x56, 0x76], "m": [0x4D, 0x6D], "l": [0x4C, 0x6C], "d": [0x44, 0x64]}
    for letter, want in expected.items():
        got = members(f"(?i:{letter})")
        assert got == want, f"(?i:{letter}) matches {[hex(c) for c in got]}, scanner assumes {want}"
    body = [
        "// Generated by scripts/tokenizer_unicode_tables.py from Hugging Face tokenizers "
        f"{tokenizers.__version__}. Do not edit.",
        "//",
        "// The character classes of the split patterns, exactly as the reference regex engine sees them.",
        "",
        swift_array("letterRanges", r"Code points matched by `\p{L}`.", ranges(letters)),
        "",
        swift_array("numberRanges", r"Code points matched by `\p{N}`.", ranges(numbers)),
        "",
        swift_array("whitespaceRanges", r"Code points matched by `\s`.", ranges(spaces)),
        "",
        swift_array("nfcUnsafeRanges", "Code points near which text may change under NFC.", ranges(unsafe)),
        "",
        swift_flat("nfcCombiningClasses", "Non-zero canonical combining classes, as (code point, class) pairs.",
                   sorted(classes.items())),
        "",
        swift_flat("nfcDecompositions", "Full canonical decompositions (Hangul excluded), as (code point, "
                   "length, code points...) records.", [[c, len(d), *d] for c, d in sorted(decompositions.items())], 1),
        "",
        swift_flat("nfcCompositions", "Canonical compositions (Hangul excluded), as (first, second, composite) triples.",
                   compositions),
        "",
    ]
    OUT.write_text("\n".join(body))
    print(f"wrote {OUT}: {len(letters)} letters, {len(numbers)} numbers, {len(spaces)} spaces, "
          f"{len(classes)} combining classes, {len(decompositions)} decompositions, {len(compositions)} compositions")


if __name__ == "__main__":
    main()
