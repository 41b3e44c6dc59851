#!/usr/bin/env bash
# Wikipedia to phase 1 (128/20) and phase 2 (512/80) pre-training hdf5 shards (NVIDIA's):
#   bash pretraining/data/create_datasets_from_start.sh [wiki_only] [working dir] [bertPrep flags]
# The working dir defaults to the current one. Every stage resumes where a killed run
# stopped; flags after the working dir go to every stage (--n_processes 16 ...).
# VOCAB_FILE skips the download of Google's weights (for their vocab.txt); PYTHON picks
# the interpreter.
exec "${PYTHON:-python3}" -m bertfam.pretraining.from_start --records hdf5 "$@"
