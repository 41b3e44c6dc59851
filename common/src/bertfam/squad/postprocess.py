"""Start/end logits to answers, n-best lists and the upstream output files.

Mirrors google-research/bert run_squad.py `write_predictions`: per window the
`n_best_size` best starts and ends, spans kept only when both ends are context tokens,
the start has its maximum context in that window, and the span is at most
`max_answer_length` tokens; candidates ranked by start + end logit; one entry per
distinct text; probabilities a softmax over the kept scores. With SQuAD v2.0 the null
answer competes: the question gets "" when the best null score beats the best span by
more than `null_score_diff_threshold`.

Answer text is cut out of the context by character offsets, and runs of whitespace are
joined by one space, which is what Google's `get_final_text` produces from its
whitespace-split words.

Files (names and shapes as upstream): ``predictions.json`` {id: text},
``nbest_predictions.json`` {id: [{text, probability, start_logit, end_logit}]}, and for
v2.0 ``null_odds.json`` {id: null score minus best span score}.
"""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from bertfam.atomic import write_json
from bertfam.squad.data import SquadExample
from bertfam.squad.features import SquadFeatures

PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"

# Google splits contexts into words on these before it rebuilds the answer text.
_GOOGLE_WHITESPACE = re.compile("[ \t\r\n\u202f]+")


@dataclass(frozen=True)
class SquadPredictions:
    answers: Dict[str, str]  # predictions.json
    nbest: Dict[str, List[dict]]  # nbest_predictions.json
    null_odds: Optional[Dict[str, float]] = None  # null_odds.json (v2.0 only)


@dataclass(frozen=True)
class Candidate:
    feature: int
    start: int
    end: int
    start_logit: float
    end_logit: float

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


def postprocess_predictions(
    examples: Sequence[SquadExample],
    features: SquadFeatures,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> SquadPredictions:
    """`start_logits`/`end_logits`: float [F, L], one row per feature, in feature order."""
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    if features.token_offsets is None:
        raise ValueError("features were built for training; post-processing needs offsets")
    if start_logits.shape != features.input_ids.shape or end_logits.shape != start_logits.shape:
        raise ValueError(
            f"logits of shape {start_logits.shape} and {end_logits.shape} do not match "
            f"features of shape {features.input_ids.shape}"
        )
    features_of = features_by_example(features)

    answers, nbest, null_odds = {}, {}, {}
    for index, example in enumerate(examples):
        candidates, null = _candidates(
            features_of[index], features, start_logits, end_logits, n_best_size, max_answer_length
        )
        if not version_2_with_negative:
            null = None
        entries = nbest_entries(
            example, features, candidates, null, n_best_size, version_2_with_negative
        )
        nbest[example.qas_id] = entries
        best_span = next((e for e in entries if e["text"]), None)
        if not version_2_with_negative:
            answers[example.qas_id] = entries[0]["text"]
            continue
        if null is None:  # a context with no tokens: nothing to answer from
            null_odds[example.qas_id] = 0.0
            answers[example.qas_id] = ""
            continue
        difference = null.score - best_span["start_logit"] - best_span["end_logit"]
        null_odds[example.qas_id] = difference
        answers[example.qas_id] = (
            "" if difference > null_score_diff_threshold else best_span["text"]
        )
    return SquadPredictions(answers, nbest, null_odds if version_2_with_negative else None)


def features_by_example(features: SquadFeatures) -> Dict[int, List[int]]:
    """{example index: its windows' rows}, in feature order (empty for an example with none)."""
    grouped = collections.defaultdict(list)
    for feature, example in enumerate(features.example_index.tolist()):
        grouped[example].append(feature)
    return grouped


def _best_indexes(logits: np.ndarray, n_best_size: int) -> List[int]:
    # Stable, so equal logits keep position order as Python's sorted() does upstream.
    return np.argsort(-logits, kind="stable")[:n_best_size].tolist()


def _candidates(feature_rows, features, start_logits, end_logits, n_best_size, max_answer_length):
    candidates: List[Candidate] = []
    null: Optional[Candidate] = None  # the window with the lowest [CLS] score
    for row in feature_rows:
        starts, ends = start_logits[row], end_logits[row]
        in_context = features.token_offsets[row, :, 0] >= 0
        is_max_context = features.token_is_max_context[row]
        if null is None or starts[0] + ends[0] < null.score:
            null = Candidate(row, 0, 0, starts[0], ends[0])
        for start in _best_indexes(starts, n_best_size):
            if not (in_context[start] and is_max_context[start]):
                continue
            for end in _best_indexes(ends, n_best_size):
                if not in_context[end] or end < start or end - start + 1 > max_answer_length:
                    continue
                candidates.append(Candidate(row, start, end, starts[start], ends[end]))
    candidates.sort(key=lambda c: c.score, reverse=True)
    return candidates, null


def nbest_entries(example, features, candidates, null, n_best_size, version_2_with_negative):
    chosen: List[tuple] = []  # (text, start_logit, end_logit)
    seen = set()
    if version_2_with_negative and null is not None:
        # The null answer competes in score order with the spans.
        candidates = sorted(candidates + [null], key=lambda c: c.score, reverse=True)
    for candidate in candidates:
        if len(chosen) >= n_best_size:
            break
        text = "" if candidate is null else span_text(example, features, candidate)
        if text in seen:
            continue
        seen.add(text)
        chosen.append((text, candidate.start_logit, candidate.end_logit))
    if version_2_with_negative and null is not None:
        if "" not in seen:
            chosen.append(("", null.start_logit, null.end_logit))
        if len(chosen) == 1:
            # As HuggingFace's port does: keep a non-null entry so a best span exists
            # (Google's script fails on such a question).
            chosen.insert(0, ("empty", 0.0, 0.0))
    if not chosen:
        chosen.append(("empty", 0.0, 0.0))
    probabilities = _softmax([start + end for _, start, end in chosen])
    return [
        {"text": text, "probability": p, "start_logit": float(s), "end_logit": float(e)}
        for (text, s, e), p in zip(chosen, probabilities)
    ]


def span_text(example: SquadExample, features: SquadFeatures, candidate: Candidate) -> str:
    first = features.token_offsets[candidate.feature, candidate.start, 0]
    last = features.token_offsets[candidate.feature, candidate.end, 1]
    return _GOOGLE_WHITESPACE.sub(" ", example.context[first:last])


def _softmax(scores: Sequence[float]) -> List[float]:
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = sum(exps)
    return [value / total for value in exps]


def write_predictions(predictions: SquadPredictions, output_dir: Union[str, Path]) -> List[Path]:
    """Write the upstream files into `output_dir`, each atomically; returns their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / PREDICTIONS_FILE, output_dir / NBEST_FILE]
    write_json(written[0], predictions.answers)
    write_json(written[1], predictions.nbest)
    if predictions.null_odds is not None:
        written.append(output_dir / NULL_ODDS_FILE)
        write_json(written[-1], predictions.null_odds)
    return written
