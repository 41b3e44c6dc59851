"""Tiny data and a tiny model config that end-to-end tests write for themselves.

Every model folder's tests use these, so a script is exercised on the same small SQuAD
file, vocabulary, BERT config and MRPC folder whichever framework runs it. Small enough
to train in seconds; regular enough (the answer is always the team) that a few hundred
updates learn it.
"""

import json
import random
from pathlib import Path

from bertfam.bert_config import BertConfig

MRPC_TRAIN_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
MRPC_TEST_HEADER = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"

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


# Parity tests compare our networks with HuggingFace's on these shapes; the odd
# intermediate size makes a transposed or mis-sliced weight fail loudly.
PARITY_SHAPES = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)


def tiny_bert_config(**overrides) -> BertConfig:
    """A two-layer BERT that trains in a second; dropout off, so runs compare exactly."""
    values = dict(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return BertConfig.from_dict(values, source="tiny")


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


def sentencepiece_model(path: Path, vocab_size: int = 100, seed: int = 0) -> Path:
    """A SentencePiece model with ALBERT's special pieces (``<pad>`` 0, ``<unk>`` 1,
    ``[CLS]``, ``[SEP]``, ``[MASK]``), trained in a second on the sentences of
    `squad_file`'s vocabulary; `path` is the model file (``.model``), whose ``.vocab``
    is written beside it as ALBERT's ``30k-clean.vocab`` is."""
    import sentencepiece as spm

    rng = random.Random(seed)
    words = TEAMS + CUPS + FILLER + [str(1990 + i) for i in range(30)]
    lines = []
    for _ in range(400):
        team, cup = rng.choice(TEAMS).title(), rng.choice(CUPS)
        lines.append(f"After a long season, {team} won the {cup} in {1990 + rng.randrange(30)}.")
        lines.append(f"Who won the {cup}? " + " ".join(rng.choice(words) for _ in range(8)))
    corpus = path.with_suffix(".txt")
    corpus.write_text("\n".join(lines) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(path.with_suffix("")),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        num_threads=1,
        minloglevel=2,
    )
    corpus.unlink()
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


def identity_pairs(count, seed):
    """(label, a, b): label "1" iff the two one-word sentences are the same team."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        a = rng.choice(TEAMS)
        if rng.random() < 0.5:
            rows.append(("1", a, a))
        else:
            rows.append(("0", a, rng.choice([t for t in TEAMS if t != a])))
    return rows


def write_mrpc(folder, train, dev, test):
    """GLUE's MRPC layout (train.tsv, dev.tsv, test.tsv), as download_glue_data.py writes it."""
    folder.mkdir(parents=True, exist_ok=True)

    def labelled(rows):
        return MRPC_TRAIN_HEADER + "".join(
            f"{label}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\n" for i, (label, a, b) in enumerate(rows)
        )

    (folder / "train.tsv").write_text(labelled(train))
    (folder / "dev.tsv").write_text(labelled(dev))
    (folder / "test.tsv").write_text(
        MRPC_TEST_HEADER
        + "".join(f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\n" for i, (_, a, b) in enumerate(test))
    )
    return folder


def pretraining_corpus(path: Path, vocab: Path, seed: int, documents: int = 60) -> Path:
    """A pre-training corpus over a real vocabulary: one sentence a line, a blank line
    after each document; documents of 1 to 14 sentences (one-sentence ones too) of 2 to 30
    words: vocabulary words, words glued from two (several word pieces), numbers and
    punctuation."""
    rng = random.Random(seed)
    words = [w for w in Path(vocab).read_text().split("\n") if w.isalpha() and len(w) > 2]
    lines = []
    for _ in range(documents):
        for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 14])):
            sentence = []
            for _ in range(rng.randint(2, 30)):
                kind = rng.random()
                if kind < 0.7:
                    sentence.append(rng.choice(words))
                elif kind < 0.9:
                    sentence.append(rng.choice(words) + rng.choice(words))
                else:
                    sentence.append(rng.choice([",", "1984", "3.14", "(x)", "’s"]))
            lines.append(" ".join(sentence).capitalize() + ".")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wikipedia_dump(path: Path, vocab: Path, seed: int, articles: int = 40) -> Path:
    """A Wikipedia ``pages-articles.xml.bz2`` in the export schema, over a real vocabulary:
    articles of 1 to 12 sentences in wiki markup (links, bold, a template, a reference, a
    heading, a table), plus a redirect and a talk page that extraction must skip."""
    import bz2
    from xml.sax.saxutils import escape

    rng = random.Random(seed)
    words = [w for w in Path(vocab).read_text().split("\n") if w.isalpha() and len(w) > 2]
    pages = []
    for number in range(articles):
        title = " ".join(rng.choice(words) for _ in range(2)).title()
        sentences = []
        for _ in range(rng.choice([1, 2, 3, 5, 8, 12])):
            sentence = [rng.choice(words) for _ in range(rng.randint(3, 20))]
            sentence[0] = sentence[0].capitalize()
            if len(sentence) > 4:
                sentence[2] = f"[[{sentence[2]}|{sentence[3]}]]"
                del sentence[3]
            sentences.append(" ".join(sentence) + ".")
        body = (
            "{{Infobox thing|name=" + title + "}}\n'''" + title + "''' " + sentences[0]
            + "<ref>A citation.</ref>\n\n== History ==\n" + " ".join(sentences[1:])
            + "\n\n{| class=\"wikitable\"\n| cell || cell\n|}\n"
        )  # fmt: skip
        pages.append((title, 0, body))
        if number == 1:
            pages.append((f"Talk:{title}", 1, "A talk page. It is not an article."))
            pages.append((f"{title}s", 0, f"#REDIRECT [[{title}]]"))
    xml = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">']
    for number, (title, namespace, body) in enumerate(pages):
        redirect = f'<redirect title="{escape(title[:-1])}" />' if "#REDIRECT" in body else ""
        xml.append(
            f"<page><title>{escape(title)}</title><ns>{namespace}</ns><id>{number + 1}</id>"
            f'{redirect}<revision><id>{number + 100}</id><text xml:space="preserve">'
            f"{escape(body)}</text></revision></page>"
        )
    xml.append("</mediawiki>\n")
    path.write_bytes(bz2.compress("\n".join(xml).encode("utf-8")))
    return path
