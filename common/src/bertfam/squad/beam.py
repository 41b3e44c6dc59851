"""Answers from a joint start/end head with beam search (XLNet's SQuAD head, which NVIDIA's
TF2 ELECTRA fine-tuning uses as its "joint head").

Such a model scores no [start, end] grid: for each window it gives the `K` most likely
starts (log-probabilities and positions), for each of them the `K` most likely ends given
that start (flattened so that entry ``i * K + j`` is start `i`'s `j`-th end), and one
answerability logit. A start/end pair is a candidate when both ends are context tokens,
the start has its maximum context in that window, and the span is at most
`max_answer_length` tokens; candidates rank by start + end log-probability. From there
the n-best list, its probabilities and the files are the ones `postprocess` writes.

SQuAD v2.0: a question's null score is its windows' lowest answerability logit; it is
answered "" when that score is above `null_score_diff_threshold` (or when no window has a
span to offer). The null entry of the n-best list carries the top start and first end
log-probabilities of that window, as upstream's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from bertfam.squad.data import SquadExample
from bertfam.squad.features import SquadFeatures
from bertfam.squad.postprocess import (
    Candidate,
    SquadPredictions,
    features_by_example,
    nbest_entries,
)


@dataclass(frozen=True)
class BeamOutputs:
    """The joint head's outputs for F windows with beam size K."""

    start_top_log_probs: np.ndarray  # float [F, K]
    start_top_index: np.ndarray  # int [F, K]
    end_top_log_probs: np.ndarray  # float [F, K * K]: start i's j-th end at i * K + j
    end_top_index: np.ndarray  # int [F, K * K]
    cls_logits: np.ndarray  # float [F]: answerability (0 for v1.1)


def beam_predictions(
    examples: Sequence[SquadExample],
    features: SquadFeatures,
    outputs: BeamOutputs,
    *,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> SquadPredictions:
    if features.token_offsets is None:
        raise ValueError("features were built for training; post-processing needs offsets")
    if len(outputs.start_top_index) != len(features):
        raise ValueError(
            f"beam outputs for {len(outputs.start_top_index)} windows, features for {len(features)}"
        )
    features_of = features_by_example(features)

    answers, nbest, null_odds = {}, {}, {}
    for index, example in enumerate(examples):
        rows = features_of[index]
        candidates = [
            c for row in rows for c in _beam_candidates(row, features, outputs, max_answer_length)
        ]
        candidates.sort(key=lambda c: c.score, reverse=True)
        null, null_score = _null(rows, outputs) if version_2_with_negative else (None, None)
        entries = nbest_entries(
            example, features, candidates, null, n_best_size, version_2_with_negative
        )
        nbest[example.qas_id] = entries
        if not version_2_with_negative:
            answers[example.qas_id] = entries[0]["text"]
            continue
        null_odds[example.qas_id] = null_score
        if null is None:  # a context with no tokens: nothing to answer from
            answers[example.qas_id] = ""
            continue
        best_span = next((e["text"] for e in entries if e["text"]), "")
        answers[example.qas_id] = "" if null_score > null_score_diff_threshold else best_span
    return SquadPredictions(answers, nbest, null_odds if version_2_with_negative else None)


def _beam_candidates(row: int, features: SquadFeatures, outputs: BeamOutputs, max_length: int):
    in_context = features.token_offsets[row, :, 0] >= 0
    is_max_context = features.token_is_max_context[row]
    starts = outputs.start_top_index[row]
    ends = outputs.end_top_index[row]
    beam = len(starts)
    found: List[Candidate] = []
    for i, start in enumerate(starts.tolist()):
        if not (in_context[start] and is_max_context[start]):
            continue
        for j in range(beam):
            end = int(ends[i * beam + j])
            if not in_context[end] or end < start or end - start + 1 > max_length:
                continue
            start_score = float(outputs.start_top_log_probs[row, i])
            end_score = float(outputs.end_top_log_probs[row, i * beam + j])
            found.append(Candidate(row, start, end, start_score, end_score))
    return found


def _null(rows: Sequence[int], outputs: BeamOutputs):
    """(the null n-best entry, the null score): the window least likely to hold an answer."""
    if not rows:
        return None, 0.0
    row = min(rows, key=lambda r: float(outputs.cls_logits[r]))  # first of equals, as upstream
    entry: Optional[Candidate] = Candidate(
        row,
        0,
        0,
        float(outputs.start_top_log_probs[row, 0]),
        float(outputs.end_top_log_probs[row, 0]),
    )
    return entry, float(outputs.cls_logits[row])
