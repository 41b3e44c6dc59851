"""Google's own BERT graphs (PyPI ``bert-tensorflow==1.0.4``), run on TF 2: pre-training
(``run_pretraining.py``'s heads), SQuAD (``run_squad.create_model``) and classification
(``run_classifier.create_model``), each initialised from a checkpoint by Google's code.

Google's ``modeling.py`` and its scripts run unchanged under
``tensorflow.compat.v1`` except for one import: ``tensorflow.contrib.layers.layer_norm``,
gone since TF 2.0. `contrib_layer_norm` below is that function's arithmetic (mean and
variance over the last axis, epsilon 1e-12, ``LayerNorm/beta`` and ``LayerNorm/gamma``),
installed as ``tensorflow.contrib`` before Google's modules are imported.

Google's ``gelu`` is the tanh approximation; ours and HuggingFace's are the erf form, so
the graph is built with `exact_gelu` for a 1e-5 comparison.

Google's scripts define absl flags when imported, some of them under the same names as
each other and as its create_pretraining_data.py (which other tests import), so each
graph runs in a process of its own: `google_outputs` starts ``python google_bert.py`` on
a batch saved as .npz.
"""

import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def contrib_layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
    import tensorflow.compat.v1 as tf

    assert begin_norm_axis == begin_params_axis == -1
    with tf.variable_scope(scope, default_name="LayerNorm"):
        width = inputs.shape[-1]
        beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
        mean, variance = tf.nn.moments(inputs, [-1], keepdims=True)
        return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)


def exact_gelu(x):
    import tensorflow.compat.v1 as tf

    return 0.5 * x * (1.0 + tf.math.erf(x / np.sqrt(2.0)))


def googles_modules():
    """Google's ``bert`` package, importable on TF 2."""
    if "tensorflow.contrib" not in sys.modules:
        contrib = types.ModuleType("tensorflow.contrib")
        contrib.layers = types.SimpleNamespace(layer_norm=contrib_layer_norm)
        sys.modules["tensorflow.contrib"] = contrib
    import bert

    return bert


def pretraining_outputs(checkpoint, config_file, batch):
    """Google's masked-LM and next-sentence log-probabilities and losses for `batch`."""
    return google_outputs("pretraining", checkpoint, config_file, batch)


def google_outputs(task, checkpoint, config_file, batch, num_labels=2):
    """Google's outputs of `task` ("pretraining", "squad", "classifier") for `batch`, with
    every variable initialised from `checkpoint` the way Google's scripts do it
    (``get_assignment_map_from_checkpoint`` + ``init_from_checkpoint``).

    Returns the outputs and the names of the graph's variables the checkpoint did not
    initialise (Google's script would log them without ``*INIT_FROM_CKPT*``).
    """
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "batch.npz", Path(folder) / "outputs.npz"
        np.savez(inputs, **batch)
        subprocess.run(
            [sys.executable, __file__, task, str(num_labels), str(checkpoint), str(config_file),
             str(inputs), str(outputs)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        with np.load(outputs) as saved:
            results = {name: saved[name] for name in saved.files if name != "missed"}
            missed = json.loads(str(saved["missed"]))
    return results, missed


def _task_outputs(task, bert, config, ints, batch, num_labels):
    """The tensors of Google's `task` graph, built on `ints` (the batch as int32)."""
    import tensorflow.compat.v1 as tf

    if task == "squad":
        from bert import run_squad

        start, end = run_squad.create_model(
            config, False, ints["input_ids"], ints["input_mask"], ints["segment_ids"], False
        )
        return {"start_logits": start, "end_logits": end}
    if task == "classifier":
        from bert import run_classifier

        labels = tf.zeros([batch["input_ids"].shape[0]], tf.int32)
        _, _, logits, _ = run_classifier.create_model(
            config, False, ints["input_ids"], ints["input_mask"], ints["segment_ids"], labels,
            num_labels, False,
        )  # fmt: skip
        return {"logits": logits}
    from bert import run_pretraining

    model = bert.modeling.BertModel(
        config=config,
        is_training=False,
        input_ids=ints["input_ids"],
        input_mask=ints["input_mask"],
        token_type_ids=ints["segment_ids"],
        use_one_hot_embeddings=False,
    )
    mlm_loss, _, mlm_log_probs = run_pretraining.get_masked_lm_output(
        config,
        model.get_sequence_output(),
        model.get_embedding_table(),
        ints["masked_lm_positions"],
        ints["masked_lm_ids"],
        tf.constant(batch["masked_lm_weights"], tf.float32),
    )
    nsp_loss, _, nsp_log_probs = run_pretraining.get_next_sentence_output(
        config, model.get_pooled_output(), ints["next_sentence_labels"]
    )
    return {
        "mlm_log_probs": mlm_log_probs,
        "mlm_loss": mlm_loss,
        "nsp_log_probs": nsp_log_probs,
        "nsp_loss": nsp_loss,
    }


def _outputs_in_this_process(task, num_labels, checkpoint, config_file, batch, gelu=exact_gelu):
    import tensorflow.compat.v1 as tf

    bert = googles_modules()
    from bert import modeling

    tf.disable_v2_tensorshape()  # run_classifier reads ``shape[-1].value``, TF 1's Dimension

    config = modeling.BertConfig.from_json_file(str(config_file))
    original_gelu = modeling.gelu
    modeling.gelu = gelu
    try:
        with tf.Graph().as_default():
            ints = {
                k: tf.constant(v, tf.int32) for k, v in batch.items() if k != "masked_lm_weights"
            }
            tensors = _task_outputs(task, bert, config, ints, batch, num_labels)
            variables = tf.trainable_variables()
            assignment, initialised = modeling.get_assignment_map_from_checkpoint(
                variables, str(checkpoint)
            )
            tf.train.init_from_checkpoint(str(checkpoint), assignment)
            missed = sorted(v.name for v in variables if v.name not in initialised)
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                outputs = session.run(tensors)
    finally:
        modeling.gelu = original_gelu
    return outputs, missed


if __name__ == "__main__":
    task, num_labels, checkpoint, config_file, inputs, outputs = sys.argv[1:]
    with np.load(inputs) as saved:
        batch = {name: saved[name] for name in saved.files}
    results, missed = _outputs_in_this_process(
        task, int(num_labels), checkpoint, config_file, batch
    )
    np.savez(outputs, missed=json.dumps(missed), **results)
