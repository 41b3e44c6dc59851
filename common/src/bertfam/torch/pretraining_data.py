"""NVIDIA's hdf5 pre-training shards as a PyTorch `Dataset`, in the form its
run_pretraining.py feeds the model.

Each item is ``[input_ids, segment_ids, input_mask, masked_lm_labels,
next_sentence_labels]`` as int64 tensors; ``masked_lm_labels`` [L] is -1 everywhere
but at the masked positions, which hold the original token ids (the loss ignores -1).
A shard is small next to host memory (NVIDIA's are about 300 MB uncompressed), so it is
read whole, as upstream does, and the labels are laid out once for all its rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from bertfam.pretraining.hdf5 import masked_lm_labels, read_hdf5_shard


class PretrainingShard(Dataset):
    def __init__(self, path: Union[str, Path]):
        arrays = read_hdf5_shard(path)
        self.input_ids = torch.from_numpy(arrays["input_ids"].astype(np.int64))
        self.segment_ids = torch.from_numpy(arrays["segment_ids"].astype(np.int64))
        self.input_mask = torch.from_numpy(arrays["input_mask"].astype(np.int64))
        labels = masked_lm_labels(
            arrays["masked_lm_positions"], arrays["masked_lm_ids"], self.input_ids.shape[1]
        )
        self.masked_lm_labels = torch.from_numpy(labels)
        self.next_sentence_labels = torch.from_numpy(
            arrays["next_sentence_labels"].astype(np.int64)
        )

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> List[torch.Tensor]:
        return [
            self.input_ids[index],
            self.segment_ids[index],
            self.input_mask[index],
            self.masked_lm_labels[index],
            self.next_sentence_labels[index],
        ]
