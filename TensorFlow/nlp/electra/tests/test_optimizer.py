"""--optimizer=lamb against the LAMB NVIDIA's ELECTRA trains with (tensorflow_addons'),
with and without --skip_adaptive, on ELECTRA's constants; and the schedule's end rate."""

import numpy as np
import pytest
import tensorflow as tf

from bertfam.tf.optimization import Lamb, learning_rate

tfa = pytest.importorskip("tensorflow_addons", reason="tensorflow_addons is the LAMB reference")

SHAPES = {
    "electra/embeddings/word_embeddings": (11, 4),
    "electra/embeddings/LayerNorm/gamma": (4,),
    "electra/encoder/layer_0/attention/self/query/kernel": (4, 4),
    "electra/encoder/layer_0/attention/self/query/bias": (4,),
    "discriminator_predictions/dense_1/kernel": (4, 1),
}
EXCLUDED = ["LayerNorm", "layer_norm", "bias"]  # from decay; with --skip_adaptive, adaptation
CONSTANTS = dict(beta_1=0.878, beta_2=0.974, epsilon=1e-6)  # ELECTRA's; decay 0.01


@pytest.mark.parametrize("skip_adaptive", [False, True])
def test_lamb_matches_tensorflow_addons(skip_adaptive):
    rng = np.random.default_rng(0)
    start = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    steps = [{k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
             for _ in range(4)]  # fmt: skip
    rates = [1e-2, 2e-2, 1.5e-2, 5e-3]

    ours = {k: tf.Variable(v, name=k) for k, v in start.items()}
    optimizer = Lamb(ours, adapt_excluded=not skip_adaptive, weight_decay_rate=0.01, **CONSTANTS)
    for grads, rate in zip(steps, rates):
        optimizer.apply({k: tf.constant(g) for k, g in grads.items()}, tf.constant(rate))

    reference = {k: tf.Variable(v, name=k) for k, v in start.items()}
    lamb = tfa.optimizers.LAMB(
        learning_rate=tf.Variable(rates[0]),
        weight_decay=0.01,
        exclude_from_weight_decay=EXCLUDED,
        # NVIDIA's: the decay list when skipping, else a pattern that matches nothing.
        exclude_from_layer_adaptation=EXCLUDED if skip_adaptive else ["None"],
        **CONSTANTS,
    )
    for grads, rate in zip(steps, rates):
        lamb.learning_rate.assign(rate)
        lamb.apply_gradients([(tf.constant(grads[k]), reference[k]) for k in SHAPES])
    for name in SHAPES:
        np.testing.assert_allclose(ours[name].numpy(), reference[name].numpy(), atol=1e-6,
                                   err_msg=name)  # fmt: skip


def test_decay_ends_at_end_lr_as_keras_polynomial_decay():
    keras = tf.keras.optimizers.schedules.PolynomialDecay(1e-3, 100, end_learning_rate=1e-4,
                                                          power=0.5)  # fmt: skip
    for step in (10, 40, 99, 100, 150):
        ours = learning_rate(step, peak=1e-3, total_steps=100, warmup_steps=10,
                             schedule="google", power=0.5, end_rate=1e-4)  # fmt: skip
        assert ours == pytest.approx(float(keras(step)), rel=1e-6), step
    warming = learning_rate(5, peak=1e-3, total_steps=100, warmup_steps=10,
                            schedule="google", power=0.5, end_rate=1e-4)  # fmt: skip
    assert warming == pytest.approx(5e-4)
