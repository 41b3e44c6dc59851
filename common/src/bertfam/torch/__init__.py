"""PyTorch helpers shared by the PyTorch model folders (imports torch)."""
