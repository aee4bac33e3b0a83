"""The tokenizer reference corpus: realistic strings covering what issue 3 asks for.

Deterministic (seeded) so that `scripts/tokenizer_reference.py` always writes the same files.
Imported by `tokenizer_reference.py` (ids from HF tokenizers) and `tokenizer_benchmark.py`
(the 1 MB mixed text).
"""
import random
import unicodedata

CODE = {
    "python": '''import json
from dataclasses import dataclass, field


@dataclass
class Tokenizer:
    """A toy tokenizer."""
    vocab: dict[str, int] = field(default_factory=dict)

    def encode(self, text: str) -> list[int]:
        # Split on whitespace, map each word to its id (0 = unknown).
        return [self.vocab.get(w, 0) for w in text.split()]

    def __repr__(self) -> str:
        return f"Tokenizer(n={len(self.vocab)!r})"


if __name__ == "__main__":
    tok = Tokenizer({"hello": 1, "world": 2})
    print(tok.encode("hello   world\\tagain"), json.dumps({"ok": True}))
''',
    "swift": '''import Foundation

/// Computes the n-th Fibonacci number.
func fibonacci(_ n: Int) -> Int {
    guard n > 1 else { return n }
    var (a, b) = (0, 1)
    for _ in 2...n {
        (a, b) = (b, a &+ b)
    }
    return b
}

struct Point: Hashable, Sendable {
    var x: Double, y: Double
    static let zero = Point(x: 0, y: 0)
}

let values = (0..<10).map(fibonacci)
print("fib:", values, "sum=\\(values.reduce(0, +))")
''',
    "rust": '''use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Token<'a> {
    Word(&'a str),
    Number(i64),
    Punct(char),
}

pub fn count_words(text: &str) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word).or_insert(0) += 1;
    }
    counts
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let c = count_words("a b a c");
    println!("{:?} {}", c.get("a"), 0x1F_u8 as char);
    Ok(())
}
''',
    "c": '''#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float *data; size_t n; } vec_t;

static float dot(const vec_t *a, const vec_t *b) {
    float s = 0.0f;
    for (size_t i = 0; i < a->n; i++) s += a->data[i] * b->data[i];
    return s;
}

int main(int argc, char **argv) {
    float xs[4] = {1.0f, 2.5f, -3.25f, 4e-3f};
    vec_t v = { xs, 4 };
    printf("dot=%.6f argc=%d\\n", dot(&v, &v), argc);
    return argc > 1 ? EXIT_FAILURE : EXIT_SUCCESS;
}
''',
    "javascript": '''// Debounce a function: call it once the calls stop for `ms` milliseconds.
export function debounce(fn, ms = 250) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), ms);
  };
}

const users = [{ name: "Ada", age: 36 }, { name: "Linus", age: 28 }];
const adults = users.filter(u => u.age >= 18).map(({ name }) => name.toUpperCase());
console.log(`adults: ${adults.join(", ")}`, users?.[0]?.name ?? "none");
''',
    "go": '''package main

import (
\t"fmt"
\t"strings"
)

type Shape interface {
\tArea() float64
}

type Rect struct{ W, H float64 }

func (r Rect) Area() float64 { return r.W * r.H }

func main() {
\tshapes := []Shape{Rect{3, 4}, Rect{W: 1.5, H: 2}}
\tvar sb strings.Builder
\tfor i, s := range shapes {
\t\tfmt.Fprintf(&sb, "%d: %.2f\\n", i, s.Area())
\t}
\tfmt.Print(sb.String())
}
''',
    "sql": '''SELECT u.id, u.name, COUNT(o.id) AS orders, SUM(o.total) AS revenue
FROM users AS u
LEFT JOIN orders o ON o.user_id = u.id AND o.created_at >= '2024-01-01'
WHERE u.country IN ('DE', 'FR', 'JP') -- only EU + Japan
GROUP BY u.id, u.name
HAVING COUNT(o.id) > 3
ORDER BY revenue DESC NULLS LAST
LIMIT 50;
''',
    "html": '''<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Qwen &amp; friends</title>
  <style>body { font: 14px/1.4 system-ui; margin: 0 auto; max-width: 42em; }</style>
</head>
<body>
  <h1 class="title">Hello, <em>world</em>!</h1>
  <p>Price: &euro;12.50 &mdash; <a href="https://example.com/?q=a&b=c">link</a></p>
  <!-- TODO: remove <script> below -->
  <script>document.querySelector(".title").textContent += " ✓";</script>
</body>
</html>
''',
    "shell": '''#!/usr/bin/env bash
set -euo pipefail
for f in "$@"; do
  if [[ -f "$f" ]]; then
    lines=$(wc -l < "$f")
    echo "${f##*/}: ${lines} lines"
  else
    echo "missing: $f" >&2; exit 1
  fi
done | sort -t: -k2 -n | tail -n 5
''',
    "json": '''{
  "model": "qwen2.5-coder-0.5b-instruct",
  "temperature": 0.7,
  "top_p": 0.95,
  "stop": ["<|im_end|>", "\\n\\n"],
  "messages": [{"role": "user", "content": "Write a haiku about tokenizers."}],
  "stream": true,
  "max_tokens": 256
}
''',
    "yaml": '''name: CI
on:
  push:
    branches: [ main ]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: swift test -c release   # fast enough
''',
    "latex": r'''\begin{equation}
  \mathrm{softmax}(x)_i = \frac{e^{x_i}}{\sum_{j=1}^{n} e^{x_j}}, \quad i = 1, \dots, n
\end{equation}
Let $\alpha \in [0, 1]$ and $\|W\|_F \le 10^{-3}$.
''',
}

PROSE = {
    "english": [
        "The quick brown fox jumps over the lazy dog. It's a sentence that's been used since the 1880s to show every letter of the alphabet.",
        "Tokenizers split text into pieces that a language model can handle; byte-level BPE never fails, because every byte is in the vocabulary.",
        "On Tuesday, March 5th, 2024, at 10:45 a.m., Dr. O'Neill said: \"We'll ship v2.3.1 once the tests pass — not before!\"",
        "I'm sure you'll agree that they've done well, but we'd rather wait; she's not convinced and he'll ask again tomorrow.",
        "Prices rose 3.7% year-over-year (vs. 2.1% expected), the highest since 1991; analysts at J.P. Morgan & Co. weren't surprised.",
        "Don't panic. Always know where your towel is, and remember: the answer is 42.",
    ],
    "chinese": [
        "自然语言处理是人工智能的一个重要分支，它研究如何让计算机理解和生成人类语言。",
        "今天天气很好，我们去公园散步吧！你觉得怎么样？",
        "通义千问（Qwen）是阿里云研发的大语言模型系列，支持中文、英文等多种语言。",
        "北京时间2024年3月15日，第十四届全国人民代表大会第二次会议闭幕，共有2,977名代表出席。",
        "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？人不知而不愠，不亦君子乎？",
    ],
    "japanese": [
        "東京は日本の首都であり、世界最大級の都市圏を持っています。",
        "今日はいい天気ですね。カフェでコーヒーを飲みながら、プログラミングの勉強をしました。",
        "ひらがな、カタカナ、そして漢字を組み合わせて書くのが日本語の特徴です。ｶﾀｶﾅ（半角）もあります。",
        "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    ],
    "korean": [
        "안녕하세요! 오늘 날씨가 정말 좋네요. 한국어는 한글로 씁니다.",
        "대한민국의 수도는 서울이며, 인구는 약 950만 명입니다.",
    ],
    "arabic": [
        "مرحبا بالعالم! اللغة العربية هي إحدى أكثر اللغات انتشاراً في العالم.",
        "ذهب الطالب إلى المكتبة لقراءة كتاب عن تاريخ الأندلس في القرن الحادي عشر.",
        "قال النبي: «إنما الأعمال بالنيات»، والعدد ١٢٣٤٥ مكتوب بالأرقام العربية الشرقية.",
    ],
    "russian": [
        "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Москва — столица России; население города превышает 13 миллионов человек.",
        "«Война и мир» — роман Льва Николаевича Толстого, опубликованный в 1865–1869 годах.",
    ],
    "hindi": [
        "नमस्ते दुनिया! हिन्दी भारत की सबसे अधिक बोली जाने वाली भाषा है।",
        "भारत की राजधानी नई दिल्ली है, और इसकी जनसंख्या १४० करोड़ से अधिक है।",
        "मैं कल बाज़ार गया था और वहाँ से ताज़ा फल ख़रीदे।",
    ],
    "european": [
        "Ich möchte gern ein Stück Käsekuchen und eine Tasse Kaffee, bitte. Grüß Gott!",
        "L'élève a réussi l'examen : « C'est génial ! » s'exclama-t-elle, très émue.",
        "¿Dónde está la biblioteca? ¡Mañana será un día increíble para el niño!",
        "Ελληνικά: Καλημέρα κόσμε, η γλώσσα είναι όμορφη.",
        "Tiếng Việt có nhiều dấu thanh: người, nước, Hà Nội, thành phố Hồ Chí Minh.",
        "Zażółć gęślą jaźń — polskie znaki diakrytyczne są ważne. Čeština: příliš žluťoučký kůň.",
        "עברית נכתבת מימין לשמאל: שלום עולם!",
        "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ สวัสดีครับ",
    ],
}

EMOJI = [
    "😀", "🎉🎉🎉", "👍🏽", "❤️", "🇯🇵🇩🇪🇺🇸", "👨‍👩‍👧‍👦", "🧑🏿‍💻", "🏳️‍🌈", "👩‍❤️‍💋‍👨", "1️⃣2️⃣#️⃣",
    "🤖 says hi", "Ship it 🚀!", "🙂🙃", "🐍+🦀=❤", "✅ done ❌ failed ⚠️ warn", "👋🏻👋🏼👋🏽👋🏾👋🏿",
]

# Non-NFC inputs (NFD sequences, unordered combining marks, singletons, compatibility ideographs).
NON_NFC = [
    "e\u0301cole", "Cafe\u0301 au lait", "A\u030angstro\u0308m", "\u212b", "\u2126hm", "n\u0303an\u0303o",
    "a\u0323\u0301", "a\u0301\u0323", "q\u0307\u0323", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "\uf900\uf901", "\u0958\u0959", "Vie\u0323\u0302t Nam", "o\u0308\u0304", "\u0041\u030a\u0301", "\u00c5\u0301",
    "\u03a9\u0301", "\u1e9b\u0323", "x\u0300\u0301\u0302\u0303\u0304\u0305", "\u0301 leading mark", "\u0344",
]

WHITESPACE = [
    " ", "  ", "   ", "    ", "        ", " " * 17, "\t", "\t\t", "\t \t", "\n", "\n\n", "\n\n\n\n", "\r\n", "\r\n\r\n",
    " \n ", "  \n  \n", "\u00a0", "\u3000", "\u2028", "\u2029", "\u000b", "\u000c", "\u0085", " \t\n\r ", "\r", "\n \n",
]

DIGITS = [
    "0", "7", "42", "2024", "3.14159265358979", "1,234,567.89", "000123", "1e-10", "0xDEADBEEF", "12345678901234567890",
    "١٢٣٤٥", "०१२३४", "１２３", "²³¹", "Ⅻ", "½¾", "v1.2.3-rc.4", "+1 (555) 123-4567", "99.9%", "2024-03-15T10:45:00Z",
]

CONTRACTIONS = [
    "I'M", "You'Re", "they'LL", "it'S", "don'T", "WE'VE", "she'd", "He'D", "'s", "'S", "'ll", "'LL", "'Re", "'ve",
    "it’s (curly)", "'ſ", "x'ſt", "''s", "rock'n'roll", "'twas", "O'Reilly", "I'd've", "y'all'd've",
]

SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_start|>user\nHi<|im_end|>", "<|im_start", "im_end|>",
    "<|im_end|><|im_start|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>def f():<|fim_suffix|><|fim_middle|>",
    "<|file_sep|>", "<|repo_name|>", "<|endoftext|><|endoftext|>", "<|EndOfText|>", "< |im_start| >",
    "<|vision_start|><|image_pad|><|vision_end|>", "<|box_start|>(1,2)<|box_end|>",
]

# Combining marks from several Unicode versions (U+0301 … U+1DFA, U+08D0, U+1AC1 are newer than the
# reference normalizer's Unicode 9.0, which does not reorder or compose them).
MARKS = [0x0301, 0x0323, 0x0315, 0x0334, 0x05B0, 0x093C, 0x3099, 0x1DF9, 0x1DFA, 0x08D0, 0x1AC1, 0x1ABF, 0x1ABB,
         0x0C3C, 0x10F46, 0x11D42, 0x16FF0, 0x0308, 0x0327]

PUNCT = [
    "...", "!!!", "?!", "---", "—", "–", "…", "«»", "“quoted”", "‘single’", "(", ")", "[]", "{}", "<>", "//", "/*", "*/",
    "->", "=>", "::", "&&", "||", "!=", "==", "<=", ">=", "@", "#", "$", "%", "^", "&", "*", "_", "~", "`", "\\", "|",
    ";", ":", ",", ".", "。", "、", "，", "！", "？", "·", "•", "©", "®", "™", "°", "±", "×", "÷", "€", "£", "¥", "₹",
]


def code_point_pools():
    """Pools of code points for fuzz strings, by kind."""
    assigned = [c for c in range(0x20, 0x30000) if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]
    by_cat = {}
    for c in assigned:
        by_cat.setdefault(unicodedata.category(chr(c))[0], []).append(c)
    return {
        "ascii": list(range(0x20, 0x7F)) + [0x09, 0x0A, 0x0D],
        "latin": list(range(0xA0, 0x250)),
        "letters": by_cat["L"],
        "marks": by_cat["M"],
        "numbers": by_cat["N"],
        "punct": by_cat["P"] + by_cat["S"],
        "spaces": [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x85, 0xA0, 0x1680, 0x2000, 0x2007, 0x200A, 0x2028, 0x2029,
                   0x202F, 0x205F, 0x3000, 0x1C, 0x1D, 0x1E, 0x1F, 0x200B, 0x200D, 0xFEFF],
        "other": by_cat["C"] + by_cat["Z"],
        "astral": [c for c in assigned if c >= 0x10000],
        # Assigned after Unicode 14 (letters for Swift, not for the reference regex engine) and unassigned.
        "new": [0x88F, 0xC5C, 0xCDC, 0xA7CE, 0xA7D2, 0x10940, 0x10941, 0x11DE0, 0x11DE5, 0x16FF4, 0x1E030, 0x31350,
                0x2EBF0, 0x1B132, 0x11F00, 0x1F6DC, 0x1FA75, 0x0870, 0x0897, 0x10D40],
    }


def fuzz_string(rng, pools, length):
    kinds = list(pools)
    weights = [30, 8, 20, 8, 6, 10, 10, 3, 4, 3]
    out = []
    for _ in range(length):
        pool = pools[rng.choices(kinds, weights)[0]]
        out.append(chr(rng.choice(pool)))
    return "".join(out)


def fragments():
    """Every hand-written fragment, flattened."""
    items = []
    for text in CODE.values():
        items.append(text)
    for texts in PROSE.values():
        items.extend(texts)
    items += EMOJI + NON_NFC + WHITESPACE + DIGITS + CONTRACTIONS + SPECIALS + PUNCT
    return items


def build_corpus(seed=20240315):
    rng = random.Random(seed)
    corpus = ["", " ", "a", "Hello world", " Hello world", "Hello world\n", "hello\tworld", "HELLO WORLD"]
    # Whole code files, line windows, and re-indented / CRLF variants.
    for name, text in CODE.items():
        lines = text.split("\n")
        corpus.append(text)
        corpus.append(text.replace("\n", "\r\n"))
        corpus.append(text.replace("    ", "\t"))
        corpus.append(text.replace("    ", "  "))
        for _ in range(10):
            a = rng.randrange(len(lines))
            b = min(len(lines), a + rng.randint(1, 8))
            corpus.append("\n".join(lines[a:b]))
    # Prose: each sentence, pairs, with variations.
    for lang, texts in PROSE.items():
        for t in texts:
            corpus.append(t)
            corpus.append(" " + t)
            corpus.append(t.upper() if lang in ("english", "european", "russian") else t + "\n")
            corpus.append(t + "  " + rng.choice(texts))
        corpus.append("\n\n".join(texts))
    # Small categories, alone and in context.
    for group in (EMOJI, NON_NFC, WHITESPACE, DIGITS, CONTRACTIONS, SPECIALS, PUNCT):
        for item in group:
            corpus.append(item)
            corpus.append("word" + item + "word")
            corpus.append(" " + item + " ")
    # Long whitespace runs and mixtures around words.
    for n in (2, 3, 5, 8, 16, 33, 64, 128):
        corpus.append("x" + " " * n + "y")
        corpus.append(" " * n)
        corpus.append("\t" * (n // 2) + "indented")
        corpus.append("line" + "\n" * (n // 4 + 1) + "next")
        corpus.append("a" + " " * n + "\n" + " " * n + "b")
        corpus.append("end with spaces" + " " * n)
        corpus.append("crlf" + "\r\n" * (n // 8 + 1) + " tail")
    # Digit runs.
    for n in (1, 2, 3, 4, 7, 10, 16, 40):
        corpus.append("".join(rng.choice("0123456789") for _ in range(n)))
        corpus.append("id" + "".join(rng.choice("0123456789") for _ in range(n)) + "x")
    # Random mixtures of fragments.
    frags = fragments()
    for _ in range(420):
        k = rng.randint(2, 6)
        sep = rng.choice(["", " ", "\n", "  ", "\t", "\r\n", " \n"])
        corpus.append(sep.join(rng.choice(frags)[: rng.randint(1, 200)] for _ in range(k)))
    # Bases followed by marks of mixed Unicode versions, in random order.
    for _ in range(80):
        base = rng.choice(["a", "e", "o", "A", "ᄀ", "가", "क", "ש", "か", " ", "1", "😀"])
        marks = "".join(chr(rng.choice(MARKS)) for _ in range(rng.randint(1, 4)))
        corpus.append(base + marks + rng.choice(["", "x", " next", "\u0301"]))
    # Fuzz strings over all kinds of code points.
    pools = code_point_pools()
    for _ in range(260):
        corpus.append(fuzz_string(rng, pools, rng.randint(1, 40)))
    # De-duplicate, keeping order.
    seen = set()
    unique = []
    for s in corpus:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def benchmark_text(size=1 << 20, seed=7):
    """About `size` bytes of mixed text (code, prose in several scripts, emoji, whitespace)."""
    rng = random.Random(seed)
    frags = [t for t in CODE.values()] * 3
    for texts in PROSE.values():
        frags.extend(texts)
    frags += EMOJI + DIGITS + CONTRACTIONS + PUNCT + ["\n\n", "    ", "\t"]
    parts = []
    total = 0
    while total < size:
        piece = rng.choice(frags) + rng.choice([" ", "\n", "", "  "])
        parts.append(piece)
        total += len(piece.encode("utf-8"))
    text = "".join(parts)
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore")
