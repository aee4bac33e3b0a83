#!/usr/bin/env python3
"""Reference sampling distributions from Hugging Face transformers' own logits processors.

Usage:  .venv/bin/python scripts/sampler_reference.py [--out Tests/QwenTests/Data/sampler_reference.json]
        .venv/bin/python scripts/sampler_reference.py --check   # regenerate in memory, compare with the file

For each case: a seeded random logit vector (vocab 1000, float32), a history of token ids (prompt +
generated so far, for the repetition penalty) and a set of sampling parameters. The processors are
built by transformers itself, `GenerationMixin._get_logits_processor(GenerationConfig(do_sample=True,
...))`, so their choice and order (SequenceBias — OpenAI's logit_bias as single-token sequence biases
—, RepetitionPenalty, then Temperature, TopK, TopP, MinP) are HF's,
not ours; the script records that list. HF then samples from `softmax(processed scores)`; the case
records every surviving token (finite processed score) with that probability, most likely first.

The Swift test (Tests/QwenTests/SamplerTests.swift) checks that `Sampler.distribution(logits:history:)`
keeps exactly the same ids with the same probabilities (within 1e-5).

Cut-offs are discontinuous: a token whose cumulative probability (top-p) or probability ratio
(min-p) lies within 1e-4 of the threshold could flip with a last-bit difference in float32
arithmetic. Each case records its smallest distance to a threshold (absolute for top-p's cumulative
probability, relative for min-p); a case's seed is stepped by 1000 until that distance is at least
MIN_BOUNDARY_DISTANCE, so the reference does not depend on float32 accumulation order.
Ties in the top-k case with rounded logits are intentional: HF keeps every token equal to the k-th
largest score.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import transformers
from transformers import GenerationConfig, GenerationMixin, LogitsProcessorList

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "Tests/QwenTests/Data/sampler_reference.json"
VOCAB = 1000
MIN_BOUNDARY_DISTANCE = 1e-4

# (name, logits recipe, parameters). Recipes: scale of a standard normal; "round" rounds the
# logits to a grid (like float16 logits, with ties); "tie_at": k makes the (k+1)-th largest logit
# equal to the k-th (HF's top-k keeps both).
CASES = [
    ("softmax_only", {"seed": 1, "scale": 2.0}, dict(temperature=1.0, top_k=0, top_p=1.0)),
    ("hf_default_top_k_50", {"seed": 2, "scale": 3.0}, dict(temperature=1.0, top_k=50, top_p=1.0)),
    ("temperature_0.7_top_k_50", {"seed": 3, "scale": 3.0}, dict(temperature=0.7, top_k=50, top_p=1.0)),
    ("temperature_1.3_top_p_0.9", {"seed": 4, "scale": 3.0}, dict(temperature=1.3, top_k=0, top_p=0.9)),
    ("top_p_0.3", {"seed": 5, "scale": 4.0}, dict(temperature=1.0, top_k=0, top_p=0.3)),
    ("min_p_0.05", {"seed": 6, "scale": 3.0}, dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.05)),
    ("temperature_1.5_min_p_0.2", {"seed": 7, "scale": 3.0}, dict(temperature=1.5, top_k=0, top_p=1.0, min_p=0.2)),
    ("qwen2.5_generation_config", {"seed": 8, "scale": 4.0},
     dict(temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.1)),
    ("all_four", {"seed": 9, "scale": 3.0},
     dict(temperature=0.6, top_k=40, top_p=0.95, min_p=0.02, repetition_penalty=1.3)),
    ("repetition_penalty_2_only", {"seed": 10, "scale": 3.0},
     dict(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=2.0)),
    ("repetition_penalty_0.8_top_k_10", {"seed": 11, "scale": 3.0},
     dict(temperature=0.9, top_k=10, top_p=1.0, repetition_penalty=0.8)),
    ("top_k_1", {"seed": 12, "scale": 3.0}, dict(temperature=0.8, top_k=1, top_p=1.0)),
    ("rounded_logits_top_k_ties", {"seed": 13, "scale": 2.0, "round": 0.25, "tie_at": 8},
     dict(temperature=1.0, top_k=8, top_p=1.0)),
    ("rounded_logits_penalty_top_k", {"seed": 15, "scale": 2.0, "round": 0.25},
     dict(temperature=1.0, top_k=8, top_p=1.0, repetition_penalty=1.25)),
    ("rounded_logits_min_p_ties", {"seed": 14, "scale": 2.0, "round": 0.25},
     dict(temperature=0.5, top_k=0, top_p=1.0, min_p=0.1)),
    # OpenAI's logit_bias as HF's sequence_bias of single tokens: the most likely token banned,
    # a middling one boosted, a third nudged.
    ("logit_bias_ban_and_boost", {"seed": 16, "scale": 3.0, "bias_ranks": [[0, -100.0], [400, 7.5], [3, 1.25]]},
     dict(temperature=1.0, top_k=0, top_p=1.0)),
    # Bias before the repetition penalty (HF's order): biased ids in the history, one pushed
    # below zero (the penalty then multiplies it), with top-p and a temperature.
    ("logit_bias_penalty_top_p", {"seed": 17, "scale": 3.0, "bias_ranks": [[0, -9.0], [1, 2.5], [2, -0.75], [700, 4.0]]},
     dict(temperature=0.8, top_k=0, top_p=0.9, repetition_penalty=1.3)),
]


class _NoModel:
    """`_get_logits_processor` only touches `self` for classifier-free guidance, watermarking and
    merging a caller's processor list (empty here)."""

    _merge_criteria_processor_list = GenerationMixin._merge_criteria_processor_list


def make_logits(recipe: dict) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(recipe["seed"])
    logits = (rng.standard_normal(VOCAB) * recipe["scale"]).astype(np.float32)
    if "round" in recipe:
        logits = (np.round(logits / recipe["round"]) * recipe["round"]).astype(np.float32)
    if "tie_at" in recipe:
        k = recipe["tie_at"]
        order = np.argsort(-logits, kind="stable")
        logits[order[k]] = logits[order[k - 1]]
    # History: 24 ids, some among the most likely tokens (so the penalty changes the cut-offs),
    # some with negative logits (the penalty multiplies those), with repeats.
    order = np.argsort(-logits, kind="stable")
    history = [int(i) for i in order[:6]] + [int(i) for i in rng.choice(VOCAB, 16)] + [int(order[0]), int(order[-1])]
    # Logit biases by rank (the ids of the rank-th most likely logits).
    bias = {int(order[rank]): value for rank, value in recipe.get("bias_ranks", [])}
    return logits, history, bias


def processors(params: dict, history_len: int, bias: dict) -> LogitsProcessorList:
    config = GenerationConfig(do_sample=True, **params,
                              **({"sequence_bias": [[[i], b] for i, b in bias.items()]} if bias else {}))
    return GenerationMixin._get_logits_processor(
        _NoModel(), generation_config=config, input_ids_seq_length=history_len,
        encoder_input_ids=None, prefix_allowed_tokens_fn=None, logits_processor=LogitsProcessorList(),
        device="cpu")


def boundary_distance(procs: LogitsProcessorList, ids: torch.Tensor, scores: torch.Tensor) -> float:
    """Smallest distance of a top-p cumulative probability to 1 - top_p (absolute) or of a
    probability to the min-p threshold (relative)."""
    best = float("inf")
    for p in procs:
        name = type(p).__name__
        if name == "TopPLogitsWarper":
            s, _ = torch.sort(scores, descending=False)
            cum = s.softmax(dim=-1).cumsum(dim=-1)[0].double().numpy()
            finite = np.isfinite(s[0].numpy())
            d = np.abs(cum[finite] - (1 - p.top_p))
            best = min(best, float(d.min()))
        elif name == "MinPLogitsWarper":
            probs = scores.softmax(dim=-1)[0].double().numpy()
            threshold = p.min_p * probs.max()
            live = probs > 0
            if threshold > 0:  # relative: min-p compares probabilities of ~1/vocab
                best = min(best, float(np.abs(probs[live] / threshold - 1).min()))
        scores = p(ids, scores)
    return best


def build() -> dict:
    cases = []
    for name, recipe, params in CASES:
        recipe = dict(recipe)
        for _ in range(100):  # the first seed (from the case's) whose cut-offs are not borderline
            logits, history, bias = make_logits(recipe)
            ids = torch.tensor([history], dtype=torch.long)
            procs = processors(params, len(history), bias)
            scores = torch.from_numpy(logits.copy()).unsqueeze(0)
            distance = boundary_distance(procs, ids, scores.clone())
            if distance >= MIN_BOUNDARY_DISTANCE:
                break
            recipe["seed"] += 1000
        else:
            raise SystemExit(f"case {name}: no seed without a borderline cut-off")
        processed = procs(ids, scores.clone())
        probs = torch.softmax(processed, dim=-1)[0]
        alive = torch.isfinite(processed[0])
        order = sorted((int(i) for i in torch.nonzero(alive).flatten()),
                       key=lambda i: (-float(probs[i]), i))
        cases.append({
            "name": name,
            "parameters": {"temperature": params.get("temperature", 1.0), "top_k": params.get("top_k", 0),
                           "top_p": params.get("top_p", 1.0), "min_p": params.get("min_p", 0.0),
                           "repetition_penalty": params.get("repetition_penalty", 1.0),
                           "logit_bias": {str(i): b for i, b in bias.items()}},
            "hf_processors": [type(p).__name__ for p in procs],
            "logits_recipe": recipe,
            "logits": [float(x) for x in logits],
            "history": history,
            "surviving_ids": order,
            "probabilities": [float(probs[i]) for i in order],
            "min_boundary_distance": distance if np.isfinite(distance) else None,
        })
    # What SamplingTests assume of the file: every processor the sampler implements, each exercised.
    used = {name for c in cases for name in c["hf_processors"]}
    expected = {"SequenceBiasLogitsProcessor", "RepetitionPenaltyLogitsProcessor", "TemperatureLogitsWarper",
                "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper"}
    if len(cases) < 16 or used != expected:
        raise SystemExit(f"the cases no longer cover the processors: {len(cases)} cases, {sorted(used)}")
    return {
        "generator": "scripts/sampler_reference.py",
        "what": "HF transformers logits processors (built by GenerationMixin._get_logits_processor, do_sample=True) "
                "applied to seeded random float32 logits; surviving ids (finite scores) and softmax probabilities, "
                "most likely first",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__},
        "vocab_size": VOCAB,
        "cases": cases,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the existing file instead of writing")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = build()
    text = json.dumps(data, indent=1) + "\n"
    if args.check:
        same = args.out.read_text() == text
        print(f"{args.out}: {'identical' if same else 'DIFFERS'}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    for c in data["cases"]:
        print(f"{c['name']:34s} {len(c['surviving_ids']):4d} survive, top p {c['probabilities'][0]:.4f}, "
              f"boundary distance {c['min_boundary_distance']}, processors {c['hf_processors']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
