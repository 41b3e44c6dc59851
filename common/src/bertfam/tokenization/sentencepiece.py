"""ALBERT's SentencePiece tokenizer, with character offsets into the original text.

The pieces and ids mirror Google's ALBERT (`tokenization.py`: `preprocess_text` followed by
`encode_pieces`) as HuggingFace's slow `AlbertTokenizer` (transformers 4.57) runs it, because
that is the tokenization ALBERT checkpoints were trained and fine-tuned with:

1. lower-case each character (HuggingFace does this in `tokenize`, one character at a time,
   before the ALBERT pre-processing; see `_lowercase` for why that order matters);
2. collapse whitespace: ``" ".join(text.strip().split())``;
3. replace the LaTeX-style quotes ``` `` ``` and ``''`` with ``"``;
4. unless `keep_accents`, NFKD-normalise and drop combining characters;
5. lower-case again (ALBERT's own `preprocess_text`);
6. `SentencePieceProcessor.encode`, then split the comma off pieces such as ``▁2014,``
   (ALBERT's "digit-comma" rule, so numbers in lists tokenize as they did in pre-training).

Upstream throws away where each piece came from. SQuAD needs it (answers are character
spans of the original context), so every step above also keeps, for each character it
outputs, the span of original characters it was made from; SentencePiece reports the span
of each piece in its own input, and composing the two gives `Encoding.offsets`.

One deliberate difference from HuggingFace: its `tokenize` first splits the text on special
token strings (``[CLS]``, ``[MASK]``, ``<unk>``...), so a literal ``[MASK]`` in a passage
becomes the mask token. Google's ALBERT does not, and neither do we: text is only text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import sentencepiece as spm

from bertfam.errors import UserError
from bertfam.tokenization import Encoding

WORD_START = "\u2581"  # "▁": SentencePiece's marker for "a space came before this piece"

# The pieces ALBERT's run_squad.py / run_classifier.py look up by name.
CLS_PIECE = "[CLS]"
SEP_PIECE = "[SEP]"
PAD_PIECE = "<pad>"
UNK_PIECE = "<unk>"
MASK_PIECE = "[MASK]"

# \s is exactly str.isspace(), the set str.split() splits on (the tests check every code point).
# Inside the text only runs longer than one character, or other than " ", need an edit.
_WHITESPACE_TO_NORMALISE = re.compile(r"\s{2,}|[^\S ]")
_LATEX_QUOTES = re.compile(r"``|''")
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")
# A piece ending in "," after some other character, in pieces joined by "\0" ("\0" never
# occurs in a piece: SentencePiece's normaliser drops it).
_PIECE_ENDING_IN_COMMA = re.compile(r"([^\x00]),\x00")


class SentencePieceModelError(UserError):
    """The SentencePiece model file is missing, unreadable, or not an ALBERT model."""


class _Pieces(NamedTuple):
    """SentencePiece's pieces for one text, each with the input characters [begin, end)."""

    pieces: List[str]
    ids: List[int]
    begins: np.ndarray
    ends: np.ndarray


class _Normalized(NamedTuple):
    """Pre-processed text and, per character, the original span [starts[i], ends[i])."""

    text: str
    starts: np.ndarray
    ends: np.ndarray


# --- alignment-keeping text rewrites ------------------------------------------------------
#
# Each pre-processing step is expressed as a list of edits (begin, end, replacement) on its
# input. `_apply_edits` builds the output and, for every output character, the first and
# last input character it came from; `_compose` turns that into original-text spans.

Edit = Tuple[int, int, str]


def _apply_edits(
    text: str, edits: Sequence[Edit], attach_deleted: bool
) -> Tuple[str, np.ndarray, np.ndarray]:
    """Apply sorted, non-overlapping edits; return (new_text, first_source, last_source).

    With `attach_deleted`, a deleted span is counted as part of the output character before
    it (or after it, at the very start), so dropping the accent from "e\u0301" still leaves
    a span covering both characters. Whitespace trimmed off the ends is not attached.
    """
    parts: List[str] = []
    first: List[int] = []
    last: List[int] = []
    pending_first: Optional[int] = None  # a deletion at the start waits for the next char
    position = 0
    for begin, end, replacement in edits:
        if position < begin:
            parts.append(text[position:begin])
            first.extend(range(position, begin))
            last.extend(range(position, begin))
        if replacement:
            parts.append(replacement)
            first.extend([begin] * len(replacement))
            last.extend([end - 1] * len(replacement))
        elif attach_deleted:
            if last:
                last[-1] = end - 1
            elif pending_first is None:
                pending_first = begin
        if pending_first is not None and first:
            first[0] = pending_first
            pending_first = None
        position = end
    if position < len(text):
        parts.append(text[position:])
        first.extend(range(position, len(text)))
        last.extend(range(position, len(text)))
        if pending_first is not None:
            first[0] = pending_first
    return "".join(parts), np.asarray(first, dtype=np.int64), np.asarray(last, dtype=np.int64)


def _compose(
    normalized: _Normalized, text: str, first: np.ndarray, last: np.ndarray
) -> _Normalized:
    return _Normalized(text, normalized.starts[first], normalized.ends[last])


def _rewrite(normalized: _Normalized, edits: Sequence[Edit], attach_deleted: bool) -> _Normalized:
    if not edits:
        return normalized
    text, first, last = _apply_edits(normalized.text, edits, attach_deleted)
    return _compose(normalized, text, first, last)


def _lowercase(normalized: _Normalized, one_char_at_a_time: bool) -> _Normalized:
    """Lower-case, keeping the alignment.

    HuggingFace lower-cases one character at a time (a regex substitution in
    `PreTrainedTokenizer.tokenize`), which never applies Python's final-sigma rule
    ("ΟΔΟΣ".lower() == "οδος" but per character it is "οδοσ"); that changes the pieces, so
    the first lowering mirrors it. Only final sigma is context-dependent in `str.lower`, so
    mapping Σ to σ first makes the fast whole-string call give the per-character result.
    """
    text = normalized.text
    if one_char_at_a_time:
        text = text.replace("\u03a3", "\u03c3")
    lowered = text.lower()
    if len(lowered) == len(text):
        return _Normalized(lowered, normalized.starts, normalized.ends)
    # A few characters lower-case to two ("İ" -> "i̇"): record where the text grows.
    edits = [
        (match.start(), match.end(), match.group().lower())
        for match in _NON_ASCII_CHAR.finditer(text)
        if len(match.group().lower()) != 1
    ]
    _, first, last = _apply_edits(text, edits, attach_deleted=False)
    assert len(first) == len(lowered), "lower-casing grew the text in an unexpected place"
    return _compose(normalized, lowered, first, last)


def _collapse_whitespace(normalized: _Normalized) -> _Normalized:
    """``" ".join(text.strip().split())``; a kept space spans the whole run it replaces."""
    text = normalized.text
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    edits: List[Edit] = [(0, lead, "")] if lead else []
    for match in _WHITESPACE_TO_NORMALISE.finditer(text, lead, lead + len(stripped)):
        edits.append((match.start(), match.end(), " "))
    if stripped and lead + len(stripped) < len(text):
        edits.append((lead + len(stripped), len(text), ""))
    return _rewrite(normalized, edits, attach_deleted=False)


def _replace_latex_quotes(normalized: _Normalized) -> _Normalized:
    # `` and '' use different characters, so one left-to-right scan gives the same result as
    # upstream's two successive str.replace calls.
    edits = [(m.start(), m.end(), '"') for m in _LATEX_QUOTES.finditer(normalized.text)]
    return _rewrite(normalized, edits, attach_deleted=False)


@functools.lru_cache(maxsize=65536)
def _without_accents(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _strip_accents(normalized: _Normalized) -> _Normalized:
    """NFKD, then drop combining characters, one character at a time.

    Per character equals upstream's whole-string NFKD here: NFKD only reorders combining
    characters, and those are all dropped. ASCII is unchanged by both steps.
    """
    text = normalized.text
    if text.isascii():
        return normalized
    edits: List[Edit] = []
    for match in _NON_ASCII_CHAR.finditer(text):
        char = match.group()
        replacement = _without_accents(char)
        if replacement != char:
            edits.append((match.start(), match.end(), replacement))
    return _rewrite(normalized, edits, attach_deleted=True)


# --- the tokenizer --------------------------------------------------------------------------


class SentencePieceTokenizer:
    """ALBERT's tokenizer: ALBERT's pre-processing, then a SentencePiece model.

    `encode` returns pieces, ids and character offsets into the text as given; it never
    adds [CLS]/[SEP] (the SQuAD and GLUE pipelines place them, as upstream does).
    """

    def __init__(
        self,
        model_file: Union[str, Path],
        do_lower_case: bool = True,
        remove_space: bool = True,
        keep_accents: bool = False,
    ) -> None:
        self.model_file = Path(model_file)
        self.do_lower_case = do_lower_case
        self.remove_space = remove_space
        self.keep_accents = keep_accents
        self._sp = _load_model(self.model_file)
        self.vocab_size = len(self._sp)
        self.cls_id = self._required_piece_id(CLS_PIECE)
        self.sep_id = self._required_piece_id(SEP_PIECE)
        self.pad_id = self._required_piece_id(PAD_PIECE)
        self.unk_id = self._required_piece_id(UNK_PIECE)
        self.mask_id = self._required_piece_id(MASK_PIECE)
        self._encode_pieces = _span_encoder(self._sp)
        # Which vocabulary pieces start with "▁", so that per-text work is an array lookup.
        self._starts_word = np.array(
            [self._sp.id_to_piece(i).startswith(WORD_START) for i in range(self.vocab_size)]
        )

    def _required_piece_id(self, piece: str) -> int:
        # piece_to_id answers the <unk> id for anything it does not know, so check the
        # round trip rather than the number.
        piece_id = self._sp.piece_to_id(piece)
        if self._sp.id_to_piece(piece_id) != piece:
            raise SentencePieceModelError(
                f"SentencePiece model {self.model_file} has no {piece!r} piece; ALBERT needs "
                f"{CLS_PIECE}, {SEP_PIECE}, {PAD_PIECE}, {UNK_PIECE} and {MASK_PIECE} "
                "(use the 30k-clean.model that ships with the ALBERT checkpoint)"
            )
        return piece_id

    # -- Tokenizer interface --

    def encode(self, text: str) -> Encoding:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> List[Encoding]:
        normalized = [self._preprocess(text) for text in texts]
        # One call for the whole batch: SentencePiece encodes it in C++ threads.
        pieces = self._encode_pieces([n.text for n in normalized])
        return [
            self._encoding(text, norm, text_pieces)
            for text, norm, text_pieces in zip(texts, normalized, pieces)
        ]

    def tokenize(self, text: str) -> List[str]:
        return self.encode(text).tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> List[int]:
        return [self._sp.piece_to_id(token) for token in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> List[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]

    # -- pre-processing --

    def _preprocess(self, text: str) -> _Normalized:
        """ALBERT's `preprocess_text` (after HuggingFace's lowering), keeping the alignment."""
        normalized = _Normalized(
            text, np.arange(len(text), dtype=np.int64), np.arange(1, len(text) + 1, dtype=np.int64)
        )
        if self.do_lower_case:
            normalized = _lowercase(normalized, one_char_at_a_time=True)
        if self.remove_space:
            normalized = _collapse_whitespace(normalized)
        normalized = _replace_latex_quotes(normalized)
        if not self.keep_accents:
            normalized = _strip_accents(normalized)
        if self.do_lower_case:
            normalized = _lowercase(normalized, one_char_at_a_time=False)
        return normalized

    # -- pieces to Encoding --

    def _encoding(self, text: str, normalized: _Normalized, encoded: _Pieces) -> Encoding:
        tokens, ids = encoded.pieces, encoded.ids
        begins = _skip_word_start_space(
            normalized.text, self._marks_word_start(encoded), encoded.begins, encoded.ends
        )
        ends = encoded.ends
        if _any_needs_digit_comma_split(tokens):
            tokens, ids, begins, ends = self._apply_digit_comma_rule(
                normalized.text, _Pieces(tokens, ids, begins, ends)
            )
        return Encoding(
            ids=np.asarray(ids, dtype=np.int32).reshape(-1),
            offsets=_original_offsets(normalized, begins, ends, len(text)),
            tokens=list(tokens),
        )

    def _marks_word_start(self, encoded: _Pieces) -> np.ndarray:
        marks = self._starts_word[np.asarray(encoded.ids, dtype=np.int64)]
        # An unknown piece is reported as its own text, not as "<unk>": look at the string.
        for index in np.flatnonzero(np.asarray(encoded.ids) == self.unk_id):
            marks[index] = encoded.pieces[index].startswith(WORD_START)
        return marks

    def _apply_digit_comma_rule(
        self, normalized_text: str, encoded: _Pieces
    ) -> Tuple[List[str], List[int], np.ndarray, np.ndarray]:
        tokens: List[str] = []
        ids: List[int] = []
        spans: List[Tuple[int, int]] = []
        for piece, piece_id, begin, end in zip(
            encoded.pieces, encoded.ids, encoded.begins.tolist(), encoded.ends.tolist()
        ):
            if not _needs_digit_comma_split(piece):
                tokens.append(piece)
                ids.append(piece_id)
                spans.append((begin, end))
                continue
            for token, span in self._split_digit_comma(normalized_text, piece, begin, end):
                tokens.append(token)
                # Upstream looks the re-split strings up by name, "▁"-stripping included.
                ids.append(self._sp.piece_to_id(token))
                spans.append(span)
        begins, ends = np.asarray(spans, dtype=np.int64).reshape(-1, 2).T
        return tokens, ids, begins, ends

    def _split_digit_comma(
        self, normalized_text: str, piece: str, begin: int, end: int
    ) -> List[Tuple[str, Tuple[int, int]]]:
        """ALBERT's rule for pieces like "▁2014,": re-encode "2014" alone, then add ",".

        Mirrors `AlbertTokenizer._tokenize` / ALBERT's `encode_pieces`, including dropping the
        word-start marker the re-encoding adds when the piece did not start a word.
        """
        body_positions = [i for i, char in enumerate(piece[:-1]) if char != WORD_START]
        body = "".join(piece[i] for i in body_positions)
        to_input = _piece_to_input_positions(piece, begin, end)
        sub = self._encode_pieces([body])[0]
        result: List[Tuple[str, Tuple[int, int]]] = []
        for index, (token, sub_begin, sub_end) in enumerate(
            zip(sub.pieces, sub.begins.tolist(), sub.ends.tolist())
        ):
            if index == 0 and not piece.startswith(WORD_START) and token[0] == WORD_START:
                if len(token) == 1:
                    continue
                token = token[1:]
            if to_input is None:
                span = (begin, end)
            elif sub_begin == sub_end:
                at = to_input[body_positions[sub_begin]] if sub_begin < len(body) else begin
                span = (at, at)
            else:
                span = (
                    to_input[body_positions[sub_begin]],
                    to_input[body_positions[sub_end - 1]] + 1,
                )
            result.append((token, span))
        result.append((piece[-1], (end - 1, end) if to_input is not None else (begin, end)))
        return result


def _needs_digit_comma_split(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def _any_needs_digit_comma_split(pieces: Sequence[str]) -> bool:
    # One regex over the joined pieces instead of a Python call per piece. str.isdigit, not
    # the regex \d, because upstream uses isdigit (which also accepts "²").
    joined = "\x00".join(pieces) + "\x00"
    return any(m.group(1).isdigit() for m in _PIECE_ENDING_IN_COMMA.finditer(joined))


def _is_invisible(char: str) -> bool:
    """Whitespace, or a control or format character (SentencePiece's normaliser drops most)."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def _invisible_chars(text: str) -> np.ndarray:
    """`_is_invisible` for every character of the text, ASCII in one vectorised step."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    invisible = (codes <= 0x20) | (codes == 0x7F)  # ASCII controls, whitespace and space
    if not text.isascii():
        for match in _NON_ASCII_CHAR.finditer(text):
            invisible[match.start()] = _is_invisible(match.group())
    return invisible


def _skip_word_start_space(
    normalized_text: str, marks_word_start: np.ndarray, begins: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Where the word of each "▁word" piece begins: past the space the marker stands for.

    SentencePiece counts that space (and control characters its normaliser deleted next to
    it) as part of the piece; the offsets should cover only the word. A piece with nothing
    visible (a lone "▁") keeps its span, the whitespace it stands for.
    """
    if not marks_word_start.any():
        return begins
    visible_positions = np.flatnonzero(~_invisible_chars(normalized_text))
    if len(visible_positions) == 0:
        return begins
    following = np.searchsorted(visible_positions, begins)
    first_visible = visible_positions[np.minimum(following, len(visible_positions) - 1)]
    movable = marks_word_start & (following < len(visible_positions)) & (first_visible < ends)
    return np.where(movable, first_visible, begins)


def _piece_to_input_positions(piece: str, begin: int, end: int) -> Optional[List[int]]:
    """For each character of the piece, its position in the encoder input, if one-to-one.

    SentencePiece's own normaliser (NFKC) can change the length of a piece relative to its
    input ("½" becomes "1⁄2"); then there is no per-character map and None is returned.
    """
    lead = len(piece) - len(piece.lstrip(WORD_START))
    if len(piece) - lead != end - begin:
        return None
    return [begin + max(i - lead, 0) for i in range(len(piece))]


def _original_offsets(
    normalized: _Normalized, begins: np.ndarray, ends: np.ndarray, text_length: int
) -> np.ndarray:
    """Map [begin, end) spans of the pre-processed text to [start, end) of the original.

    Several pieces can come from one original character (NFKD turns "ﬁ" into "fi", and
    SentencePiece may split it); the first piece gets the character and the rest an empty
    span after it, so offsets never overlap and never go backwards.
    """
    if len(begins) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    length = len(normalized.text)
    # One past the end: an empty piece at the end of the input sits after the last character.
    char_starts = np.append(normalized.starts, normalized.ends[-1] if length else text_length)
    starts = char_starts[begins]
    stops = np.where(ends > begins, normalized.ends[np.maximum(ends - 1, 0)], starts)
    # Input spans and the character map are both monotone, so clipping each span to start
    # after the previous one reduces to a running maximum.
    stops = np.maximum.accumulate(np.maximum(stops, starts))
    starts = np.maximum(starts, np.concatenate(([0], stops[:-1])))
    return np.stack([starts, stops], axis=1).astype(np.int32)


# --- SentencePiece access ----------------------------------------------------------------


def _load_model(model_file: Path) -> spm.SentencePieceProcessor:
    try:
        serialized = model_file.read_bytes()
    except FileNotFoundError:
        raise SentencePieceModelError(
            f"SentencePiece model file not found: {model_file} (ALBERT checkpoints ship it "
            "as 30k-clean.model; pass its path)"
        ) from None
    except OSError as error:
        raise SentencePieceModelError(
            f"cannot read SentencePiece model file {model_file}: {error.strerror or error}"
        ) from None
    if not serialized:
        raise SentencePieceModelError(
            f"SentencePiece model file {model_file} is empty (an interrupted download?)"
        )
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(serialized)
    except RuntimeError as error:
        raise SentencePieceModelError(
            f"{model_file} is not a SentencePiece model ({str(error).strip() or 'parse failed'});"
            " ALBERT's vocabulary is the binary .model file, not the .vocab text file"
        ) from None
    return processor


def _span_encoder(processor: spm.SentencePieceProcessor):
    """Return a function texts -> [_Pieces] with character (not byte) offsets.

    SentencePiece's span API moved between releases: up to 0.2.1 `out_type="immutable_proto"`
    has begin/end in characters for str input; 0.2.3 removed it for `"offset_mapping"`
    (characters) and `"proto"` (bytes). Use whichever the installed version has, and check
    the unit on a character that is two bytes in UTF-8 rather than trusting the release notes.
    """
    probe = "\u00e9\u00e9"  # "éé": 2 characters, 4 bytes
    for encode in (_encode_with_offset_mapping, _encode_with_immutable_proto):
        try:
            probe_pieces = encode(processor, [probe])[0]
        except (RuntimeError, ValueError, TypeError, AttributeError, KeyError):
            continue
        if len(probe_pieces.ends) and probe_pieces.ends[-1] == len(probe):
            return functools.partial(encode, processor)
    raise SentencePieceModelError(
        f"sentencepiece {getattr(spm, '__version__', '?')} offers no character spans for "
        "pieces; install sentencepiece>=0.1.99"
    )


def _columns(pieces: List[str], ids: List[int], spans: Sequence) -> _Pieces:
    begins, ends = np.asarray(spans, dtype=np.int64).reshape(-1, 2).T
    return _Pieces(pieces, ids, begins, ends)


def _encode_with_offset_mapping(
    processor: spm.SentencePieceProcessor, texts: List[str]
) -> List[_Pieces]:
    results = processor.encode(texts, out_type="offset_mapping")
    return [_columns(r["pieces"], r["ids"], r["offsets"]) for r in results]


def _encode_with_immutable_proto(
    processor: spm.SentencePieceProcessor, texts: List[str]
) -> List[_Pieces]:
    results = processor.encode(texts, out_type="immutable_proto")
    return [
        _columns(
            [p.piece for p in r.pieces],
            [p.id for p in r.pieces],
            [(p.begin, p.end) for p in r.pieces],
        )
        for r in results
    ]
