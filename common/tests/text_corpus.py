"""The real strings the text pipelines are checked on: every XQuAD context and question
and every MRPC sentence from ../shared/data."""

import json
from pathlib import Path
from typing import List


def xquad_strings(path: Path) -> List[str]:
    dataset = json.loads(path.read_text(encoding="utf-8"))
    strings = []
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            strings.append(paragraph["context"])
            strings.extend(qa["question"] for qa in paragraph["qas"])
    return strings


def mrpc_sentences(path: Path) -> List[str]:
    sentences = []
    for line in path.read_text(encoding="utf-8-sig").splitlines()[1:]:
        columns = line.split("\t")
        if len(columns) == 5:
            sentences.extend(columns[3:5])
    return sentences
