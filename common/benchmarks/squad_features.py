"""SQuAD feature conversion: bertfam vs HuggingFace v4's squad_convert_examples_to_features.

    python benchmarks/squad_features.py [--data DIR]  # XQuAD-en and the BERT vocab [--repeats 3]

Converts XQuAD-en (1190 questions, the evaluation path: no answer positions) with the
BERT uncased vocab at max_seq_length 384, doc_stride 128, max_query_length 64, and
prints the best of `--repeats` wall times for each and their ratio. HuggingFace runs
with threads=1 and its slow (Python) BertTokenizer, the pipeline its v4 run_squad.py
used (it fails on the fast tokenizer: "TextInputSequence must be str"). Ours is timed with the Rust
tokenizer on one thread (TOKENIZERS_PARALLELISM=false, set before import) unless
--parallel is given. Needs the test extras (`pip install "./common[test]"`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SETTINGS = dict(max_seq_length=384, doc_stride=128, max_query_length=64)


def best_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallel", action="store_true", help="let tokenizers use all cores")
    args = parser.parse_args()
    if not args.parallel:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    squad_file = args.data / "squad" / "xquad.en.json"
    vocab = args.data / "bert_uncased" / "vocab.txt"
    if not squad_file.is_file() or not vocab.is_file():
        sys.exit(f"error: need {squad_file} and {vocab} (pass --data)")

    from transformers import BertTokenizer
    from transformers.data.processors.squad import (
        SquadV1Processor,
        squad_convert_examples_to_features,
    )

    from bertfam.squad.data import read_squad_examples
    from bertfam.squad.features import convert_examples_to_features
    from bertfam.tokenization.wordpiece import WordPieceTokenizer

    ours_tokenizer = WordPieceTokenizer(vocab, do_lower_case=True)
    ours_examples = read_squad_examples(squad_file, is_training=False)
    hf_examples = SquadV1Processor().get_dev_examples(str(squad_file.parent), squad_file.name)

    def ours():
        return convert_examples_to_features(
            ours_examples, ours_tokenizer, is_training=False, **SETTINGS
        )

    def huggingface(tokenizer):
        return lambda: squad_convert_examples_to_features(
            hf_examples, tokenizer, is_training=False, threads=1, tqdm_enabled=False, **SETTINGS
        )

    ours_s, ours_features = best_time(ours, args.repeats)
    slow_s, slow_features = best_time(huggingface(BertTokenizer(str(vocab))), args.repeats)
    threads = "all cores" if args.parallel else "1 thread"
    print(
        f"examples: {len(ours_examples)}; features: ours {len(ours_features)}, "
        f"HF {len(slow_features)}"
    )
    print(f"bertfam ({threads}):                      {ours_s:8.3f} s")
    print(
        f"HF v4 squad_convert, slow tokenizer, threads=1: {slow_s:8.3f} s  "
        f"-> bertfam is {slow_s / ours_s:.1f}x faster"
    )


if __name__ == "__main__":
    main()
