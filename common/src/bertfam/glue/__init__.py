"""GLUE-style sentence(-pair) classification: readers, features and metrics."""
