"""ALBERT's recipe for the shared TensorFlow task entry points (`bertfam.tf.scripts`).

``--albert_config_file`` (Google's albert_config.json or a HuggingFace config.json),
SentencePiece (``--spm_model_file``), the networks of ``modeling.py`` and the HuggingFace
ALBERT name table. The builders import ``modeling`` (and so TensorFlow) when called,
after every input is checked.
"""

from bertfam.albert_config import AlbertConfig
from bertfam.checkpoints import ALBERT_TABLE
from bertfam.tf.recipe import ModelRecipe
from bertfam.tokenization.sentencepiece import SentencePieceTokenizer


def squad_model(model_config, precision):
    import modeling

    return modeling.AlbertForQuestionAnswering(model_config, precision)


def classifier_model(model_config, num_labels, dropout_before_logits, precision):
    import modeling

    return modeling.AlbertForSequenceClassification(
        model_config, num_labels, dropout_before_logits, precision
    )


def pretraining_model(model_config, precision):
    import modeling

    return modeling.AlbertForPreTraining(model_config, precision)


RECIPE = ModelRecipe(
    "albert_config_file",
    AlbertConfig.from_json_file,
    tokenizer=SentencePieceTokenizer,
    squad_model=squad_model,
    classifier_model=classifier_model,
    pretraining_model=pretraining_model,
    checkpoint_table=ALBERT_TABLE,
    # google-research/albert's optimization.py decays from the peak rate (Google BERT's
    # curve), not Habana BERT's adjusted one.
    fixed={"schedule": "google"},
)
