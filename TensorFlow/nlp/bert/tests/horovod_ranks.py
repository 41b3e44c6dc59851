"""Run under mpirun by test_horovod.py: train with Horovod, then every rank saves its weights.

Rank 0 alone writes the run's outputs, so this driver is how a test sees the other
ranks' weights. Usage: mpirun -np 2 python horovod_ranks.py <weights_prefix> <run_squad flags>
"""

import sys
from pathlib import Path

import numpy as np
from absl import flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses  # noqa: E402

import run_squad  # noqa: E402  (defines the flags)
from recipe import RECIPE  # noqa: E402

from bertfam.tf.prepare import prepare_squad  # noqa: E402
from bertfam.tf.squad import run_squad as train  # noqa: E402


def main() -> None:
    prefix, argv = sys.argv[1], sys.argv[:1] + sys.argv[2:]
    flags.FLAGS(argv)
    config = run_squad.SCRIPT.config_from_flags()
    built = []

    def build(model_config, precision):
        built.append(RECIPE.squad_model(model_config, precision))
        return built[0]

    recipe = dataclasses.replace(RECIPE, squad_model=build)
    train(config, prepare_squad(config, recipe), recipe)
    import horovod.tensorflow as hvd

    weights = {v.name: v.numpy() for v in built[0].trainable_variables}
    np.savez(f"{prefix}{hvd.rank()}.npz", **weights)


if __name__ == "__main__":
    main()
