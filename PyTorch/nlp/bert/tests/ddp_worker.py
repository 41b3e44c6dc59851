"""Run by test_distributed.py under torchrun or mpirun: a few DDP updates of a tiny BERT on
this rank's rows of each global batch, then the rank's weights and losses to <prefix><rank>.pt
and, once the group is shut down, the names of gloo's threads still running (one a line) to
<prefix><rank>.threads.

    python ddp_worker.py <prefix> <per_rank_batch>
"""

import sys
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import modeling  # noqa: E402

from bertfam import tinydata  # noqa: E402
from bertfam.launch import detect_launch_env  # noqa: E402
from bertfam.torch.distributed import init_distributed, shutdown  # noqa: E402
from bertfam.torch.losses import span_loss  # noqa: E402

STEPS = 4


def main() -> tuple:
    prefix, per_rank = sys.argv[1], int(sys.argv[2])
    launch = detect_launch_env()
    init_distributed("cpu", launch)
    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    config = tinydata.tiny_bert_config()
    model = modeling.BertForQuestionAnswering(config)
    if launch.is_distributed:
        model = DistributedDataParallel(model)
    # SGD: updates linear in the gradients, so float noise in the all-reduce stays noise
    # (Adam turns a near-zero gradient's noise into a full-size step).
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    global_batch = per_rank * launch.world_size
    losses = []
    for _ in range(STEPS):
        ids = torch.randint(1, 50, (global_batch, 16), generator=generator)
        starts = torch.randint(0, 16, (global_batch,), generator=generator)
        ends = torch.randint(0, 16, (global_batch,), generator=generator)
        rows = slice(launch.rank * per_rank, (launch.rank + 1) * per_rank)
        start, end = model(ids[rows])
        loss = span_loss(start, end, starts[rows], ends[rows])
        optimizer.zero_grad()
        loss.backward()  # DDP averages the gradients over ranks
        optimizer.step()
        losses.append(loss.item())
    module = model.module if launch.is_distributed else model
    torch.save({"state": module.state_dict(), "losses": losses}, f"{prefix}{launch.rank}.pt")
    return prefix, launch.rank


def gloo_threads() -> list:
    """This process's threads that gloo started (Linux names them in /proc)."""
    names = []
    for task in Path("/proc/self/task").glob("*/comm"):
        try:
            names.append(task.read_text().strip())
        except OSError:  # a thread that ended while we looked
            continue
    return [name for name in names if "gloo" in name]


if __name__ == "__main__":
    prefix, rank = main()
    shutdown()  # as at the scripts' exit: once the model and its DDP wrapper are let go
    Path(f"{prefix}{rank}.threads").write_text("".join(f"{name}\n" for name in gloo_threads()))
