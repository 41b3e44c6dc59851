"""ALBERT's recipe for the shared TensorFlow task entry points (`bertfam.tf.scripts`).

``--albert_config_file`` (Google's albert_config.json or a HuggingFace config.json),
SentencePiece (``--spm_model_file``), the networks of ``modeling.py`` and the HuggingFace
ALBERT name table. ``modeling`` (and so TensorFlow) is imported when a network is built,
after every input is checked.
"""

from bertfam.albert_config import AlbertConfig
from bertfam.checkpoints import ALBERT_TABLE
from bertfam.tf.recipe import ModelRecipe, network
from bertfam.tokenization.sentencepiece import SentencePieceTokenizer

RECIPE = ModelRecipe(
    "albert_config_file",
    AlbertConfig.from_json_file,
    tokenizer=SentencePieceTokenizer,
    squad_model=network("AlbertForQuestionAnswering"),
    classifier_model=network("AlbertForSequenceClassification"),
    pretraining_model=network("AlbertForPreTraining"),
    checkpoint_table=ALBERT_TABLE,
    # google-research/albert's optimization.py decays from the peak rate (Google BERT's
    # curve), not Habana BERT's adjusted one.
    fixed={"schedule": "google"},
)
