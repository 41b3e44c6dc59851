"""Small SQuAD files written by the tests, in the exact upstream JSON shape."""

import json


def squad_json(paragraphs, version="1.1", title="Tiny"):
    return {"version": version, "data": [{"title": title, "paragraphs": paragraphs}]}


def write_squad(path, paragraphs, **kwargs):
    path.write_text(json.dumps(squad_json(paragraphs, **kwargs)))
    return path


def qa(qid, question, answers=(), is_impossible=None):
    record = {
        "id": qid,
        "question": question,
        "answers": [{"text": t, "answer_start": s} for t, s in answers],
    }
    if is_impossible is not None:
        record["is_impossible"] = is_impossible
    return record
