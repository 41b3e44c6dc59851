"""TensorFlow helpers shared by the TensorFlow model folders (imports TensorFlow)."""

HOROVOD_INSTALL_HINT = (
    "Build it in this virtualenv with the repository's recipe: tools/install_horovod.sh "
    "(see README.md, Stack)"
)
