"""Shared core of the BERT-family training recipes.

The modules here import neither TensorFlow nor PyTorch at import time; code that needs
a framework imports it inside the function that asks for it.
"""

__version__ = "0.1.0"
