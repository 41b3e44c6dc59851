"""DistilBERT's recipe for the shared TensorFlow task entry points (`bertfam.tf.scripts`).

``--distilbert_config_file`` (Habana's BERT-schema file or HuggingFace's config.json),
WordPiece, the span model of ``modeling.py``, the HuggingFace DistilBERT name table, two
epochs by default, and the AdamW constants Habana tuned for DistilBERT.
"""

from bertfam.checkpoints import DISTILBERT_TABLE
from bertfam.distilbert_config import DistilBertConfig
from bertfam.tf.recipe import ModelRecipe, network

RECIPE = ModelRecipe(
    "distilbert_config_file",
    DistilBertConfig.from_json_file,
    squad_model=network("DistilBertForQuestionAnswering"),
    checkpoint_table=DISTILBERT_TABLE,
    defaults={"num_train_epochs": 2.0},
    # Habana's AdamW for DistilBERT: no weight decay, beta1 0.8, beta2 0.95 (epsilon 1e-6).
    fixed={"weight_decay_rate": 0.0, "beta_1": 0.8, "beta_2": 0.95},
)
