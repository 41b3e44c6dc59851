"""SQuAD v1.1 / v2.0: read the JSON, build features, post-process logits, score."""
