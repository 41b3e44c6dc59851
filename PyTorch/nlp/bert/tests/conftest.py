import sys
from pathlib import Path

pytest_plugins = ["bertfam.testing"]  # shared_data, minilm_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # modeling.py, as the scripts see it
