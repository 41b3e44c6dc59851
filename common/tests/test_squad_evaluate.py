"""SQuAD scoring: hand-computed values, parity with torchmetrics (v1.1) and with transformers'
port of the official v2.0 script, on the real XQuAD English questions, and the command line."""

from __future__ import annotations

import json
import random
import re
import string
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List, NamedTuple

import pytest

from bertfam.squad import evaluate as squad_evaluate
from bertfam.squad.evaluate import (
    SquadEvaluateError,
    compute_exact,
    compute_f1,
    evaluate_v1,
    evaluate_v2,
    exact_match_score,
    f1_score,
    get_tokens,
    normalize_answer,
    scorable_gold_answers,
    unanswered_question_ids,
)
from bertfam.testing import shared_file

XQUAD_QUESTIONS = 1190


# ---------------------------------------------------------------------------------------------
# Tiny datasets


def article(title: str, *qas: dict) -> dict:
    return {"title": title, "paragraphs": [{"context": "unused", "qas": list(qas)}]}


def question(qid: str, *answers: str) -> dict:
    return {
        "id": qid,
        "question": "?",
        "answers": [{"text": text, "answer_start": 0} for text in answers],
    }


# ---------------------------------------------------------------------------------------------
# Hand-computed values


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Cat,   sat!", "cat sat"),
        ("an apple a day", "apple day"),
        ("theatre Another anthem", "theatre another anthem"),  # articles only as whole words
        ("A.B.C.", "abc"),  # punctuation goes first, so the "a" of "a." is no longer alone
        ("the.", ""),  # ... and "the." loses its article
        ("\tThe\u00a0end\n", "end"),  # str.split() collapses Unicode whitespace too
        ("Éclair", "éclair"),
        ("The\u2014cat", "\u2014cat"),
        (
            "cat\u2014the\u2014dog",
            "cat\u2014 \u2014dog",
        ),  # an article leaves a space behind  # the em dash is not ASCII punctuation, yet a word boundary
        ("l'été", "lété"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_v1_f1_worked_by_hand():
    # "the cat sat" -> [cat, sat]; "a cat sat on" -> [cat, sat, on]; 2 shared.
    # precision 2/2, recall 2/3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert f1_score("the cat sat", "a cat sat on") == pytest.approx(0.8, abs=1e-15)
    # Repeated tokens count as a multiset: cat min(2, 1) + dog min(1, 2) = 2 shared of 3 each.
    assert f1_score("cat cat dog", "cat dog dog") == pytest.approx(2 / 3, abs=1e-15)
    assert f1_score("Denver Broncos", "Carolina Panthers") == 0.0
    assert f1_score("", "Denver Broncos") == 0.0


def test_v1_exact_match_and_its_empty_answer_quirk():
    assert exact_match_score("The Cat.", "cat") is True
    assert exact_match_score("cats", "cat") is False
    # Both normalise to "": equal, yet v1.1 F1 is 0 because there is no token in common.
    assert exact_match_score("the", "A") is True
    assert f1_score("the", "A") == 0.0


def test_evaluate_v1_small_dataset_by_hand():
    dataset = [
        article(
            "Tiny",
            question("exact", "Denver Broncos"),
            question("partial", "a cat sat on"),
            question("two_golds", "cat sat on the mat", "on the mat"),
            question("missing", "anything"),
        )
    ]
    predictions = {"exact": "the denver broncos.", "partial": "the cat sat", "two_golds": "mat"}
    # F1 per question: 1, 0.8, max(0.4, 2/3), 0 (no prediction); EM: 1, 0, 0, 0.
    scores = evaluate_v1(dataset, predictions)
    assert scores == {
        "exact_match": pytest.approx(100 / 4, abs=1e-12),
        "f1": pytest.approx(100 * (1 + 0.8 + 2 / 3) / 4, abs=1e-12),
    }
    assert unanswered_question_ids(dataset, predictions) == ["missing"]


def test_v2_tokens_and_per_answer_scores_by_hand():
    assert get_tokens("") == []
    assert get_tokens("The Cat sat.") == ["cat", "sat"]
    assert compute_f1("a cat sat on", "the cat sat") == pytest.approx(0.8, abs=1e-15)
    # Either side without tokens: 1 when both have none, else 0.
    assert compute_f1("", "") == 1.0
    assert compute_f1("the", "a") == 1.0  # unlike v1.1, where it is 0
    assert compute_f1("", "cat") == 0.0
    assert compute_f1("cat", "") == 0.0
    assert compute_exact("", "") == 1
    assert compute_exact("Cat", "the cat!") == 1
    assert scorable_gold_answers(["The", "cat"]) == ["cat"]
    assert scorable_gold_answers(["The"]) == [""]
    assert scorable_gold_answers([]) == [""]


def test_evaluate_v2_small_dataset_by_hand():
    dataset = [
        article(
            "Tiny",
            question("answered", "cat sat"),
            question("partial", "a cat sat on"),
            question("no_answer_abstained"),
            question("no_answer_answered"),
            # Its only gold normalises to nothing: scored as unanswerable, counted as HasAns.
            question("gold_is_an_article", "The"),
        )
    ]
    predictions = {
        "answered": "the cat sat",
        "partial": "the cat sat",
        "no_answer_abstained": "",
        "no_answer_answered": "cat",
        "gold_is_an_article": "",
    }
    # exact: 1, 0, 1, 0, 1; f1: 1, 0.8, 1, 0, 1
    scores = evaluate_v2(dataset, predictions)
    assert list(scores) == [
        "exact", "f1", "total",
        "HasAns_exact", "HasAns_f1", "HasAns_total",
        "NoAns_exact", "NoAns_f1", "NoAns_total",
    ]  # fmt: skip
    assert scores == {
        "exact": pytest.approx(60.0, abs=1e-12),
        "f1": pytest.approx(100 * 3.8 / 5, abs=1e-12),
        "total": 5,
        "HasAns_exact": pytest.approx(100 * 2 / 3, abs=1e-12),
        "HasAns_f1": pytest.approx(100 * 2.8 / 3, abs=1e-12),
        "HasAns_total": 3,
        "NoAns_exact": 50.0,
        "NoAns_f1": 50.0,
        "NoAns_total": 2,
    }


def test_evaluate_v2_leaves_out_empty_groups_and_scores_missing_predictions_zero():
    only_answerable = [article("A", question("q1", "cat"), question("q2", "dog"))]
    assert evaluate_v2(only_answerable, {"q1": "cat"}) == {
        "exact": 50.0, "f1": 50.0, "total": 2,
        "HasAns_exact": 50.0, "HasAns_f1": 50.0, "HasAns_total": 2,
    }  # fmt: skip
    only_unanswerable = [article("N", question("q1"), question("q2"))]
    assert evaluate_v2(only_unanswerable, {"q1": "", "q2": "the"}) == {
        "exact": 100.0, "f1": 100.0, "total": 2,
        "NoAns_exact": 100.0, "NoAns_f1": 100.0, "NoAns_total": 2,
    }  # fmt: skip
    # No prediction for an unanswerable question is not an abstention: it scores 0.
    assert evaluate_v2(only_unanswerable, {"q1": ""})["NoAns_exact"] == 50.0


@pytest.mark.parametrize(
    "dataset, predictions, message",
    [
        (
            [article("T", {"question": "?", "answers": []})],
            {},
            "article 'T', paragraph 0, question 0 lacks field 'id'",
        ),
        ([article("T", {"id": "q9"})], {}, "article 'T', question 'q9' lacks field 'answers'"),
        (
            [article("T", {"id": "q9", "answers": [{}]})],
            {},
            "question 'q9', answer 0 lacks field 'text'",
        ),
        ([{"title": "T"}], {}, "article 'T' lacks field 'paragraphs'"),
        ({"data": []}, {}, "'data' must be a JSON array of articles, got object"),
        ([], {}, "the dataset has no questions to score"),
        ([article("T", question("q1", "x"))], ["x"], "must be a JSON object mapping question id"),
        (
            [article("T", question("q1", "x"))],
            {"q1": None},
            "prediction for question 'q1' must be a string, got null",
        ),
    ],
)
def test_bad_input_names_what_is_wrong(dataset, predictions, message):
    for evaluate in (evaluate_v1, evaluate_v2):
        with pytest.raises(SquadEvaluateError, match=re.escape(message)):
            evaluate(dataset, predictions)


def test_v1_refuses_a_question_without_gold_answers():
    with pytest.raises(SquadEvaluateError, match="question 'q1' has no gold answers.*v2.0"):
        evaluate_v1([article("T", question("q1"))], {"q1": ""}, source="d.json")


# ---------------------------------------------------------------------------------------------
# Predictions derived from the real XQuAD English questions


class Sample(NamedTuple):
    qid: str
    gold: str
    context: str
    start: int
    other_gold: str  # the next question's answer: a wrong but plausible prediction
    index: int


def xquad_samples(articles: list) -> List[Sample]:
    raw = [
        (qa["id"], qa["answers"][0]["text"], paragraph["context"], qa["answers"][0]["answer_start"])
        for entry in articles
        for paragraph in entry["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return [
        Sample(qid, gold, context, start, raw[(index + 1) % len(raw)][1], index)
        for index, (qid, gold, context, start) in enumerate(raw)
    ]


FULLWIDTH = str.maketrans({chr(code): chr(code + 0xFEE0) for code in range(0x21, 0x7F)})


def first_half_of_words(sample: Sample) -> str:
    words = sample.gold.split()
    return " ".join(words[: max(1, len(words) // 2)])


def wider_context_span(sample: Sample) -> str:
    end = sample.start + len(sample.gold)
    return sample.context[max(0, sample.start - 17) : end + 23]


def shifted_context_span(sample: Sample) -> str:
    middle = sample.start + len(sample.gold) // 2
    return sample.context[middle : middle + len(sample.gold) + 11]


def random_context_words(sample: Sample) -> str:
    rng = random.Random(sample.index)
    words = sample.context.split()
    return " ".join(rng.sample(words, min(len(words), rng.randint(1, 12))))


def long_adversarial(sample: Sample) -> str:
    # A long string full of the gold's words in the wrong order, articles and punctuation.
    rng = random.Random(1000 + sample.index)
    pieces = (
        sample.gold.split() * 30 + ["the", "a", "an", "--", "..."] * 20 + sample.context.split()
    )
    rng.shuffle(pieces)
    return " ".join(pieces)


PERTURBATIONS: Dict[str, Callable[[Sample], str]] = {
    "gold": lambda s: s.gold,
    "first_half_of_words": first_half_of_words,
    "last_word_dropped": lambda s: " ".join(s.gold.split()[:-1]),
    "last_character_cut": lambda s: s.gold[:-1],
    "extra_words_after": lambda s: f"{s.gold} in the end",
    "extra_words_before": lambda s: f"It was {s.gold}",
    "wider_context_span": wider_context_span,
    "shifted_context_span": shifted_context_span,
    "other_answer": lambda s: s.other_gold,
    "random_context_words": random_context_words,
    "words_doubled": lambda s: " ".join(word for word in s.gold.split() for _ in (0, 1)),
    "upper_case": lambda s: s.gold.upper(),
    "swapped_case": lambda s: s.gold.swapcase(),
    "punctuation_around": lambda s: f'"{s.gold}."',
    "punctuation_between_words": lambda s: s.gold.replace(" ", ", "),
    "punctuation_removed": lambda s: "".join(c for c in s.gold if c not in string.punctuation),
    "hyphens_for_spaces": lambda s: s.gold.replace(" ", "-"),
    "articles_added": lambda s: f"The {s.gold} a",
    "article_glued_on": lambda s: f"the{s.gold}",
    "empty": lambda s: "",
    "whitespace_only": lambda s: " \t\n\u00a0 ",
    "punctuation_only": lambda s: "?!..., ;:'\"()",
    "articles_only": lambda s: "The a AN the",
    "articles_and_punctuation_only": lambda s: "(the) -- a, an!",
    "gold_repeated": lambda s: " ".join([s.gold] * 40),
    "long_adversarial": long_adversarial,
    "unicode_decomposed_accents": lambda s: unicodedata.normalize("NFD", f"Café {s.gold} née"),
    "unicode_fullwidth": lambda s: s.gold.translate(FULLWIDTH),
    "unicode_em_dashes_and_quotes": lambda s: "\u201c" + s.gold.replace(" ", "\u2014") + "\u201d",
    "unicode_no_break_spaces": lambda s: s.gold.replace(" ", "\u00a0"),
    "unicode_dotted_capital_i": lambda s: f"İstanbul {s.gold}",
    "unicode_emoji_and_cjk": lambda s: f"{s.gold} 🎉 北京",
}


def mixed(sample: Sample) -> str:
    """A different perturbation for each question, cycling through all of them."""
    kinds = list(PERTURBATIONS.values())
    return kinds[sample.index % len(kinds)](sample)


ALL_KINDS = {**PERTURBATIONS, "mixed": mixed}


def perturbed_predictions(samples: List[Sample], kind: str) -> Dict[str, str]:
    return {sample.qid: ALL_KINDS[kind](sample) for sample in samples}


@pytest.fixture(scope="module")
def xquad_articles(shared_data) -> list:
    dataset = json.loads(
        shared_file(shared_data, "squad/xquad.en.json").read_text(encoding="utf-8")
    )
    assert dataset["version"] == "1.1"
    return dataset["data"]


@pytest.fixture(scope="module")
def samples(xquad_articles) -> List[Sample]:
    found = xquad_samples(xquad_articles)
    assert len(found) == XQUAD_QUESTIONS
    return found


def xquad_articles_of(samples: List[Sample]) -> list:
    """The samples as a one-article SQuAD "data" list (one gold answer each)."""
    qas = [question(sample.qid, sample.gold) for sample in samples]
    return [article("xquad", *qas)]


def test_perturbations_reach_the_cases_they_are_meant_for(samples):
    # Guards the parity tests below against perturbations that silently test nothing.
    def f1_for(kind):
        return evaluate_v1(xquad_articles_of(samples), perturbed_predictions(samples, kind))["f1"]

    assert f1_for("gold") == 100.0
    for kind in ("empty", "whitespace_only", "punctuation_only", "articles_only"):
        assert f1_for(kind) == 0.0, kind
    for kind in ("upper_case", "punctuation_around", "articles_added", "unicode_no_break_spaces"):
        assert f1_for(kind) == 100.0, kind
    for kind in ("first_half_of_words", "extra_words_after", "wider_context_span", "mixed"):
        assert 10.0 < f1_for(kind) < 95.0, kind
    assert f1_for("long_adversarial") < 10.0


# ---------------------------------------------------------------------------------------------
# v1.1 parity with torchmetrics


@pytest.fixture
def float64_torch():
    """torchmetrics' functional squad sums in the default float dtype; float64 makes it add up
    exactly as Python floats do (in float32 it drifts by ~1e-5)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch
    finally:
        torch.set_default_dtype(previous)


def torchmetrics_v1_scores(articles: list, predictions: Dict[str, str]) -> Dict[str, float]:
    from torchmetrics.functional.text import squad

    targets = [
        {
            "id": qa["id"],
            "answers": {
                "text": [answer["text"] for answer in qa["answers"]],
                "answer_start": [answer["answer_start"] for answer in qa["answers"]],
            },
        }
        for entry in articles
        for paragraph in entry["paragraphs"]
        for qa in paragraph["qas"]
    ]
    preds = [{"id": qid, "prediction_text": text} for qid, text in predictions.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per unanswered question
        scores = squad(preds, targets)
    return {name: float(value) for name, value in scores.items()}


@pytest.mark.parametrize("kind", list(ALL_KINDS))
def test_v1_matches_torchmetrics_on_xquad(float64_torch, xquad_articles, samples, kind):
    predictions = perturbed_predictions(samples, kind)
    ours = evaluate_v1(xquad_articles, predictions)
    reference = torchmetrics_v1_scores(xquad_articles, predictions)
    assert ours["exact_match"] == pytest.approx(reference["exact_match"], abs=1e-9, rel=0)
    assert ours["f1"] == pytest.approx(reference["f1"], abs=1e-9, rel=0)


def test_v1_matches_torchmetrics_with_unanswered_questions(float64_torch, xquad_articles, samples):
    predictions = {sample.qid: mixed(sample) for sample in samples if sample.index % 7 != 3}
    ours = evaluate_v1(xquad_articles, predictions)
    reference = torchmetrics_v1_scores(xquad_articles, predictions)
    assert ours == pytest.approx(reference, abs=1e-9, rel=0)
    assert len(unanswered_question_ids(xquad_articles, predictions)) == 170


def test_v1_matches_torchmetrics_float32_module_loosely(xquad_articles, samples):
    # The SQuAD metric class keeps float32 state, so it only agrees to float32 precision.
    pytest.importorskip("torch")
    from torchmetrics.text import SQuAD

    predictions = perturbed_predictions(samples, "mixed")
    metric = SQuAD()
    metric.update(
        [{"id": qid, "prediction_text": text} for qid, text in predictions.items()],
        [{"id": s.qid, "answers": {"text": [s.gold], "answer_start": [s.start]}} for s in samples],
    )
    reference = {name: float(value) for name, value in metric.compute().items()}
    assert evaluate_v1(xquad_articles, predictions) == pytest.approx(reference, abs=1e-3, rel=0)


def test_known_difference_from_torchmetrics_when_both_answers_normalise_to_nothing(
    float64_torch,
):
    # torchmetrics uses the v2.0 F1 rule (both empty -> 1); the official v1.1 script gives 0.
    dataset = [article("T", question("q1", "The"))]
    predictions = {"q1": "a"}
    assert evaluate_v1(dataset, predictions) == {"exact_match": 100.0, "f1": 0.0}
    assert torchmetrics_v1_scores(dataset, predictions) == {"exact_match": 100.0, "f1": 100.0}


def lowercase_only(text):
    return " ".join(text.lower().split())


def without_lowercasing(text):
    kept = "".join(c for c in text if c not in string.punctuation)
    return " ".join(w for w in kept.split() if w.lower() not in ("a", "an", "the"))


def without_punctuation_removal(text):
    return " ".join(w for w in text.lower().split() if w not in ("a", "an", "the"))


def articles_removed_inside_words(text):
    kept = "".join(c for c in text.lower() if c not in string.punctuation)
    for article_word in ("the", "an", "a"):
        kept = kept.replace(article_word, " ")
    return " ".join(kept.split())


def ascii_space_split_only(text):
    kept = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(w for w in kept.split(" ") if w and w not in ("a", "an", "the"))


@pytest.mark.parametrize(
    "mutant",
    [
        lowercase_only,
        without_lowercasing,
        without_punctuation_removal,
        articles_removed_inside_words,
        ascii_space_split_only,
    ],
)
def test_parity_check_catches_a_wrong_normalisation(
    float64_torch, xquad_articles, samples, monkeypatch, mutant
):
    predictions = perturbed_predictions(samples, "mixed")
    reference = torchmetrics_v1_scores(xquad_articles, predictions)
    monkeypatch.setattr(squad_evaluate, "normalize_answer", mutant)
    mutated = evaluate_v1(xquad_articles, predictions)
    assert abs(mutated["f1"] - reference["f1"]) > 1e-3


def test_parity_check_catches_set_instead_of_multiset_overlap(
    float64_torch, xquad_articles, samples, monkeypatch
):
    def set_overlap_f1(prediction_tokens, gold_tokens):
        shared = len(set(prediction_tokens) & set(gold_tokens))
        if shared == 0:
            return 0.0
        precision, recall = shared / len(prediction_tokens), shared / len(gold_tokens)
        return 2 * precision * recall / (precision + recall)

    predictions = perturbed_predictions(samples, "mixed")
    reference = torchmetrics_v1_scores(xquad_articles, predictions)
    monkeypatch.setattr(squad_evaluate, "_overlap_f1", set_overlap_f1)
    assert abs(evaluate_v1(xquad_articles, predictions)["f1"] - reference["f1"]) > 1e-3


# ---------------------------------------------------------------------------------------------
# v2.0 parity with transformers' port of evaluate-v2.0.py


def xquad_as_v2(samples: List[Sample]) -> list:
    """XQuAD with every fourth question made unanswerable, and a few with an article (it
    normalises to nothing) as their only or their second gold answer, so every v2.0 rule is
    exercised."""
    qas = []
    for sample in samples:
        if sample.index % 4 == 0:
            qas.append(question(sample.qid))
        elif sample.index % 29 == 1:
            qas.append(question(sample.qid, "The"))
        elif sample.index % 31 == 2:
            # The article is dropped before scoring, so it cannot make "" right here.
            qas.append(question(sample.qid, sample.gold, "An"))
        else:
            qas.append(question(sample.qid, sample.gold, sample.other_gold))
    return [article("xquad-v2", *qas)]


def v2_predictions(samples: List[Sample], kind: str) -> Dict[str, str]:
    # Abstain on every third question so that both right and wrong abstentions occur.
    return {
        sample.qid: "" if sample.index % 3 == 0 else ALL_KINDS[kind](sample) for sample in samples
    }


def transformers_v2_scores(articles: list, predictions: Dict[str, str]) -> dict:
    squad_metrics = pytest.importorskip("transformers.data.metrics.squad_metrics")
    examples = [
        SimpleNamespace(qas_id=qa["id"], answers=qa["answers"])
        for entry in articles
        for paragraph in entry["paragraphs"]
        for qa in paragraph["qas"]
    ]
    return dict(squad_metrics.squad_evaluate(examples, predictions))


@pytest.mark.parametrize("kind", list(ALL_KINDS))
def test_v2_matches_transformers_on_xquad(samples, kind):
    articles = xquad_as_v2(samples)
    predictions = v2_predictions(samples, kind)
    ours = evaluate_v2(articles, predictions)
    reference = transformers_v2_scores(articles, predictions)
    assert list(ours) == [
        "exact", "f1", "total",
        "HasAns_exact", "HasAns_f1", "HasAns_total",
        "NoAns_exact", "NoAns_f1", "NoAns_total",
    ]  # fmt: skip
    # transformers adds best_* threshold keys we leave out; every key we give must agree.
    assert ours == pytest.approx({key: reference[key] for key in ours}, abs=1e-9, rel=0)
    assert ours["NoAns_total"] == 298


def test_v2_agrees_with_v1_where_the_rules_coincide(xquad_articles, samples):
    predictions = perturbed_predictions(samples, "mixed")
    v1 = evaluate_v1(xquad_articles, predictions)
    v2 = evaluate_v2(xquad_articles, predictions)
    assert (v2["exact"], v2["f1"], v2["total"]) == (v1["exact_match"], v1["f1"], XQUAD_QUESTIONS)
    assert v2["HasAns_f1"] == v2["f1"] and "NoAns_total" not in v2


# ---------------------------------------------------------------------------------------------
# Command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bertfam.squad.evaluate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_cli_prints_what_the_function_returns(tmp_path, xquad_articles, samples):
    predictions = perturbed_predictions(samples, "mixed")
    dataset_file = write_json(tmp_path / "xquad.json", {"version": "1.1", "data": xquad_articles})
    result = run_cli(dataset_file, write_json(tmp_path / "pred.json", predictions))
    assert result.returncode == 0, result.stderr
    assert result.stdout == json.dumps(evaluate_v1(xquad_articles, predictions)) + "\n"
    assert result.stderr == ""


def test_cli_on_the_shared_file_with_gold_predictions(tmp_path, shared_data, samples):
    dataset_file = shared_file(shared_data, "squad/xquad.en.json")
    predictions = write_json(tmp_path / "pred.json", perturbed_predictions(samples, "gold"))
    result = run_cli(dataset_file, predictions)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        '{"exact_match": 100.0, "f1": 100.0}\n',
        "",
    )


def test_cli_reports_unanswered_questions(tmp_path):
    dataset = [article("T", question("q1", "cat"), question("q2", "dog"), question("q3", "eel"))]
    dataset_file = write_json(tmp_path / "d.json", {"version": "1.1", "data": dataset})
    result = run_cli(dataset_file, write_json(tmp_path / "p.json", {"q2": "the dog"}))
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"exact_match": 100 / 3, "f1": 100 / 3}
    assert result.stderr.splitlines() == [
        "Unanswered question q1 will receive score 0.",
        "Unanswered question q3 will receive score 0.",
    ]


def test_cli_warns_about_another_version_and_still_scores_v1(tmp_path):
    dataset = [article("T", question("q1", "cat"))]
    dataset_file = write_json(tmp_path / "d.json", {"version": "1.0", "data": dataset})
    result = run_cli(dataset_file, write_json(tmp_path / "p.json", {"q1": "cat"}))
    assert result.returncode == 0
    assert result.stdout == '{"exact_match": 100.0, "f1": 100.0}\n'
    assert result.stderr == "Evaluation expects v-1.1, but got dataset with v-1.0\n"


def test_cli_scores_a_v2_dataset_with_the_v2_dict(tmp_path, samples):
    articles = xquad_as_v2(samples)
    predictions = v2_predictions(samples, "mixed")
    dataset_file = write_json(tmp_path / "d.json", {"version": "v2.0", "data": articles})
    result = run_cli(dataset_file, write_json(tmp_path / "p.json", predictions))
    assert result.returncode == 0, result.stderr
    # evaluate-v2.0.py prints its dict with indent=2.
    assert result.stdout == json.dumps(evaluate_v2(articles, predictions), indent=2) + "\n"
    assert result.stderr == ""


def test_cli_help_describes_the_evaluation():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "Evaluation for SQuAD 1.1" in result.stdout
    assert "dataset_file" in result.stdout and "prediction_file" in result.stdout


GOOD_DATASET = {"version": "1.1", "data": [article("Tiny", question("q1", "cat"))]}


@pytest.mark.parametrize(
    "case, dataset, predictions, words",
    [
        ("missing dataset", None, {"q1": "cat"}, ["dataset", "d.json", "No such file"]),
        ("missing predictions", GOOD_DATASET, None, ["prediction", "p.json", "No such file"]),
        (
            "dataset not json",
            "{'version': 1.1",
            {"q1": "cat"},
            ["dataset", "d.json", "not valid JSON"],
        ),
        (
            "predictions not json",
            GOOD_DATASET,
            "q1: cat",
            ["prediction", "p.json", "not valid JSON"],
        ),
        ("dataset not an object", [1, 2], {"q1": "cat"}, ["d.json", "JSON object", "array"]),
        ("no data", {"version": "1.1"}, {"q1": "cat"}, ["d.json", "lacks field 'data'"]),
        (
            "question without id",
            {"version": "1.1", "data": [article("Tiny", {"answers": []})]},
            {},
            ["d.json", "article 'Tiny'", "lacks field 'id'"],
        ),
        (
            "question without answers",
            {"version": "1.0", "data": [article("Tiny", {"id": "q7"})]},
            {},
            ["d.json", "article 'Tiny'", "question 'q7'", "lacks field 'answers'"],
        ),
        (
            "v2 question without answers",
            {"version": "v2.0", "data": [article("Tiny", {"id": "q7"})]},
            {},
            ["d.json", "article 'Tiny'", "question 'q7'", "lacks field 'answers'"],
        ),
        ("predictions a list", GOOD_DATASET, ["cat"], ["p.json", "JSON object", "got array"]),
        ("prediction a number", GOOD_DATASET, {"q1": 3}, ["p.json", "'q1'", "string", "number"]),
        ("prediction a list", GOOD_DATASET, {"q1": ["cat"]}, ["p.json", "'q1'", "string", "array"]),
        ("no questions", {"version": "1.1", "data": []}, {}, ["d.json", "no questions"]),
    ],
)
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, case, dataset, predictions, words):
    dataset_file, prediction_file = tmp_path / "d.json", tmp_path / "p.json"
    for path, content in ((dataset_file, dataset), (prediction_file, predictions)):
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif content is not None:
            write_json(path, content)
    result = run_cli(dataset_file, prediction_file)
    assert result.returncode == 2, case
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], (case, word, lines[0])


def test_module_imports_no_framework():
    code = (
        "import sys, bertfam.squad.evaluate; "
        "loaded = [m for m in ('torch', 'tensorflow', 'jax') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
