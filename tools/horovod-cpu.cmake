# Read by CMake (3.21+) through CMAKE_TOOLCHAIN_FILE while tools/install_horovod.sh builds
# Horovod. Horovod's CMakeLists enables the CUDA language whenever it finds nvcc (on the
# PATH or in a CUDA toolkit), although it builds no CUDA code without HOROVOD_GPU_*
# operations: a CPU build must not depend on whether, or which, nvcc is installed.
set(CMAKE_CUDA_COMPILER "" CACHE FILEPATH "Horovod for TensorFlow on CPUs, Gaudi or via TF GPU ops: no CUDA compiler" FORCE)
set(CMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit TRUE)
