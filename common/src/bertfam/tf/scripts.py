"""The task entry points: a model folder's ``run_squad.py`` or ``run_classifier.py`` hands
its recipe (`bertfam.tf.recipe.ModelRecipe`) to one of these and runs it.

Making a script defines its flags (as an upstream script does on import: the recipe's
config flag, its defaults and the task's flags); running it parses them once into the
task's frozen config, checks every input before TensorFlow is imported, then runs the
task's flow. Bad input is one line and exit status 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from absl import app, flags

from bertfam.errors import UserError, report_and_exit
from bertfam.tf.flags import (
    config_from_flags,
    define_classifier_flags,
    define_pretraining_flags,
    define_squad_flags,
    pretraining_values,
)
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import ClassifierRunConfig, RunConfig, SquadRunConfig


@dataclass(frozen=True)
class TaskScript:
    """One task for one model: `prepare(config, recipe)` checks and reads the inputs
    (TensorFlow-free); `flow(config, prepared, recipe)` runs the task."""

    recipe: ModelRecipe
    config_class: type
    prepare: Callable
    flow: Callable
    prog: str
    # Refuses what the script accepts but does not do, and folds its own flag names into
    # the shared ones (ALBERT's --train_step is --num_train_steps), on the parsed flags.
    fold_flags: Optional[Callable] = None
    # Its flags that fill config fields of another name: {flag: field}.
    renamed: Mapping[str, str] = field(default_factory=dict)

    def config_from_flags(self) -> RunConfig:
        if self.fold_flags is not None:
            self.fold_flags(flags.FLAGS)
        return config_from_flags(self.config_class, flags.FLAGS, self.recipe, self.renamed)

    def main(self, argv) -> None:
        """For ``app.run``: run the task as the flags say."""
        del argv  # absl has parsed the flags
        logging.getLogger().setLevel(logging.INFO)
        try:
            config = self.config_from_flags()
            prepared = self.prepare(config, self.recipe)
            self.flow(config, prepared, self.recipe)
        except UserError as error:
            report_and_exit(error, prog=self.prog)

    def run(self) -> None:
        app.run(self.main)


def _define(recipe: ModelRecipe, define_task_flags: Callable, required: tuple) -> None:
    define_task_flags()
    flags.DEFINE_string(recipe.config_flag, None, "The model's config JSON (architecture).")
    for name, value in recipe.defaults.items():
        flags.FLAGS.set_default(name, value)
    for name in (*required, "vocab_file", recipe.config_flag, "output_dir"):
        flags.mark_flag_as_required(name)


def run_squad(config, prepared, recipe) -> dict:
    from bertfam.tf.squad import run_squad  # TensorFlow loads here, inputs checked

    return run_squad(config, prepared, recipe)


def run_classifier(config, prepared, recipe) -> dict:
    from bertfam.tf.classifier import run_classifier  # TensorFlow loads here, inputs checked

    return run_classifier(config, prepared, recipe)


def run_pretraining(config, prepared, recipe) -> dict:
    from bertfam.tf.pretraining import run_pretraining  # inputs checked

    return run_pretraining(config, prepared, recipe)


def prepare_pretraining(config, recipe, variant=None):
    """`variant`: a model's `bertfam.tf.pretraining.PretrainingVariant`, else Habana BERT's."""
    from bertfam.tf.pretraining import HABANA_BERT, prepare_pretraining

    return prepare_pretraining(config, recipe, variant or HABANA_BERT)


def pretraining_script(recipe: ModelRecipe) -> TaskScript:
    """The upstream TF BERT ``run_pretraining.py`` for `recipe`'s pre-training model."""
    from bertfam.tf.pretraining import PretrainingRunConfig

    define_pretraining_flags()
    flags.DEFINE_string(recipe.config_flag, None, "The model's config JSON (architecture).")
    for name in (recipe.config_flag, "output_dir"):
        flags.mark_flag_as_required(name)
    return TaskScript(
        recipe,
        PretrainingRunConfig,
        prepare_pretraining,
        run_pretraining,
        "run_pretraining.py",
        fold_flags=pretraining_values,
    )


def squad_script(recipe: ModelRecipe) -> TaskScript:
    """Google's ``run_squad.py`` for `recipe`'s span model."""
    from bertfam.tf.prepare import prepare_squad

    _define(recipe, define_squad_flags, ())
    return TaskScript(recipe, SquadRunConfig, prepare_squad, run_squad, "run_squad.py")


def classifier_script(recipe: ModelRecipe) -> TaskScript:
    """Google's ``run_classifier.py`` for `recipe`'s classifier."""
    from bertfam.tf.prepare import prepare_classifier

    _define(recipe, define_classifier_flags, ("data_dir", "task_name"))
    return TaskScript(
        recipe,
        ClassifierRunConfig,
        prepare_classifier,
        run_classifier,
        "run_classifier.py",
    )
