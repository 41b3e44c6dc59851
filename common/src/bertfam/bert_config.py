"""The BERT architecture config: Google's ``bert_config.json`` or a HuggingFace ``config.json``.

Both frameworks and every BERT-shaped model folder read the same file, so the parsing and
the checks live here. Keys not used by the network (``architectures``, ``model_type``,
``pad_token_id``…) are tolerated, as Google's `BertConfig.from_dict` does; missing keys take
Google's defaults; impossible values are a `BertConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from bertfam.errors import UserError

ACTIVATIONS = (
    "gelu",
    "gelu_new",
    "gelu_fast",
    "gelu_pytorch_tanh",
    "relu",
    "tanh",
    "swish",
    "silu",
)


class BertConfigError(UserError):
    """The config file is missing, not JSON, or describes an impossible network."""


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 16
    initializer_range: float = 0.02
    # Google's layer norm uses 1e-12 without saying so; HuggingFace writes it down.
    layer_norm_eps: float = 1e-12
    source: str = dataclasses.field(default="<memory>", compare=False)
    # The sizes `validate` checks; a model with more (ALBERT's, ELECTRA's embedding_size)
    # extends the tuple.
    POSITIVE_INTEGERS = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "max_position_embeddings",
        "type_vocab_size",
    )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def without_dropout(self) -> BertConfig:
        """For evaluation and deterministic runs (Google zeroes dropout when not training)."""
        return dataclasses.replace(self, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values.pop("source")
        return values

    @classmethod
    def from_dict(cls, values: dict, source: str = "<memory>") -> BertConfig:
        known = {f.name for f in dataclasses.fields(cls)} - {"source"}
        if "vocab_size" not in values:
            raise BertConfigError(f"config {source}: missing 'vocab_size'")
        kwargs = {key: value for key, value in values.items() if key in known}
        config = cls(source=source, **kwargs)
        config.validate()
        return config

    @classmethod
    def from_json_file(cls, path: Union[str, Path]) -> BertConfig:
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BertConfigError(f"config {path}: no such file") from None
        except json.JSONDecodeError as error:
            raise BertConfigError(f"config {path}: not valid JSON ({error})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise BertConfigError(f"config {path}: cannot read it ({error})") from None
        if not isinstance(values, dict):
            raise BertConfigError(f"config {path}: expected a JSON object")
        return cls.from_dict(values, source=str(path))

    def check_max_seq_length(self, max_seq_length: int) -> None:
        """A run's --max_seq_length must fit the position table."""
        if max_seq_length > self.max_position_embeddings:
            raise BertConfigError(
                f"--max_seq_length={max_seq_length} is longer than the model's "
                f"max_position_embeddings ({self.max_position_embeddings})"
            )

    def validate(self) -> None:
        def fail(problem: str) -> BertConfigError:
            return BertConfigError(f"config {self.source}: {problem}")

        for key in self.POSITIVE_INTEGERS:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise fail(f"{key!r} must be a positive integer, not {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise fail(
                f"hidden_size ({self.hidden_size}) is not a multiple of num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise fail(f"hidden_act {self.hidden_act!r} is not one of {', '.join(ACTIVATIONS)}")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise fail(f"{key!r} must be in [0, 1), not {getattr(self, key)!r}")
