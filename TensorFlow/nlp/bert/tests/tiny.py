"""Tiny data and a tiny model the end-to-end tests write for themselves."""

import json
import random
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TEAMS = ["carolina", "denver", "boston", "chicago", "dallas", "seattle", "miami", "detroit"]
CUPS = ["cup", "trophy", "league", "title", "bowl", "series"]
FILLER = [
    "the",
    "won",
    "in",
    "who",
    "what",
    "did",
    "after",
    "a",
    "long",
    "season",
    "game",
    "?",
    ".",
]


def squad_file(path: Path, questions: int = 24, seed: int = 0) -> Path:
    rng = random.Random(seed)
    paragraphs = []
    for index in range(questions):
        team, cup = rng.choice(TEAMS), rng.choice(CUPS)
        year = str(1990 + rng.randrange(30))
        context = f"After a long season, {team.title()} won the {cup} in {year}. The game was long."
        qas = [
            {
                "id": f"q{index}",
                "question": f"Who won the {cup}?",
                "answers": [{"text": team.title(), "answer_start": context.index(team.title())}],
            }
        ]
        paragraphs.append({"context": context, "qas": qas})
    data = {"version": "1.1", "data": [{"title": "Tiny", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data))
    return path


def vocab_file(path: Path) -> Path:
    words = SPECIAL + TEAMS + CUPS + FILLER + [str(1990 + i) for i in range(30)] + [",", "was"]
    path.write_text("\n".join(words) + "\n")
    return path


def bert_config_file(path: Path, vocab_size: int, **overrides) -> Path:
    config = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 128,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
    }
    config.update(overrides)
    path.write_text(json.dumps(config))
    return path
