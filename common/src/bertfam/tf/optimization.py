"""BERT's learning-rate schedules, weight-decay rule and optimizers, on TF2 core APIs.

What upstream does, and where:

- google-research/bert ``optimization.py``: ``create_optimizer`` decays the learning rate
  linearly from the peak to 0 over the run, replaced by a linear warm-up while
  ``step < warmup``; ``AdamWeightDecayOptimizer`` is Adam *without* bias correction, with
  decoupled weight decay skipped for variables whose name matches "LayerNorm",
  "layer_norm" or "bias"; gradients are clipped to a global norm of 1.0 first.
- HabanaAI/Model-References ``TensorFlow/nlp/bert/optimization.py`` (NVIDIA's variant, also
  copied into ``distilbert/``): with ``optimizer_type=adam`` the decay starts from
  ``peak / (1 - warmup/total) ** power`` so that it meets the warm-up at ``peak`` without a
  step (our ``schedule="adjusted"``); with ``lamb`` it is Google's curve with power 0.5.
  Its Adam computes ``m * rsqrt(v + eps**2)`` where Google computes ``m / (sqrt(v) + eps)``
  (``epsilon_inside_sqrt`` here), and its LAMB adds bias correction and a per-variable
  trust ratio ``|w| / |update|``.

The optimizers are `tf.Module`s over a ``{checkpoint name: tf.Variable}`` dict: slots are
created eagerly, named ``<name>/adam_m`` and ``<name>/adam_v`` as in Google's checkpoints,
and updated by ``apply`` inside or outside ``tf.function``; ``iterations`` counts the
updates (Google's ``global_step``, which LAMB's bias correction reads). No Keras optimizer
is involved: Keras Adam always bias-corrects.
"""

from __future__ import annotations

import numbers
import re
import types
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from bertfam.errors import UserError

SCHEDULES = ("adjusted", "google")

# Google's `create_optimizer` list, kept by Habana and used for LAMB too. Renaming a layer
# so that one of these stops (or starts) matching silently changes training.
DECAY_EXCLUDED = ("LayerNorm", "layer_norm", "bias")

Gradient = Union[tf.Tensor, tf.IndexedSlices, None]


class ScheduleError(UserError):
    """A learning-rate schedule asked for with impossible settings."""


# ---------------------------------------------------------------------------- schedule


def learning_rate(
    step,
    *,
    peak: float,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "adjusted",
    power: float = 1.0,
    warmup_start: int = 0,
    end_rate: float = 0.0,
):
    """The rate at global step ``step`` (updates done so far): a float, or a float32 tensor.

    Warm-up ``peak * step / warmup_steps`` while ``step < warmup_steps``; then polynomial
    decay ``start * (1 - min(step, total) / total) ** power``, which reaches 0 at
    ``total_steps`` and stays there. ``start`` is ``peak`` for "google" and
    ``peak / (1 - warmup / total) ** power`` for "adjusted", whose decay therefore equals
    ``peak`` exactly where warm-up ends.

    ``warmup_start`` (google-research/albert's ``--start_warmup_step``) counts the warm-up
    from that step instead: ``peak * (step - warmup_start) / warmup_steps`` while
    ``step - warmup_start < warmup_steps``. Before it the rate is 0 (upstream's formula
    goes negative there).

    ``end_rate`` (ELECTRA's ``--end_lr``) is where the decay ends instead of 0, as Keras's
    ``PolynomialDecay``: ``(start - end) * (1 - step / total) ** power + end``.
    """
    _check_schedule(peak, total_steps, warmup_steps, schedule, power)
    start = _decay_start(peak, total_steps, warmup_steps, schedule, power)
    if isinstance(step, numbers.Real):
        rate = _rate_of_number(
            float(step), peak, start - end_rate, total_steps, warmup_steps, power, warmup_start
        )
        warming = float(step) - warmup_start < warmup_steps
        return rate if warming else rate + end_rate
    step = tf.cast(step, tf.float32)
    rate = _rate_of_tensor(
        step, peak, start - end_rate, total_steps, warmup_steps, power, warmup_start
    )
    if end_rate == 0.0:
        return rate
    warming = step - float(warmup_start) < warmup_steps
    return tf.where(warming, rate, rate + end_rate)


def _check_schedule(peak, total_steps, warmup_steps, schedule, power) -> None:
    if schedule not in SCHEDULES:
        raise ScheduleError(f"unknown learning-rate schedule {schedule!r}; use one of {SCHEDULES}")
    if total_steps < 0 or warmup_steps < 0:
        raise ScheduleError(
            f"step counts must not be negative (total_steps={total_steps}, "
            f"warmup_steps={warmup_steps})"
        )
    if peak < 0 or power <= 0:
        raise ScheduleError(f"need peak >= 0 and power > 0 (peak={peak}, power={power})")


def _decay_start(peak, total_steps, warmup_steps, schedule, power) -> float:
    # When warm-up covers the whole run the decay is never used (the step is already
    # clamped at total when warm-up ends), so there is nothing to adjust.
    if schedule == "google" or warmup_steps == 0 or warmup_steps >= total_steps:
        return peak
    return peak / (1.0 - warmup_steps / total_steps) ** power


def _decayed(start, clamped_step, total_steps, power):
    if total_steps == 0:
        return 0.0 * clamped_step  # a run of no steps has nothing to decay; keeps the type
    return start * (1.0 - clamped_step / total_steps) ** power


def _rate_of_number(step, peak, start, total_steps, warmup_steps, power, warmup_start=0):
    warmed = step - warmup_start
    if warmed < warmup_steps:
        return peak * max(warmed, 0.0) / warmup_steps
    return _decayed(start, min(step, total_steps), total_steps, power)


def _rate_of_tensor(step, peak, start, total_steps, warmup_steps, power, warmup_start=0):
    decayed = _decayed(start, tf.minimum(step, float(total_steps)), total_steps, power)
    if warmup_steps == 0:
        return decayed
    warmed = step - float(warmup_start)
    return tf.where(warmed < warmup_steps, peak * tf.maximum(warmed, 0.0) / warmup_steps, decayed)


# ------------------------------------------------------------------------ weight decay


def decays(name: str, excluded: Sequence[str] = DECAY_EXCLUDED) -> bool:
    """Whether the variable with this checkpoint name gets weight decay.

    As Google's ``_do_use_weight_decay``: excluded when any pattern ``re.search``-es the name
    (the default patterns are plain substrings).
    """
    return not any(re.search(pattern, name) for pattern in excluded)


# ------------------------------------------------------------------------------ clipping


def clip_by_global_norm(
    grads: Mapping[str, Gradient], clip_norm: float = 1.0
) -> Tuple[Dict[str, Gradient], tf.Tensor]:
    """``tf.clip_by_global_norm`` over a ``{name: gradient}`` dict: (clipped dict, norm).

    TensorFlow's own op does the work, unwrapped, so a traced graph keeps its op names
    (``global_norm/global_norm``, ``clip_by_global_norm/mul``) that the upstream bf16
    JSON refers to. None gradients stay None; the norm returned is the one before clipping.
    """
    names = list(grads)
    clipped, norm = tf.clip_by_global_norm([grads[name] for name in names], clip_norm)
    return dict(zip(names, clipped)), norm


# ---------------------------------------------------------------------------- optimizers


class _AdamMoments(tf.Module):
    """Slots and the update loop shared by AdamWeightDecay and Lamb."""

    # The model's variables are looked up by name but not owned: tracking them would put
    # them in `self.variables` and give them a second path (`optimizer/...`) in checkpoints.
    _TF_MODULE_IGNORED_PROPERTIES = frozenset(("_params",)).union(
        tf.Module._TF_MODULE_IGNORED_PROPERTIES
    )

    def __init__(
        self,
        variables_by_name: Mapping[str, tf.Variable],
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        exclude_from_weight_decay: Sequence[str] = DECAY_EXCLUDED,
        *,
        name: str,
    ):
        super().__init__(name=name)
        # A mapping proxy is not wrapped (and so not tracked) by tf.Module's attribute hook.
        self._params = types.MappingProxyType(dict(variables_by_name))
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = tuple(exclude_from_weight_decay)
        # Dict attributes are tracked, so tf.train.Checkpoint saves them as
        # optimizer/adam_m/<escaped name>.
        self.adam_m = {
            name: _zeros_slot(var, f"{name}/adam_m") for name, var in self._params.items()
        }
        self.adam_v = {
            name: _zeros_slot(var, f"{name}/adam_v") for name, var in self._params.items()
        }
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")

    @property
    def slots(self) -> Dict[str, tf.Variable]:
        """{slot checkpoint name: variable}, e.g. ``bert/pooler/dense/kernel/adam_m``."""
        named = {}
        for name in self._params:
            named[f"{name}/adam_m"] = self.adam_m[name]
            named[f"{name}/adam_v"] = self.adam_v[name]
        return named

    @property
    def state(self) -> Dict[str, tf.Variable]:
        """Everything a resumed run needs, by checkpoint name: the slots and ``global_step``."""
        return {**self.slots, "global_step": self.iterations}

    def decays(self, name: str) -> bool:
        return decays(name, self.exclude_from_weight_decay)

    def apply(self, grads: Mapping[str, Gradient], learning_rate) -> None:
        """One update of every variable whose gradient in ``grads`` is not None."""
        unknown = sorted(name for name in grads if name not in self._params)
        if unknown:
            raise ValueError(f"{self.name}: gradients for variables it does not hold: {unknown}")
        dense = {name: _dense(grad) for name, grad in grads.items() if grad is not None}
        t = tf.cast(self.iterations.assign_add(1), tf.float32)
        self._apply_dense(dense, tf.cast(learning_rate, tf.float32), t)

    def apply_gradients(self, grads_and_names: Iterable[Tuple[Gradient, str]], learning_rate):
        """`apply` for ``(gradient, name)`` pairs, in the order Keras' grads_and_vars has."""
        self.apply({name: grad for grad, name in grads_and_names}, learning_rate)

    def _apply_dense(self, grads: Dict[str, tf.Tensor], lr: tf.Tensor, t: tf.Tensor) -> None:
        """Update every variable in `grads`; `t` counts this update from 1."""
        raise NotImplementedError

    def _moments(self, name: str, grad: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        m = self.beta_1 * self.adam_m[name] + (1.0 - self.beta_1) * grad
        v = self.beta_2 * self.adam_v[name] + (1.0 - self.beta_2) * tf.square(grad)
        self.adam_m[name].assign(m)
        self.adam_v[name].assign(v)
        return m, v

    def _with_weight_decay(self, name: str, update: tf.Tensor, param: tf.Tensor) -> tf.Tensor:
        # Decoupled decay: added to the Adam direction, never to the gradient, so it does
        # not pass through m and v ("correct" L2 decay, in Google's words).
        if self.weight_decay_rate and self.decays(name):
            return update + self.weight_decay_rate * param
        return update


def _dense(grad: Gradient) -> tf.Tensor:
    # Embedding lookups give IndexedSlices; upstream densifies them too (Horovod's
    # `sparse_as_dense`, and its Adam arithmetic converts them implicitly).
    return tf.cast(tf.convert_to_tensor(grad), tf.float32)


def _zeros_slot(var: tf.Variable, name: str) -> tf.Variable:
    # Slots stay float32 whatever the variable's dtype, as upstream's get_variable calls.
    return tf.Variable(tf.zeros(var.shape, tf.float32), trainable=False, name=name)


class AdamWeightDecay(_AdamMoments):
    """Google's AdamWeightDecayOptimizer: Adam without bias correction, decoupled decay.

    Per variable: ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g**2``;
    ``u = m / (sqrt(v) + eps)`` (or ``m / sqrt(v + eps**2)`` with ``epsilon_inside_sqrt``,
    as Habana's BERT and DistilBERT copies compute it); ``u += weight_decay_rate * w``
    unless the name is excluded; ``w -= lr * u``.

    NVIDIA's TF2 ELECTRA fine-tuning builds its AdamWeightDecay on Keras Adam, which
    bias-corrects: with ``bias_correction`` the Adam direction (not the decay) is scaled
    by ``sqrt(1 - b2**t) / (1 - b1**t)``. ``rate_multipliers`` scales the learning rate
    of the variables it names (layer-wise decay); the others get the rate as it is.
    """

    def __init__(
        self,
        variables_by_name: Mapping[str, tf.Variable],
        *args,
        epsilon_inside_sqrt: bool = False,
        bias_correction: bool = False,
        rate_multipliers: Optional[Mapping[str, float]] = None,
        name: str = "AdamWeightDecay",
        **kwargs,
    ):
        # The constants and the exclusion list are `_AdamMoments`'s, in the same order.
        super().__init__(variables_by_name, *args, name=name, **kwargs)
        self.epsilon_inside_sqrt = epsilon_inside_sqrt
        self.bias_correction = bias_correction
        unknown = sorted(set(rate_multipliers or {}) - set(self._params))
        if unknown:
            raise ValueError(f"{name}: rate multipliers for variables it does not hold: {unknown}")
        self.rate_multipliers = dict(rate_multipliers or {})

    def _apply_dense(self, grads: Dict[str, tf.Tensor], lr: tf.Tensor, t: tf.Tensor) -> None:
        correction = 1.0
        if self.bias_correction:
            correction = tf.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        for name, grad in grads.items():
            self._step(name, grad, lr * self.rate_multipliers.get(name, 1.0), correction)

    def _step(self, name: str, grad: tf.Tensor, lr: tf.Tensor, correction=1.0) -> None:
        param = self._params[name]
        m, v = self._moments(name, grad)
        if self.epsilon_inside_sqrt:
            update = m * tf.math.rsqrt(v + self.epsilon**2)
        else:
            update = m / (tf.sqrt(v) + self.epsilon)
        update = self._with_weight_decay(name, correction * update, tf.cast(param, tf.float32))
        param.assign_sub(tf.cast(lr * update, param.dtype))


class Lamb(_AdamMoments):
    """LAMB as Habana's (NVIDIA's) TF BERT ``LAMBOptimizer`` computes it.

    Adam moments *with* bias correction, ``t`` counting this update from 1 (upstream reads
    the global step after incrementing it); ``u = m_hat / (sqrt(v_hat) + eps)`` plus
    decoupled decay as in AdamWeightDecay; then every variable, excluded ones included, is
    moved by ``lr * r * u`` with trust ratio ``r = |w| / |u|`` (1 when either norm is 0).
    ``t`` is ``iterations``, saved as ``global_step`` beside the slots, so a run resumed
    from its checkpoint (or from upstream's) goes on with the right correction.
    """

    def __init__(
        self,
        variables_by_name: Mapping[str, tf.Variable],
        *args,
        name: str = "Lamb",
        adapt_excluded: bool = True,
        **kwargs,
    ):
        """`adapt_excluded` False (ELECTRA's ``--skip_adaptive``, tensorflow_addons'
        ``exclude_from_layer_adaptation``): the variables excluded from decay also move
        by ``lr * u``, without a trust ratio."""
        super().__init__(variables_by_name, *args, name=name, **kwargs)
        self.adapt_excluded = adapt_excluded

    def _apply_dense(self, grads: Dict[str, tf.Tensor], lr: tf.Tensor, t: tf.Tensor) -> None:
        for name, grad in grads.items():
            self._step(name, grad, lr, t)

    def _step(self, name: str, grad: tf.Tensor, lr: tf.Tensor, t: tf.Tensor) -> None:
        param = self._params[name]
        weights = tf.cast(param, tf.float32)
        m, v = self._moments(name, grad)
        m_hat = m / (1.0 - tf.pow(self.beta_1, t))
        v_hat = v / (1.0 - tf.pow(self.beta_2, t))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        update = self._with_weight_decay(name, update, weights)
        if self.adapt_excluded or self.decays(name):
            update = _trust_ratio(tf.norm(weights), tf.norm(update)) * update
        param.assign_sub(tf.cast(lr * update, param.dtype))


class GoogleLamb(_AdamMoments):
    """LAMB as google-research/albert's ``LAMBOptimizer`` computes it.

    Unlike Habana's (`Lamb`): no bias correction, ``u = m / (sqrt(v) + eps)`` plus the
    decoupled decay; and the variables excluded from decay (LayerNorm, biases) are also
    excluded from the trust ratio, moving by ``lr * u``; the others by ``lr * r * u``
    with ``r = |w| / |u|`` (1 when either norm is 0).
    """

    def __init__(
        self,
        variables_by_name: Mapping[str, tf.Variable],
        *args,
        name: str = "GoogleLamb",
        **kwargs,
    ):
        super().__init__(variables_by_name, *args, name=name, **kwargs)

    def _apply_dense(self, grads: Dict[str, tf.Tensor], lr: tf.Tensor, t: tf.Tensor) -> None:
        for name, grad in grads.items():
            param = self._params[name]
            weights = tf.cast(param, tf.float32)
            m, v = self._moments(name, grad)
            update = self._with_weight_decay(name, m / (tf.sqrt(v) + self.epsilon), weights)
            if self.decays(name):  # layer adaptation skips what decay skips
                update = _trust_ratio(tf.norm(weights), tf.norm(update)) * update
            param.assign_sub(tf.cast(lr * update, param.dtype))


def _trust_ratio(w_norm: tf.Tensor, u_norm: tf.Tensor) -> tf.Tensor:
    # Zero-initialised variables (biases) and zero updates fall back to plain Adam steps;
    # the inner division is guarded so tf.where never selects (or differentiates) a NaN.
    usable = tf.logical_and(w_norm > 0.0, u_norm > 0.0)
    return tf.where(usable, w_norm / tf.where(usable, u_norm, 1.0), 1.0)


# --------------------------------------------------------------------------- factories
# The training loop builds its optimizer through one of these, from the run's config
# (`bertfam.tf.run_config.RunConfig`: weight_decay_rate, beta_1, beta_2, epsilon), so a
# task picks the optimizer and a model's recipe its constants.


def _constants(config) -> dict:
    return dict(
        weight_decay_rate=config.weight_decay_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
    )


def adamw(variables: Mapping[str, tf.Variable], config, **options) -> AdamWeightDecay:
    """Google's AdamWeightDecay, as every fine-tuning script uses it; `options` are the
    optimizer's other arguments a recipe sets (ELECTRA's ``bias_correction``,
    ``rate_multipliers``)."""
    return AdamWeightDecay(variables, **_constants(config), **options)


def lamb(variables: Mapping[str, tf.Variable], config, **options) -> Lamb:
    """LAMB, as pre-training uses it (`options`: ELECTRA's ``adapt_excluded``)."""
    return Lamb(variables, **_constants(config), **options)


def google_lamb(variables: Mapping[str, tf.Variable], config) -> GoogleLamb:
    """google-research/albert's LAMB (``--optimizer=lamb``)."""
    return GoogleLamb(variables, **_constants(config))
