import http_fixture
import pytest

pytest_plugins = ["bertfam.testing"]  # shared_data, minilm_dir


@pytest.fixture
def http_server():
    state = http_fixture.FileServer()
    httpd = http_fixture.start(state)
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
