from pathlib import Path

import http_fixture
import pytest

# Real data lives beside the repository, never in it (see CONTRIBUTING.md).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def http_server():
    state = http_fixture.FileServer()
    httpd = http_fixture.start(state)
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def shared_data():
    """The real-data folder `../shared/data`; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (a full checkout has ../shared/data)")
    return SHARED_DATA


def shared_file(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.is_file():
        pytest.skip(f"{relative} not found in {shared_data}")
    return path
