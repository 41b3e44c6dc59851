"""A Wikipedia dump to documents of sentences: streaming, on all cores, resumable.

The dump (``enwiki-latest-pages-articles.xml.bz2``, about 20 GB) is never decompressed
to disk: Python's `bz2` streams it into an incremental XML parser, so no ``bzip2`` or
``lbzip2`` binary is needed and memory stays flat. Articles (namespace 0, not
redirects) are cut into parts of `ARTICLES_PER_PART`; worker processes turn each part's
wiki markup into plain text (the `wikiextractor` package), split it into sentences
(`blingfire`, whose model ships inside its wheel), and the parent writes the part as
``part_<k>.txt``: one sentence a line, a blank line after each article, the input
`bertfam.pretraining.instances.read_documents` reads. Each part file appears whole or
not at all, so a rerun after a kill decompresses past the parts already written (the
parsing is cheap next to the cleaning) and cleans only the rest.
"""

from __future__ import annotations

import bz2
import concurrent.futures
import contextlib
import logging
import multiprocessing
import xml.etree.ElementTree as ElementTree
from collections import deque
from pathlib import Path
from typing import Iterator, List, Tuple

from bertfam.atomic import write_text
from bertfam.pretraining.instances import PretrainingDataError
from bertfam.runlog import progress

log = logging.getLogger(__name__)

DUMP_URL = "https://dumps.wikimedia.org/enwiki/latest/enwiki-latest-pages-articles.xml.bz2"
ARTICLES_PER_PART = 2000
COMPLETE = "COMPLETE"  # written last into a finished formatting folder

Article = Tuple[str, str]  # (title, wiki markup)


def checksums_url(dump_url: str) -> str:
    """Where Wikimedia publishes the sha1 of every file of a dump, beside the dump:
    ``.../enwiki-latest-pages-articles.xml.bz2`` -> ``.../enwiki-latest-sha1sums.txt``."""
    folder, _, name = dump_url.rpartition("/")
    return f"{folder}/{name.split('-pages-articles')[0]}-sha1sums.txt"


def published_sha1(checksums: str, file_name: str) -> str:
    """The sha1 a ``<sha1>  <file>`` listing gives for `file_name`."""
    for line in checksums.splitlines():
        digest, _, name = line.strip().partition("  ")
        if name.strip() == file_name:
            return digest
    raise PretrainingDataError(f"the dump's sha1sums list no {file_name}")


def articles(dump: Path, show_progress: bool = True) -> Iterator[Article]:
    """(title, markup) of every article of a ``.xml.bz2`` (or plain ``.xml``) dump, in
    dump order: main namespace only, redirects skipped."""
    with (
        open(dump, "rb") as raw,
        bz2.BZ2File(raw) if dump.name.endswith(".bz2") else contextlib.nullcontext(raw) as stream,
        progress(
            total=dump.stat().st_size, desc="read dump", unit="B", enabled=show_progress
        ) as bar,
    ):
        try:
            root = None
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                if root is None:
                    root = element  # <mediawiki>: cleared below, else it keeps every page
                if event != "end" or _local(element.tag) != "page":
                    continue
                article = _article(element)
                root.clear()
                bar.update(raw.tell() - bar.n)
                if article is not None:
                    yield article
        except (EOFError, OSError) as error:  # truncated or not bzip2 at all
            raise PretrainingDataError(f"{dump}: cannot decompress it ({error})") from None
        except ElementTree.ParseError as error:
            raise PretrainingDataError(f"{dump}: not a Wikipedia XML dump ({error})") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]  # the export schema's namespace changes with versions


def _article(page) -> Article | None:
    fields = {_local(child.tag): child for child in page}
    if "redirect" in fields or (fields.get("ns") is not None and fields["ns"].text != "0"):
        return None
    revision = fields.get("revision")
    text = None
    if revision is not None:
        text = next((c.text for c in revision if _local(c.tag) == "text"), None)
    title = fields["title"].text if "title" in fields else ""
    return (title or "", text or "")


def article_sentences(title: str, markup: str) -> List[str]:
    """The sentences of one article's text, headings, tables and references left out."""
    import blingfire
    from wikiextractor.extract import Extractor

    extractor = Extractor("0", "0", "", title, [], keepSections=False)
    paragraphs = extractor.clean_text(markup, expand_templates=False)
    sentences = []
    for paragraph in paragraphs:
        for sentence in blingfire.text_to_sentences(paragraph.strip()).split("\n"):
            if sentence.strip():
                sentences.append(sentence.strip())
    return sentences


def format_part(part: List[Article]) -> str:
    """One part's text: each article's sentences, a line each, then a blank line;
    articles without a sentence are left out."""
    lines = []
    for title, markup in part:
        sentences = article_sentences(title, markup)
        if sentences:
            lines.extend(sentences)
            lines.append("")
    return "\n".join(lines) + "\n" if lines else ""


def part_path(folder: Path, index: int) -> Path:
    return folder / f"part_{index:05d}.txt"


def format_dump(
    dump: Path,
    folder: Path,
    n_processes: int,
    articles_per_part: int = ARTICLES_PER_PART,
    show_progress: bool = True,
) -> List[Path]:
    """Write the dump's articles as sentence-per-line parts into `folder` (resuming: parts
    already there are kept); `folder/COMPLETE` marks the end. Returns the part files."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / COMPLETE).exists():
        return sorted(folder.glob("part_*.txt"))
    # Spawned, not forked: the parent may hold threads (the XML reader, tokenizers).
    context = multiprocessing.get_context("spawn")
    pending: deque = deque()  # (index, future), oldest first, at most 2 per worker
    written = 0
    with concurrent.futures.ProcessPoolExecutor(n_processes, mp_context=context) as pool:
        for index, part in enumerate(_parts(articles(dump, show_progress), articles_per_part)):
            if part_path(folder, index).exists():
                continue  # written by an earlier run
            pending.append((index, pool.submit(format_part, part)))
            while len(pending) >= 2 * n_processes:
                written += _write_oldest(pending, folder)
        while pending:
            written += _write_oldest(pending, folder)
    parts = sorted(folder.glob("part_*.txt"))
    if not any(path.stat().st_size for path in parts):
        raise PretrainingDataError(f"{dump}: no article with text in the dump")
    write_text(folder / COMPLETE, f"{len(parts)} parts\n")
    log.info("formatted %s: %d parts (%d written now) in %s", dump, len(parts), written, folder)
    return parts


def _parts(stream: Iterator[Article], size: int) -> Iterator[List[Article]]:
    part: List[Article] = []
    for article in stream:
        part.append(article)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _write_oldest(pending: deque, folder: Path) -> int:
    index, future = pending.popleft()
    write_text(part_path(folder, index), future.result())
    return 1
