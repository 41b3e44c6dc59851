#!/usr/bin/env bash
# mpirun "$@", passing the SIGTERM of a preemption on to the ranks as SIGUSR1.
#
#   tools/mpirun_preemptible.sh --allow-run-as-root -np 8 python run_pretraining.py ...
#
# Open MPI's mpirun, sent SIGTERM, forwards it to the ranks and kills them within a
# second: too soon for them to finish the update and write its checkpoint. It forwards
# SIGUSR1 and waits for the ranks instead, and the training scripts stop on SIGUSR1 as on
# SIGTERM (bertfam.preemption: checkpoint, one line, exit 138). So where mpirun would be
# the process a cluster signals (a pod's command, a batch script), run this in its place;
# its status is mpirun's.
set -uo pipefail
mpirun "$@" &
launcher=$!
trap 'kill -USR1 "$launcher" 2>/dev/null' TERM
status=0
while kill -0 "$launcher" 2>/dev/null; do
    wait "$launcher"  # returns early when the trap runs; mpirun goes on until the ranks end
    status=$?
done
exit "$status"
