"""ALBERT's SentencePiece tokenizer against HuggingFace's slow AlbertTokenizer (the reference:
Google's preprocess_text + encode_pieces in Python), and its offsets against the original text.
"""

import pickle
import random
import unicodedata

import numpy as np
import pytest
from text_corpus import mrpc_sentences, xquad_strings

from bertfam.errors import UserError
from bertfam.testing import shared_file
from bertfam.tokenization.sentencepiece import SentencePieceModelError, SentencePieceTokenizer

WORD_START = "\u2581"


@pytest.fixture(scope="module")
def model_file(shared_data):
    return shared_file(shared_data, "albert_spm/30k-clean.model")


@pytest.fixture(scope="module")
def real_strings(shared_data):
    strings = xquad_strings(shared_file(shared_data, "squad/xquad.en.json"))
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        strings += mrpc_sentences(shared_file(shared_data, f"mrpc/{name}"))
    # every MRPC sentence pair, every XQuAD paragraph (240) and question (1190)
    assert len(strings) == 2 * (4076 + 1725) + 240 + 1190
    # Tokenizing is deterministic, so a repeated sentence proves nothing new.
    return list(dict.fromkeys(strings))


@pytest.fixture(scope="module")
def tokenizers(model_file):
    """(ours, HuggingFace's) for each do_lower_case, built once per module."""
    from transformers import AlbertTokenizer

    return {
        lower: (
            SentencePieceTokenizer(model_file, do_lower_case=lower),
            AlbertTokenizer(vocab_file=str(model_file), do_lower_case=lower),
        )
        for lower in (True, False)
    }


@pytest.fixture(scope="module")
def real_encodings(tokenizers, real_strings):
    return {lower: ours.encode_batch(real_strings) for lower, (ours, _) in tokenizers.items()}


def hf_tokens_and_ids(reference, texts):
    tokens = [reference.tokenize(text) for text in texts]
    return tokens, [reference.convert_tokens_to_ids(t) for t in tokens]


def first_differences(texts, ours, theirs, limit=3):
    return [
        f"{text!r}\n  ours:   {a}\n  theirs: {b}"
        for text, a, b in zip(texts, ours, theirs)
        if a != b
    ][:limit]


def assert_same_as_huggingface(texts, encodings, reference):
    """Ids first (what the model sees), then the token strings; show the first few misses."""
    hf_tokens, hf_ids = hf_tokens_and_ids(reference, texts)
    our_tokens = [e.tokens for e in encodings]
    our_ids = [e.ids.tolist() for e in encodings]
    differing = sum(a != b for a, b in zip(our_ids, hf_ids))
    assert differing == 0, f"{differing} of {len(texts)} strings differ:\n" + "\n".join(
        first_differences(texts, our_ids, hf_ids)
    )
    assert our_tokens == hf_tokens, "\n".join(first_differences(texts, our_tokens, hf_tokens))


def visible(text):
    return "".join(c for c in text if not (c.isspace() or unicodedata.category(c) in ("Cc", "Cf")))


def reference_normalise(reference, text, lower):
    """What a slice of the original should become: HF's lowering (one character at a time,
    as its tokenize does) and ALBERT preprocess_text, then what SentencePiece's nmt_nfkc
    normaliser does (NFKC; whitespace and control characters become "▁" or vanish)."""
    if lower:
        text = "".join(c.lower() for c in text)
    return visible(unicodedata.normalize("NFKC", reference.preprocess_text(text)))


def piece_text(pieces):
    return visible(unicodedata.normalize("NFKC", "".join(pieces).replace(WORD_START, "")))


def offset_problems(text, encoding, reference, lower, longest_group=4):
    """Everything wrong with one encoding's offsets, as readable strings.

    Where SentencePiece splits one original character ("ﬁ" -> "▁f" + "ia" of "ﬁa"), the
    first piece carries it and the next ones start after it, so pieces are compared in the
    shortest runs whose text matches their slice of the original, at most `longest_group`.
    """
    problems = []
    if encoding.ids.dtype != np.int32 or encoding.offsets.dtype != np.int32:
        problems.append(f"dtypes {encoding.ids.dtype}, {encoding.offsets.dtype}")
    if encoding.offsets.shape != (len(encoding.tokens), 2) or len(encoding.ids) != len(encoding):
        problems.append(f"shapes {encoding.ids.shape}, {encoding.offsets.shape}")
    covered = np.zeros(len(text), dtype=bool)
    previous_end = 0
    group, group_start = [], 0
    for token, (start, end) in zip(encoding.tokens, encoding.offsets.tolist()):
        if not previous_end <= start <= end <= len(text):
            problems.append(f"{token!r} at {start}:{end} after {previous_end}, len {len(text)}")
        previous_end = end
        covered[start:end] = True
        if not group:
            group_start = start
        group.append(token)
        expected = reference_normalise(reference, text[group_start:end], lower)
        if piece_text(group) == expected:
            group = []
        elif len(group) == longest_group:
            problems.append(f"{group} at {group_start}:{end} is {text[group_start:end]!r}")
            group = []
    if group:
        problems.append(f"{group} at {group_start}: do not match {text[group_start:]!r}")
    for index in np.flatnonzero(~covered):
        if reference_normalise(reference, text[index], lower):
            problems.append(f"{text[index]!r} at {index} is in no token")
    return problems


def assert_offsets_point_at_original(texts, encodings, reference, lower):
    failures = []
    for text, encoding in zip(texts, encodings):
        problems = offset_problems(text, encoding, reference, lower)
        if problems:
            failures.append(f"{text!r}: {problems[:3]}")
    assert not failures, f"{len(failures)} strings:\n" + "\n".join(failures[:5])


def spans(encoding, text):
    return [text[start:end] for start, end in encoding.offsets.tolist()]


# --- the real data, every string --------------------------------------------------------


@pytest.mark.parametrize("lower", [True, False], ids=["uncased", "cased"])
def test_same_tokens_and_ids_as_huggingface_on_every_real_string(
    tokenizers, real_strings, real_encodings, lower
):
    assert_same_as_huggingface(real_strings, real_encodings[lower], tokenizers[lower][1])


def test_real_data_exercises_the_awkward_paths(tokenizers, real_strings, real_encodings):
    """The comparison above is only as good as what the data contains: make sure it holds the
    cases that need special handling, so a regression in them cannot pass unnoticed."""
    ours, reference = tokenizers[True]
    raw_pieces = [
        reference.sp_model.encode(reference.preprocess_text(t), out_type=str) for t in real_strings
    ]
    digit_comma = sum(
        len(p) > 1 and p[-1] == "," and p[-2].isdigit() for pieces in raw_pieces for p in pieces
    )
    assert digit_comma >= 10  # 19 pieces such as "▁2014,": the re-split rule fires
    assert sum("``" in t or "''" in t for t in real_strings) >= 10
    assert sum("  " in t or t != t.strip() for t in real_strings) >= 10
    assert sum(not t.isascii() for t in real_strings) >= 100
    unknown = sum((e.ids == ours.unk_id).sum() for e in real_encodings[True])
    assert unknown >= 5


@pytest.mark.parametrize("lower", [True, False], ids=["uncased", "cased"])
def test_offsets_point_at_the_original_text_of_every_real_string(
    tokenizers, real_strings, real_encodings, lower
):
    ours, reference = tokenizers[lower]
    assert_offsets_point_at_original(real_strings, real_encodings[lower], reference, lower)


@pytest.mark.parametrize(
    "options",
    [
        dict(keep_accents=True),
        dict(remove_space=False),
        dict(do_lower_case=False, keep_accents=True),
    ],
    ids=["keep_accents", "keep_spaces", "cased_keep_accents"],
)
def test_other_options_match_huggingface(model_file, real_strings, options):
    from transformers import AlbertTokenizer

    ours = SentencePieceTokenizer(model_file, **options)
    reference = AlbertTokenizer(vocab_file=str(model_file), **options)
    texts = real_strings[::4] + TRICKY_STRINGS
    encodings = ours.encode_batch(texts)
    assert_same_as_huggingface(texts, encodings, reference)
    lower = options.get("do_lower_case", True)
    assert_offsets_point_at_original(texts, encodings, reference, lower)


# --- targeted cases ------------------------------------------------------------------------

# Each with something the pre-processing or the offsets must get right.
TRICKY_STRINGS = [
    "",
    " ",
    " \t\n\u3000 ",
    "Hello   world",
    "  leading and trailing\t",
    "one\ttwo\n\nthree\r\nfour",
    "``Quoted'' text, ```three''' and ` single '",
    "café naïve niño Ñandú",
    "cafe\u0301 combining e\u0301\u0323 marks",
    "\u0301starts with a mark",
    "1,000,000 people in 2014, 2015, and on 05/12, then 3,",
    "x²,y",
    "☃ snowman, 陳 and 京",
    "ﬁne ligature, ½ half, ㎁ square",
    "ΟΔΥΣΣΕΥΣ and ⅀Σ and İstanbul",
    "Ǆ ǅ ǆ ß ﬀ",
    "한국어 text",
    "zero\u200bwidth soft\u00adhyphen control\x01char C1\x80\x99byte",
    "a\u00a0b\u2009c\u202fd",
    "\u00b4 acute, \u00a8 diaeresis",
]


@pytest.mark.parametrize("lower", [True, False], ids=["uncased", "cased"])
def test_tricky_strings_match_huggingface(tokenizers, lower):
    ours, reference = tokenizers[lower]
    texts = TRICKY_STRINGS
    encodings = ours.encode_batch(texts)
    assert_same_as_huggingface(texts, encodings, reference)
    assert_offsets_point_at_original(texts, encodings, reference, lower)


@pytest.mark.parametrize("lower", [True, False], ids=["uncased", "cased"])
def test_random_unicode_matches_huggingface(tokenizers, lower):
    """Code points from every block (marks, controls, CJK, symbols, multi-character
    lower-casing) mixed with ASCII, against HF; offsets checked on every one."""
    ours, reference = tokenizers[lower]
    rng = random.Random(1234)
    code_points = [c for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    awkward = "İΣ\u0301\u0323 \t``''ﬁ½,0123"
    texts = [
        "".join(
            chr(rng.choice(code_points))
            if rng.random() < 0.2
            else rng.choice(awkward if rng.random() < 0.3 else "ab cd,.Ee19")
            for _ in range(rng.randint(1, 16))
        )
        for _ in range(3000)
    ]
    encodings = ours.encode_batch(texts)
    assert_same_as_huggingface(texts, encodings, reference)
    assert_offsets_point_at_original(texts, encodings, reference, lower)


def test_every_whitespace_character_collapses_like_str_split(tokenizers):
    ours, reference = tokenizers[True]
    whitespace = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    text = f"{whitespace}a{whitespace}b {whitespace}``c"
    encoding = ours.encode(text)
    assert_same_as_huggingface([text], [encoding], reference)
    assert [s for s in spans(encoding, text) if s.strip()] == ["a", "b", "``", "c"]
    # the lone "▁" before "``" stands for the whole run of whitespace before it
    assert spans(encoding, text)[encoding.tokens.index('"') - 1] == " " + whitespace


def test_multiple_spaces_tabs_and_newlines(tokenizers):
    ours = tokenizers[True][0]
    text = "Hello   world\tagain\n\n the end  "
    encoding = ours.encode(text)
    assert encoding.tokens == ["▁hell", "o", "▁", "world", "▁", "aga", "in", "▁the", "▁", "end"]
    # A lone "▁" covers the whitespace run it replaced; "▁the" covers only the word.
    assert spans(encoding, text) == [
        "Hell",
        "o",
        "   ",
        "world",
        "\t",
        "aga",
        "in",
        "the",
        " ",
        "end",
    ]
    assert encoding.offsets.tolist() == [
        [0, 4], [4, 5], [5, 8], [8, 13], [13, 14], [14, 17], [17, 19], [22, 25], [25, 26], [26, 29],
    ]  # fmt: skip


def test_latex_quotes_map_back_to_both_characters(tokenizers):
    ours = tokenizers[True][0]
    text = "``Quoted'' text"
    encoding = ours.encode(text)
    assert encoding.tokens == ["▁", '"', "quote", "d", '"', "▁", "text"]
    # The first "▁" is SentencePiece's dummy prefix: no text, an empty span where it stands.
    assert spans(encoding, text) == ["", "``", "Quote", "d", "''", " ", "text"]


def test_accents_are_stripped_but_offsets_keep_them(tokenizers):
    ours = tokenizers[True][0]
    for text, tokens, expected_spans in [
        ("café", ["▁ca", "fe"], ["ca", "fé"]),
        ("cafe\u0301", ["▁ca", "fe"], ["ca", "fe\u0301"]),  # the mark belongs to its letter
        ("Ñandú", ["▁", "n", "an", "du"], ["", "Ñ", "an", "dú"]),
        ("niño", ["▁", "n", "ino"], ["", "n", "iño"]),
    ]:
        encoding = ours.encode(text)
        assert encoding.tokens == tokens, text
        assert spans(encoding, text) == expected_spans, text
    encoding = ours.encode("\u0301abc")  # a mark with no letter before it joins the next one
    assert spans(encoding, "\u0301abc")[0].startswith("\u0301")


def test_digit_comma_pieces_are_re_split_with_offsets(tokenizers, model_file):
    import sentencepiece

    ours = tokenizers[True][0]
    text = "In 2014, the 05/12, game 1,000,000."
    # SentencePiece alone gives "▁2014," and "/12,"; ALBERT re-encodes them without the comma.
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    raw = processor.encode(text.lower(), out_type=str)
    assert "▁2014," in raw and "/12," in raw
    encoding = ours.encode(text)
    assert encoding.tokens == [
        "▁in", "▁2014", ",", "▁the", "▁05", "/", "12", ",", "▁", "game",
        "▁1", ",", "000", ",", "000", ".",
    ]  # fmt: skip
    assert spans(encoding, text) == [
        "In", "2014", ",", "the", "05", "/", "12", ",", " ", "game",
        "1", ",", "000", ",", "000", ".",
    ]  # fmt: skip
    # The re-split pieces are looked up by name, as upstream does.
    assert ours.convert_ids_to_tokens(encoding.ids.tolist()) == encoding.tokens


def test_split_characters_give_later_pieces_an_empty_span(tokenizers):
    ours = tokenizers[True][0]
    text = "Ǆ"  # NFKD: "DŽ" -> "dz" without the caron; SentencePiece splits it in two
    encoding = ours.encode(text)
    assert encoding.tokens == ["▁d", "z"]
    assert encoding.offsets.tolist() == [[0, 1], [1, 1]]


def test_unknown_symbol_is_unk_with_its_own_span(tokenizers):
    ours = tokenizers[True][0]
    text = "a ☃ b"
    encoding = ours.encode(text)
    unknown = [i for i, token_id in enumerate(encoding.ids.tolist()) if token_id == ours.unk_id]
    assert len(unknown) == 1
    assert encoding.tokens[unknown[0]] == "☃"  # the piece is the surface text, as in HF
    assert spans(encoding, text)[unknown[0]] == "☃"


@pytest.mark.parametrize("text", ["", " ", "\t\n \u3000", "\u0301"])
def test_empty_and_whitespace_only(tokenizers, text):
    encoding = tokenizers[True][0].encode(text)
    assert encoding.tokens == [] and len(encoding) == 0
    assert encoding.ids.dtype == np.int32 and encoding.ids.shape == (0,)
    assert encoding.offsets.dtype == np.int32 and encoding.offsets.shape == (0, 2)


def test_special_token_strings_are_plain_text(tokenizers):
    """Google's ALBERT reads "[MASK]" in a passage as text; HF makes it the mask token (the
    one known difference; no real string contains such a name, so the parity tests hold)."""
    ours, reference = tokenizers[True]
    text = "a [MASK] <unk>"
    encoding = ours.encode(text)
    assert ours.mask_id not in encoding.ids and ours.unk_id not in encoding.ids
    assert "".join(encoding.tokens).replace(WORD_START, " ").strip() == "a [mask] <unk>"
    assert spans(encoding, text)[-1] == ">"
    assert reference.tokenize(text) == ["▁a", "[MASK]", "<unk>"]


def test_batch_single_and_tokenize_agree(tokenizers, real_strings):
    ours = tokenizers[True][0]
    texts = real_strings[:50] + TRICKY_STRINGS
    for text, batched in zip(texts, ours.encode_batch(texts)):
        single = ours.encode(text)
        assert single.tokens == batched.tokens == ours.tokenize(text)
        assert np.array_equal(single.ids, batched.ids)
        assert np.array_equal(single.offsets, batched.offsets)


def test_special_ids_and_conversions_match_huggingface(tokenizers):
    for ours, reference in tokenizers.values():
        assert (
            (ours.cls_id, ours.sep_id, ours.pad_id, ours.unk_id, ours.mask_id)
            == (
                reference.cls_token_id,
                reference.sep_token_id,
                reference.pad_token_id,
                reference.unk_token_id,
                reference.mask_token_id,
            )
            == (2, 3, 0, 1, 4)
        )
        assert ours.vocab_size == reference.vocab_size == 30000
        tokens = ["▁hello", "[MASK]", "not-a-piece", "▁2014"]
        assert ours.convert_tokens_to_ids(tokens) == reference.convert_tokens_to_ids(tokens)
        ids = [0, 1, 2, 3, 4, 13, 29999]
        assert ours.convert_ids_to_tokens(ids) == reference.convert_ids_to_tokens(ids)


def test_pickles_for_worker_processes(tokenizers):
    ours = tokenizers[True][0]
    copy = pickle.loads(pickle.dumps(ours))
    text = "In 2014, ``café''"
    assert copy.encode(text).tokens == ours.encode(text).tokens
    assert np.array_equal(copy.encode(text).offsets, ours.encode(text).offsets)


# --- bad input -------------------------------------------------------------------------------


def test_missing_model_file(tmp_path):
    path = tmp_path / "30k-clean.model"
    with pytest.raises(UserError, match="not found") as caught:
        SentencePieceTokenizer(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"<pad>\t0\n<unk>\t0\n[CLS]\t0\n", "is not a SentencePiece model"),  # the .vocab file
        (b"\x00\xff garbage \x17", "is not a SentencePiece model"),
    ],
    ids=["empty", "vocab_text", "garbage"],
)
def test_file_that_is_not_a_model(tmp_path, content, message):
    path = tmp_path / "spiece.model"
    path.write_bytes(content)
    with pytest.raises(SentencePieceModelError, match=message) as caught:
        SentencePieceTokenizer(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, UserError)


def test_directory_instead_of_model(tmp_path):
    with pytest.raises(SentencePieceModelError, match="cannot read") as caught:
        SentencePieceTokenizer(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_model_without_albert_special_pieces(tmp_path, model_file):
    # Rename the piece in place: same length, so the protobuf framing stays valid.
    serialized = model_file.read_bytes()
    assert serialized.count(b"[MASK]") >= 1
    path = tmp_path / "no-mask.model"
    path.write_bytes(serialized.replace(b"[MASK]", b"[MASX]"))
    with pytest.raises(SentencePieceModelError, match=r"has no '\[MASK\]' piece") as caught:
        SentencePieceTokenizer(path)
    assert str(path) in str(caught.value)
