"""A new model needs nothing but a recipe: a folder holding only `recipe.py` and two
three-line scripts builds a BERT variant (ALBERT's factorized embeddings, every layer its
own weights) from the shared encoder and heads, pre-trains it through the shared flow,
then fine-tunes it from that checkpoint.

This is the check of CONTRIBUTING's "Adding a model folder": if the shared flow needed
anything more from a model folder, this folder would not run.
"""

import subprocess
import sys

import pytest
import tensorflow as tf
from records import create_records

from bertfam import tinydata

# The variant's whole model folder. Its network comes from the shared encoder (an
# embedding width of its own, no layer sharing) and the shared heads.
RECIPE = """
import tensorflow as tf

from bertfam.albert_config import AlbertConfig
from bertfam.tf.encoder import TransformerEncoder
from bertfam.tf.layers import ClassifierHead
from bertfam.tf.pretraining_heads import MaskedLmHead, NextSentenceHead
from bertfam.tf.recipe import ModelRecipe


def encoder(config, precision):
    return TransformerEncoder(config, "bert", precision=precision, embedding_size=config.embedding_size)


class Classifier(tf.Module):
    def __init__(self, config, num_labels, dropout_before_logits, precision):
        super().__init__(name="factorized_classifier")
        self.bert = encoder(config, precision)
        self.classifier = ClassifierHead(config, num_labels, dropout_before_logits, precision)

    def __call__(self, input_ids, input_mask, segment_ids, training=False):
        _, pooled = self.bert(input_ids, input_mask, segment_ids, training)
        return self.classifier(pooled, training)


class PreTraining(tf.Module):
    def __init__(self, config, precision):
        super().__init__(name="factorized_pretraining")
        self.bert = encoder(config, precision)
        self.predictions = MaskedLmHead(config, config.embedding_size, precision)
        self.seq_relationship = NextSentenceHead(config, precision)

    def __call__(self, input_ids, input_mask, segment_ids, masked_lm_positions, training=False):
        sequence_output, pooled = self.bert(input_ids, input_mask, segment_ids, training)
        words = self.bert.embeddings.word_embeddings
        mlm = self.predictions(sequence_output, masked_lm_positions, words)
        return mlm, self.seq_relationship(pooled)


RECIPE = ModelRecipe(
    "bert_config_file",
    AlbertConfig.from_json_file,
    classifier_model=Classifier,
    pretraining_model=PreTraining,
)
"""
SCRIPT = """
from recipe import RECIPE
from bertfam.tf.scripts import {task}_script

if __name__ == "__main__":
    {task}_script(RECIPE).run()
"""
LENGTH, PREDICTIONS, EMBEDDING, HIDDEN = 32, 5, 16, 32


@pytest.fixture(scope="module")
def variant(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("variant")
    folder = root / "factorized_bert"
    folder.mkdir()
    (folder / "recipe.py").write_text(RECIPE)
    for task in ("pretraining", "classifier"):
        (folder / f"run_{task}.py").write_text(SCRIPT.format(task=task))
    vocab = shared_data / "bert_uncased" / "vocab.txt"
    corpus = tinydata.pretraining_corpus(root / "corpus.txt", vocab, seed=3, documents=30)
    (root / "train").mkdir()
    create_records(corpus, root / "train" / "part-0.tfrecord", vocab, LENGTH, PREDICTIONS)
    config = tinydata.bert_config_file(
        root / "config.json", 30522, embedding_size=EMBEDDING, hidden_size=HIDDEN,
        max_position_embeddings=LENGTH,
    )  # fmt: skip
    return {"folder": folder, "root": root, "vocab": vocab, "config": config}


def run(variant, script, *flags):
    result = subprocess.run(
        [sys.executable, script, *map(str, flags)],
        cwd=variant["folder"], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def shapes(checkpoint):
    return dict(tf.train.list_variables(str(checkpoint)))


def assert_factorized_and_unshared(variables):
    assert variables["bert/embeddings/word_embeddings"] == [30522, EMBEDDING]
    assert variables["bert/encoder/embedding_hidden_mapping_in/kernel"] == [EMBEDDING, HIDDEN]
    for layer in ("layer_0", "layer_1"):  # two layers, two sets of weights
        assert variables[f"bert/encoder/{layer}/attention/self/query/kernel"] == [HIDDEN, HIDDEN]


def test_a_recipe_alone_pre_trains_and_fine_tunes_a_new_variant(variant):
    root = variant["root"]
    run(
        variant, "run_pretraining.py", f"--bert_config_file={variant['config']}",
        f"--input_files_dir={root / 'train'}", f"--output_dir={root / 'pretrained'}",
        "--do_train=true", "--train_batch_size=4", f"--max_seq_length={LENGTH}",
        f"--max_predictions_per_seq={PREDICTIONS}", "--num_train_steps=4",
        "--num_warmup_steps=1", "--learning_rate=1e-3", "--optimizer_type=lamb",
        "--save_checkpoints_steps=4", f"--dllog_path={root / 'dllog.json'}", "--amp=false",
        "--use_xla=false",
    )  # fmt: skip
    pretrained = root / "pretrained" / "model.ckpt-4"
    pretrained_shapes = shapes(pretrained)
    assert_factorized_and_unshared(pretrained_shapes)
    assert "cls/predictions/output_bias" in pretrained_shapes

    data = tinydata.write_mrpc(
        root / "MRPC", tinydata.identity_pairs(32, 0), tinydata.identity_pairs(8, 1), []
    )
    run(
        variant, "run_classifier.py", "--task_name=MRPC", f"--data_dir={data}",
        f"--vocab_file={variant['vocab']}", f"--bert_config_file={variant['config']}",
        f"--init_checkpoint={pretrained}", f"--output_dir={root / 'mrpc'}",
        "--do_train=true", "--do_eval=true", f"--max_seq_length={LENGTH}",
        "--train_batch_size=8", "--eval_batch_size=8", "--num_train_epochs=1",
        "--learning_rate=1e-3",
    )  # fmt: skip
    finetuned = tf.train.latest_checkpoint(str(root / "mrpc"))
    assert finetuned is not None
    finetuned_shapes = shapes(finetuned)
    assert_factorized_and_unshared(finetuned_shapes)
    # Fine-tuning started from the pre-trained encoder: 4 updates at 1e-3 move a weight by
    # less than 0.01, where a fresh draw (stddev 0.02) would differ by about 0.08.
    name = "bert/encoder/layer_1/attention/self/query/kernel"
    moved = tf.train.load_checkpoint(finetuned).get_tensor(name) - tf.train.load_checkpoint(
        str(pretrained)
    ).get_tensor(name)
    assert 0 < abs(moved).max() < 0.01
    results = dict(
        line.split(" = ")
        for line in (root / "mrpc" / "eval_results.txt").read_text().split("\n")
        if line
    )
    assert results.keys() == {"accuracy", "global_step", "loss"}
    assert results["global_step"] == "4"  # 32 pairs, batches of 8, one epoch
