import random
import unicodedata

import numpy as np
import pytest
from text_corpus import mrpc_sentences, xquad_strings

from bertfam.testing import shared_file
from bertfam.tokenization.wordpiece import VocabError, WordPieceTokenizer


@pytest.fixture(scope="module")
def vocab_file(shared_data):
    return shared_file(shared_data, "bert_uncased/vocab.txt")


@pytest.fixture(scope="module")
def real_strings(shared_data):
    strings = xquad_strings(shared_file(shared_data, "squad/xquad.en.json"))
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        strings += mrpc_sentences(shared_file(shared_data, f"mrpc/{name}"))
    return strings


def hf_ids(reference, texts):
    return [reference.convert_tokens_to_ids(reference.tokenize(text)) for text in texts]


def first_differences(texts, ours, theirs, limit=3):
    return [(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b][:limit]


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_same_ids_as_huggingface_on_every_real_string(vocab_file, real_strings, do_lower_case):
    from transformers import BertTokenizer

    reference = BertTokenizer(str(vocab_file), do_lower_case=do_lower_case)
    ours = WordPieceTokenizer(vocab_file, do_lower_case=do_lower_case)
    # every MRPC sentence pair, every XQuAD paragraph (240) and question (1190)
    assert len(real_strings) == 2 * (4076 + 1725) + 240 + 1190
    ours_ids = [e.ids.tolist() for e in ours.encode_batch(real_strings)]
    theirs = hf_ids(reference, real_strings)
    assert ours_ids == theirs, first_differences(real_strings, ours_ids, theirs)


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_same_ids_as_huggingface_on_random_unicode(vocab_file, do_lower_case):
    """Every code point class (unassigned, control, marks, CJK, symbols) against HF."""
    from transformers import BertTokenizer

    reference = BertTokenizer(str(vocab_file), do_lower_case=do_lower_case)
    ours = WordPieceTokenizer(vocab_file, do_lower_case=do_lower_case)
    rng = random.Random(1234)
    code_points = [c for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    texts = [
        "".join(
            chr(rng.choice(code_points)) if rng.random() < 0.3 else rng.choice("ab cd,.Ee")
            for _ in range(rng.randint(1, 12))
        )
        for _ in range(5000)
    ]
    ours_ids = [e.ids.tolist() for e in ours.encode_batch(texts)]
    theirs = hf_ids(reference, texts)
    assert ours_ids == theirs, first_differences(texts, ours_ids, theirs)


@pytest.mark.parametrize(
    "text, lower_tokens, cased_tokens",
    [
        # The uncased vocab has no capitals: cased text is [UNK] where it has them.
        ("Héllo, WORLD!", ["hello", ",", "world", "!"], ["[UNK]", ",", "[UNK]", "!"]),
        ("e\u0301cole", ["ecole"], ["[UNK]"]),  # decomposed é: composed first, then stripped
        ("a\x00b\ufffdc\u200bd", ["abc", "##d"], ["abc", "##d"]),  # NUL, U+FFFD, ZWSP removed
        ("tab\tnew\nline\u00a0nbsp", ["tab", "new", "line", "n", "##bs", "##p"], None),
        ("中文字", ["中", "文", "[UNK]"], ["中", "文", "[UNK]"]),  # one word each; 字 not in vocab
        ("$5^2`x", ["$", "5", "^", "2", "`", "x"], None),  # ASCII symbols are punctuation
        ("x" * 101, ["[UNK]"], ["[UNK]"]),  # over 100 characters
        ("x" * 100, ["xx"] + ["##xx"] * 49, None),
        ("", [], []),
        (" \t\n ", [], []),
    ],
)
def test_google_behaviour_known_values(vocab_file, text, lower_tokens, cased_tokens):
    assert WordPieceTokenizer(vocab_file, do_lower_case=True).tokenize(text) == lower_tokens
    if cased_tokens is not None:
        assert WordPieceTokenizer(vocab_file, do_lower_case=False).tokenize(text) == cased_tokens


def test_special_tokens_in_text(vocab_file):
    text = "[SEP] hi [CLS] [sep]"
    google = WordPieceTokenizer(vocab_file)
    assert google.tokenize(text) == ["[", "sep", "]", "hi", "[", "cl", "##s", "]", "[", "sep", "]"]
    from transformers import BertTokenizer

    reference = BertTokenizer(str(vocab_file))
    hf_like = WordPieceTokenizer(vocab_file, keep_special_tokens=True)
    assert (
        hf_like.tokenize(text)
        == reference.tokenize(text)
        == ["[SEP]", "hi", "[CLS]", "[", "sep", "]"]
    )


def test_offsets_point_at_the_original_text(vocab_file, real_strings):
    ours = WordPieceTokenizer(vocab_file, do_lower_case=True)
    for text, encoding in zip(real_strings, ours.encode_batch(real_strings)):
        assert encoding.ids.dtype == np.int32 and encoding.offsets.shape == (len(encoding), 2)
        previous_end = 0
        for token, (start, end) in zip(encoding.tokens, encoding.offsets.tolist()):
            assert previous_end <= start < end <= len(text)
            previous_end = end
            if token == "[UNK]":
                continue
            piece = unicodedata.normalize("NFD", text[start:end].lower())
            piece = "".join(c for c in piece if unicodedata.category(c) != "Mn")
            assert piece == token.removeprefix("##"), (text, token, text[start:end])


def test_offsets_span_removed_and_composed_characters(vocab_file):
    text = "naïve e\u0301cole\u200b!"
    encoding = WordPieceTokenizer(vocab_file).encode(text)
    spans = [text[s:e] for s, e in encoding.offsets.tolist()]
    assert encoding.tokens == ["naive", "ecole", "!"]
    assert spans == ["naïve", "e\u0301cole", "!"]


def test_special_ids_and_conversions(vocab_file):
    ours = WordPieceTokenizer(vocab_file)
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (
        0,
        100,
        101,
        102,
        103,
    )
    assert ours.vocab_size == 30522
    assert ours.convert_ids_to_tokens(ours.convert_tokens_to_ids(["hello", "##s", "nope!"])) == [
        "hello",
        "##s",
        "[UNK]",
    ]


def test_bad_vocab_files(tmp_path):
    with pytest.raises(VocabError, match="no such file"):
        WordPieceTokenizer(tmp_path / "absent.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(VocabError, match="is empty"):
        WordPieceTokenizer(tmp_path / "empty.txt")
    (tmp_path / "spm.txt").write_text("<pad>\n<unk>\n[CLS]\n[SEP]\n")
    with pytest.raises(
        VocabError, match=r"lacks \[PAD\], \[UNK\], \[MASK\]: is it a BERT WordPiece"
    ):
        WordPieceTokenizer(tmp_path / "spm.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(VocabError, match="cannot read it as UTF-8"):
        WordPieceTokenizer(tmp_path / "binary.txt")
