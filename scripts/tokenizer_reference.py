#!/usr/bin/env python3
"""Writes the tokenizer reference data under Tests/TokenizerTests/Data/ from the pinned
Hugging Face `tokenizers` and `transformers` (.venv, scripts/requirements.txt).

  qwen2.5_corpus.jsonl      {"text", "ids", "nfc"}: >= 1,000 strings encoded by the real Qwen2.5
                            tokenizer (Models/tokenizer/qwen2.5), with the reference NFC of each
  qwen2.5_decode.jsonl      {"ids", "text", "text_skip_special"}: decode() of id sequences cut at
                            arbitrary points (split UTF-8 characters, special tokens, unknown ids)
  variants/<name>/tokenizer.json + variants/<name>.jsonl
                            small vocab-prefix tokenizers with the other supported configurations
                            (GPT-2 ByteLevel(use_regex=true, add_prefix_space), cl100k-style split,
                            ignore_merges, added tokens with lstrip/rstrip/single_word/normalized)
  chat_templates.json       {name: template source}
  chat_cases.jsonl          {"template", "messages", "tools", "add_generation_prompt", "extra",
                            "expected"}: transformers' apply_chat_template(..., tokenize=False)

Usage: .venv/bin/python scripts/tokenizer_reference.py
"""
import copy
import json
import os
import pathlib
import random
import re
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jinja2  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, normalizers  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import tokenizer_corpus  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
QWEN = ROOT / "Models/tokenizer/qwen2.5"
DATA = ROOT / "Tests/TokenizerTests/Data"

assert tokenizers.__version__ == "0.22.2", tokenizers.__version__
assert transformers.__version__ == "4.57.6", transformers.__version__


def write_jsonl(path, rows):
    """ASCII-only JSON Lines: Foundation's JSONSerialization (which the Swift tests use to read
    these files independently of our own JSON reader) drops a raw U+FEFF at the start of a string,
    but keeps an escaped one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


# ---------------------------------------------------------------- Qwen2.5 corpus and decoding


def qwen_corpus(tok, corpus):
    nfc = normalizers.NFC()
    rows = []
    for text in corpus:
        rows.append({"text": text, "ids": tok.encode(text).ids, "nfc": nfc.normalize_str(text)})
    return rows


def decode_cases(tok, rows, rng):
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    cases = []
    for row in rng.sample(rows, 300):
        ids = row["ids"]
        if not ids:
            continue
        a = rng.randrange(len(ids))
        b = rng.randrange(a, len(ids)) + 1
        cases.append(ids[a:b])
    # Random ids, including added tokens and ids past the vocabulary (skipped by decode).
    for _ in range(100):
        cases.append([rng.randrange(vocab_size + 5) for _ in range(rng.randint(1, 12))])
    # Single byte tokens (lone UTF-8 lead/continuation bytes) in odd orders.
    byte_ids = [tok.token_to_id(c) for c in _byte_level_alphabet()]
    for _ in range(100):
        cases.append([rng.choice(byte_ids) for _ in range(rng.randint(1, 8))])
    return [
        {"ids": ids, "text": tok.decode(ids, skip_special_tokens=False), "text_skip_special": tok.decode(ids, skip_special_tokens=True)}
        for ids in cases
    ]


def _byte_level_alphabet():
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


# ---------------------------------------------------------------- variant tokenizers


GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
CL100K_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def prefix_tokenizer(base, n_merges):
    """A valid byte-level BPE: Qwen's first 256 + n_merges tokens with the first n_merges merges
    (in Qwen2.5's vocabulary token 256+i is the result of merge i)."""
    model = base["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < 256 + n_merges}
    merges = model["merges"][:n_merges]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def added(id_, content, special=False, normalized=None, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}


def variants(base):
    n = 3000
    size = 256 + n
    out = {}

    gpt2 = prefix_tokenizer(base, n)
    gpt2["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    gpt2["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    gpt2["added_tokens"] = [
        added(size, "<|endoftext|>", special=True),
        added(size + 1, "<mask>", special=True, lstrip=True),
        added(size + 2, "[SEP]", special=True, rstrip=True),
        added(size + 3, "word", single_word=True),
        added(size + 4, "\u00e9t\u00e9"),  # normalized, no normalizer: matched as is
    ]
    out["gpt2-bytelevel-regex"] = gpt2

    qwen_like = prefix_tokenizer(base, n)
    qwen_like["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    qwen_like["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": CL100K_REGEX}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]}
    qwen_like["model"]["ignore_merges"] = True
    qwen_like["model"]["merges"] = [m.split(" ") for m in qwen_like["model"]["merges"]]  # pair form
    qwen_like["added_tokens"] = [
        added(size, "<|begin_of_text|>", special=True),
        added(size + 1, "caf\u00e9", normalized=True),  # matched after NFC, so "cafe\u0301" finds it
        added(size + 2, "<|eot_id|>", special=True),
        added(size + 3, " spaced", normalized=False, lstrip=True, rstrip=True),
    ]
    out["cl100k-split-ignore-merges"] = qwen_like
    return out


# ---------------------------------------------------------------- chat templates

QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

QWEN3_STYLE_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"""

# Exercises the Jinja subset beyond what the Qwen templates use.
FEATURES_TEMPLATE = r"""{# A template that exercises the supported Jinja subset. #}
{% macro render(m, prefix='> ') -%}
{{ prefix }}{{ m.role | upper }}: {{ m.content | trim }}
{%- endmacro %}
{% set ns = namespace(count=0, roles=[]) %}
{% for m in messages if m.role != 'system' %}
  {% set ns.count = ns.count + 1 %}
  {{ loop.index }}/{{ loop.length }} {{ render(m) }}{% if not loop.last %},{% endif %}
  {% if loop.first %}first{% elif loop.revindex0 == 0 %}last{% else %}mid{% endif %} {{ loop.cycle('odd', 'even') }}
{% else %}
  no messages
{% endfor %}
count={{ ns.count }} total={{ messages | length }} {{ messages | map(attribute='role') | join('|') }}
{{ messages | selectattr('role', 'equalto', 'user') | list | length }} users; {{ messages | rejectattr('role', 'in', ['user']) | map(attribute='role') | unique | list }}
{{ (messages | first).role }} {{ (messages | last).content[:10] ~ '…' }} {{ messages[-1]['role'] }}
{{ 'yes' if add_generation_prompt else 'no' }} {{ tools is none }} {{ tools is defined }} {{ missing | default('dflt') }} {{ '' | default('empty', true) }}
{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 / 4 }} {{ 3 * 'ab' }} {{ (1, 2) }} {{ [1, 2.5, 'x', none, true] }}
{{ {'b': 1, 'a': [1, 2]} | tojson }} {{ {'k': 'é"\n'} | tojson(indent=2) }} {{ [3, 1, 2] | sort | join(',') }} {{ ['b', 'A', 'c'] | sort(reverse=true) | join }}
{{ 'Hello World'.lower().split() }} {{ '  pad  '.strip() }}|{{ 'xxhixx'.strip('x') }} {{ 'a,b,,c'.split(',') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('bc') }}
{{ 'hello world' | title }} {{ 'hello' | capitalize }} {{ 'a-b-c' | replace('-', '+') }} {{ 'abc' | reverse }} {{ 'abc'[::-1] }} {{ 'abcdef'[1:4] }} {{ [1,2,3,4][::2] }}
{{ range(3) | list }} {{ range(1, 10, 3) | list }} {{ 5 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'a' is string }} {{ 1.5 is number }} {{ {} is mapping }}
{{ 'x' in 'xyz' }} {{ 2 not in [1, 3] }} {{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' ~ 1 ~ none }} {{ 3.0 }} {{ 1e-5 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ 10 / 4 }}
{%- for key, value in {'one': 1, 'two': 2} | dictsort %} {{ key }}={{ value }}{% endfor %}
{%- for k, v in {'z': 1, 'y': 2}.items() %} {{ k }}:{{ v }}{% endfor %}
{% set text %}captured {{ 1 + 1 }}{% endset %}{{ text | upper }}
{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}
{{ "%s" | length }} {{ messages | selectattr('role', 'defined') | list | count }} {{ [1, 2, 3] | sum }} {{ [4, 9, 2] | max }} {{ [4, 9, 2] | min }} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ '42' | int + 1 }} {{ '2.5' | float }}
{{ "line1\nline2" | indent(4) }} {{ '<b>' | e }} {{ messages | tojson }}
   {%- raw %} {{ not rendered }} {% endraw %}
  {%+ if true %}kept indent{% endif %}
{{- '  trailing' }}   {{ raise_exception is defined }}
"""

# Whitespace control: trim_blocks, lstrip_blocks, '-' and '+' markers, comments, CRLF source,
# a trailing newline (dropped), tags mid-line.
WHITESPACE_TEMPLATE = (
    "Start\n  {% if true %}\n    indented {{ 'a' }}  \n  {% endif %}\n"
    "\t{%- for m in messages %}\r\n[{{ m.role }}]  {#- a comment -#}   {{- m.content -}}  \n{% endfor -%}\n\n"
    "  {# comment on its own line #}\n"
    "mid {% if true %}line{% endif %} tags\n"
    "   {%+ if true %}plus keeps indent{% endif %}\n"
    "  {{ 'var tags are not lstripped' }}\n"
    "{% set x = 1 %}   after set\n"
    "{%- if add_generation_prompt -%}\n\n   GEN   \n\n{%- endif %}\n"
    "{% raw %}  {{ raw }}  {% endraw %}\n"
    "end\n"
)

GEMMA_STYLE_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

MISTRAL_STYLE_TEMPLATE = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city (°C). 天气",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "threshold": {"type": "number", "default": 0.5, "epsilon": 1e-05, "big": 1e16},
        }, "required": ["city"]},
    }},
    {"type": "function", "function": {"name": "search", "description": "Search the web.",
                                      "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}},
]

CONVERSATIONS = [
    ("single user", [{"role": "user", "content": "Hello!"}]),
    ("system and user", [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Where is the treasure?"}]),
    ("multi-turn", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."},
        {"role": "user", "content": "Thanks!"},
    ]),
    ("unicode content", [{"role": "user", "content": "你好！こんにちは 😀👨‍👩‍👧 «ça va?» e\u0301\n\n  indented\ttab \"quotes\" 'single' <|im_end|> {{ not jinja }}"}]),
    ("empty content", [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]),
    ("system in the middle", [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Switch to French."},
        {"role": "user", "content": "Bonjour"},
    ]),
    ("tool calls and responses", [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "東京", "unit": "celsius"}}},
        ]},
        {"role": "tool", "content": "{\"temp\": 18.5}"},
        {"role": "tool", "content": "{\"temp\": 22}"},
        {"role": "assistant", "content": "Paris: 18.5 °C, Tokyo: 22 °C."},
        {"role": "user", "content": "Thanks"},
    ]),
    ("tool call without function wrapper", [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Search for swift"},
        {"role": "assistant", "content": "Searching.", "tool_calls": [{"name": "search", "arguments": {"q": "swift 6 concurrency"}}]},
        {"role": "tool", "content": "results..."},
    ]),
    ("assistant last, no prompt", [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi!"}]),
    ("code content", [{"role": "user", "content": tokenizer_corpus.CODE["python"]}, {"role": "assistant", "content": tokenizer_corpus.CODE["rust"]}]),
    ("thinking", [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "<think>\nRayleigh scattering.\n</think>\n\nBecause of Rayleigh scattering."},
        {"role": "user", "content": "And sunsets?"},
    ]),
]


def chat_cases():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(QWEN))
    qwen25 = tok.chat_template
    templates = {"qwen2.5": qwen25, "qwen2": QWEN2_TEMPLATE, "qwen3-style": QWEN3_STYLE_TEMPLATE, "features": FEATURES_TEMPLATE,
                 "whitespace": WHITESPACE_TEMPLATE, "gemma-style": GEMMA_STYLE_TEMPLATE,
                 "mistral-style": MISTRAL_STYLE_TEMPLATE}
    cases = []

    def add(template, messages, add_generation_prompt, tools=None, extra=None):
        extra = extra or {}
        case = {"template": template, "messages": messages, "tools": tools,
                "add_generation_prompt": add_generation_prompt, "extra": extra}
        try:
            case["expected"] = tok.apply_chat_template(
                copy.deepcopy(messages), tools=copy.deepcopy(tools), add_generation_prompt=add_generation_prompt,
                tokenize=False, chat_template=None if template == "qwen2.5" else templates[template], **extra)
        except jinja2.exceptions.TemplateError as error:
            case["expected_error"] = str(error)  # raise_exception(...) in the template
        cases.append(case)

    for _, messages in CONVERSATIONS:
        add("qwen2.5", messages, True)
    add("qwen2.5", CONVERSATIONS[8][1], False)
    add("qwen2.5", CONVERSATIONS[1][1], True, tools=TOOLS)
    add("qwen2.5", CONVERSATIONS[0][1], True, tools=TOOLS)
    add("qwen2.5", CONVERSATIONS[6][1], True, tools=TOOLS)
    for i in (0, 2, 3, 4):
        add("qwen2", CONVERSATIONS[i][1], True)
    add("qwen2", CONVERSATIONS[8][1], False)
    for i in (0, 1, 2, 6, 7, 10):
        add("qwen3-style", CONVERSATIONS[i][1], True)
    add("qwen3-style", CONVERSATIONS[10][1], True, extra={"enable_thinking": False})
    add("qwen3-style", CONVERSATIONS[6][1], True, tools=TOOLS)
    add("features", CONVERSATIONS[2][1], True)
    add("features", CONVERSATIONS[3][1], False, tools=TOOLS)
    add("whitespace", CONVERSATIONS[2][1], True)
    add("whitespace", CONVERSATIONS[0][1], False)
    add("gemma-style", CONVERSATIONS[2][1][1:], True)
    add("gemma-style", CONVERSATIONS[1][1], True)  # raises: system role not supported
    add("mistral-style", CONVERSATIONS[2][1], False)
    add("mistral-style", CONVERSATIONS[5][1], True)  # raises: roles must alternate
    return templates, cases


# Small templates with contexts, rendered with transformers' own Jinja environment: a wide net
# over the supported subset (filters, tests, operators, Python str/repr output, scoping).
SNIPPET_CONTEXT = {
    "s": "Hello, World", "u": "ßtraße ÉCOLE ǅ", "n": 7, "f": 2.5, "neg": -7, "t": True, "z": None,
    "xs": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"b": 1, "a": 2, "items": 3},
    "people": [{"name": "Ada", "age": 36}, {"name": "Bob", "age": 17}, {"name": "Cy"}],
    "empty": [], "text": "  line one\nline two\n\n  ", "big": 12345678901234,
}
SNIPPETS = [
    "{{ s }}|{{ n }}|{{ f }}|{{ t }}|{{ z }}|{{ xs }}|{{ d }}|{{ people[0] }}|{{ missing }}|",
    "{{ 1.0 }} {{ 100.0 }} {{ 0.1 }} {{ 1e22 }} {{ 1.5e-7 }} {{ -0.0 }} {{ 123456789.0 }} {{ 1e16 }} {{ 1e15 }} {{ 2/3 }}",
    "{{ big * 1000 }} {{ -big }} {{ 7 / 2 }} {{ -7 // 2 }} {{ 7.5 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 5.5 % 2 }} {{ 2 ** -1 }} {{ 2 ** 0.5 }}",
    "{{ t + 1 }} {{ t * 3 }} {{ 'ab' * 2 }} {{ [1] * 3 }} {{ xs + [9] }} {{ (1, 2) + (3,) }} {{ 'x' ~ 1 ~ 2.0 ~ none ~ t }}",
    "{{ 1 < 2 <= 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 == t }} {{ 'a' != 'a' }}",
    "{{ 'ell' in s }} {{ 'x' not in s }} {{ 2 in xs }} {{ 'a' in d }} {{ 'zz' in d }} {{ none in [none] }} {{ missing in xs }}",
    "{{ not t }} {{ t and 'yes' }} {{ z or 'fallback' }} {{ empty or 'none' }} {{ 0 or '' or 'last' }} {{ 'a' and 0 }}",
    "{{ 'a' if t }}|{{ 'b' if z }}|{{ 'c' if z else 'd' }}|{{ 'e' if n > 5 else 'f' if n > 2 else 'g' }}",
    "{{ s|length }} {{ d|length }} {{ xs|length }} {{ u|length }} {{ missing|length }} {{ s|count }}",
    "{{ s|upper }} {{ s|lower }} {{ u|upper }} {{ u|lower }} {{ 'hello wORLD foo-bar'|title }} {{ 'ßa'|capitalize }} {{ u|title }}",
    "{{ s|replace('l', 'L') }} {{ s|replace('l', 'L', 2) }} {{ s|reverse }} {{ xs|reverse|list }} {{ s|first }} {{ s|last }} {{ xs|first }} {{ xs|last }}",
    "{{ xs|sort }} {{ xs|sort(reverse=true) }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ people|sort(attribute='name')|map(attribute='name')|list }}",
    "{{ words|unique|list }} {{ xs|min }} {{ xs|max }} {{ words|max }} {{ xs|sum }} {{ people|sum(attribute='age', start=1) if false else '' }}",
    "{{ xs|join }} {{ xs|join(', ') }} {{ people|join(', ', attribute='name') }} {{ s|list }} {{ d|list }} {{ d|items|list }}",
    "{{ d|dictsort }} {{ d|dictsort(reverse=true) }} {{ d|dictsort(by='value') }}",
    "{{ missing|default('dflt') }} {{ z|default('dflt') }} {{ ''|default('dflt') }} {{ ''|default('dflt', true) }} {{ missing|d('x') }}",
    "{{ people|selectattr('age')|map(attribute='name')|list }} {{ people|rejectattr('age')|map(attribute='name')|list }}",
    "{{ people|selectattr('age', 'gt', 20)|map(attribute='name')|list }} {{ people|map(attribute='age', default=0)|list }}",
    "{{ xs|select('odd')|list }} {{ xs|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ xs|map('string')|list }}",
    "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(5) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 'x'|float }} {{ 7|float }} {{ -3|abs }} {{ -2.5|abs }}",
    "{{ 2.675|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ -2.5|round }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(0, 'floor') }} {{ 7|round }}",
    "{{ text|trim }}|{{ 'xxhixx'|trim('x') }}|{{ text|indent }}|{{ text|indent(2, true) }}|{{ text|indent('> ', first=true, blank=true) }}",
    "{{ text|indent(-2) }}|{{ text|indent(-2, true) }}|{{ s|center(-5) }}|{{ s|center(20) }}|{{ xs|tojson(indent=-1) }}",
    "{{ d|tojson }} {{ people|tojson }} {{ d|tojson(sort_keys=true) }} {{ xs|tojson(indent=2) }} {{ 'é\\u2028<>&\\'\\x01'|tojson }}",
    "{{ {'a': [1, {'b': none}], 'c': 1.5e-7, 'd': t}|tojson(indent=1) }} {{ [] | tojson(indent=2) }} {{ {} | tojson }} {{ d|tojson(separators=(',', ':')) }}",
    "{{ s is string }} {{ n is number }} {{ n is integer }} {{ f is float }} {{ t is boolean }} {{ z is none }} {{ xs is iterable }} {{ d is mapping }} {{ s is sequence }}",
    "{{ missing is defined }} {{ missing is undefined }} {{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ n is sameas 7 }} {{ t is true }} {{ z is false }}",
    "{{ n is eq 7 }} {{ n is ne 7 }} {{ n is lt 8 }} {{ n is gt(8) }} {{ n is ge 7 }} {{ n is le 6 }} {{ 2 is in xs }} {{ s is lower }} {{ 'AB' is upper }} {{ d.items is callable }}",
    "{{ s[0] }} {{ s[-1] }} {{ s[100] }} {{ s[2:5] }} {{ s[::-1] }} {{ s[::2] }} {{ s[-3:] }} {{ xs[1:] }} {{ xs[:-1] }} {{ xs[5:] }} {{ xs[::-2] }}",
    "{{ d.b }} {{ d['a'] }} {{ d.items }}|{{ d['items'] }} {{ d.get('b') }} {{ d.get('q') }} {{ d.get('q', 9) }} {{ d.keys()|list }} {{ d.values()|list }}",
    "{{ people[0].name }} {{ people[2].age }} {{ people[2]['age'] }} {{ people.0.name }} {{ z.anything }}|{{ xs.count(1) }} {{ xs.index(2) }}",
    "{{ s.split(', ') }} {{ 'a  b c '.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'a b c'.rsplit() }} {{ 'a\nb\r\nc'.splitlines() }} {{ s.startswith(('x', 'He')) }}",
    "{{ s.endswith('ld') }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('q') }} {{ s.count('l') }} {{ s.replace('o', '0', 1) }} {{ ', '.join(['a', 'b']) }}",
    "{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ '--x--'.strip('-') }}|{{ 'hello'.upper() }}|{{ 'AbC'.lower() }}|{{ 'abc def'.title() }}|{{ 'aBC'.capitalize() }}",
    "{{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' \t'.isspace() }} {{ 'Ab'.isupper() }} {{ 'ab'.islower() }} {{ 'prefix-x'.removeprefix('prefix-') }} {{ 'x.txt'.removesuffix('.txt') }}",
    "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
    "{% for x in xs %}{{ loop.previtem }}>{{ x }}>{{ loop.nextitem }} {{ loop.cycle('a', 'b') }}|{% endfor %}",
    "{% for x in xs if x > 1 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% else %}none{% endfor %}|{% for x in empty %}{{ x }}{% else %}empty{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %} {% for c in 'héllo' %}{{ c }}.{% endfor %}",
    "{% for x in xs %}{% for y in xs %}{% if y == 2 %}{% break %}{% endif %}{{ x }}{{ y }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}",
    "{% set a = 1 %}{% for x in xs %}{% set a = a + x %}{{ a }}{% endfor %}|{{ a }}|{% if true %}{% set a = 5 %}{% endif %}{{ a }}",
    "{% set ns = namespace(total=0, items=[]) %}{% for x in xs %}{% set ns.total = ns.total + x %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.total }} {{ ns.items }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t2 = (3, 4) %}{{ t2 }} {{ t2[0] }} {% set block %}B{{ n }}{% endset %}{{ block }}{{ block|length }}",
    "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ada') }} {{ greet('Bob', 'Hi') }} {{ greet('Cy', punct='?') }}",
    "{% macro outer() %}[{{ inner() }}]{% endmacro %}{% macro inner() %}in{{ n }}{% endmacro %}{{ outer() }}",
    "{{ 'a' 'b' \"c\" }} {{ '\\x41\\u00e9\\t|' }} {{ \"it's\" }} {{ 'say \"hi\"' }} {{ 'back\\\\slash' }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }}",
    "{{ ['x', 1, 2.0, none, true, {'k': ('t', 1)}] }} {{ (1,) }} {{ () }} {{ {'a': 'it\\'s'} }} {{ [\"q'uote\"] }} {{ ['\\n'] }}",
    "{{ range(3)|list }} {{ range(2, 8, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}",
    "{{ xs|length > 2 and s|lower == 'hello, world' }} {{ -n|abs }} {{ (-n)|abs }} {{ not xs|length }} {{ xs|map('string')|join('-') ~ '!' }}",
    "{%- if t -%}  T  {%- else -%}  F  {%- endif -%}  |  {{- ' x ' -}}  |{# c #}|{#- c -#}  |",
    "{{ u.split()[1][::-1] }} {{ people|selectattr('name', 'equalto', 'Bob')|first }} {{ (people|first).name }} {{ people|length is odd }}",
    "{{ missing.attr }}",
    "{{ xs + 'a' }}",
    "{{ z + 1 }}",
    "{{ 1 / 0 }}",
    "{{ xs < 3 }}",
    "{% for x in n %}{% endfor %}",
    "{{ raise_exception('custom: ' ~ n) }}",
]


def jinja_snippets():
    from transformers.utils.chat_template_utils import _compile_jinja_template

    rows = []
    for template in SNIPPETS:
        row = {"template": template, "context": SNIPPET_CONTEXT}
        try:
            rendered = _compile_jinja_template(template).render(**copy.deepcopy(SNIPPET_CONTEXT))
            # Python prints the address of a bound method object; we print none.
            row["expected"] = re.sub(r" at 0x[0-9a-f]+>", ">", rendered)
        except Exception as error:  # noqa: BLE001 - the error kind is the expectation
            row["expected_error"] = type(error).__name__
            row["message"] = str(error)
        rows.append(row)
    return rows


def require(condition: bool, what: str) -> None:
    """A coverage rule of the data written here (the tests read it and assume it)."""
    if not condition:
        raise SystemExit(f"tokenizer_reference.py: the data no longer covers: {what}")


def check_coverage(rows, cases, snippets) -> None:
    texts = [r["text"] for r in rows]
    require(len(texts) >= 1000, f"1,000 corpus strings (has {len(texts)})")
    for what, found in [("the empty string", "" in texts), ("CRLF", any("\r\n" in t for t in texts)),
                        ("a special token", any("<|im_start|>" in t for t in texts)),
                        ("a ZWJ emoji sequence", any("\u200d" in t for t in texts)),
                        ("Hindi", any(any(0x0900 <= ord(c) <= 0x097F for c in t) for t in texts)),
                        ("Arabic", any(any(0x0600 <= ord(c) <= 0x06FF for c in t) for t in texts))]:
        require(found, what)
    require(sum(r["text"] != r["nfc"] for r in rows) >= 20, "20 strings NFC changes")
    require(len(cases) >= 10 and sum(c["template"] == "qwen2.5" for c in cases) >= 10, "10 Qwen2.5 chat cases")
    require(any("expected_error" in c for c in cases), "a chat case whose template raises")
    require(len(snippets) >= 50, f"50 Jinja snippets (has {len(snippets)})")


def main():
    rng = random.Random(1234)
    corpus = tokenizer_corpus.build_corpus()
    tok = Tokenizer.from_file(str(QWEN / "tokenizer.json"))
    rows = qwen_corpus(tok, corpus)
    write_jsonl(DATA / "qwen2.5_corpus.jsonl", rows)
    write_jsonl(DATA / "qwen2.5_decode.jsonl", decode_cases(tok, rows, rng))
    print(f"qwen2.5: {len(rows)} strings, {sum(len(r['ids']) for r in rows)} ids")

    base = json.loads((QWEN / "tokenizer.json").read_text(encoding="utf-8"))
    subset = rng.sample(corpus, 400) + [s for s in corpus if len(s) < 40][:200]
    for name, spec in variants(base).items():
        directory = DATA / "variants" / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        vtok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        extra = ["word", "a word here", "swordfish word.", "x <mask> y", "x   <mask>", "[SEP]   after", "été", "ete\u0301",
                 "café", "cafe\u0301 noir", "a spaced  b", "<|eot_id|><|begin_of_text|>", "", " ", "caf\u00e9caf\u00e9"]
        vrows = [{"text": t, "ids": vtok.encode(t).ids} for t in subset + extra]
        write_jsonl(DATA / "variants" / f"{name}.jsonl", vrows)
        print(f"{name}: {len(vrows)} strings")

    # The tiny fixture model's tokenizer (Models/fixtures/tiny-qwen2, a vocabulary prefix).
    fixture = ROOT / "Models/fixtures/tiny-qwen2/tokenizer.json"
    if fixture.exists():
        ftok = Tokenizer.from_file(str(fixture))
        frows = [{"text": t, "ids": ftok.encode(t).ids} for t in rng.sample(corpus, 300)]
        write_jsonl(DATA / "fixture_tiny-qwen2.jsonl", frows)
        print(f"tiny-qwen2 fixture: {len(frows)} strings")

    templates, cases = chat_cases()
    snippets = jinja_snippets()
    check_coverage(rows, cases, snippets)
    (DATA / "chat_templates.json").write_text(json.dumps(templates, ensure_ascii=False, indent=1), encoding="utf-8")
    write_jsonl(DATA / "chat_cases.jsonl", cases)
    print(f"chat: {len(cases)} cases")
    write_jsonl(DATA / "jinja_snippets.jsonl", snippets)
    print(f"jinja snippets: {len(snippets)} ({sum('expected_error' in r for r in snippets)} raise)")


if __name__ == "__main__":
    main()
