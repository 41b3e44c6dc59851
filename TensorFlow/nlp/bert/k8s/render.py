r"""The cluster manifests of the seed's flows, from one set of parameters.

    python k8s/render.py --device gaudi --out k8s/rendered \
        --set image=registry.example.com/bertfam:1.0 --set data=/data/bert --set workers=2
    kubectl apply -f k8s/rendered/

Writes, from ``k8s/templates/``: the data-generation Job, the 1-card phase 1 Job, and
Kubeflow MPIJobs (``kubeflow.org/v2beta1``) for phase 1, phase 2 and MRPC on
``workers`` nodes of ``cards`` cards each. Everything a site changes is in `PARAMETERS`
below (or ``--set name=value``): the image, where the repository sits in it, the data and
output paths and their PersistentVolumeClaims, the device (``habana.ai/gaudi`` or
``nvidia.com/gpu``), and the command lines' flags. Parameters may name others
(``${data}``), so paths are given once.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path
from typing import Dict, List, Optional

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEVICE_RESOURCES = {"gaudi": "habana.ai/gaudi", "gpu": "nvidia.com/gpu"}

WEIGHTS = "${data}/download/google_pretrained_weights/uncased_L-24_H-1024_A-16"
PARAMETERS: Dict[str, str] = {
    "name": "bert",
    "image": "bertfam:latest",
    "repo": "/workspace/bertfam",  # where the repository is inside the image
    "data": "/data/bert",
    "data_claim": "bert-data",
    "output": "/results/bert",
    "output_claim": "bert-results",
    "cards": "8",
    "workers": "1",
    "cpus": "16",
    "phase1_steps": "7038",
    "phase2_steps": "1564",
    "phase1_flags": (
        f"--bert_config_file={WEIGHTS}/bert_config.json"
        " --input_files_dir=${data}/tfrecord/seq_len_128/wikicorpus_en/training"
        " --eval_files_dir=${data}/tfrecord/seq_len_128/wikicorpus_en/test"
        " --do_train=true --do_eval=true --train_batch_size=64 --max_seq_length=128"
        " --max_predictions_per_seq=20 --num_train_steps=${phase1_steps}"
        " --num_warmup_steps=2000 --learning_rate=7.5e-4 --optimizer_type=lamb"
        " --save_checkpoints_steps=100 --bf16_config_path=bf16_config/bert.json"
        " --noamp --nouse_xla"
    ),
    "phase2_flags": (
        f"--bert_config_file={WEIGHTS}/bert_config.json"
        " --input_files_dir=${data}/tfrecord/seq_len_512/wikicorpus_en/training"
        " --eval_files_dir=${data}/tfrecord/seq_len_512/wikicorpus_en/test"
        " --do_train=true --do_eval=true --train_batch_size=8 --max_seq_length=512"
        " --max_predictions_per_seq=80 --num_train_steps=${phase2_steps}"
        " --num_warmup_steps=200 --learning_rate=5e-4 --optimizer_type=lamb"
        " --save_checkpoints_steps=100 --bf16_config_path=bf16_config/bert.json"
        " --noamp --nouse_xla"
    ),
    "mrpc_flags": (
        f"--task_name=MRPC --do_train=true --do_eval=true --data_dir=${{data}}/MRPC"
        f" --vocab_file={WEIGHTS}/vocab.txt --bert_config_file={WEIGHTS}/bert_config.json"
        " --max_seq_length=128 --train_batch_size=32 --learning_rate=2e-5"
        " --num_train_epochs=3 --bf16_config_path=bf16_config/bert.json"
    ),
}


def parameters(device: str, overrides: Dict[str, str]) -> Dict[str, str]:
    """`PARAMETERS` with `overrides`, the device's resource name and the rank count,
    every ``${name}`` inside a value resolved."""
    values = {**PARAMETERS, **overrides, "device_resource": DEVICE_RESOURCES[device]}
    values["ranks"] = str(int(values["cards"]) * int(values["workers"]))
    for _ in range(3):  # values naming values naming values
        values = {k: string.Template(v).substitute(values) for k, v in values.items()}
    return values


def render(device: str, overrides: Dict[str, str]) -> Dict[str, str]:
    """{file name: manifest text} for every template."""
    values = parameters(device, overrides)
    return {
        path.name: string.Template(path.read_text()).substitute(values)
        for path in sorted(TEMPLATES.glob("*.yaml"))
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=sorted(DEVICE_RESOURCES), default="gaudi")
    parser.add_argument("--out", required=True, help="folder for the rendered manifests")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in PARAMETERS:
            parser.error(f"--set {item}: no parameter {name!r} (see PARAMETERS)")
        overrides[name] = value
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render(args.device, overrides).items():
        (out / name).write_text(text)
        print(out / name, file=sys.stderr)


if __name__ == "__main__":
    main()
