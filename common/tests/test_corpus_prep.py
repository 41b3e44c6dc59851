"""Corpus preparation: Wikipedia dump to sentence-per-line parts, then shards.

The record-writing stages and the whole flow under each folder's
create_datasets_from_start.sh are tested in the TensorFlow and PyTorch BERT folders.
"""

import bz2
import hashlib
import subprocess
import sys

import pytest

from bertfam import tinydata
from bertfam.pretraining import wikipedia
from bertfam.pretraining.instances import PretrainingDataError
from bertfam.pretraining.sharding import ShardPlan, documents, shard_documents

MARKUP = """{{Infobox person|name=Ada Lovelace|born=1815}}
'''Augusta Ada King''' was an English [[mathematician]] and [[writer]].<ref>Toole 1998.</ref>
She is known for her work on [[Charles Babbage|Babbage's]] ''Analytical Engine''. It was 1843.

== Early life ==
Her father was Lord Byron.

{| class="wikitable"
| a || b
|}
[[File:Ada.jpg|thumb|A portrait.]]
"""


def test_an_article_is_its_sentences_without_markup():
    assert wikipedia.article_sentences("Ada Lovelace", MARKUP) == [
        "Augusta Ada King was an English mathematician and writer.",
        'She is known for her work on Babbage\'s "Analytical Engine".',  # italics: quotes
        "It was 1843.",
        "Her father was Lord Byron.",
    ]


@pytest.fixture
def dump(tmp_path):
    vocab = tinydata.vocab_file(tmp_path / "vocab.txt")
    return tinydata.wikipedia_dump(tmp_path / "enwiki.xml.bz2", vocab, seed=3, articles=30)


def test_the_dump_streams_articles_without_redirects_and_talk_pages(dump):
    pages = list(wikipedia.articles(dump, show_progress=False))
    assert len(pages) == 30  # 32 pages, less the talk page and the redirect
    assert not any(title.startswith("Talk:") for title, _ in pages)
    assert not any("#REDIRECT" in markup for _, markup in pages)


def test_formatting_writes_parts_resumes_and_marks_completion(dump, tmp_path):
    folder = tmp_path / "formatted"
    parts = wikipedia.format_dump(dump, folder, 2, articles_per_part=7, show_progress=False)
    assert [p.name for p in parts] == [f"part_0000{i}.txt" for i in range(5)]  # 30 = 4*7+2
    texts = {p.name: p.read_text() for p in parts}
    docs = list(documents(parts))
    assert len(docs) == 30  # every article has text
    every = "".join(texts.values())
    assert "[[" not in every and "{{" not in every and "<ref" not in every
    assert "History" not in every and "wikitable" not in every

    # A rerun after a kill: the missing part is made again, the others are not touched.
    parts[2].unlink()
    (folder / wikipedia.COMPLETE).unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in parts if p.exists()}
    again = wikipedia.format_dump(dump, folder, 1, articles_per_part=7, show_progress=False)
    assert {p.name: p.read_text() for p in again} == texts
    assert all(folder.joinpath(n).stat().st_mtime_ns == t for n, t in mtimes.items())


@pytest.mark.parametrize("damage", ["truncated", "not bzip2", "not xml"])
def test_a_damaged_dump_is_one_clear_error(dump, tmp_path, damage):
    data = dump.read_bytes()
    bad = tmp_path / "bad.xml.bz2"
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "not bzip2":
        bad.write_bytes(b"<html>404 Not Found</html>")
    else:
        bad.write_bytes(bz2.compress(b"this is no xml <<<"))
    folder = tmp_path / "formatted"
    expected = {"truncated": "cannot decompress", "not bzip2": "cannot decompress"}
    with pytest.raises(PretrainingDataError, match=expected.get(damage, "not a Wikipedia XML")):
        wikipedia.format_dump(bad, folder, 1, articles_per_part=1000, show_progress=False)
    assert not (folder / wikipedia.COMPLETE).exists()


def corpus(tmp_path, count=23):
    """`count` documents of 1 to 3 lines, a blank line between them."""
    path = tmp_path / "corpus.txt"
    texts = ["".join(f"Document {d} line {s}.\n" for s in range(d % 3 + 1)) for d in range(count)]
    path.write_text("\n".join(texts))
    return path


def test_sharding_deals_every_document_once_the_same_way_each_time(tmp_path):
    source = corpus(tmp_path)
    plan = ShardPlan(n_training=4, n_test=2, fraction_test=0.3, seed=7)
    assert shard_documents([source], tmp_path / "a", "wiki", plan) == 23
    shard_documents([source], tmp_path / "b", "wiki", plan)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == [f"wiki_test_{i}.txt" for i in range(2)] + [
        f"wiki_training_{i}.txt" for i in range(4)
    ]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    dealt = sorted(documents(sorted((tmp_path / "a").iterdir())))
    assert dealt == sorted(documents([source]))
    sizes = [len(list(documents([tmp_path / "a" / f"wiki_training_{i}.txt"]))) for i in range(4)]
    assert max(sizes) - min(sizes) <= 1


def test_sharding_more_shards_than_documents_writes_nothing(tmp_path):
    plan = ShardPlan(n_training=40, n_test=1, fraction_test=0.1)
    with pytest.raises(PretrainingDataError, match="use fewer shards or more text"):
        shard_documents([corpus(tmp_path)], tmp_path / "out", "wiki", plan)
    assert not (tmp_path / "out").exists()


def test_published_sha1_is_checked(http_server, dump, tmp_path):
    from bertfam.pretraining import prep

    data = dump.read_bytes()
    name = "enwiki-latest-pages-articles.xml.bz2"
    url = http_server.serve(f"/{name}", data)
    wrong = hashlib.sha1(data + b"x").hexdigest()
    http_server.serve("/enwiki-latest-sha1sums.txt", f"{wrong}  {name}\n".encode())
    run = [sys.executable, "-m", "bertfam.pretraining.prep"]
    args = ["--action", "download", "--dataset", "wikicorpus_en"]
    env = {"BERT_PREP_WORKING_DIR": str(tmp_path / "work"), "BERT_PREP_WIKI_URL": url}
    result = subprocess.run([*run, *args], env={**_env(), **env}, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error:") and "sha1 is" in error and "download was deleted" in error
    assert not prep.dump_path(tmp_path / "work").exists()

    right = hashlib.sha1(data).hexdigest()
    http_server.serve("/enwiki-latest-sha1sums.txt", f"{right}  {name}\n".encode())
    subprocess.run([*run, *args], env={**_env(), **env}, check=True, capture_output=True)
    assert prep.dump_path(tmp_path / "work").read_bytes() == data


def _env():
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("BERT_PREP")}


def test_bertprep_on_a_truncated_dump_is_one_line_and_marks_nothing_complete(dump, tmp_path):
    from bertfam.pretraining import prep

    work = tmp_path / "work"
    prep.dump_path(work).parent.mkdir(parents=True)
    prep.dump_path(work).write_bytes(dump.read_bytes()[:-100])
    result = subprocess.run(
        [sys.executable, "-m", "bertfam.pretraining.prep", "--action", "text_formatting",
         "--dataset", "wikicorpus_en", "--n_processes", "1"],
        env={**_env(), "BERT_PREP_WORKING_DIR": str(work)}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "cannot decompress" in error
    assert not (prep.formatted_dir(work) / wikipedia.COMPLETE).exists()
