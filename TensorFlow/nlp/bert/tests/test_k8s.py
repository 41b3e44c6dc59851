"""The k8s manifests: every one parses, has what its kind requires, asks for the device
it was rendered for, and every command line in it is accepted by our scripts' own flag
parsers (checked by parsing, in a fresh process per script)."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

FOLDER = Path(__file__).resolve().parents[1]
RESOURCES = {"gaudi": "habana.ai/gaudi", "gpu": "nvidia.com/gpu"}

# Parse a script's flags as it parses them, and build its config: unknown flags, bad
# values, missing required flags and refused combinations all raise.
CHECK_FLAGS = """
import importlib, sys
sys.argv = sys.argv[1:]
module = importlib.import_module(sys.argv[0][: -len(".py")])
from absl import flags
flags.FLAGS(sys.argv)
print(type(module.SCRIPT.config_from_flags()).__name__)
"""


def rendered(tmp_path, device, *sets):
    out = tmp_path / device
    command = [sys.executable, str(FOLDER / "k8s" / "render.py"), f"--device={device}",
               f"--out={out}", *(f"--set={s}" for s in sets)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(out.glob("*.yaml"))}


def containers(manifest):
    if manifest["kind"] == "Job":
        return {"job": manifest["spec"]["template"]["spec"]["containers"]}
    replicas = manifest["spec"]["mpiReplicaSpecs"]
    return {role: spec["template"]["spec"]["containers"] for role, spec in replicas.items()}


def check_kind(manifest):
    assert manifest["metadata"]["name"]
    if manifest["kind"] == "Job":
        assert manifest["apiVersion"] == "batch/v1"
        assert manifest["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    else:
        assert manifest["kind"] == "MPIJob" and manifest["apiVersion"] == "kubeflow.org/v2beta1"
        replicas = manifest["spec"]["mpiReplicaSpecs"]
        assert set(replicas) == {"Launcher", "Worker"}
        assert replicas["Launcher"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
        assert isinstance(manifest["spec"]["slotsPerWorker"], int)
    for group in containers(manifest).values():
        assert group and all(c["name"] and c["image"] for c in group)


def command_line(manifest) -> list:
    """The shell command the (launcher) container runs, as words."""
    group = containers(manifest).get("Launcher") or containers(manifest)["job"]
    return shlex.split(group[0]["args"][0])


def script_flags(words):
    """(script, its flags) of the python or bash command inside `words`."""
    for index, word in enumerate(words):
        if word.endswith(".py") and words[index - 1] == "python":
            return word, words[index + 1 :]
        if word.endswith(".sh") and not word.endswith("tools/mpirun_preemptible.sh"):
            return word, words[index + 1 :]
    raise AssertionError(f"no script in {words}")


@pytest.mark.parametrize("device", sorted(RESOURCES))
def test_manifests_are_complete_and_ask_for_the_device(tmp_path, device):
    manifests = rendered(tmp_path, device, "workers=2", "image=registry.example.com/b:1")
    assert sorted(manifests) == [
        "data-gen-job.yaml", "mrpc-mpijob.yaml", "phase1-1card-job.yaml",
        "phase1-mpijob.yaml", "phase2-mpijob.yaml",
    ]  # fmt: skip
    for name, manifest in manifests.items():
        check_kind(manifest)
        images = {c["image"] for group in containers(manifest).values() for c in group}
        assert images == {"registry.example.com/b:1"}, name
        if manifest["kind"] == "MPIJob":
            worker = containers(manifest)["Worker"][0]
            assert worker["resources"]["limits"] == {RESOURCES[device]: 8}, name
            assert manifest["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] == 2
            assert "-np 16" in manifest["spec"]["mpiReplicaSpecs"]["Launcher"]["template"][
                "spec"]["containers"][0]["args"][0]  # fmt: skip
            # A preempted launcher pod's SIGTERM reaches the ranks as SIGUSR1 (mpirun
            # would kill them before they save): the wrapper PyTorch's tests exercise.
            assert command_line(manifest)[0].endswith("/tools/mpirun_preemptible.sh"), name
    assert containers(manifests["phase1-1card-job.yaml"])["job"][0]["resources"]["limits"] == {
        RESOURCES[device]: 1
    }


def test_every_command_line_is_accepted_by_our_parsers(tmp_path):
    from bertfam.pretraining.prep import parse_flags

    manifests = rendered(tmp_path, "gaudi")
    checked = {}
    for name, manifest in manifests.items():
        script, flags = script_flags(command_line(manifest))
        if script.endswith(".sh"):  # [corpus] [working dir] then bertPrep's flags
            corpus, _directory, *extra = flags
            assert corpus == "wiki_only"
            parse_flags(["--action=download", "--dataset=wikicorpus_en", *extra])
            checked[name] = "bertPrep"
            continue
        result = subprocess.run(
            [sys.executable, "-c", CHECK_FLAGS, script, *flags],
            cwd=FOLDER, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
        checked[name] = result.stdout.split()[-1]
    assert checked == {
        "data-gen-job.yaml": "bertPrep",
        "mrpc-mpijob.yaml": "ClassifierRunConfig",
        "phase1-1card-job.yaml": "PretrainingRunConfig",
        "phase1-mpijob.yaml": "PretrainingRunConfig",
        "phase2-mpijob.yaml": "PretrainingRunConfig",
    }
    phase2 = command_line(manifests["phase2-mpijob.yaml"])
    assert "--init_checkpoint=/results/bert/phase_1/model.ckpt-7038" in phase2
    mrpc = command_line(manifests["mrpc-mpijob.yaml"])
    assert "--init_checkpoint=/results/bert/phase_2/model.ckpt-1564" in mrpc


def test_a_flag_our_parser_does_not_know_is_caught(tmp_path):
    bad = "phase1_flags=--bert_config_file=c.json --do_train=true --no_such_flag=1"
    manifests = rendered(tmp_path, "gpu", bad)
    script, flags = script_flags(command_line(manifests["phase1-mpijob.yaml"]))
    result = subprocess.run(
        [sys.executable, "-c", CHECK_FLAGS, script, *flags],
        cwd=FOLDER, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0 and "no_such_flag" in result.stderr
