"""bertfam.tf.optimization against known values and independent NumPy references.

The references below are written from google-research/bert and Habana's optimization.py
(AdamWeightDecayOptimizer, LAMBOptimizer), not from the module under test.
"""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (bertfam.tf needs it)")

from bertfam.tf.optimization import (  # noqa: E402
    DECAY_EXCLUDED,
    AdamWeightDecay,
    GoogleLamb,
    Lamb,
    ScheduleError,
    clip_by_global_norm,
    decays,
    learning_rate,
)

PEAK, TOTAL, WARMUP = 1e-4, 100, 10


# ---------------------------------------------------------------------------- schedule

SCHEDULE_TABLE = [
    # (schedule, power, step, expected)
    ("adjusted", 1.0, 0, 0.0),
    ("adjusted", 1.0, 5, 5e-5),
    ("adjusted", 1.0, 9, 9e-5),
    ("adjusted", 1.0, 10, 1e-4),  # decay from 1e-4 / 0.9 meets warm-up at the peak
    ("adjusted", 1.0, 55, 1e-4 / 0.9 * 0.45),
    ("adjusted", 1.0, 100, 0.0),
    ("adjusted", 1.0, 150, 0.0),
    ("google", 1.0, 0, 0.0),
    ("google", 1.0, 5, 5e-5),
    ("google", 1.0, 10, 9e-5),  # Google's curve starts at step 0, so it drops at warm-up end
    ("google", 1.0, 55, 4.5e-5),
    ("google", 1.0, 100, 0.0),
    ("google", 1.0, 150, 0.0),
    ("google", 0.5, 10, 1e-4 * 0.9**0.5),  # Habana's LAMB schedule
    ("google", 0.5, 75, 1e-4 * 0.5),
    ("adjusted", 0.5, 10, 1e-4),
    ("adjusted", 0.5, 75, 1e-4 / 0.9**0.5 * 0.5),
]


@pytest.mark.parametrize("schedule, power, step, expected", SCHEDULE_TABLE)
def test_schedule_known_values(schedule, power, step, expected):
    got = learning_rate(
        step, peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP, schedule=schedule, power=power
    )
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)


def albert_rate(step, peak, total, warmup, power, start):
    """google-research/albert's optimization.create_optimizer rate, written from it:
    polynomial decay from the peak, replaced by ``peak * (step - start) / warmup`` while
    ``step - start < warmup`` (clamped at 0 before ``start``, where upstream's goes
    negative)."""
    decayed = peak * (1 - min(step, total) / total) ** power
    if step - start < warmup:
        return peak * max(step - start, 0) / warmup
    return decayed


@pytest.mark.parametrize("start", [0, 30])
@pytest.mark.parametrize("power", [1.0, 0.5])
def test_warmup_from_a_later_step_is_albert_start_warmup_step(start, power):
    for step in (0, 5, 29, 30, 35, 39, 40, 41, 55, 100, 120):
        expected = albert_rate(step, PEAK, TOTAL, WARMUP, power, start)
        got = learning_rate(step, peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP,
                            schedule="google", power=power, warmup_start=start)  # fmt: skip
        tensor = learning_rate(tf.constant(step), peak=PEAK, total_steps=TOTAL,
                               warmup_steps=WARMUP, schedule="google", power=power,
                               warmup_start=start)  # fmt: skip
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), step
        assert float(tensor) == pytest.approx(expected, rel=1e-6, abs=1e-12), step


def test_schedule_same_values_from_tf_function_with_tensor_steps():
    @tf.function
    def rate(step, schedule, power):
        return learning_rate(
            step, peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP, schedule=schedule, power=power
        )

    for schedule, power, step, expected in SCHEDULE_TABLE:
        for dtype in (tf.int64, tf.int32):
            got = rate(tf.constant(step, dtype), schedule, power)
            assert got.dtype == tf.float32
            assert float(got) == pytest.approx(expected, rel=1e-6, abs=1e-12), (schedule, step)


def test_schedule_reads_a_step_variable_inside_tf_function():
    step = tf.Variable(0, dtype=tf.int64)

    @tf.function
    def advance():
        step.assign_add(1)
        return learning_rate(step, peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP)

    rates = [float(advance()) for _ in range(12)]
    expected = [
        learning_rate(s, peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP) for s in range(1, 13)
    ]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
def test_adjusted_schedule_is_continuous_at_the_end_of_warmup(power):
    def at(step):
        return learning_rate(
            step,
            peak=PEAK,
            total_steps=TOTAL,
            warmup_steps=WARMUP,
            schedule="adjusted",
            power=power,
        )

    assert at(WARMUP) == pytest.approx(PEAK, rel=1e-12)
    # The limit of warm-up from below and of the decay from above meet at the peak.
    assert at(WARMUP - 1e-6) == pytest.approx(PEAK, rel=1e-6)
    assert at(WARMUP + 1e-6) == pytest.approx(PEAK, rel=1e-6)
    # Warm-up rises, decay falls: the peak is the maximum over the run.
    rates = [at(step) for step in range(TOTAL + 1)]
    assert max(rates) == pytest.approx(PEAK, rel=1e-12)
    assert rates.index(max(rates)) == WARMUP


@pytest.mark.parametrize("schedule", ["adjusted", "google"])
def test_schedule_without_warmup_starts_at_the_peak(schedule):
    rates = [
        learning_rate(s, peak=PEAK, total_steps=TOTAL, warmup_steps=0, schedule=schedule)
        for s in (0, 50, 100)
    ]
    assert rates == pytest.approx([PEAK, PEAK / 2, 0.0])
    tensor_rate = learning_rate(
        tf.constant(50), peak=PEAK, total_steps=TOTAL, warmup_steps=0, schedule=schedule
    )
    assert float(tensor_rate) == pytest.approx(PEAK / 2, rel=1e-6)


@pytest.mark.parametrize("schedule", ["adjusted", "google"])
def test_schedule_degenerate_runs_do_not_divide_by_zero(schedule):
    def both(step, total, warmup):
        kwargs = dict(peak=PEAK, total_steps=total, warmup_steps=warmup, schedule=schedule)
        return learning_rate(step, **kwargs), float(learning_rate(tf.constant(step), **kwargs))

    # No steps at all: nothing to train at any step.
    assert both(0, 0, 0) == (0.0, 0.0)
    assert both(3, 0, 0) == (0.0, 0.0)
    # Warm-up as long as (or longer than) the run: warm-up, then 0.
    assert both(5, 10, 10) == pytest.approx((5e-5, 5e-5), rel=1e-6)
    assert both(10, 10, 10) == (0.0, 0.0)
    assert both(5, 4, 10) == pytest.approx((5e-5, 5e-5), rel=1e-6)
    assert both(12, 4, 10) == (0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(schedule="cosine"), "unknown learning-rate schedule 'cosine'"),
        (dict(total_steps=-1), "must not be negative"),
        (dict(warmup_steps=-1), "must not be negative"),
        (dict(power=0.0), "power > 0"),
    ],
)
def test_schedule_rejects_impossible_settings(kwargs, message):
    settings = dict(peak=PEAK, total_steps=TOTAL, warmup_steps=WARMUP) | kwargs
    with pytest.raises(ScheduleError, match=message):
        learning_rate(1, **settings)


# ------------------------------------------------------------------------ weight decay

BERT_NAMES_DECAY = {
    "bert/embeddings/word_embeddings": True,
    "bert/embeddings/position_embeddings": True,
    "bert/embeddings/token_type_embeddings": True,
    "bert/embeddings/LayerNorm/gamma": False,
    "bert/embeddings/LayerNorm/beta": False,
    "bert/encoder/layer_0/attention/self/query/kernel": True,
    "bert/encoder/layer_0/attention/self/query/bias": False,
    "bert/encoder/layer_0/attention/output/dense/kernel": True,
    "bert/encoder/layer_0/attention/output/LayerNorm/gamma": False,
    "bert/encoder/layer_0/intermediate/dense/kernel": True,
    "bert/encoder/layer_0/intermediate/dense/bias": False,
    "bert/pooler/dense/kernel": True,
    "bert/pooler/dense/bias": False,
    "cls/squad/output_weights": True,
    "cls/squad/output_bias": False,
    "output_weights": True,
    "output_bias": False,
    "cls/predictions/transform/dense/kernel": True,
    "cls/predictions/transform/LayerNorm/beta": False,
    "cls/predictions/output_bias": False,
    "cls/seq_relationship/output_weights": True,
    # ALBERT and Keras-style spellings.
    "bert/encoder/transformer/group_0/inner_group_0/LayerNorm_1/gamma": False,
    "electra/encoder/layer_0/output/layer_norm/gamma": False,
}


def test_which_bert_variables_decay():
    table = {name: decays(name) for name in BERT_NAMES_DECAY}
    width = max(map(len, table))
    print("\nweight decay (excluded: " + ", ".join(DECAY_EXCLUDED) + ")")
    for name, decayed in table.items():
        print(f"  {name:<{width}}  {'decay' if decayed else '-'}")
    assert table == BERT_NAMES_DECAY
    assert DECAY_EXCLUDED == ("LayerNorm", "layer_norm", "bias")


def test_decays_takes_another_list():
    assert decays("bert/pooler/dense/bias", excluded=("LayerNorm",))
    assert not decays("bert/pooler/dense/kernel", excluded=(r"pooler/.*kernel$",))


# ---------------------------------------------------------------- NumPy references


def google_adam_reference(
    params, grads_per_step, lrs, *, wd, b1, b2, eps, decayed, eps_inside=False
):
    """google-research/bert AdamWeightDecayOptimizer.apply_gradients, in float64."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for grads, lr in zip(grads_per_step, lrs):
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            denominator = np.sqrt(v[k] + eps * eps) if eps_inside else np.sqrt(v[k]) + eps
            u = m[k] / denominator
            if k in decayed:
                u = u + wd * params[k]
            params[k] = params[k] - lr * u
    return params, m, v


def bias_corrected_adamw_reference(params, grads_per_step, lrs, *, wd, b1, b2, eps, decayed):
    """What Keras-style Adam(W) would do: the same, but with bias correction."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            u = (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            if k in decayed:
                u = u + wd * params[k]
            params[k] = params[k] - lr * u
    return params


def habana_lamb_reference(params, grads_per_step, lrs, *, wd, b1, b2, eps, decayed):
    """Habana's TF BERT LAMBOptimizer.apply_gradients, in float64."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            u = (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            if k in decayed:
                u = u + wd * params[k]
            w_norm, u_norm = np.linalg.norm(params[k]), np.linalg.norm(u)
            ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            params[k] = params[k] - ratio * lr * u
    return params, m, v


# Shapes of a tiny BERT; the two excluded ones are what the decay rule must skip.
TINY = {
    "bert/embeddings/word_embeddings": (11, 4),
    "bert/embeddings/LayerNorm/gamma": (4,),
    "bert/encoder/layer_0/attention/self/query/kernel": (4, 4),
    "bert/encoder/layer_0/attention/self/query/bias": (4,),
    "output_weights": (2, 4),
}
TINY_DECAYED = {
    "bert/embeddings/word_embeddings",
    "bert/encoder/layer_0/attention/self/query/kernel",
    "output_weights",
}


def random_problem(seed=0, steps=5, zero_bias=False):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(shape).astype(np.float32) for k, shape in TINY.items()}
    if zero_bias:
        params["bert/encoder/layer_0/attention/self/query/bias"][:] = 0.0
    grads = [
        {k: rng.standard_normal(shape).astype(np.float32) for k, shape in TINY.items()}
        for _ in range(steps)
    ]
    lrs = [learning_rate(s, peak=1e-2, total_steps=10, warmup_steps=2) for s in range(1, steps + 1)]
    return params, grads, lrs


def as_variables(params):
    return {k: tf.Variable(v) for k, v in params.items()}


def run_optimizer(opt, grads_per_step, lrs, in_function):
    def step(grads, lr):
        opt.apply(grads, lr)

    if in_function:
        step = tf.function(step)
    for grads, lr in zip(grads_per_step, lrs):
        step({k: tf.constant(g) for k, g in grads.items()}, tf.constant(lr, tf.float32))


def assert_params_equal(variables, expected, atol=1e-6):
    for name, var in variables.items():
        np.testing.assert_allclose(var.numpy(), expected[name], rtol=0, atol=atol, err_msg=name)


# -------------------------------------------------------------------- AdamWeightDecay

HYPER = dict(wd=0.1, b1=0.9, b2=0.999, eps=1e-6)


@pytest.mark.parametrize("in_function", [False, True], ids=["eager", "tf.function"])
def test_adam_weight_decay_matches_google_reference(in_function):
    params, grads, lrs = random_problem()
    variables = as_variables(params)
    opt = AdamWeightDecay(variables, weight_decay_rate=0.1)
    run_optimizer(opt, grads, lrs, in_function)

    expected, m, v = google_adam_reference(params, grads, lrs, decayed=TINY_DECAYED, **HYPER)
    assert_params_equal(variables, expected)
    for name in TINY:
        np.testing.assert_allclose(opt.adam_m[name].numpy(), m[name], atol=1e-6)
        np.testing.assert_allclose(opt.adam_v[name].numpy(), v[name], atol=1e-6)


def test_adam_weight_decay_is_not_bias_corrected_adam():
    params, grads, lrs = random_problem()
    variables = as_variables(params)
    run_optimizer(AdamWeightDecay(variables, weight_decay_rate=0.1), grads, lrs, in_function=True)

    corrected = bias_corrected_adamw_reference(params, grads, lrs, decayed=TINY_DECAYED, **HYPER)
    for name, var in variables.items():
        # The first steps differ by ~sqrt(1 - b2) / (1 - b1) ≈ 0.3x in step size.
        assert np.max(np.abs(var.numpy() - corrected[name])) > 1e-3, name


def test_adam_weight_decay_skips_decay_for_excluded_names():
    params, grads, lrs = random_problem()
    variables = as_variables(params)
    run_optimizer(AdamWeightDecay(variables, weight_decay_rate=0.1), grads, lrs, in_function=True)
    # Against a reference that decays everything, only the excluded variables disagree.
    all_decayed, _, _ = google_adam_reference(params, grads, lrs, decayed=set(TINY), **HYPER)
    for name, var in variables.items():
        same = np.allclose(var.numpy(), all_decayed[name], rtol=0, atol=1e-6)
        assert same == (name in TINY_DECAYED), name


@pytest.mark.parametrize("inside", [False, True], ids=["google-eps", "habana-eps"])
def test_adam_weight_decay_epsilon_forms(inside):
    # Small gradients and a large epsilon make the two forms differ visibly.
    params, grads, lrs = random_problem()
    grads = [{k: g * 1e-2 for k, g in step.items()} for step in grads]
    hyper = dict(HYPER, eps=1e-2)
    variables = as_variables(params)
    opt = AdamWeightDecay(
        variables, weight_decay_rate=0.1, epsilon=1e-2, epsilon_inside_sqrt=inside
    )
    run_optimizer(opt, grads, lrs, in_function=True)

    same, _, _ = google_adam_reference(
        params, grads, lrs, decayed=TINY_DECAYED, eps_inside=inside, **hyper
    )
    other, _, _ = google_adam_reference(
        params, grads, lrs, decayed=TINY_DECAYED, eps_inside=not inside, **hyper
    )
    assert_params_equal(variables, same)
    name = "output_weights"
    assert np.max(np.abs(variables[name].numpy() - other[name])) > 1e-4


def test_distilbert_hyperparameters_are_honoured():
    # Habana's DistilBERT: weight decay 0.0, beta1 0.8, beta2 0.95.
    params, grads, lrs = random_problem()
    variables = as_variables(params)
    opt = AdamWeightDecay(variables, weight_decay_rate=0.0, beta_1=0.8, beta_2=0.95)
    run_optimizer(opt, grads, lrs, in_function=True)
    hyper = dict(wd=0.0, b1=0.8, b2=0.95, eps=1e-6)
    expected, _, _ = google_adam_reference(params, grads, lrs, decayed=TINY_DECAYED, **hyper)
    assert_params_equal(variables, expected)


def test_none_gradients_leave_variable_and_slots_alone():
    params, grads, lrs = random_problem(steps=1)
    variables = as_variables(params)
    opt = AdamWeightDecay(variables)
    frozen = "bert/embeddings/LayerNorm/gamma"
    step_grads = {k: (None if k == frozen else tf.constant(g)) for k, g in grads[0].items()}
    tf.function(opt.apply)(step_grads, lrs[0])
    np.testing.assert_array_equal(variables[frozen].numpy(), params[frozen])
    assert not opt.adam_m[frozen].numpy().any() and not opt.adam_v[frozen].numpy().any()
    assert not np.array_equal(variables["output_weights"].numpy(), params["output_weights"])


def test_apply_gradients_takes_pairs_like_apply():
    params, grads, lrs = random_problem(steps=2)
    by_dict, by_pairs = as_variables(params), as_variables(params)
    opt_dict, opt_pairs = AdamWeightDecay(by_dict), AdamWeightDecay(by_pairs)
    for step_grads, lr in zip(grads, lrs):
        opt_dict.apply(step_grads, lr)
        opt_pairs.apply_gradients([(tf.constant(g), k) for k, g in step_grads.items()], lr)
    for name in TINY:
        np.testing.assert_array_equal(by_dict[name].numpy(), by_pairs[name].numpy())


def test_gradient_for_an_unknown_variable_is_an_error():
    opt = AdamWeightDecay({"output_bias": tf.Variable(tf.zeros([2]))})
    with pytest.raises(ValueError, match="output_weights"):
        opt.apply({"output_weights": tf.zeros([2, 4])}, 1e-3)


def test_indexed_slices_gradient_from_gather():
    rng = np.random.default_rng(3)
    table0 = rng.standard_normal((7, 3)).astype(np.float32)
    weights = rng.standard_normal((4, 3)).astype(np.float32)
    ids = tf.constant([1, 4, 1, 6])  # id 1 twice: its rows must be summed

    sparse_var = tf.Variable(table0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.gather(sparse_var, ids) * weights)
    grad = tape.gradient(loss, sparse_var)
    assert isinstance(grad, tf.IndexedSlices)

    name = "bert/embeddings/word_embeddings"
    opt = AdamWeightDecay({name: sparse_var})
    tf.function(opt.apply)({name: grad}, 1e-2)

    dense_grad = np.zeros_like(table0)
    np.add.at(dense_grad, ids.numpy(), weights)
    expected, _, _ = google_adam_reference(
        {name: table0},
        [{name: dense_grad}],
        [1e-2],
        decayed={name},
        wd=0.01,
        b1=0.9,
        b2=0.999,
        eps=1e-6,
    )
    np.testing.assert_allclose(sparse_var.numpy(), expected[name], rtol=0, atol=1e-6)
    # Rows no id touched only decay.
    np.testing.assert_allclose(sparse_var.numpy()[0], table0[0] * (1 - 1e-2 * 0.01), rtol=1e-6)


# ------------------------------------------------------------------------------- slots


def test_slot_names_and_tracking():
    variables = as_variables(random_problem()[0])
    opt = AdamWeightDecay(variables)
    expected = {f"{k}/{slot}" for k in TINY for slot in ("adam_m", "adam_v")}
    assert set(opt.slots) == expected
    for name, slot in opt.slots.items():
        assert slot.name == f"{name}:0"
        assert not slot.trainable and slot.dtype == tf.float32
        assert slot.shape == TINY[name.rsplit("/", 1)[0]]
    # The optimizer owns its state only (slots and step count), never the model's variables.
    assert {v.ref() for v in opt.variables} == {v.ref() for v in opt.state.values()}
    assert set(opt.state) == expected | {"global_step"}
    assert opt.trainable_variables == ()


def test_checkpoint_round_trip(tmp_path):
    params, grads, lrs = random_problem()
    variables = as_variables(params)
    opt = AdamWeightDecay(variables)
    run_optimizer(opt, grads[:2], lrs[:2], in_function=True)
    saved = {name: slot.numpy() for name, slot in opt.slots.items()}
    assert all(value.any() for value in saved.values())

    prefix = tf.train.Checkpoint(optimizer=opt).save(str(tmp_path / "ckpt"))
    keys = {name for name, _ in tf.train.list_variables(prefix)}
    # Model variables are not saved under the optimizer (checkpoint.py expects them under model/).
    saved_values = {key for key in keys if key.endswith("/.ATTRIBUTES/VARIABLE_VALUE")}
    not_slots = {
        key
        for key in saved_values
        if not key.startswith(("optimizer/adam_", "optimizer/iterations/", "save_counter/"))
    }
    assert not_slots == set()
    assert "optimizer/adam_m/output_weights/.ATTRIBUTES/VARIABLE_VALUE" in keys

    run_optimizer(opt, grads[2:], lrs[2:], in_function=True)
    assert not np.array_equal(
        opt.slots["output_weights/adam_v"].numpy(), saved["output_weights/adam_v"]
    )

    fresh = AdamWeightDecay(as_variables(params))
    tf.train.Checkpoint(optimizer=fresh).restore(prefix).assert_existing_objects_matched()
    tf.train.Checkpoint(optimizer=opt).restore(prefix).assert_existing_objects_matched()
    for restored in (fresh, opt):
        for name, value in saved.items():
            np.testing.assert_array_equal(restored.slots[name].numpy(), value, err_msg=name)


# -------------------------------------------------------------------------- clipping


def test_clip_by_global_norm_matches_numpy():
    rng = np.random.default_rng(5)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5), "c": None}
    grads = {k: None if g is None else g.astype(np.float32) for k, g in grads.items()}
    clipped, norm = clip_by_global_norm(
        {k: None if g is None else tf.constant(g) for k, g in grads.items()}
    )

    expected_norm = np.sqrt(
        sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values() if g is not None)
    )
    assert expected_norm > 1.0
    assert float(norm) == pytest.approx(expected_norm, rel=1e-6)
    assert list(clipped) == ["a", "b", "c"] and clipped["c"] is None
    for name in ("a", "b"):
        np.testing.assert_allclose(clipped[name].numpy(), grads[name] / expected_norm, rtol=1e-6)
    clipped_norm = np.sqrt(sum(np.sum(clipped[k].numpy() ** 2) for k in ("a", "b")))
    assert clipped_norm == pytest.approx(1.0, rel=1e-6)


def test_clip_by_global_norm_is_a_no_op_below_the_threshold():
    grads = {"a": tf.constant([0.3, -0.4]), "b": tf.constant([[0.1]])}
    clipped, norm = clip_by_global_norm(grads, clip_norm=1.0)
    assert float(norm) == pytest.approx(np.sqrt(0.26), rel=1e-6)
    for name in grads:
        np.testing.assert_array_equal(clipped[name].numpy(), grads[name].numpy())


def test_clip_by_global_norm_keeps_the_op_names_the_bf16_json_uses():
    @tf.function
    def clip(a, b):
        return clip_by_global_norm({"a": a, "b": b})

    graph = clip.get_concrete_function(tf.TensorSpec([3]), tf.TensorSpec([2, 2])).graph
    names = {op.name for op in graph.get_operations()}
    assert {"clip_by_global_norm/mul", "global_norm/global_norm"} <= names


def test_clip_by_global_norm_accepts_indexed_slices():
    var = tf.Variable(tf.ones([5, 2]))
    with tf.GradientTape() as tape:
        loss = 10.0 * tf.reduce_sum(tf.gather(var, [0, 3]))
    grad = tape.gradient(loss, var)
    clipped, norm = clip_by_global_norm({"emb": grad})
    assert float(norm) == pytest.approx(20.0, rel=1e-6)
    np.testing.assert_allclose(
        tf.convert_to_tensor(clipped["emb"]).numpy().sum(), 4 * 10.0 / 20.0, rtol=1e-6
    )


# -------------------------------------------------------------------------------- LAMB


@pytest.mark.parametrize("in_function", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize(
    "optimizer, reference",
    [("habana", "habana_lamb_reference"), ("albert", "albert_lamb_reference")],
)
def test_lamb_matches_its_upstream_reference(in_function, optimizer, reference):
    # A zero bias exercises the trust ratio's fallback to 1.
    params, grads, lrs = random_problem(zero_bias=True)
    variables = as_variables(params)
    opt = {"habana": Lamb, "albert": GoogleLamb}[optimizer](variables, weight_decay_rate=0.1)
    run_optimizer(opt, grads, lrs, in_function)

    expected, m, v = globals()[reference](params, grads, lrs, decayed=TINY_DECAYED, **HYPER)
    assert_params_equal(variables, expected)
    for name in TINY:
        np.testing.assert_allclose(opt.adam_m[name].numpy(), m[name], atol=1e-6)
        np.testing.assert_allclose(opt.adam_v[name].numpy(), v[name], atol=1e-6)
    assert int(opt.iterations) == len(grads)


def test_the_two_lambs_differ():
    """ALBERT's has no bias correction and no trust ratio where there is no decay."""
    params, grads, lrs = random_problem(zero_bias=True)
    habana, _, _ = habana_lamb_reference(params, grads, lrs, decayed=TINY_DECAYED, **HYPER)
    albert, _, _ = albert_lamb_reference(params, grads, lrs, decayed=TINY_DECAYED, **HYPER)
    assert all(not np.allclose(albert[k], habana[k], atol=1e-6) for k in TINY)


def test_lamb_resumes_its_step_count_from_a_checkpoint(tmp_path):
    params, grads, lrs = random_problem()
    straight = as_variables(params)
    run_optimizer(Lamb(straight), grads, lrs, in_function=True)

    resumed = as_variables(params)
    first = Lamb(resumed)
    run_optimizer(first, grads[:3], lrs[:3], in_function=True)
    prefix = tf.train.Checkpoint(optimizer=first).save(str(tmp_path / "ckpt"))
    second = Lamb(resumed)
    tf.train.Checkpoint(optimizer=second).restore(prefix).assert_existing_objects_matched()
    assert int(second.iterations) == 3
    run_optimizer(second, grads[3:], lrs[3:], in_function=True)
    for name in TINY:
        np.testing.assert_allclose(resumed[name].numpy(), straight[name].numpy(), rtol=0, atol=1e-7)


def albert_lamb_reference(params, grads_per_step, lrs, *, wd, b1, b2, eps, decayed):
    """google-research/albert's LAMBOptimizer.apply_gradients, in float64: no bias
    correction, and no trust ratio where there is no decay."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for grads, lr in zip(grads_per_step, lrs):
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            u = m[k] / (np.sqrt(v[k]) + eps)
            ratio = 1.0
            if k in decayed:
                u = u + wd * params[k]
                w_norm, u_norm = np.linalg.norm(params[k]), np.linalg.norm(u)
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
            params[k] = params[k] - ratio * lr * u
    return params, m, v


@pytest.mark.parametrize("in_function", [False, True], ids=["eager", "tf.function"])
def test_bias_corrected_adam_weight_decay_with_rate_multipliers_is_keras_adamw(in_function):
    # NVIDIA's ELECTRA fine-tuning: Keras Adam's bias correction, decoupled decay, and each
    # variable's rate scaled by its layer's multiplier. Reference: one Keras AdamW per
    # variable at that variable's rate (Keras decays by lr * wd * w, then steps).
    params, grads, _ = random_problem()
    lrs = [1e-2] * len(grads)
    multipliers = {name: 0.8**index for index, name in enumerate(TINY)}
    variables = as_variables(params)
    opt = AdamWeightDecay(
        variables, weight_decay_rate=0.1, bias_correction=True, rate_multipliers=multipliers
    )
    run_optimizer(opt, grads, lrs, in_function)

    for name, initial in params.items():
        reference = tf.Variable(initial, name=name)
        keras = tf.keras.optimizers.AdamW(
            learning_rate=lrs[0] * multipliers[name],
            weight_decay=0.1 if name in TINY_DECAYED else 0.0,
            epsilon=1e-6,
        )
        for step in grads:
            keras.apply_gradients([(tf.constant(step[name]), reference)])
        np.testing.assert_allclose(variables[name].numpy(), reference.numpy(), atol=1e-6)


def test_rate_multipliers_for_unknown_variables_are_refused():
    variables = as_variables(random_problem()[0])
    with pytest.raises(ValueError, match="not_a_variable"):
        AdamWeightDecay(variables, rate_multipliers={"not_a_variable": 0.5})
