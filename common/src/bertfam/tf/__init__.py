"""TensorFlow helpers shared by the TensorFlow model folders.

This package's own ``__init__`` imports nothing heavy: `bertfam.tf.run_config`,
`bertfam.tf.recipe`, `bertfam.tf.prepare` and `bertfam.tf.flags` are TensorFlow-free, so
a script checks its inputs before TensorFlow loads; the other modules import TensorFlow.
"""

HOROVOD_INSTALL_HINT = (
    "Build it in this virtualenv with the repository's recipe: tools/install_horovod.sh "
    "(see README.md, Stack)"
)
