import json

import pytest
from squad_fixtures import qa, squad_json, write_squad

from bertfam.squad.data import SquadFormatError, read_squad_examples
from bertfam.testing import shared_file

CONTEXT = "Carolina won in 1895. The Panthers lost."


def test_reads_real_xquad(shared_data):
    examples = read_squad_examples(
        shared_file(shared_data, "squad/xquad.en.json"), is_training=True
    )
    assert len(examples) == 1190
    assert len({e.qas_id for e in examples}) == 1190
    first = examples[0]
    assert (first.qas_id, first.title) == ("56beb4343aeaaa14008c925b", "Super_Bowl_50")
    assert first.answers[0].text == "308" and first.context[first.answers[0].start :].startswith(
        "308"
    )


def test_v2_impossible_questions(tmp_path):
    path = write_squad(
        tmp_path / "v2.json",
        [
            {
                "context": CONTEXT,
                "qas": [
                    qa("a", "Who won?", [("Carolina", 0)], False),
                    qa("b", "Who tied?", [], True),
                ],
            }
        ],
        version="v2.0",
    )
    examples = read_squad_examples(path, is_training=True, version_2_with_negative=True)
    assert [(e.qas_id, e.is_impossible, len(e.answers)) for e in examples] == [
        ("a", False, 1),
        ("b", True, 0),
    ]


def test_prediction_files_may_have_several_or_no_answers(tmp_path):
    path = write_squad(
        tmp_path / "dev.json",
        [
            {
                "context": CONTEXT,
                "qas": [
                    qa("a", "Who?", [("Carolina", 0), ("Carolina won", 0)]),
                    {"id": "b", "question": "When?"},
                ],
            }
        ],
    )
    examples = read_squad_examples(path, is_training=False)
    assert [len(e.answers) for e in examples] == [2, 0]


def malformed_cases():
    good_qa = qa("q1", "Who won?", [("Carolina", 0)])
    yield "missing file", None, "no such SQuAD file"
    yield "not json", "{not json", "not valid JSON (line 1, column 2"
    yield "no data", json.dumps({"version": "1.1"}), "no 'data' list of articles"
    yield (
        "no paragraphs",
        json.dumps({"data": [{"title": "T"}]}),
        "article 0 ('T'): missing 'paragraphs'",
    )
    yield (
        "empty context",
        json.dumps(squad_json([{"context": "  ", "qas": [good_qa]}])),
        "article 0 ('Tiny'), paragraph 0: 'context' is empty",
    )
    yield (
        "no id",
        json.dumps(squad_json([{"context": CONTEXT, "qas": [{"question": "Q", "answers": []}]}])),
        "paragraph 0: missing 'id'",
    )
    yield (
        "no question",
        json.dumps(squad_json([{"context": CONTEXT, "qas": [{"id": "q9", "answers": []}]}])),
        "question 'q9': missing 'question'",
    )
    yield (
        "no answers",
        json.dumps(squad_json([{"context": CONTEXT, "qas": [{"id": "q9", "question": "Q"}]}])),
        "question 'q9': missing 'answers'",
    )
    yield (
        "offset wrong",
        json.dumps(squad_json([{"context": CONTEXT, "qas": [qa("q2", "When?", [("1895", 15)])]}])),
        "question 'q2', answer 0: 'answer_start' 15 does not point at the answer text '1895' (the context there reads ' 189')",
    )
    yield (
        "offset type",
        json.dumps(
            squad_json(
                [
                    {
                        "context": CONTEXT,
                        "qas": [
                            {
                                "id": "q3",
                                "question": "Q",
                                "answers": [{"text": "1895", "answer_start": "16"}],
                            }
                        ],
                    }
                ]
            )
        ),
        "answer 0: 'answer_start' must be int, not str",
    )
    yield (
        "no text",
        json.dumps(
            squad_json(
                [
                    {
                        "context": CONTEXT,
                        "qas": [{"id": "q4", "question": "Q", "answers": [{"answer_start": 0}]}],
                    }
                ]
            )
        ),
        "question 'q4', answer 0: missing 'text'",
    )
    yield (
        "two answers",
        json.dumps(
            squad_json(
                [
                    {
                        "context": CONTEXT,
                        "qas": [qa("q5", "Who?", [("Carolina", 0), ("Carolina", 0)])],
                    }
                ]
            )
        ),
        "question 'q5': 'answers' has 2 entries; training needs exactly 1",
    )
    yield (
        "repeated id",
        json.dumps(squad_json([{"context": CONTEXT, "qas": [good_qa, good_qa]}])),
        "question id 'q1' repeats",
    )
    yield (
        "no questions",
        json.dumps(squad_json([{"context": CONTEXT, "qas": []}])),
        "no questions found",
    )


@pytest.mark.parametrize(
    "name, content, message", list(malformed_cases()), ids=[c[0] for c in malformed_cases()]
)
def test_malformed_input_names_file_article_question_and_field(tmp_path, name, content, message):
    path = tmp_path / "train.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SquadFormatError) as caught:
        read_squad_examples(path, is_training=True)
    text = str(caught.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text
