"""Tokenizers with the behaviour of the upstream recipes, keeping character offsets.

Two implementations share one interface (`Tokenizer`), so the SQuAD and GLUE pipelines
serve BERT, DistilBERT and ELECTRA (WordPiece) and ALBERT (SentencePiece) alike:

- `bertfam.tokenization.wordpiece.WordPieceTokenizer`: Google BERT's tokenizer.
- `bertfam.tokenization.sentencepiece.SentencePieceTokenizer`: ALBERT's.

`encode` never adds special tokens: the pipelines place [CLS]/[SEP] themselves, as
Google's run_squad.py and run_classifier.py do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Encoding:
    """One text, tokenized.

    ids:     int32 [n] vocabulary ids.
    offsets: int32 [n, 2] character offsets [start, end) of each token in the text it
             came from (before any normalisation), so ``text[start:end]`` is the
             original spelling of the token.
    tokens:  the n token strings (``"##ing"``, ``"▁the"``).
    """

    ids: np.ndarray
    offsets: np.ndarray
    tokens: List[str]

    def __len__(self) -> int:
        return len(self.tokens)


class Tokenizer(Protocol):
    do_lower_case: bool
    vocab_size: int
    cls_id: int
    sep_id: int
    pad_id: int
    unk_id: int
    mask_id: int

    def encode(self, text: str) -> Encoding: ...

    def encode_batch(self, texts: Sequence[str]) -> List[Encoding]: ...

    def tokenize(self, text: str) -> List[str]: ...

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> List[int]: ...

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> List[str]: ...


def load_tokenizer(
    vocab_file: str,
    do_lower_case: bool,
    model_config,
    factory: Optional[Callable[..., Tokenizer]] = None,
) -> Tokenizer:
    """`factory(vocab_file, do_lower_case=...)` (WordPiece unless a recipe gives another),
    refused when its vocabulary is not the size `model_config` says."""
    from bertfam.errors import FlagError

    if factory is None:
        from bertfam.tokenization.wordpiece import WordPieceTokenizer as factory
    tokenizer = factory(vocab_file, do_lower_case=do_lower_case)
    if tokenizer.vocab_size != model_config.vocab_size:
        raise FlagError(
            f"the vocab file {vocab_file} has {tokenizer.vocab_size} tokens but "
            f"{model_config.source} says vocab_size={model_config.vocab_size}: they must "
            "come from the same model"
        )
    return tokenizer
