import os
import sys
from pathlib import Path

pytest_plugins = ["bertfam.testing"]  # shared_data, http_server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# modeling.py and the scripts, as `python run_squad.py` sees them
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
