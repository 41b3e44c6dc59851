"""DLLogger lines in the envelope of NVIDIA's dllogger (``JSONStreamBackend.log``), whose
fields are written out here from its source, not from ours: tools that parse upstream's
files must read ours."""

import json
import time
from datetime import datetime

from bertfam.dllogger import DlLogger

# dllogger/logger.py, JSONStreamBackend.log: "DLLL " + json.dumps(dict(timestamp=
# str(timestamp.timestamp()), datetime=str(timestamp), elapsedtime=str(elapsedtime),
# type="LOG", step=step, data=data)), timestamp being datetime.now().
UPSTREAM_FIELDS = ["timestamp", "datetime", "elapsedtime", "type", "step", "data"]


def test_records_have_upstreams_fields_types_and_order(tmp_path):
    path = tmp_path / "dllogger.json"
    before = time.time()
    logger = DlLogger(str(path), enabled=True)
    logger.log("PARAMETER", {"SEED": 42})
    logger.log([0, 3], {"average_loss": 1.5})
    logger.log([], {"final_loss": 1.25})
    after = time.time()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(line.startswith("DLLL {") for line in lines)
    records = [json.loads(line[len("DLLL ") :]) for line in lines]
    for record in records:
        assert list(record) == UPSTREAM_FIELDS
        assert all(isinstance(record[key], str) for key in ("timestamp", "datetime", "elapsedtime"))
        stamp = float(record["timestamp"])
        assert before <= stamp <= after
        assert datetime.fromisoformat(record["datetime"]).timestamp() == stamp
        assert 0 <= float(record["elapsedtime"]) <= after - before
        assert record["type"] == "LOG"
    assert [r["step"] for r in records] == ["PARAMETER", [0, 3], []]
    assert [r["data"] for r in records] == [
        {"SEED": 42},
        {"average_loss": 1.5},
        {"final_loss": 1.25},
    ]


def test_only_the_enabled_process_writes_and_a_resumed_run_appends(tmp_path):
    path = tmp_path / "dllogger.json"
    DlLogger(str(path), enabled=False).log(1, {"loss": 1.0})
    assert not path.exists()
    DlLogger(str(path), enabled=True).log(1, {"loss": 1.0})
    DlLogger(str(path), enabled=True).log(2, {"loss": 0.5})
    steps = [json.loads(line[5:])["step"] for line in path.read_text().splitlines()]
    assert steps == [1, 2]
