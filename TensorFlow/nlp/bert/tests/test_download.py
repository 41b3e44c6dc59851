"""End-to-end tests of the download/ scripts, run as subprocesses with upstream's arguments.

Everything they fetch comes from an HTTP server on 127.0.0.1 (`http_server` from
bertfam.testing), serving archives and MRPC files the tests build; nothing needs TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

from bertfam.glue.readers import get_processor, read_tsv
from bertfam.testing import FileServer

BERT_DIR = Path(__file__).resolve().parents[1]
DOWNLOAD_DIR = BERT_DIR / "download"
# Real data lives beside the repository, never in it (CONTRIBUTING.md).
SHARED_DATA = BERT_DIR.parents[2].parent / "shared" / "data"

MODEL = "uncased_L-2_H-128_A-2"
CHECKPOINT_FILES = {
    "bert_config.json": b'{"hidden_size": 128, "num_hidden_layers": 2}\n',
    "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n",
    "bert_model.ckpt.index": b"index bytes \x00\x01",
    "bert_model.ckpt.data-00000-of-00001": bytes(range(256)) * 4,
}


def run_script(name: str, *args, cwd: Path = BERT_DIR) -> subprocess.CompletedProcess:
    """`python download/<name> args...` from the package dir, as the README runs it."""
    return subprocess.run(
        [sys.executable, str(Path("download") / name), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


def make_zip(members: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def flat_zip(files=CHECKPOINT_FILES) -> bytes:
    """Like the 2020_02_20 releases: the files at the top of the archive."""
    return make_zip(dict(files))


def foldered_zip(folder: str = MODEL, files=CHECKPOINT_FILES) -> bytes:
    """Like the 2019_05_30 whole-word-masking releases: one top-level folder."""
    members = {f"{folder}/": b""}  # a directory entry, as `zip -r` writes it
    members.update({f"{folder}/{name}": data for name, data in files.items()})
    return make_zip(members)


def contents(folder: Path) -> Dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


# ---------------------------------------------------------------------------------------------
# download_pretrained_model.py


@pytest.mark.parametrize(
    "flatten, archive", [("False", flat_zip()), ("True", foldered_zip())], ids=["flat", "folder"]
)
def test_pretrained_model_lands_in_model_folder_and_zip_is_gone(
    http_server, tmp_path, flatten, archive
):
    http_server.serve(f"/bert_models/2020_02_20/{MODEL}.zip", archive)
    base_url = http_server.url + "/bert_models/2020_02_20/"

    result = run_script(
        "download_pretrained_model.py", base_url, MODEL, flatten, "--dest_dir", tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL]  # zip and scratch gone
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES
    assert http_server.requests == [f"/bert_models/2020_02_20/{MODEL}.zip"]

    again = run_script(
        "download_pretrained_model.py", base_url, MODEL, flatten, "--dest_dir", tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "already" in again.stdout
    assert len(http_server.requests) == 1  # nothing fetched the second time
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES


def test_base_url_without_trailing_slash_and_checksum(http_server, tmp_path):
    archive = flat_zip()
    http_server.serve(f"/models/{MODEL}.zip", archive)
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/models",
        MODEL,
        "False",
        "--dest_dir",
        tmp_path,
        "--sha256",
        hashlib.sha256(archive).hexdigest(),
    )
    assert result.returncode == 0, result.stderr
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES


def test_incomplete_model_folder_is_replaced(http_server, tmp_path):
    (tmp_path / MODEL).mkdir()
    (tmp_path / MODEL / "bert_config.json").write_bytes(b"{}")
    http_server.serve(f"/{MODEL}.zip", flat_zip())
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/",
        MODEL,
        "False",
        "--dest_dir",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "lacks vocab.txt, bert_model.ckpt.index" in result.stdout
    assert contents(tmp_path / MODEL) == CHECKPOINT_FILES


def test_http_404_leaves_nothing(http_server, tmp_path):
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/",
        MODEL,
        "False",
        "--dest_dir",
        tmp_path,
    )
    assert_one_line_error(result, "HTTP 404", f"{MODEL}.zip")
    assert list(tmp_path.iterdir()) == []


def test_archive_without_vocab_is_refused_and_deleted(http_server, tmp_path):
    files = {k: v for k, v in CHECKPOINT_FILES.items() if k != "vocab.txt"}
    http_server.serve(f"/{MODEL}.zip", flat_zip(files))
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/",
        MODEL,
        "False",
        "--dest_dir",
        tmp_path,
    )
    assert_one_line_error(result, "no vocab.txt", "downloads it again")
    assert list(tmp_path.iterdir()) == []  # no model folder, no zip, no scratch folder


def test_wrong_checksum_is_refused(http_server, tmp_path):
    http_server.serve(f"/{MODEL}.zip", flat_zip())
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/",
        MODEL,
        "False",
        "--dest_dir",
        tmp_path,
        "--sha256",
        "0" * 64,
    )
    assert_one_line_error(result, "sha256")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "flatten, archive, hint",
    [
        ("False", foldered_zip(), "pass True"),
        ("True", flat_zip(), "pass False"),
        ("True", foldered_zip("other_name"), "other_name"),
    ],
    ids=["folder-as-flat", "flat-as-folder", "folder-of-another-name"],
)
def test_layout_that_does_not_match_flatten_is_refused(
    http_server, tmp_path, flatten, archive, hint
):
    http_server.serve(f"/{MODEL}.zip", archive)
    result = run_script(
        "download_pretrained_model.py",
        http_server.url + "/",
        MODEL,
        flatten,
        "--dest_dir",
        tmp_path,
    )
    assert_one_line_error(result, hint)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["http://127.0.0.1:9/", MODEL, "yes"],
            "argument flatten: must be True or False, not 'yes'",
        ),
        (["http://127.0.0.1:9/", MODEL, "true"], "must be True or False, not 'true'"),
        (["http://127.0.0.1:9/", MODEL], "required: flatten"),
        (["http://127.0.0.1:9/", MODEL, "False", "extra"], "unrecognized arguments: extra"),
        (["http://127.0.0.1:9/", "../evil", "False"], "plain name"),
    ],
)
def test_bad_arguments_give_one_line(tmp_path, args, fragment):
    result = run_script("download_pretrained_model.py", *args, "--dest_dir", tmp_path)
    assert_one_line_error(result, fragment)
    assert list(tmp_path.iterdir()) == []


def test_pretrained_model_default_destination_is_the_package_dir():
    result = run_script("download_pretrained_model.py", "--help")
    assert result.returncode == 0
    assert str(BERT_DIR) in " ".join(result.stdout.split())


# ---------------------------------------------------------------------------------------------
# download_glue_data.py and download_dataset.py

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
MSR_TRAIN_LINES = [
    HEADER,
    "1\t702876\t702977\tAmrozi accused his brother , whom he called <QUOTE> the witness <QUOTE> .\tReferring to him as only <QUOTE> the witness <QUOTE> , Amrozi accused his brother .",
    "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 .\tYucaipa bought Dominick 's in 1995 for $ 693 million .",
    "1\t1330381\t1330521\tThe café opened on Monday .\tOn Monday the café opened .",
    "",  # a blank line, which readers skip
    "0\t3344667\t3344648\tTab-free text one .\tTab-free text two .",
]
MSR_TEST_LINES = [
    HEADER,
    "1\t1089874\t1089925\tPCCW 's chief operating officer , Mike Butcher , said so .\tMike Butcher said <QUOTE> so <QUOTE> .",
    "0\t3019446\t3019327\tThe world 's two largest automakers said sales fell .\tSales fell at both .",
]
DEV_IDS = b"2108705\t2108831\r\n3344667\t3344648\r\n"


def msr_bytes(lines: List[str]) -> bytes:
    """An MSR file as some copies are: a double-encoded BOM, the text double-encoded, CRLF."""
    text = "\ufeff" + "\r\n".join(lines) + "\r\n"
    return text.encode("utf-8").decode("latin-1").encode("utf-8")


EXPECTED_TRAIN = (
    HEADER + "\n"
    '1\t702876\t702977\tAmrozi accused his brother , whom he called " the witness " .\tReferring to him as only " the witness " , Amrozi accused his brother .\n'
    "1\t1330381\t1330521\tThe café opened on Monday .\tOn Monday the café opened .\n"
)
EXPECTED_DEV = (
    HEADER + "\n"
    "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 .\tYucaipa bought Dominick 's in 1995 for $ 693 million .\n"
    "0\t3344667\t3344648\tTab-free text one .\tTab-free text two .\n"
)
EXPECTED_TEST = (
    "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    '0\t1089874\t1089925\tPCCW \'s chief operating officer , Mike Butcher , said so .\tMike Butcher said " so " .\n'
    "1\t3019446\t3019327\tThe world 's two largest automakers said sales fell .\tSales fell at both .\n"
)


def serve_mrpc(server: FileServer, train: bytes, test: bytes, dev_ids: bytes) -> List[str]:
    """Serve the three MRPC inputs; return the URL flags that point the scripts at them."""
    return [
        "--mrpc_train_url",
        server.serve("/senteval/msr_paraphrase_train.txt", train),
        "--mrpc_test_url",
        server.serve("/senteval/msr_paraphrase_test.txt", test),
        "--mrpc_dev_ids_url",
        server.serve("/glue/mrpc_dev_ids.tsv", dev_ids),
    ]


def assert_small_mrpc(mrpc_dir: Path) -> None:
    assert (mrpc_dir / "train.tsv").read_text(encoding="utf-8") == EXPECTED_TRAIN
    assert (mrpc_dir / "dev.tsv").read_text(encoding="utf-8") == EXPECTED_DEV
    assert (mrpc_dir / "test.tsv").read_text(encoding="utf-8") == EXPECTED_TEST
    # And the recipe's reader takes them as they are.
    processor = get_processor("mrpc")
    assert [e.label for e in processor.get_train_examples(mrpc_dir)] == ["1", "1"]
    assert len(processor.get_dev_examples(mrpc_dir)) == 2
    assert len(processor.get_test_examples(mrpc_dir)) == 2


def test_glue_mrpc_download(http_server, tmp_path):
    flags = serve_mrpc(http_server, msr_bytes(MSR_TRAIN_LINES), msr_bytes(MSR_TEST_LINES), DEV_IDS)
    data_dir = tmp_path / "glue_data"
    result = run_script("download_glue_data.py", "--data_dir", data_dir, "--tasks", "MRPC", *flags)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_small_mrpc(data_dir / "MRPC")
    # As the gist, the sources stay beside the outputs.
    assert sorted(p.name for p in (data_dir / "MRPC").iterdir()) == [
        "dev.tsv",
        "dev_ids.tsv",
        "msr_paraphrase_test.txt",
        "msr_paraphrase_train.txt",
        "test.tsv",
        "train.tsv",
    ]


def test_glue_rerun_fetches_again(http_server, tmp_path):
    flags = serve_mrpc(http_server, msr_bytes(MSR_TRAIN_LINES), msr_bytes(MSR_TEST_LINES), DEV_IDS)
    data_dir = tmp_path / "glue_data"
    assert run_script("download_glue_data.py", "--data_dir", data_dir, *flags).returncode == 0
    # A different dev split on the server: the files of the first run must not be reused.
    http_server.serve("/glue/mrpc_dev_ids.tsv", b"702876\t702977\n")
    result = run_script("download_glue_data.py", "--data_dir", data_dir, *flags)
    assert result.returncode == 0, result.stderr
    assert len(http_server.requests) == 6
    dev = read_tsv(data_dir / "MRPC" / "dev.tsv")
    assert [fields[1:3] for fields in dev[1:]] == [["702876", "702977"]]
    assert len(read_tsv(data_dir / "MRPC" / "train.tsv")) == 1 + 3


def test_glue_mrpc_from_local_files(http_server, tmp_path):
    local = tmp_path / "msr"
    local.mkdir()
    (local / "msr_paraphrase_train.txt").write_bytes(msr_bytes(MSR_TRAIN_LINES))
    (local / "msr_paraphrase_test.txt").write_bytes(msr_bytes(MSR_TEST_LINES))
    dev_ids_url = http_server.serve("/glue/mrpc_dev_ids.tsv", DEV_IDS)
    data_dir = tmp_path / "glue_data"
    result = run_script(
        "download_glue_data.py",
        "--data_dir",
        data_dir,
        "--tasks",
        "MRPC",
        "--path_to_mrpc",
        local,
        "--mrpc_dev_ids_url",
        dev_ids_url,
    )
    assert result.returncode == 0, result.stderr
    assert_small_mrpc(data_dir / "MRPC")
    assert http_server.requests == ["/glue/mrpc_dev_ids.tsv"]  # only the dev ids fetched


def test_glue_local_folder_without_the_files(tmp_path):
    result = run_script(
        "download_glue_data.py", "--data_dir", tmp_path / "g", "--path_to_mrpc", tmp_path
    )
    assert_one_line_error(result, "msr_paraphrase_train.txt or msr_paraphrase_test.txt")


@pytest.mark.parametrize("tasks", ["CoLA", "all", "MRPC,SST"])
def test_glue_other_tasks_are_refused(tmp_path, tasks):
    result = run_script("download_glue_data.py", "--data_dir", tmp_path / "g", "--tasks", tasks)
    assert_one_line_error(result, "only MRPC is supported")
    assert not (tmp_path / "g").exists()


def test_glue_dev_ids_not_in_train_are_an_error(http_server, tmp_path):
    flags = serve_mrpc(
        http_server,
        msr_bytes(MSR_TRAIN_LINES),
        msr_bytes(MSR_TEST_LINES),
        DEV_IDS + b"111\t222\n",
    )
    data_dir = tmp_path / "glue_data"
    result = run_script("download_glue_data.py", "--data_dir", data_dir, *flags)
    assert_one_line_error(result, "1 of the 3 pairs in dev_ids.tsv", "111 222")
    assert not (data_dir / "MRPC" / "train.tsv").exists()


def test_download_dataset_fresh_then_existing(http_server, tmp_path):
    flags = serve_mrpc(http_server, msr_bytes(MSR_TRAIN_LINES), msr_bytes(MSR_TEST_LINES), DEV_IDS)
    dataset = tmp_path / "datasets" / "bert" / "MRPC"  # the seed's kind of path
    result = run_script("download_dataset.py", dataset, *flags)
    assert result.returncode == 0, result.stderr
    assert_small_mrpc(dataset / "MRPC")
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["MRPC"]  # no staging left
    fetched = len(http_server.requests)

    (dataset / "MRPC" / "train.tsv").write_text("kept\n")
    again = run_script("download_dataset.py", dataset, *flags)
    assert again.returncode == 0, again.stderr
    assert "existing" in again.stdout
    assert len(http_server.requests) == fetched
    assert (dataset / "MRPC" / "train.tsv").read_text() == "kept\n"


def test_download_dataset_failure_leaves_no_folder(http_server, tmp_path):
    flags = serve_mrpc(http_server, msr_bytes(MSR_TRAIN_LINES), msr_bytes(MSR_TEST_LINES), DEV_IDS)
    del http_server.files["/glue/mrpc_dev_ids.tsv"]  # the last of the three fetches fails
    dataset = tmp_path / "mrpc_data"
    result = run_script("download_dataset.py", dataset, *flags)
    assert_one_line_error(result, "HTTP 404")
    assert list(tmp_path.iterdir()) == []  # so the next run does not take it as done


def test_download_dataset_needs_its_argument():
    assert_one_line_error(run_script("download_dataset.py"), "dataset_path")


# ---------------------------------------------------------------------------------------------
# Real data: the Microsoft Research Paraphrase Corpus from ../shared/data


@pytest.fixture
def msr_corpus():
    folder = SHARED_DATA / "mrpc"
    names = ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt")
    if not all((folder / name).is_file() for name in names):
        pytest.skip(f"real MRPC data not found in {folder} (a full checkout has ../shared/data)")
    return [(folder / name).read_bytes() for name in names]


def test_real_msr_corpus(http_server, tmp_path, msr_corpus):
    train, test = msr_corpus
    local = tmp_path / "msr"
    local.mkdir()
    (local / "train.txt").write_bytes(train)
    # GLUE's dev split is 408 pairs; take the first 408 of train as a stand-in.
    pairs = [fields[1:3] for fields in read_tsv(local / "train.txt")[1:] if fields][:408]
    dev_ids = "".join(f"{a}\t{b}\n" for a, b in pairs).encode()

    flags = serve_mrpc(http_server, train, test, dev_ids)
    result = run_script("download_dataset.py", tmp_path / "data", *flags)
    assert result.returncode == 0, result.stderr

    mrpc_dir = tmp_path / "data" / "MRPC"
    rows = {name: read_tsv(mrpc_dir / name) for name in ("train.tsv", "dev.tsv", "test.tsv")}
    assert len(rows["dev.tsv"]) - 1 == 408
    assert len(rows["train.tsv"]) - 1 + len(rows["dev.tsv"]) - 1 == 4076
    assert len(rows["test.tsv"]) - 1 == 1725
    assert rows["train.tsv"][0] == HEADER.split("\t")  # no byte-order mark left
    assert not any("<QUOTE>" in (mrpc_dir / n).read_text(encoding="utf-8") for n in rows)

    processor = get_processor("mrpc")
    assert len(processor.get_train_examples(mrpc_dir)) == 4076 - 408
    assert len(processor.get_dev_examples(mrpc_dir)) == 408
    assert len(processor.get_test_examples(mrpc_dir)) == 1725
