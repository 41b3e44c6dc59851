#!/usr/bin/env bash
# Phase 1 (128/20): NVIDIA's positional arguments, see lamb_phase.sh.
exec bash "$(dirname "$0")/lamb_phase.sh" 1 "$@"
