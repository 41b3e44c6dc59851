#!/usr/bin/env bash
# Phase 2 (512/80) from phase 1's last checkpoint: NVIDIA's positional arguments, see
# lamb_phase.sh.
exec bash "$(dirname "$0")/lamb_phase.sh" 2 "$@"
