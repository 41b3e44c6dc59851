"""pretraining/run_pretraining.py with NVIDIA's command line, on tiny hdf5 shards made by
the real create_pretraining_data.py: the equivalences (accumulation, two processes, kill
and resume, phase 2), the logs, and the bad inputs."""

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pretraining_fixtures import FOLDER, RUN, flags, make_shards, run_pretraining, tiny_config

from bertfam.pretraining.hdf5 import read_hdf5_shard, write_hdf5_shard
from bertfam.testing import free_port, kill_rank_mid_run, launch_free_env, mpirun
from bertfam.torch.pretraining_data import epoch_order, row_order, training_shards


@pytest.fixture(scope="module")
def data(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("pretraining")
    vocab = minilm_dir / "vocab.txt"
    return {
        "phase1": make_shards(root / "phase1", vocab, 64, 10),
        "phase2": make_shards(root / "phase2", vocab, 128, 20, seed=2),
        "config": tiny_config(root / "bert_config.json", vocab),
        "dropout_config": tiny_config(root / "bert_config_dropout.json", vocab, dropout=0.1),
        "vocab": vocab,
    }


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def assert_same_weights(ours, reference, atol):
    assert ours.keys() == reference.keys() and len(ours) > 30
    for name in ours:
        torch.testing.assert_close(ours[name], reference[name], atol=atol, rtol=0, msg=name)


def losses(output):
    lines = (Path(output) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def succeeded(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_trains_checkpoints_and_logs_as_upstream(data, tmp_path):
    out = tmp_path / "out"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], out, max_steps=6)))
    # Every 2 updates and at the end, the last 3 kept; the data order and the optimizer in them.
    assert sorted(p.name for p in out.glob("ckpt_*.pt")) == ["ckpt_2.pt", "ckpt_4.pt", "ckpt_6.pt"]
    saved = torch.load(out / "ckpt_6.pt", weights_only=False)
    assert {"model", "optimizer", "files", "epoch"} <= saved.keys()
    assert saved["model"]["bert.embeddings.word_embeddings.weight"].shape[0] == 30528  # padded
    records = [
        json.loads(line[len("DLLL ") :])
        for line in (tmp_path / "out_dllogger.json").read_text().splitlines()
    ]
    assert [r["step"] for r in records[:4]] == ["PARAMETER"] * 4
    logged = [r for r in records if isinstance(r["step"], list) and r["step"]]
    assert [r["step"][1] for r in logged] == [1, 2, 3, 4, 5, 6]
    assert set(logged[0]["data"]) == {
        "average_loss", "step_loss", "learning_rate", "average_training_time_step",
        "average_perf_per_step",
    }  # fmt: skip
    # PolyWarmUp: warm-up over 25% of 6 updates, then decay with power 0.5.
    rates = [r["data"]["learning_rate"] for r in logged]
    assert rates[0] == pytest.approx(1e-3 * (1 / 6) / 0.25)
    assert rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert records[-1]["step"] == [] and "final_loss" in records[-1]["data"]
    assert (out / "metrics.png").is_file()


def test_four_micro_batches_of_2_equal_one_batch_of_8(data, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], whole, max_steps=2)))
    succeeded(
        run_pretraining(
            *flags(
                data["phase1"], data["config"], parts, max_steps=2, gradient_accumulation_steps=4
            )
        )  # fmt: skip
    )
    np.testing.assert_allclose(losses(parts), losses(whole), rtol=1e-5)
    assert_same_weights(weights(parts / "ckpt_2.pt"), weights(whole / "ckpt_2.pt"), atol=1e-6)


@pytest.mark.parametrize("precision", [{}, {"hmp": True}], ids=["fp32", "bf16 op lists"])
def test_checkpointed_activations_train_as_stored_ones(data, tmp_path, precision):
    stored, recomputed = tmp_path / "stored", tmp_path / "recomputed"
    common = dict(max_steps=2, **precision)
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], stored, **common)))
    succeeded(
        run_pretraining(
            *flags(
                data["phase1"], data["config"], recomputed, checkpoint_activations=True, **common
            )
        )  # fmt: skip
    )
    assert_same_weights(weights(recomputed / "ckpt_2.pt"), weights(stored / "ckpt_2.pt"), atol=0)


def interrupted(helper: str, step: int, args):
    """run_pretraining.py under a tests/ helper that kills or signals it at `step`."""
    command = [sys.executable, str(FOLDER / "tests" / helper), str(step)]
    return subprocess.run(command + ["pretraining/run_pretraining.py", *args], cwd=FOLDER,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_resume_after_kill_or_sigterm_equals_an_uninterrupted_run(data, tmp_path):
    """With dropout on: the data position and the generator states come back too."""
    config = data["dropout_config"]
    straight, out = tmp_path / "straight", tmp_path / "out"
    succeeded(run_pretraining(*flags(data["phase1"], config, straight)))
    args = flags(data["phase1"], config, out)
    crashed = interrupted("crash_after_checkpoint.py", 2, args)
    assert crashed.returncode == -9 and sorted(p.name for p in out.glob("ckpt_*")) == ["ckpt_2.pt"]
    again = run_pretraining(*args)  # the same command: another run's checkpoint, refused
    assert again.returncode == 2 and "--resume_from_checkpoint" in again.stderr
    succeeded(run_pretraining(*args, "--resume_from_checkpoint"))
    assert_same_weights(weights(out / "ckpt_4.pt"), weights(straight / "ckpt_4.pt"), atol=0)
    assert losses(out) == losses(straight)

    # Preempted: SIGTERM after update 3 (no checkpoint due) -> ckpt_3.pt, one line, 143.
    preempted = tmp_path / "preempted"
    args = flags(data["phase1"], config, preempted)
    stopped = interrupted("signal_after_update.py", 3, args)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"run_pretraining.py: stopped by SIGTERM after update 3; checkpoint "
        f"{preempted}/ckpt_3.pt: rerun with --resume_from_checkpoint to resume"
    )
    succeeded(run_pretraining(*args, "--resume_from_checkpoint"))
    assert_same_weights(weights(preempted / "ckpt_4.pt"), weights(straight / "ckpt_4.pt"), atol=0)


def test_steps_this_run_stops_early_and_the_next_run_goes_on(data, tmp_path):
    straight, out = tmp_path / "straight", tmp_path / "out"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], straight)))
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], out, steps_this_run=3)))
    assert sorted(p.name for p in out.glob("ckpt_*.pt")) == ["ckpt_2.pt", "ckpt_3.pt"]
    succeeded(
        run_pretraining(*flags(data["phase1"], data["config"], out, resume_from_checkpoint=True))
    )
    assert_same_weights(weights(out / "ckpt_4.pt"), weights(straight / "ckpt_4.pt"), atol=0)


def test_phase_2_starts_where_phase_1_ended(data, tmp_path):
    out = tmp_path / "checkpoints"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], out)))
    phase2 = flags(
        data["phase2"], data["config"], out, max_seq_length=128, max_predictions_per_seq=20,
        max_steps=2, learning_rate=5e-4, warmup_proportion=0.75, phase2=True,
        resume_from_checkpoint=True, phase1_end_step=4, num_steps_per_checkpoint=1,
    )  # fmt: skip
    succeeded(run_pretraining(*phase2))
    # Named with phase 1's 4 updates added, as upstream names phase 2's checkpoints.
    assert sorted(p.name for p in out.glob("ckpt_*.pt")) == ["ckpt_4.pt", "ckpt_5.pt", "ckpt_6.pt"]
    before, after = weights(out / "ckpt_4.pt"), weights(out / "ckpt_5.pt")
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert 0 < (after[name] - before[name]).abs().max() < 0.01  # one step from phase 1's
    second = torch.load(out / "ckpt_6.pt", weights_only=False)
    assert second["global_step"] == 2 and second["phase2"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # Phase 2's own schedule: warm-up from its first update.
    assert records[-2]["learning_rate"] == pytest.approx(5e-4 * (1 / 2) / 0.75)
    # A killed phase 2 resumes within phase 2.
    more = flags(
        data["phase2"], data["config"], out, max_seq_length=128, max_predictions_per_seq=20,
        max_steps=3, learning_rate=5e-4, warmup_proportion=0.75, phase2=True,
        resume_from_checkpoint=True, phase1_end_step=4, num_steps_per_checkpoint=1,
    )  # fmt: skip
    result = succeeded(run_pretraining(*more))
    assert "Resuming from" in result.stderr and (out / "ckpt_7.pt").is_file()


def reference_shard(data_dir, folder, micro, steps, seed=42):
    """One shard whose batches of 2 * `micro` are, update by update, the rows two ranks
    read from their own shards (rank r: shard (f_id * 2 + r) mod N, rows in row_order)."""
    order = epoch_order(training_shards(data_dir), seed, 0)
    per_rank = []
    for rank in (0, 1):
        arrays = read_hdf5_shard(order[rank])
        rows = row_order(len(arrays["input_ids"]), seed, 0, 0)[: micro * steps]
        per_rank.append({name: values[rows] for name, values in arrays.items()})
    wanted = {
        name: np.concatenate(
            [
                np.concatenate([per_rank[r][name][j * micro : (j + 1) * micro] for r in (0, 1)])
                for j in range(steps)
            ]
        )  # fmt: skip
        for name in per_rank[0]
    }
    count = 2 * micro * steps
    placed = row_order(count, seed, 0, 0)
    shard = {name: np.empty_like(values) for name, values in wanted.items()}
    for name, values in wanted.items():
        shard[name][placed] = values
    folder.mkdir()
    write_hdf5_shard(shard, folder / "merged_training_0.hdf5")
    return folder


@pytest.mark.parametrize("post_accumulation", [True, False], ids=["post_accumulation", "ddp"])
def test_mpirun_two_processes_equal_one_with_twice_the_batch_also_after_a_sigterm_to_one(
    data, tmp_path, post_accumulation
):
    """SIGTERM reaches rank 1 alone after update 1: both ranks stop there, rank 0 writes
    the one checkpoint, and resuming under mpirun ends as one process at twice the batch."""
    launcher = mpirun(2, "MASTER_ADDR", "MASTER_PORT", "SIGNAL_RANK")
    two = tmp_path / "two"
    args = flags(
        data["phase1"], data["config"], two, train_batch_size=4, gradient_accumulation_steps=2,
        allreduce_post_accumulation=post_accumulation,
    )  # fmt: skip
    env = launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), SIGNAL_RANK="1")
    stopped = subprocess.run(
        [*launcher, sys.executable, "tests/signal_after_update.py", "1",
         "pretraining/run_pretraining.py", *args],
        cwd=FOLDER, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert stopped.returncode != 0, stopped.stderr[-3000:]  # mpirun reports 143 its own way
    assert f"stopped by SIGTERM after update 1; checkpoint {two}/ckpt_1.pt" in stopped.stderr
    assert sorted(p.name for p in two.glob("ckpt_*")) == ["ckpt_1.pt"]
    env["MASTER_PORT"] = str(free_port())
    succeeded(run_pretraining(*args, "--resume_from_checkpoint", launcher=launcher, env=env))

    merged = reference_shard(data["phase1"], tmp_path / "merged", micro=2, steps=4 * 2)
    one = tmp_path / "one"
    succeeded(
        run_pretraining(
            *flags(merged, data["config"], one, train_batch_size=8, gradient_accumulation_steps=2)
        )
    )
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert_same_weights(weights(two / "ckpt_4.pt"), weights(one / "ckpt_4.pt"), atol=2e-5)


def test_sigterm_to_the_launcher_stops_every_rank_with_a_checkpoint(data, tmp_path):
    """SIGTERM to mpirun itself, as a pod whose command it is gets it: through
    tools/mpirun_preemptible.sh the ranks receive SIGUSR1 and stop as on SIGTERM (plain
    mpirun kills them within a second); the resumed run ends as an uninterrupted one."""
    mpirun(2)  # skips without Open MPI
    wrapper = FOLDER.parents[2] / "tools" / "mpirun_preemptible.sh"
    env = launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the venv's mpirun
    out, straight = tmp_path / "out", tmp_path / "straight"
    args = flags(data["phase1"], data["config"], out, train_batch_size=4, max_steps=20,
                 num_steps_per_checkpoint=100)  # fmt: skip
    command = [str(wrapper), "--allow-run-as-root", "--oversubscribe", "-np", "2",
               "-x", "MASTER_ADDR", "-x", "MASTER_PORT", sys.executable, str(RUN), *args]  # fmt: skip
    metrics = out / "metrics.jsonl"
    with tempfile.TemporaryFile("w+") as output:
        job = subprocess.Popen(command, cwd=FOLDER, env=env, stdout=output, stderr=output)
        try:
            while job.poll() is None and not (metrics.is_file() and metrics.stat().st_size):
                time.sleep(0.05)
            job.send_signal(signal.SIGTERM)
            status = job.wait(timeout=120)
        finally:
            if job.poll() is None:
                job.kill()
        output.seek(0)
        log = output.read()
    saved = sorted(out.glob("ckpt_*.pt"))
    assert status == 138 and len(saved) == 1, log[-3000:]  # 128 + SIGUSR1
    step = int(saved[0].stem.split("_")[1])
    assert 1 <= step < 20
    assert f"stopped by SIGUSR1 after update {step}; checkpoint {saved[0]}" in log
    env["MASTER_PORT"] = str(free_port())
    resume = [*command[: -len(args)], *args, "--resume_from_checkpoint"]
    succeeded(subprocess.run(resume, cwd=FOLDER, env=env, capture_output=True, text=True,
                             timeout=600))  # fmt: skip
    uninterrupted = [*command[: -len(args)], *flags(data["phase1"], data["config"], straight,
                     train_batch_size=4, max_steps=20, num_steps_per_checkpoint=100)]  # fmt: skip
    env["MASTER_PORT"] = str(free_port())
    succeeded(subprocess.run(uninterrupted, cwd=FOLDER, env=env, capture_output=True,
                             text=True, timeout=600))  # fmt: skip
    assert_same_weights(weights(out / "ckpt_20.pt"), weights(straight / "ckpt_20.pt"), atol=1e-6)


@pytest.mark.parametrize("launcher", ["mpirun", "torchrun"])
def test_a_dead_rank_ends_the_job_with_an_error_naming_it(data, tmp_path, launcher):
    """Rank 1 SIGKILLed mid-run (a lost node): the job ends within 60 s, non-zero, with a
    line naming rank 1, instead of rank 0 waiting in an all-reduce."""
    port = str(free_port())
    if launcher == "mpirun":
        command = [*mpirun(2, "MASTER_ADDR", "MASTER_PORT"), sys.executable]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                   "--master_addr=127.0.0.1", f"--master_port={port}"]  # fmt: skip
    metrics = tmp_path / "out" / "metrics.jsonl"
    args = flags(data["phase1"], data["config"], metrics.parent, train_batch_size=4,
                 max_steps=100000, num_steps_per_checkpoint=100000)  # fmt: skip
    dead = kill_rank_mid_run(
        [*command, str(RUN), *args], rank=1, script="run_pretraining.py",
        started=lambda: metrics.is_file() and metrics.stat().st_size > 0,
        cwd=FOLDER, env=launch_free_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
    )  # fmt: skip
    assert dead.returncode != 0 and dead.seconds < 60, dead.output[-3000:]
    assert re.search(r"\brank:? 1\b", dead.output), dead.output[-3000:]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"input_dir": "EMPTY"}, "no training shards"),
        ({"input_dir": "CUT"}, "cannot read it as hdf5"),
        ({"max_seq_length": 128}, "sequences of length 64 but --max_seq_length=128"),
        ({"max_predictions_per_seq": 20}, "10 predictions a sequence"),
        ({"train_batch_size": 6, "gradient_accumulation_steps": 4}, "does not divide"),
        ({"fp16": True}, "--fp16/--amp"),
        ({"phase2": True}, "--phase2 starts from phase 1's checkpoint"),
        ({"use_lazy_mode": True}, "Gaudi only"),
        ({"allreduce_post_accumulation_fp16": True}, "add that flag too"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(data, tmp_path, change, message):
    if change.get("input_dir") == "EMPTY":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "eval_0.hdf5").write_text("")  # not a training shard
        change = {"input_dir": tmp_path / "empty"}
    if change.get("input_dir") == "CUT":  # every shard cut short, as a full disk leaves them
        shutil.copytree(data["phase1"], tmp_path / "cut")
        for shard in (tmp_path / "cut").iterdir():
            shard.write_bytes(shard.read_bytes()[:3000])
        change = {"input_dir": tmp_path / "cut"}
    values = {"input_dir": data["phase1"], **change}
    out = tmp_path / "out"
    result = run_pretraining(*flags(values.pop("input_dir"), data["config"], out, **values))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and message in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not out.exists() and not (tmp_path / "out_dllogger.json").exists()


def test_a_shard_damaged_mid_run_stops_it_in_one_line_keeping_the_checkpoints(data, tmp_path):
    """The second shard of the epoch cut short: met after 27 updates of the first (218
    sequences, batch 8), so the run stops there, naming it; checkpoints 10 and 20 stay."""
    folder = tmp_path / "shards"
    shutil.copytree(data["phase1"], folder)
    shards = training_shards(folder)
    # A seed whose epoch starts with the shard whose widths are checked before training.
    seed = next(seed for seed in range(100) if epoch_order(shards, seed, 0)[0] == shards[0])
    second = epoch_order(shards, seed, 0)[1]
    second.write_bytes(second.read_bytes()[:3000])
    out = tmp_path / "out"
    result = run_pretraining(*flags(folder, data["config"], out, max_steps=40, seed=seed,
                                    num_steps_per_checkpoint=10))  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and f"{second}: cannot read it as hdf5" in lines[-1], lines[-3:]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.glob("ckpt_*.pt")) == ["ckpt_10.pt", "ckpt_20.pt"]
    torch.load(out / "ckpt_20.pt", weights_only=False)  # complete


def test_a_checkpoint_of_another_size_is_refused_before_writing(data, tmp_path):
    small = tmp_path / "small"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], small, max_steps=2)))
    bigger = json.loads(Path(data["config"]).read_text())
    bigger["hidden_size"], bigger["intermediate_size"] = 64, 128
    (tmp_path / "bigger.json").write_text(json.dumps(bigger))
    out = tmp_path / "out"
    result = run_pretraining(
        *flags(data["phase1"], tmp_path / "bigger.json", out, init_checkpoint=small / "ckpt_2.pt")
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "bert.embeddings.word_embeddings.weight" in lines[-1]
    assert not out.exists()


def test_a_checkpoint_exports_to_huggingface_and_fine_tunes(data, tmp_path):
    from finetuning_fixtures import run
    from transformers import BertForPreTraining as HFPreTraining

    from bertfam import tinydata

    out = tmp_path / "out"
    succeeded(run_pretraining(*flags(data["phase1"], data["config"], out, max_steps=2)))
    folder = tmp_path / "hf"
    succeeded(
        run(
            "pretraining/export_huggingface.py",
            "--checkpoint",
            out / "ckpt_2.pt",
            "--config_file",
            data["config"],
            "--vocab_file",
            data["vocab"],
            "--output_dir",
            folder,
        )  # fmt: skip
    )
    hf, info = HFPreTraining.from_pretrained(str(folder), output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    trained = weights(out / "ckpt_2.pt")
    table = hf.bert.embeddings.word_embeddings.weight.detach()
    assert table.shape[0] == 30522  # the padding rows dropped again
    torch.testing.assert_close(table, trained["bert.embeddings.word_embeddings.weight"][:30522])
    # The exported folder is what run_squad.py fine-tunes from.
    squad = tinydata.squad_file(tmp_path / "squad.json")
    tuned = tmp_path / "squad"
    result = succeeded(
        run(
            "finetuning/run_squad.py",
            "--model_type",
            "bert",
            "--model_name_or_path",
            folder,
            "--do_train",
            "--do_lower_case",
            "--train_file",
            squad,
            "--max_steps",
            "2",
            "--per_gpu_train_batch_size",
            "4",
            "--max_seq_length",
            "128",
            "--doc_stride",
            "64",
            "--max_query_length",
            "32",
            "--output_dir",
            tuned,
            "--no_cuda",
            "--learning_rate",
            "1e-3",
        )  # fmt: skip
    )
    assert f"Loading weights from {folder}/pytorch_model.bin" in result.stderr
    name = "bert.encoder.layer.0.attention.self.query.weight"
    after = torch.load(tuned / "pytorch_model.bin", weights_only=True)[name]
    assert 0 < (after - trained[name]).abs().max() < 0.05  # two steps from the pre-trained


def test_warm_start_from_a_huggingface_folder_without_heads(data, tmp_path):
    import modeling

    from bertfam.bert_config import BertConfig
    from bertfam.torch.checkpoint import save_pretrained

    config = BertConfig.from_json_file(data["config"])
    torch.manual_seed(3)
    folder = save_pretrained(modeling.BertModel(config), config, tmp_path / "hf")
    out = tmp_path / "out"
    result = succeeded(
        run_pretraining(
            *flags(data["phase1"], data["config"], out, max_steps=2, init_checkpoint=folder)
        )
    )
    assert f"Loading weights from {folder}/pytorch_model.bin" in result.stderr
    assert "cls.seq_relationship.weight" in result.stderr  # the heads start fresh, listed
    start = torch.load(folder / "pytorch_model.bin", weights_only=True)
    name = "encoder.layer.1.output.dense.weight"
    trained = weights(out / "ckpt_2.pt")[f"bert.{name}"]
    assert 0 < (trained - start[name]).abs().max() < 0.01  # two updates from the folder's
    # A TensorFlow checkpoint prefix is named for what it is.
    (tmp_path / "bert_model.ckpt.index").write_text("")
    refused = run_pretraining(
        *flags(data["phase1"], data["config"], tmp_path / "other",
               init_checkpoint=tmp_path / "bert_model.ckpt")
    )  # fmt: skip
    assert refused.returncode == 2 and "convert_tf_checkpoint_to_pytorch.py" in refused.stderr
