"""Checks ALBERT's scripts share: the vocabulary against the SentencePiece model, and a
BERT checkpoint given where ALBERT's is expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from bertfam.checkpoints import CheckpointError
from bertfam.errors import FlagError


def check_vocab_file(vocab_file: str, tokenizer) -> None:
    """``--vocab_file`` (``30k-clean.vocab``: a piece and its score a line) must list the
    SentencePiece model's pieces, in its order."""
    try:
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FlagError(f"--vocab_file={vocab_file}: cannot read it ({error.strerror})") from None
    pieces = [line.split("\t", 1)[0] for line in lines if line]
    model_pieces = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    if pieces != model_pieces:
        where = next(
            (i for i, (a, b) in enumerate(zip(pieces, model_pieces)) if a != b),
            min(len(pieces), len(model_pieces)),
        )
        raise FlagError(
            f"--vocab_file={vocab_file} does not match --spm_model_file={tokenizer.model_file}"
            f" ({len(pieces)} pieces against {len(model_pieces)}; they differ from piece "
            f"{where}): pass the .vocab that ships with the model"
        )


def named_if_bert(error: CheckpointError, init_checkpoint: Optional[str]) -> CheckpointError:
    """`error`, saying so first when --init_checkpoint is a BERT checkpoint (one
    ``bert/encoder/layer_N`` per layer, where ALBERT shares one)."""
    import tensorflow as tf

    if init_checkpoint and Path(f"{init_checkpoint}.index").is_file():
        names = [name for name, _ in tf.train.list_variables(init_checkpoint)]
        if any(re.match(r"bert/encoder/layer_\d+/", name) for name in names):
            return CheckpointError(
                f"--init_checkpoint={init_checkpoint} is a BERT checkpoint (a "
                "bert/encoder/layer_N per layer), not ALBERT's (one shared "
                f"bert/encoder/transformer/group_0/inner_group_0): {error}"
            )
    return error
