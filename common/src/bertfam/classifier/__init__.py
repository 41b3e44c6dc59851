"""GLUE-style fine-tuning runs: the framework-free configuration and input checks."""
