"""BERT's recipe for the shared TensorFlow task entry points (`bertfam.tf.scripts`).

Google's ``--bert_config_file``, WordPiece, the networks of ``modeling.py`` and the
HuggingFace BERT name table. The builders import ``modeling`` (and so TensorFlow) when
called, after every input is checked.
"""

from bertfam.tf.recipe import ModelRecipe


def squad_model(model_config, precision):
    import modeling

    return modeling.BertForQuestionAnswering(model_config, precision)


def classifier_model(model_config, num_labels, dropout_before_logits, precision):
    import modeling

    return modeling.BertForSequenceClassification(
        model_config, num_labels, dropout_before_logits, precision
    )


def pretraining_model(model_config, precision):
    import modeling

    return modeling.BertForPreTraining(model_config, precision)


# BertConfig, WordPiece and BERT's name table are the recipe's defaults.
RECIPE = ModelRecipe(
    "bert_config_file",
    squad_model=squad_model,
    classifier_model=classifier_model,
    pretraining_model=pretraining_model,
)
