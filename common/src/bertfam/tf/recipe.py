"""What a TensorFlow model folder contributes: its recipe.

A recipe names the model's config flag and reader, its tokenizer, the networks it builds
for each task and the table its HuggingFace checkpoints are read with. The task entry
points (`bertfam.tf.scripts`) take a recipe and do the rest, so a model's
``run_squad.py`` is a few lines:

    RECIPE = ModelRecipe("bert_config_file", squad_model=network("BertForQuestionAnswering"))
    SCRIPT = squad_script(RECIPE)
    if __name__ == "__main__":
        SCRIPT.run()

Building a network imports TensorFlow, so `network` names a class of the folder's
``modeling.py`` that is imported when the network is built: every input is checked
first, and bad input costs a second. This module imports neither TensorFlow nor the
model folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from bertfam.bert_config import BertConfig
from bertfam.checkpoints import BERT_TABLE, NameTable


@dataclass(frozen=True)
class ModelRecipe:
    """One model's parts, handed to a task entry point.

    - `config_flag` / `read_config`: ``--bert_config_file`` and how to read it;
    - `tokenizer(vocab_file, do_lower_case=...)`: None for WordPiece, else the model's
      (ALBERT's SentencePiece), as `bertfam.tokenization.load_tokenizer` takes it;
    - `squad_model(model_config, precision)`: the span model, (input_ids, input_mask,
      segment_ids, training) -> (start_logits, end_logits);
    - `classifier_model(model_config, num_labels, dropout_before_logits, precision)`:
      the classifier, (input_ids, input_mask, segment_ids, training) -> logits;
    - `pretraining_model(model_config, precision)`: (input_ids, input_mask, segment_ids,
      masked_lm_positions, training) -> (masked-LM logits, next-sentence logits);
    - `checkpoint_table`: HuggingFace keys to this model's TF names (`bertfam.checkpoints`);
    - `defaults`: flag defaults the model changes (DistilBERT trains 2 epochs);
    - `fixed`: `RunConfig` settings the model fixes (DistilBERT's AdamW constants).
    """

    config_flag: str
    read_config: Callable[[str], BertConfig] = BertConfig.from_json_file
    tokenizer: Optional[Callable[..., Any]] = None
    squad_model: Optional[Callable] = None
    classifier_model: Optional[Callable] = None
    pretraining_model: Optional[Callable] = None
    checkpoint_table: NameTable = BERT_TABLE
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)


def network(class_name: str, module: str = "modeling") -> Callable:
    """A builder for the recipe: the model folder's ``modeling.<class_name>``, imported
    (with TensorFlow) only when the flow builds the network, called with the flow's
    arguments."""

    def build(*args, **kwargs):
        return getattr(importlib.import_module(module), class_name)(*args, **kwargs)

    build.__qualname__ = f"{module}.{class_name}"
    return build
