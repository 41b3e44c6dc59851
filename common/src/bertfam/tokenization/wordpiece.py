"""Google BERT's WordPiece tokenizer, run by the `tokenizers` library (Rust) with offsets.

Behaviour follows google-research/bert `tokenization.py` (`FullTokenizer`), whose Python
port is HuggingFace's slow `BertTokenizer`:

- control characters, NUL and U+FFFD are removed; whitespace becomes a space;
- CJK ideographs become words of their own;
- with ``do_lower_case``: lower-casing and accent stripping (NFD, combining marks dropped);
- words split on whitespace, then punctuation (ASCII symbols and Unicode P* categories);
- greedy longest-match-first WordPiece with ``##`` continuations; a word longer than
  100 characters, or one that cannot be covered by the vocabulary, is ``[UNK]``.

`tokenizers` does all of that in one pass and keeps each token's character offsets
into the original text, which the SQuAD pipeline needs to cut answers out of contexts.
The character classes come from this Python's `unicodedata`, as the Python tokenizer's
do, so even unassigned and newly assigned code points give the same tokens. Where
HuggingFace differs from Google (it removes every C* character, not only Cc/Cf, and
composes to NFC first), we follow HuggingFace, whose ids the tests hold us to.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import numpy as np
from tokenizers import Regex, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as _RustTokenizer

from bertfam.errors import UserError
from bertfam.tokenization import Encoding

MAX_INPUT_CHARS_PER_WORD = 100  # google-research/bert WordpieceTokenizer default
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class VocabError(UserError):
    """The vocabulary file is missing, empty or lacks a token BERT needs."""


def load_vocab(path: Union[str, Path]) -> Dict[str, int]:
    """token -> id, one token a line, the id being the line number (as Google's load_vocab)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise VocabError(f"vocab file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise VocabError(f"vocab file {path}: cannot read it as UTF-8 text ({error})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    vocab = {}
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    if not vocab:
        raise VocabError(f"vocab file {path} is empty")
    missing = [token for token in SPECIAL_TOKENS if token not in vocab]
    if missing:
        raise VocabError(
            f"vocab file {path} lacks {', '.join(missing)}: is it a BERT WordPiece vocab.txt?"
        )
    return vocab


class WordPieceTokenizer:
    """BERT tokenization with offsets; the interface is `bertfam.tokenization.Tokenizer`."""

    def __init__(
        self,
        vocab_file: Union[str, Path],
        do_lower_case: bool = True,
        keep_special_tokens: bool = False,
    ):
        """`keep_special_tokens`: read a literal "[SEP]" (etc.) in the text as that token.

        Google's tokenizer splits it like any text ("[", "sep", "]"), which is what the
        TensorFlow recipes do; HuggingFace's BertTokenizer keeps it whole.
        """
        self.vocab_file = str(vocab_file)
        self.do_lower_case = do_lower_case
        self.vocab = load_vocab(vocab_file)
        self._inverse = {index: token for token, index in self.vocab.items()}
        # Ids are line numbers; a vocab with repeated lines has holes, and the embedding
        # matrix still has a row per line.
        self.vocab_size = max(self.vocab.values()) + 1
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self.vocab[token] for token in SPECIAL_TOKENS
        )
        self._rust = _build(self.vocab, do_lower_case)
        if keep_special_tokens:
            self._rust.add_special_tokens(list(SPECIAL_TOKENS))

    def encode(self, text: str) -> Encoding:
        return _to_encoding(self._rust.encode(text, add_special_tokens=False))

    def encode_batch(self, texts: Sequence[str]) -> List[Encoding]:
        encoded = self._rust.encode_batch(list(texts), add_special_tokens=False)
        return [_to_encoding(item) for item in encoded]

    def ids_batch(self, texts: Sequence[str]) -> List[List[int]]:
        """The token ids of each text, without offsets (the cheap path for pre-training)."""
        encoded = self._rust.encode_batch_fast(list(texts), add_special_tokens=False)
        return [item.ids for item in encoded]

    def tokenize(self, text: str) -> List[str]:
        return self._rust.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> List[int]:
        return [self.vocab.get(token, self.unk_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> List[str]:
        return [self._inverse[int(index)] for index in ids]


def _build(vocab: Dict[str, int], do_lower_case: bool) -> _RustTokenizer:
    classes = _character_classes()
    rust = _RustTokenizer(
        models.WordPiece(
            vocab,
            unk_token="[UNK]",
            continuing_subword_prefix="##",
            max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
        )
    )
    steps = [
        normalizers.Replace(Regex(classes.removed), ""),
        normalizers.Replace(Regex(classes.whitespace), " "),
        # HuggingFace's BertTokenizer composes characters before splitting words, so a
        # decomposed "é" and a precomposed one become the same token in cased models too.
        normalizers.NFC(),
    ]
    if do_lower_case:
        steps += [
            normalizers.Lowercase(),
            normalizers.NFD(),
            normalizers.Replace(Regex(classes.accents), ""),
        ]
    rust.normalizer = normalizers.Sequence(steps)
    rust.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(classes.word_breaks), behavior="removed"),
            pre_tokenizers.Split(Regex(classes.isolated), behavior="isolated"),
        ]
    )
    return rust


# google-research/bert `_is_chinese_char`: the CJK Unified Ideographs blocks. (The
# `tokenizers` built-in list mistypes one bound, so we give the ranges ourselves.)
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


@dataclass(frozen=True)
class _Classes:
    removed: str  # NUL, U+FFFD and control/format/unassigned characters (category C*)
    whitespace: str  # characters that become a space (tab, newline, Zs)
    word_breaks: str  # what Python's str.split() splits words on, after the two above
    accents: str  # combining marks (Mn) dropped after NFD when lower-casing
    isolated: str  # punctuation and CJK ideographs: each a token of its own


@functools.lru_cache(maxsize=1)
def _character_classes() -> _Classes:
    """Regex classes built from this Python's `unicodedata`, as HF's BertTokenizer uses it.

    The Rust library has its own, older Unicode tables; rebuilding every class from
    `unicodedata` makes rare characters behave exactly as in the Python tokenizer.
    """
    removed, whitespace, word_breaks, accents, isolated = [], [], [], [], []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates cannot occur in the text `tokenizers` receives
        char = chr(code)
        category = unicodedata.category(char)
        if char in "\t\n\r" or category == "Zs":
            whitespace.append(code)
        elif code in (0, 0xFFFD) or category.startswith("C"):
            removed.append(code)
            continue
        if char.isspace() and category != "Zs" and char not in "\t\n\r":
            word_breaks.append(code)
        if category == "Mn":
            accents.append(code)
        if _is_punctuation(code, category):
            isolated.append(code)
    isolated += [code for low, high in _CJK_RANGES for code in range(low, high + 1)]
    return _Classes(
        removed=_regex_class(removed),
        whitespace=_regex_class(whitespace),
        word_breaks=_regex_class([ord(" ")] + word_breaks),
        accents=_regex_class(accents),
        isolated=_regex_class(isolated),
    )


def _is_punctuation(code: int, category: str) -> bool:
    # google-research/bert counts every non-alphanumeric ASCII symbol as punctuation
    # ("$", "^", "`" are not in Unicode's P* categories), plus all P* characters.
    ascii_symbol = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_symbol or category.startswith("P")


def _regex_class(codes: Iterable[int]) -> str:
    """An Oniguruma character class of the given code points, as compact ranges."""
    ordered = sorted(set(codes))
    parts = []
    start = previous = ordered[0]
    for code in ordered[1:] + [None]:
        if code is not None and code == previous + 1:
            previous = code
            continue
        parts.append(f"\\x{{{start:x}}}" + (f"-\\x{{{previous:x}}}" if previous > start else ""))
        if code is not None:
            start = previous = code
    return "[" + "".join(parts) + "]"


def _to_encoding(encoded) -> Encoding:
    return Encoding(
        ids=np.asarray(encoded.ids, dtype=np.int32),
        offsets=np.asarray(encoded.offsets, dtype=np.int32).reshape(-1, 2),
        tokens=encoded.tokens,
    )
