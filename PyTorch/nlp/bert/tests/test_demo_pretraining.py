"""Every `demo_bert.py pretraining` line of Habana's README (seed 001), run as typed.

Only the paths change and a few flags are added: `<dataset_path_phase1>` and
`<dataset_path_phase2>` become tiny 128/20 and 512/80 shards, `--config_file` a tiny
BERT, `--train_batch_size 64 8` and `--max_steps 2 2` keep both phases short (the
lines' `--batch_size` and `--accumulate_gradients` then make 1 or 2 micro-batches an
update). Lazy lines need Gaudi: here they fail with one clear line, and the same lines in
eager mode run.
"""

import json

import pytest
import torch
from finetuning_fixtures import run
from pretraining_fixtures import first_words, make_shards, tiny_config

from bertfam.testing import free_port, launch_free_env

UPSTREAM_LINES = [
    "--model_name_or_path large --mode graph --data_type bf16 --batch_size 64 8 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode graph --data_type fp32 --batch_size 32 4 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode lazy --data_type bf16 --batch_size 64 8 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode graph --data_type fp32 --batch_size 32 4 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode graph --data_type bf16 --world_size 8 --batch_size 64 8 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --dist --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode graph --data_type fp32 --world_size 8 --batch_size 32 4  --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --dist --data_dir <dataset_path_phase1> <dataset_path_phase2>",
    "--model_name_or_path large --mode lazy --data_type bf16 --world_size 8 --batch_size 64 8 --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --dist --data_dir <dataset_path_phase1> <data_path_phase2>",
    "--model_name_or_path large --mode lazy --data_type fp32 --world_size 8 --batch_size 32 4  --accumulate_gradients --allreduce_post_accumulation --allreduce_post_accumulation_fp16 --dist --data_dir <dataset_path_phase1> <data_path_phase2>",
]
LAZY_ERROR = "--mode lazy is Habana's lazy graph mode and needs Gaudi"


@pytest.fixture(scope="module")
def paths(tmp_path_factory, minilm_dir):
    root = tmp_path_factory.mktemp("demo_pretraining")
    # The lines' micro-batches (64 x 128, 8 x 512) on 8 ranks project onto the vocabulary
    # 16 times an update: 4,000 words, not 30,522, or bf16 updates take 45 s each on CI.
    vocab = first_words(minilm_dir / "vocab.txt", root / "vocab.txt")
    # Each of 8 ranks reads its own shard: enough rows in each for a micro-batch of 64.
    return {
        "phase1": make_shards(root / "phase1", vocab, 128, 20, documents=400),
        "phase2": make_shards(root / "phase2", vocab, 512, 80, seed=2, documents=200),
        "config": tiny_config(root / "bert_config.json", vocab),
    }


# Graph mode compiles each phase's step on every rank, a minute or more a line on CI's
# two cores: line 2 (one process, fp32) compiles for real; the other graph lines run
# with torch.compile off (TORCH_COMPILE_DISABLE), as what they check is the rest: the
# flags, both phases, the ranks and the checkpoints.
COMPILED_LINE = 2


def demo(line, paths, tmp_path, compiled=False):
    line = line.replace("<dataset_path_phase1>", str(paths["phase1"]))
    line = line.replace("<dataset_path_phase2>", str(paths["phase2"]))
    line = line.replace("<data_path_phase2>", str(paths["phase2"]))
    args = line.split() + [
        "--config_file", paths["config"], "-o", tmp_path, "--train_batch_size", "64", "8",
        "--max_steps", "2", "2", "--save_steps", "1", "1",
    ]  # fmt: skip
    # Eight ranks compiling at once on a small machine: one Inductor worker each, not a
    # pool of one per core each.
    env = launch_free_env(MASTER_PORT=str(free_port()), TORCHINDUCTOR_COMPILE_THREADS="1")
    if not compiled:
        env["TORCH_COMPILE_DISABLE"] = "1"
    return run("demo_bert.py", "pretraining", *args, env=env, timeout=1200)


def check_both_phases(result, tmp_path, world):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    commands = [line for line in result.stdout.splitlines() if line.startswith("Running: ")]
    assert len(commands) == 2
    assert "--gradient_accumulation_steps" in commands[0] and "--use_fused_lamb" in commands[0]
    assert "--phase2" in commands[1] and "--phase1_end_step 2" in commands[1]
    if world > 1:
        assert all(f"-n {world}" in command for command in commands)
    checkpoints = tmp_path / "results" / "checkpoints"
    # Phase 1's 2 updates, then phase 2's named on from them; the last 3 kept.
    assert sorted(p.name for p in checkpoints.glob("ckpt_*.pt")) == [
        "ckpt_2.pt", "ckpt_3.pt", "ckpt_4.pt",
    ]  # fmt: skip
    final = torch.load(checkpoints / "ckpt_4.pt", weights_only=False)
    assert final["phase2"] and final["global_step"] == 2
    records = (tmp_path / "results" / "dllogger.json").read_text().splitlines()
    steps = [json.loads(r[len("DLLL ") :])["step"] for r in records]
    assert [s[1] for s in steps if isinstance(s, list) and s] == [1, 2, 3, 4]


# The README's line 4 repeats line 2 word for word: run once. The two 8-card lazy lines
# are refused, and not rerun in eager mode: line 5 already runs bf16 on 8 ranks with
# torch.compile off, which is the eager step, and 8 ranks cost minutes on CI's 2 cores.
LINES = {line: index + 1 for index, line in reversed(list(enumerate(UPSTREAM_LINES)))}
EAGER_RERUN = {line for line in LINES if "--world_size 8" not in line}


@pytest.mark.parametrize(
    "line", sorted(LINES, key=LINES.get), ids=lambda line: f"line{LINES[line]}"
)
def test_upstream_line(line, paths, tmp_path):
    world = 8 if "--world_size 8" in line else 1
    compiled = LINES[line] == COMPILED_LINE
    if "--mode lazy" in line:
        result = demo(line, paths, tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and LAZY_ERROR in lines[-1]
        assert not (tmp_path / "results").exists()
        if line not in EAGER_RERUN:
            return
        line = line.replace("--mode lazy", "--mode eager")
    check_both_phases(demo(line, paths, tmp_path, compiled), tmp_path, world)


def test_one_phase_with_a_log_file(paths, tmp_path):
    """--phase 1 runs phase 1 only; --create_logfile copies its output into results/."""
    line = "--model_name_or_path base --mode eager --data_type fp32 --batch_size 64 8"
    line += " --accumulate_gradients --phase 1 --create_logfile"
    line += " --data_dir <dataset_path_phase1> <dataset_path_phase2>"
    result = demo(line, paths, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert sum(line.startswith("Running: ") for line in result.stdout.splitlines()) == 1
    checkpoints = tmp_path / "results" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("ckpt_*.pt")) == ["ckpt_1.pt", "ckpt_2.pt"]
    log = (tmp_path / "results" / "phase1.log").read_text()
    assert (
        "Saved" in log and "ckpt_2.pt" in log and not (tmp_path / "results" / "phase2.log").exists()
    )
