"""Read SQuAD v1.1 / v2.0 JSON into examples, refusing anything malformed by name.

The format: ``{"version", "data": [{"title", "paragraphs":
[{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}],
"is_impossible"}]}]}]}``. Google's run_squad.py skips an answer it cannot find in the
context with a warning; we stop instead, naming the file, article, question id and
field, because a silently dropped example changes the result without anyone noticing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Tuple, Union

from bertfam.errors import UserError


class SquadFormatError(UserError):
    """The SQuAD file is missing, not JSON, or has a malformed article or question."""


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset of the answer in the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class SquadExample:
    qas_id: str
    title: str
    question: str
    context: str
    answers: Tuple[Answer, ...]  # every gold answer (dev sets have several)
    is_impossible: bool = False  # SQuAD v2.0: the context holds no answer


def read_squad_examples(
    path: Union[str, Path], *, is_training: bool, version_2_with_negative: bool = False
) -> List[SquadExample]:
    """Examples of a SQuAD file; training needs one answer per answerable question."""
    path = Path(path)
    dataset = _load_json(path)
    articles = dataset.get("data") if isinstance(dataset, dict) else None
    if not isinstance(articles, list):
        raise SquadFormatError(f"{path}: no 'data' list of articles: is it a SQuAD file?")
    examples = []
    seen_ids = set()
    for article_index, article in enumerate(articles):
        where = _article_name(path, article_index, article)
        for paragraph_index, paragraph in enumerate(_field(article, "paragraphs", list, where)):
            paragraph_where = f"{where}, paragraph {paragraph_index}"
            context = _field(paragraph, "context", str, paragraph_where)
            if not context.strip():
                raise SquadFormatError(f"{paragraph_where}: 'context' is empty")
            for qa in _field(paragraph, "qas", list, paragraph_where):
                example = _read_question(
                    qa, context, article, paragraph_where, is_training, version_2_with_negative
                )
                if example.qas_id in seen_ids:
                    raise SquadFormatError(
                        f"{paragraph_where}: question id {example.qas_id!r} repeats"
                    )
                seen_ids.add(example.qas_id)
                examples.append(example)
    if not examples:
        raise SquadFormatError(f"{path}: no questions found")
    return examples


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise SquadFormatError(f"{path}: no such SQuAD file") from None
    except json.JSONDecodeError as error:
        raise SquadFormatError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SquadFormatError(f"{path}: cannot read it ({error})") from None


def _article_name(path: Path, index: int, article) -> str:
    title = article.get("title") if isinstance(article, dict) else None
    return f"{path}: article {index}" + (f" ({title!r})" if isinstance(title, str) else "")


def _field(record, key: str, kind: type, where: str):
    if not isinstance(record, dict):
        raise SquadFormatError(f"{where}: expected a JSON object, found {type(record).__name__}")
    if key not in record:
        raise SquadFormatError(f"{where}: missing {key!r}")
    value = record[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise SquadFormatError(
            f"{where}: {key!r} must be {kind.__name__}, not {type(value).__name__}"
        )
    return value


def _read_question(
    qa, context: str, article, where: str, is_training: bool, version_2_with_negative: bool
) -> SquadExample:
    qas_id = _field(qa, "id", str, where)
    where = f"{where}, question {qas_id!r}"
    question = _field(qa, "question", str, where)
    is_impossible = False
    if version_2_with_negative and "is_impossible" in qa:
        is_impossible = _field(qa, "is_impossible", bool, where)
    answers = tuple(
        _read_answer(answer, context, f"{where}, answer {index}")
        for index, answer in enumerate(qa.get("answers", []) if not is_impossible else [])
    )
    if "answers" not in qa and not is_impossible and is_training:
        raise SquadFormatError(f"{where}: missing 'answers'")
    if is_training and not is_impossible and len(answers) != 1:
        raise SquadFormatError(
            f"{where}: 'answers' has {len(answers)} entries; training needs exactly 1 "
            "per answerable question"
        )
    title = article.get("title", "") if isinstance(article.get("title", ""), str) else ""
    return SquadExample(qas_id, title, question, context, answers, is_impossible)


def _read_answer(answer, context: str, where: str) -> Answer:
    text = _field(answer, "text", str, where)
    start = _field(answer, "answer_start", int, where)
    if not text:
        raise SquadFormatError(f"{where}: 'text' is empty")
    if context[start : start + len(text)] != text or start < 0:
        found = context[max(start, 0) : max(start, 0) + len(text)]
        raise SquadFormatError(
            f"{where}: 'answer_start' {start} does not point at the answer text {text!r} "
            f"(the context there reads {found!r})"
        )
    return Answer(text, start)
