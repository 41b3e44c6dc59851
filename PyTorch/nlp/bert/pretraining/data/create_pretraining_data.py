r"""BERT pre-training shards in NVIDIA's hdf5 layout, with NVIDIA's command line.

    python pretraining/data/create_pretraining_data.py \
      --input_file=sharded/wikicorpus_en_training_0.txt \
      --output_file=hdf5/wikicorpus_en_training_0.hdf5 --vocab_file=vocab.txt \
      --do_lower_case --max_seq_length=128 --max_predictions_per_seq=20 \
      --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5

The examples are those of Google's create_pretraining_data.py for the same input, flags
and seed (the TensorFlow folder's script writes them as TFRecords from the same code,
`bertfam.pretraining`); here each ``--output_file`` (comma-separated) gets one
gzip-compressed hdf5 shard, the examples dealt round-robin over them.
"""

from __future__ import annotations

import argparse
import logging

from bertfam.errors import OneLineParser, exit_on_user_error
from bertfam.pretraining.create import output_files, pretraining_arrays
from bertfam.pretraining.hdf5 import write_hdf5_shard

log = logging.getLogger("create_pretraining_data")


def parse_flags(argv=None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input_file", required=True, help="Text files (comma-separated globs)")
    parser.add_argument("--output_file", required=True, help="hdf5 shards (comma-separated)")
    parser.add_argument("--vocab_file", required=True, help="The WordPiece vocab.txt")
    parser.add_argument("--do_lower_case", action="store_true", help="Lower-case the input")
    parser.add_argument("--do_whole_word_mask", action="store_true", help="Mask whole words")
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--random_seed", type=int, default=12345)
    parser.add_argument("--dupe_factor", type=int, default=10)
    parser.add_argument("--masked_lm_prob", type=float, default=0.15)
    parser.add_argument("--short_seq_prob", type=float, default=0.1)
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_flags(argv)
    outputs = output_files(args.output_file)
    arrays = pretraining_arrays(args)
    for index, path in enumerate(outputs):  # dealt round-robin, as the TFRecord writer does
        rows = write_hdf5_shard({k: v[index :: len(outputs)] for k, v in arrays.items()}, path)
        log.info("wrote %s (%d examples)", path, rows)


if __name__ == "__main__":
    main()
