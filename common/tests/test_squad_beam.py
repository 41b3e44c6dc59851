"""bertfam.squad.beam: answers from a joint head's beams, on hand-made beams whose right
answer is known (the layout is NVIDIA's TF2 ELECTRA joint head's: start i's j-th end at
i * K + j)."""

import numpy as np
import pytest

from bertfam.squad.beam import BeamOutputs, beam_predictions

NEG = -20.0  # the log-probability of an entry that should lose


def position(features, tokenizer, token, window=0):
    return features.input_ids[window].tolist().index(tokenizer.vocab[token], 4)


def beams(features, starts, ends, cls=None):
    """K starts per window, each with its K ends: [(position, log_prob)] lists; windows
    other than the first get beams on [CLS] only (never candidates)."""
    windows, k = len(features), len(starts)
    start_lp = np.full((windows, k), NEG)
    start_ix = np.zeros((windows, k), np.int64)
    end_lp = np.full((windows, k * k), NEG)
    end_ix = np.zeros((windows, k * k), np.int64)
    for i, (where, score) in enumerate(starts):
        start_ix[0, i], start_lp[0, i] = where, score
        for j, (end, end_score) in enumerate(ends[i]):
            end_ix[0, i * k + j], end_lp[0, i * k + j] = end, end_score
    cls = np.zeros(windows) if cls is None else np.asarray(cls, np.float64)
    return BeamOutputs(start_lp, start_ix, end_lp, end_ix, cls)


def test_best_start_end_pair_gives_the_answer_text(tiny):
    examples, features, tokenizer = tiny
    p = {t: position(features, tokenizer, t) for t in ("carolina", "won", "1895", "panthers")}
    outputs = beams(
        features,
        starts=[(p["1895"], -0.1), (p["carolina"], -2.0)],
        ends=[[(p["panthers"], -0.2), (p["won"], -0.1)], [(p["won"], -0.5), (1, -0.1)]],
    )
    predictions = beam_predictions(examples, features, outputs)
    # (1895, won) ends before it starts and (carolina, a question token) is outside the
    # context: neither is a candidate, whatever their scores.
    assert predictions.answers == {"q1": "1895. The Panthers"}
    texts = [(e["text"], e["start_logit"], e["end_logit"]) for e in predictions.nbest["q1"]]
    assert texts == [("1895. The Panthers", -0.1, -0.2), ("Carolina won", -2.0, -0.5)]
    assert sum(e["probability"] for e in predictions.nbest["q1"]) == pytest.approx(1.0)
    assert predictions.null_odds is None


def test_end_beams_are_read_start_major(tiny):
    # Entry i * K + j belongs to start i: swapping the two starts' end beams must change
    # the answer (HuggingFace's XLNet head lays them out end-major; upstream's is this).
    examples, features, tokenizer = tiny
    carolina, won, panthers = (
        position(features, tokenizer, t) for t in ("carolina", "won", "panthers")
    )
    starts = [(carolina, -0.1), (won, -0.2)]
    ours = beams(
        features, starts, ends=[[(won, -0.1), (carolina, -3)], [(panthers, -0.1), (won, -3)]]
    )
    assert beam_predictions(examples, features, ours).answers == {"q1": "Carolina won"}
    swapped = beams(
        features, starts, ends=[[(panthers, -0.1), (won, -3)], [(won, -0.1), (carolina, -3)]]
    )
    assert beam_predictions(examples, features, swapped).answers == {
        "q1": "Carolina won in 1895. The Panthers"
    }


def test_long_spans_and_starts_without_max_context_are_skipped(tiny):
    examples, features, tokenizer = tiny
    carolina, lost = (
        position(features, tokenizer, "carolina"),
        position(features, tokenizer, "lost"),
    )
    outputs = beams(features, [(carolina, -0.1)], [[(lost, -0.1)]])
    assert (
        beam_predictions(examples, features, outputs).answers["q1"]
        == "Carolina won in 1895. The Panthers lost"
    )
    short = beam_predictions(examples, features, outputs, max_answer_length=3)
    assert short.answers == {"q1": "empty"}  # no candidate left: upstream's placeholder
    not_max = features.token_is_max_context.copy()
    not_max[0, carolina] = False
    other = type(features)(**{**features.__dict__, "token_is_max_context": not_max})
    assert beam_predictions(examples, other, outputs).answers == {"q1": "empty"}


def test_v2_null_answer_follows_the_answerability_logit(tiny):
    examples, features, tokenizer = tiny
    carolina = position(features, tokenizer, "carolina")
    assert len(features) == 1
    cls = [0.5]
    outputs = beams(features, [(carolina, -0.1)], [[(carolina, -0.2)]], cls=cls)
    run = dict(version_2_with_negative=True)
    null = beam_predictions(examples, features, outputs, **run)
    assert null.answers == {"q1": ""}
    assert null.null_odds == {"q1": 0.5}
    texts = [(e["text"], e["start_logit"], e["end_logit"]) for e in null.nbest["q1"]]
    assert texts == [("Carolina", -0.1, -0.2), ("", -0.1, -0.2)]  # the window's top beams
    answered = beam_predictions(examples, features, outputs, null_score_diff_threshold=1.0, **run)
    assert answered.answers == {"q1": "Carolina"}
