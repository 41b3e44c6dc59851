#!/usr/bin/env bash
# Wikipedia to phase 1 (128/20) and phase 2 (512/80) pre-training TFRecords:
#   bash data_preprocessing/create_datasets_from_start.sh [wiki_only] [working dir] [bertPrep flags]
# Every stage resumes where a killed run stopped; flags after the working dir go to every
# stage (--n_processes 16 --n_training_shards 256 ...). VOCAB_FILE skips the download of
# Google's weights (for their vocab.txt); PYTHON picks the interpreter.
exec "${PYTHON:-python3}" -m bertfam.pretraining.from_start --records tfrecord \
  --default_dir /data/tensorflow/bert/books_wiki_en_corpus "$@"
