"""BERT's recipe for the shared TensorFlow task entry points (`bertfam.tf.scripts`).

Google's ``--bert_config_file``, WordPiece, the networks of ``modeling.py`` and the
HuggingFace BERT name table (BertConfig, WordPiece and BERT's table are the recipe's
defaults). ``modeling`` (and so TensorFlow) is imported when a network is built, after
every input is checked.
"""

from bertfam.tf.recipe import ModelRecipe, network

RECIPE = ModelRecipe(
    "bert_config_file",
    squad_model=network("BertForQuestionAnswering"),
    classifier_model=network("BertForSequenceClassification"),
    pretraining_model=network("BertForPreTraining"),
)
