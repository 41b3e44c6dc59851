r"""A pre-training checkpoint as HuggingFace ELECTRA folders, as upstream's
``postprocess_pretrained_ckpt.py`` makes them for fine-tuning:

    python postprocess_pretrained_ckpt.py \
      --pretrained_checkpoint=results/models/base/checkpoints/ckpt-10000 \
      --output_dir=results/models/base/weights

writes ``<output_dir>/discriminator/`` and ``<output_dir>/generator/``, each a
``config.json`` and ``model.safetensors`` that HuggingFace's ``ElectraForPreTraining``
/ ``ElectraForMaskedLM`` load with no key missing, and that ``run_pretraining.py
--load_weights`` and SQuAD fine-tuning read. The networks' shapes come from the run's
``pretrain_config.json`` beside the checkpoint. Upstream writes Keras ``tf_model.h5``
files; these hold the same weights under HuggingFace's PyTorch keys.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from bertfam.atomic import write_text  # noqa: E402
from bertfam.checkpoints import (  # noqa: E402
    ELECTRA_GENERATOR_TABLE,
    ELECTRA_TABLE,
    google_weights_as_hf,
)
from bertfam.electra_config import ElectraConfig  # noqa: E402
from bertfam.errors import FlagError, UserError, report_and_exit  # noqa: E402

PROG = "postprocess_pretrained_ckpt.py"
GENERATOR_SCOPES = ("generator/", "generator_predictions/")


def parse_flags(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--pretrained_checkpoint", required=True, help="A ckpt-<step> prefix")
    p.add_argument("--output_dir", required=True, help="Where discriminator/, generator/ go")
    p.add_argument("--hmp", action="store_true",
                   help="The run trained in bf16 (the weights are fp32 either way)")  # fmt: skip
    return p.parse_args(argv)


def run_settings(prefix: str) -> dict:
    """The run's pretrain_config.json, beside the checkpoint."""
    path = Path(prefix).parent / "pretrain_config.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(settings.get("model"), dict) and "generator_hidden_size" in settings:
            return settings
        raise ValueError("not a run's settings")
    except (OSError, ValueError, AttributeError):
        raise UserError(
            f"{path}: cannot read it (run_pretraining.py writes it beside its checkpoints; "
            "the networks' shapes come from it)"
        ) from None


def hf_config(config: ElectraConfig, architecture: str) -> dict:
    values = {k: v for k, v in config.to_dict().items() if k != "source"}
    return {**values, "model_type": "electra", "architectures": [architecture]}


def write_folder(folder: Path, config: dict, weights: dict) -> None:
    """config.json and model.safetensors, each written whole or not at all."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".model.safetensors.{os.getpid()}.tmp"
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(temporary))
    os.replace(temporary, folder / "model.safetensors")
    write_text(folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> None:
    args = parse_flags(argv)
    try:
        if not Path(f"{args.pretrained_checkpoint}.index").is_file():
            raise FlagError(
                f"--pretrained_checkpoint={args.pretrained_checkpoint}: no such checkpoint "
                f"({args.pretrained_checkpoint}.index)"
            )
        settings = run_settings(args.pretrained_checkpoint)
        discriminator = ElectraConfig.from_dict(settings["model"])
        generator = discriminator.generator(settings["generator_hidden_size"])
        from bertfam.tf.checkpoint import read_tf_checkpoint  # TensorFlow loads here

        weights = {
            name: value
            for name, value in read_tf_checkpoint(args.pretrained_checkpoint).items()
            if name.startswith(("electra/", "discriminator_predictions/", *GENERATOR_SCOPES))
        }
        shared = {k: v for k, v in weights.items() if k.startswith("electra/embeddings/")}
        ours = {k: v for k, v in weights.items() if not k.startswith(GENERATOR_SCOPES)}
        theirs = {k: v for k, v in weights.items() if k.startswith(GENERATOR_SCOPES)}
        output = Path(args.output_dir)
        write_folder(
            output / "discriminator",
            hf_config(discriminator, "ElectraForPreTraining"),
            google_weights_as_hf(ours, ELECTRA_TABLE),
        )
        write_folder(
            output / "generator",
            hf_config(generator, "ElectraForMaskedLM"),
            google_weights_as_hf({**shared, **theirs}, ELECTRA_GENERATOR_TABLE),
        )
        print(f"Wrote {output / 'discriminator'} and {output / 'generator'}")
    except UserError as error:
        report_and_exit(error, prog=PROG)


if __name__ == "__main__":
    main()
