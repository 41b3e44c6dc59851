"""SQuAD exact match and F1, scored the way the official evaluation scripts score them.

``python -m bertfam.squad.evaluate dataset.json predictions.json`` prints the scores as JSON.

This module mirrors the official scripts published with the SQuAD datasets,
``evaluate-v1.1.py`` (SQuAD 1.1) and ``evaluate-v2.0.py`` (SQuAD 2.0): the same answer
normalisation, the same token-overlap F1, the same maximum over the gold answers and the same
averages, summed in the same order so the floats come out identical. It imports no deep-learning
framework. Predictions are a JSON object mapping each question id to the answer text.

v1.1 (``evaluate_v1``): every question needs at least one gold answer; a question without a
prediction scores 0 and still counts in the average (the official script says so on stderr, and
so does ``main``). Its F1 is 0 whenever prediction and gold share no token, even when both
normalise to nothing (say "the" against "a", which still is an exact match).

v2.0 (``evaluate_v2``): a question with no gold answers is unanswerable and only the empty
prediction is right for it; gold answers that normalise to nothing are dropped first, so a
question whose only gold answer is "the" is scored like an unanswerable one, yet counted under
HasAns. Left out on purpose, and where we differ from ``evaluate-v2.0.py``:

- ``--na-prob-file``, ``--na-prob-thresh``, ``--out-file``, ``--out-image-dir`` and
  ``--verbose`` are not provided: no-answer probabilities are taken as 0, which is what the
  official script does without ``--na-prob-file``, so the ``best_*`` threshold keys and the
  precision-recall plots are never produced.
- A question without a prediction scores 0 and counts in every total. The official script
  prints "Missing prediction for <id>" on stdout and then fails with a KeyError.
- The command line prints warnings on stderr only, so stdout is always just the JSON.

Bad input (a missing field, a prediction that is not a string, a dataset without questions)
raises `SquadEvaluateError` naming what is wrong, where the official scripts would fail with a
KeyError, TypeError or ZeroDivisionError from deep inside.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Sequence, Tuple, Union

from bertfam.errors import UserError, exit_on_user_error

EXPECTED_V1_VERSION = "1.1"
# The official SQuAD 2.0 files say "v2.0"; "2.0" is accepted too since some copies drop the "v".
V2_VERSIONS = ("v2.0", "2.0")

_PUNCTUATION = frozenset(string.punctuation)
# Whole words only: "theatre" and "another" keep their letters. On Python 3 str patterns,
# \b is Unicode-aware, which is what the official v2.0 script asks for with re.UNICODE.
_ARTICLES = re.compile(r"\b(a|an|the)\b")

Number = Union[int, float]


class SquadEvaluateError(UserError):
    """The dataset or the predictions are not what SQuAD scoring expects."""


class GoldQuestion(NamedTuple):
    """One question of a SQuAD dataset: its id and the texts of its gold answers."""

    qid: str
    answers: List[str]
    where: str  # "article 'Title', question 'id'", for error messages


# ---------------------------------------------------------------------------------------------
# Normalisation and per-answer scores shared by both versions


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace.

    The steps run in the official order: punctuation goes before articles, so "the." loses
    its article too, and articles leave a space behind that the last step collapses.
    """
    lowered = text.lower()
    without_punctuation = "".join(char for char in lowered if char not in _PUNCTUATION)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return " ".join(without_articles.split())


def _overlap_f1(prediction_tokens: List[str], gold_tokens: List[str]) -> float:
    """Harmonic mean of token precision and recall, counting repeated tokens (a multiset)."""
    shared = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------------------------------------
# SQuAD v1.1


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """v1.1 exact match: the two answers are equal once normalised."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """v1.1 token-overlap F1 of the normalised answers; 0.0 when they share no token."""
    return _overlap_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def metric_max_over_ground_truths(
    metric: Callable[[str, str], Number], prediction: str, ground_truths: Sequence[str]
) -> Number:
    """The best score of the prediction against any one of the gold answers."""
    return max(metric(prediction, ground_truth) for ground_truth in ground_truths)


def evaluate_v1(
    dataset_articles: Sequence[Mapping[str, Any]],
    predictions: Mapping[str, str],
    *,
    source: str = "dataset",
) -> Dict[str, float]:
    """Official SQuAD v1.1 scores, in percent, over every question of the dataset.

    `dataset_articles` is the dataset's "data" list; `source` names it in error messages.
    Questions without a prediction score 0 (see `unanswered_question_ids`).
    """
    check_predictions(predictions)
    exact_matches = 0
    f1_sum = 0.0
    total = 0
    for question in iter_questions(dataset_articles, source):
        _require_gold_answers_for_v1(question, source)
        total += 1
        if question.qid not in predictions:
            continue
        prediction = predictions[question.qid]
        exact_matches += metric_max_over_ground_truths(
            exact_match_score, prediction, question.answers
        )
        f1_sum += metric_max_over_ground_truths(f1_score, prediction, question.answers)
    _require_questions(total, source)
    return {"exact_match": 100.0 * exact_matches / total, "f1": 100.0 * f1_sum / total}


def _require_gold_answers_for_v1(question: GoldQuestion, source: str) -> None:
    # The official script would fail on max() of nothing; an empty list usually means a v2.0
    # file (unanswerable question) whose "version" field says otherwise.
    if not question.answers:
        raise SquadEvaluateError(
            f"{source}: {question.where} has no gold answers; SQuAD v1.1 scoring needs at "
            f'least one (a SQuAD 2.0 file should say "version": "v2.0")'
        )


# ---------------------------------------------------------------------------------------------
# SQuAD v2.0


def get_tokens(text: str) -> List[str]:
    """v2.0 tokens: the words of the normalised answer; none for an empty answer."""
    if not text:
        return []
    return normalize_answer(text).split()


def compute_exact(gold: str, prediction: str) -> int:
    """v2.0 exact match, 1 or 0. Gold comes first here, as in the official v2.0 script."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    """v2.0 F1: as in v1.1, except that when either side has no tokens it is 1 if both have
    none (a correct "no answer") and 0 otherwise. Gold comes first, as in the official script.
    """
    gold_tokens = get_tokens(gold)
    prediction_tokens = get_tokens(prediction)
    if not gold_tokens or not prediction_tokens:
        return float(gold_tokens == prediction_tokens)
    return _overlap_f1(prediction_tokens, gold_tokens)


def scorable_gold_answers(answer_texts: Sequence[str]) -> List[str]:
    """The v2.0 gold answers a prediction is compared with.

    Answers that normalise to nothing cannot be matched token by token, so they are dropped;
    with none left (an unanswerable question), the only right answer is the empty string.
    """
    kept = [text for text in answer_texts if normalize_answer(text)]
    return kept or [""]


def evaluate_v2(
    dataset_articles: Sequence[Mapping[str, Any]],
    predictions: Mapping[str, str],
    *,
    source: str = "dataset",
) -> Dict[str, Number]:
    """Official SQuAD v2.0 scores without no-answer probabilities (see the module docstring).

    Returns exact, f1 (percent) and total over all questions, then the same three prefixed
    HasAns_ for the questions with gold answers and NoAns_ for those without, each group only
    when it has questions. A question id that appears twice counts once, the later one winning,
    as in the official script (it keeps the scores in a dict keyed by id).
    """
    check_predictions(predictions)
    has_answer: Dict[str, bool] = {}
    exact_scores: Dict[str, Number] = {}
    f1_scores: Dict[str, Number] = {}
    for question in iter_questions(dataset_articles, source):
        has_answer[question.qid] = bool(question.answers)
        exact_scores[question.qid], f1_scores[question.qid] = _score_v2_question(
            question, predictions
        )
    _require_questions(len(has_answer), source)

    scores = _average_scores(exact_scores, f1_scores, list(has_answer))
    groups = {
        "HasAns": [qid for qid, answerable in has_answer.items() if answerable],
        "NoAns": [qid for qid, answerable in has_answer.items() if not answerable],
    }
    for prefix, qids in groups.items():
        if qids:
            for key, value in _average_scores(exact_scores, f1_scores, qids).items():
                scores[f"{prefix}_{key}"] = value
    return scores


def _score_v2_question(
    question: GoldQuestion, predictions: Mapping[str, str]
) -> Tuple[Number, Number]:
    if question.qid not in predictions:
        return 0, 0
    prediction = predictions[question.qid]
    golds = scorable_gold_answers(question.answers)
    exact = max(compute_exact(gold, prediction) for gold in golds)
    f1 = max(compute_f1(gold, prediction) for gold in golds)
    return exact, f1


def _average_scores(
    exact_scores: Mapping[str, Number], f1_scores: Mapping[str, Number], qids: Sequence[str]
) -> Dict[str, Number]:
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact_scores[qid] for qid in qids) / total,
        "f1": 100.0 * sum(f1_scores[qid] for qid in qids) / total,
        "total": total,
    }


# ---------------------------------------------------------------------------------------------
# Reading and checking the dataset and the predictions


def iter_questions(
    dataset_articles: Sequence[Mapping[str, Any]], source: str = "dataset"
) -> Iterator[GoldQuestion]:
    """Every question of a SQuAD "data" list in file order, checking the fields scoring needs.

    Raises `SquadEvaluateError` naming `source`, the article and the question.
    """
    if not isinstance(dataset_articles, list):
        raise SquadEvaluateError(
            f"{source}: 'data' must be a JSON array of articles, "
            f"got {_json_type_name(dataset_articles)}"
        )
    for article_index, article in enumerate(dataset_articles):
        article_name = _article_name(article, article_index)
        paragraphs = _field(article, "paragraphs", list, source, article_name)
        for paragraph_index, paragraph in enumerate(paragraphs):
            paragraph_name = f"{article_name}, paragraph {paragraph_index}"
            qas = _field(paragraph, "qas", list, source, paragraph_name)
            for question_index, qa in enumerate(qas):
                position = f"{paragraph_name}, question {question_index}"
                yield _read_question(qa, source, position, article_name)


def _read_question(qa: Any, source: str, position: str, article_name: str) -> GoldQuestion:
    qid = _field(qa, "id", str, source, position)
    where = f"{article_name}, question {qid!r}"
    answers = _field(qa, "answers", list, source, where)
    texts = [
        _field(answer, "text", str, source, f"{where}, answer {answer_index}")
        for answer_index, answer in enumerate(answers)
    ]
    return GoldQuestion(qid, texts, where)


def _article_name(article: Any, index: int) -> str:
    title = article.get("title") if isinstance(article, dict) else None
    return f"article {title!r}" if isinstance(title, str) else f"article {index}"


def _field(container: Any, name: str, expected_type: type, source: str, where: str) -> Any:
    if not isinstance(container, dict):
        raise SquadEvaluateError(
            f"{source}: {where} must be a JSON object, got {_json_type_name(container)}"
        )
    if name not in container:
        raise SquadEvaluateError(f"{source}: {where} lacks field {name!r}")
    value = container[name]
    if not isinstance(value, expected_type):
        raise SquadEvaluateError(
            f"{source}: {where} has field {name!r} of type {_json_type_name(value)}, "
            f"expected {_JSON_TYPE_NAMES[expected_type]}"
        )
    return value


def _require_questions(count: int, source: str) -> None:
    # Averages over no questions would divide by zero.
    if count == 0:
        raise SquadEvaluateError(f"{source}: the dataset has no questions to score")


def check_predictions(predictions: Any, source: str = "predictions") -> None:
    """Predictions must map question ids to answer strings; raises `SquadEvaluateError`."""
    if not isinstance(predictions, dict):
        raise SquadEvaluateError(
            f"{source}: predictions must be a JSON object mapping question id to answer text, "
            f"got {_json_type_name(predictions)}"
        )
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise SquadEvaluateError(
                f"{source}: the prediction for question {qid!r} must be a string, "
                f"got {_json_type_name(answer)}"
            )


def unanswered_question_ids(
    dataset_articles: Sequence[Mapping[str, Any]], predictions: Mapping[str, str]
) -> List[str]:
    """Ids of the questions without a prediction, in file order: they score 0."""
    return [
        question.qid
        for question in iter_questions(dataset_articles)
        if question.qid not in predictions
    ]


def is_v2_dataset(version: Any) -> bool:
    """Whether a dataset's "version" field asks for SQuAD 2.0 scoring."""
    return version in V2_VERSIONS


_JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string"}


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:
        raise SquadEvaluateError(
            f"cannot read {what} file {path}: {error.strerror or error}"
        ) from error
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError
        raise SquadEvaluateError(f"{what} file {path} is not valid JSON: {error}") from error


def read_dataset(path: str) -> Tuple[Any, Any]:
    """(version, articles) of a SQuAD dataset file; version is None when the file has none."""
    dataset = _read_json(path, "dataset")
    if not isinstance(dataset, dict):
        raise SquadEvaluateError(
            f"{path}: a SQuAD dataset must be a JSON object with 'version' and 'data', "
            f"got {_json_type_name(dataset)}"
        )
    if "data" not in dataset:
        raise SquadEvaluateError(
            f"{path}: dataset lacks field 'data' (a SQuAD dataset has 'version' and 'data')"
        )
    return dataset.get("version"), dataset["data"]


def read_predictions(path: str) -> Dict[str, str]:
    """The predictions file: a JSON object mapping question id to answer text."""
    predictions = _read_json(path, "prediction")
    check_predictions(predictions, source=path)
    return predictions


# ---------------------------------------------------------------------------------------------
# Command line


def _version_warning(version: Any) -> str:
    shown = "(none)" if version is None else version
    return f"Evaluation expects v-{EXPECTED_V1_VERSION}, but got dataset with v-{shown}"


@exit_on_user_error
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=(
            f"Evaluation for SQuAD {EXPECTED_V1_VERSION} (SQuAD 2.0 when the dataset's version "
            'is "v2.0"): prints exact match and F1 as JSON, like the official scripts.'
        )
    )
    parser.add_argument("dataset_file", help="Dataset file")
    parser.add_argument("prediction_file", help="Prediction File")
    args = parser.parse_args(argv)

    version, articles = read_dataset(args.dataset_file)
    predictions = read_predictions(args.prediction_file)
    # Score before warning, so that bad input leaves the one error line alone on stderr.
    if is_v2_dataset(version):
        scores = evaluate_v2(articles, predictions, source=args.dataset_file)
        # evaluate-v2.0.py prints its dict indented; evaluate-v1.1.py on one line.
        output = json.dumps(scores, indent=2)
    else:
        output = json.dumps(evaluate_v1(articles, predictions, source=args.dataset_file))
        if version != EXPECTED_V1_VERSION:
            print(_version_warning(version), file=sys.stderr)
    for qid in unanswered_question_ids(articles, predictions):
        print(f"Unanswered question {qid} will receive score 0.", file=sys.stderr)
    print(output)


if __name__ == "__main__":
    main()
