"""GLUE task readers: the processors of google-research/bert `run_classifier.py`.

`MrpcProcessor`, `ColaProcessor`, `MnliProcessor` and `XnliProcessor` read the same files,
the same columns and skip the same header lines as Google's processors of those names
(HuggingFace transformers v3.0.2 `glue_processors` read the same files the same way), and
produce the same `InputExample` guids, texts and labels, so that features, and so results,
can be compared line for line with the upstream recipes.

Where we differ, it is to fail loudly instead of producing wrong examples:

- Every line is checked: a wrong number of columns, an empty sentence, or a label that is
  not in `get_labels()` raises `GlueDataError`, whose one-line message names the file, the
  line number and the column. Google's reader would raise an IndexError or train on it.
- A byte-order mark at the start of a file is dropped, including a double-encoded one
  (the UTF-8 bytes of "ï»¿": a BOM that was read as latin-1/cp1252 and written back as
  UTF-8), so that it does not end up glued to the first field. Such a mark says the whole
  file made that round trip, so its other non-ASCII text is mojibake too ("â\x80\x99"
  for "’"); when the whole text can be turned back into UTF-8 we do so, else we leave it.
- Blank lines (which csv.reader returns as empty rows and Google's processors crash on)
  are skipped; they still count for line numbers and guids.
- `XnliProcessor.get_test_examples` exists (Google has none); like HuggingFace's
  XnliProcessor it reads `xnli.test.tsv` with its gold labels, in the dev-set layout.

The raw Microsoft Research Paraphrase Corpus files that GLUE's MRPC is cut from,
`msr_paraphrase_train.txt` and `msr_paraphrase_test.txt`, have the same five columns
(`Quality  #1 ID  #2 ID  #1 String  #2 String`); `read_msr_paraphrase` reads them. Some
copies of those files write each double quote as the placeholder `<QUOTE>`; that reader
turns it back into `"`, which is how the sentences read in GLUE's TSVs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Type, Union

from bertfam.errors import UserError

PathLike = Union[str, Path]

# A byte-order mark as it should be, and as it reads after a latin-1/cp1252 round trip.
BYTE_ORDER_MARK = "\ufeff"
DOUBLE_ENCODED_BYTE_ORDER_MARK = "\u00ef\u00bb\u00bf"
MSR_QUOTE_PLACEHOLDER = "<QUOTE>"
MSR_COLUMNS = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")


class GlueDataError(UserError):
    """A GLUE data file is missing or malformed; the message names file, line and column."""


class UnknownTaskError(UserError):
    """A task name that no processor reads."""


@dataclass(frozen=True)
class InputExample:
    """One example, as Google's `InputExample`: text_b is None for single-sentence tasks."""

    guid: str
    text_a: str
    text_b: Optional[str] = None
    label: Optional[str] = None


def read_tsv(path: PathLike) -> List[List[str]]:
    """The rows of a tab-separated file, as Google's `DataProcessor._read_tsv`.

    Google reads with csv.reader(delimiter="\\t", quotechar=None), i.e. with no quoting
    at all: a double quote is an ordinary character, which matters because sentences
    start and end with quotes. Row i is line i + 1 of the file; a blank line is an empty
    row. Newlines are "\\n", "\\r\\n" or "\\r", as a file opened in text mode reads them.
    """
    text = _strip_byte_order_marks(_undo_double_encoding(_read_utf8(Path(path))))
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.split("\t") if line else [] for line in lines]


def _read_utf8(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GlueDataError(f"{path}: no such file") from None
    except OSError as error:
        raise GlueDataError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_number = data.count(b"\n", 0, error.start) + 1
        raise GlueDataError(
            f"{path}, line {line_number}: not UTF-8 text (byte {data[error.start]:#04x})"
        ) from None


def _undo_double_encoding(text: str) -> str:
    """Repair a file that starts with a double-encoded BOM, if all of it can be repaired.

    Its text was UTF-8 read as latin-1 (or cp1252), so each character is one byte of the
    real text: encoding with that codec gives the original bytes back. A file that only
    partly made the trip does not encode or decode cleanly and is left as it is.
    """
    while text.startswith(DOUBLE_ENCODED_BYTE_ORDER_MARK):
        repaired = _decode_as_utf8_bytes_of(text)
        if repaired is None:
            break
        text = repaired
    return text


def _decode_as_utf8_bytes_of(text: str) -> Optional[str]:
    for codec in ("latin-1", "cp1252"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return None


def _strip_byte_order_marks(text: str) -> str:
    # Loop: a file that was written with a BOM more than once, or that failed the repair
    # above after a round trip, can start with several marks.
    while True:
        for mark in (BYTE_ORDER_MARK, DOUBLE_ENCODED_BYTE_ORDER_MARK):
            if text.startswith(mark):
                text = text[len(mark) :]
                break
        else:
            return text


@dataclass(frozen=True)
class _Line:
    """One row of a data file, with what an error message needs to point at it."""

    path: Path
    number: int  # 1-based line number in the file
    fields: List[str]

    def where(self) -> str:
        return f"{self.path}, line {self.number}"

    def require_columns(self, names: Sequence[str], exact: bool = True) -> None:
        """The row has the columns `names` (exactly, or at least those when not `exact`)."""
        count = len(self.fields)
        if count == len(names) or (not exact and count > len(names)):
            return
        expected = f"{len(names)}" if exact else f"at least {len(names)}"
        raise GlueDataError(
            f"{self.where()}: expected {expected} tab-separated columns "
            f"({', '.join(names)}), found {count}"
        )

    def sentence(self, column: int, name: str) -> str:
        text = self.fields[column]
        if not text.strip():
            raise GlueDataError(f"{self.where()}: column {column} ({name}) is empty")
        return text

    def label(self, column: int, name: str, labels: Sequence[str]) -> str:
        label = self.fields[column]
        return self.check_label(label, column, name, labels)

    def check_label(self, label: str, column: int, name: str, labels: Sequence[str]) -> str:
        if label not in labels:
            raise GlueDataError(
                f"{self.where()}: column {column} ({name}) is {label!r}, "
                f"expected one of {', '.join(labels)}"
            )
        return label


def _data_lines(path: Path, skip_header: bool) -> List[_Line]:
    """The non-blank rows of `path`, without its first row when it is a header."""
    rows = read_tsv(path)
    first = 1 if skip_header else 0
    return [
        _Line(path, index + 1, fields)
        for index, fields in enumerate(rows)
        if index >= first and fields
    ]


class DataProcessor:
    """The interface of Google's `DataProcessor`: examples per split, and the label list."""

    def get_train_examples(self, data_dir: PathLike) -> List[InputExample]:
        raise NotImplementedError

    def get_dev_examples(self, data_dir: PathLike) -> List[InputExample]:
        raise NotImplementedError

    def get_test_examples(self, data_dir: PathLike) -> List[InputExample]:
        raise NotImplementedError

    def get_labels(self) -> List[str]:
        raise NotImplementedError


class _SplitFilesProcessor(DataProcessor):
    """A task with one TSV per split in the data directory: (file name, guid prefix)."""

    TRAIN = ("train.tsv", "train")
    DEV = ("dev.tsv", "dev")
    TEST = ("test.tsv", "test")

    def get_train_examples(self, data_dir: PathLike) -> List[InputExample]:
        return self._create_examples(Path(data_dir) / self.TRAIN[0], self.TRAIN[1])

    def get_dev_examples(self, data_dir: PathLike) -> List[InputExample]:
        return self._create_examples(Path(data_dir) / self.DEV[0], self.DEV[1])

    def get_test_examples(self, data_dir: PathLike) -> List[InputExample]:
        return self._create_examples(Path(data_dir) / self.TEST[0], self.TEST[1])

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        raise NotImplementedError


class MrpcProcessor(_SplitFilesProcessor):
    """GLUE MRPC: train.tsv, dev.tsv, test.tsv, each with a header line.

    Columns `Quality  #1 ID  #2 ID  #1 String  #2 String`; in test.tsv the first column
    is an index instead of the label, and examples get the placeholder label "0" as in
    Google's recipe.
    """

    TEST_COLUMNS = ("index",) + MSR_COLUMNS[1:]

    def get_labels(self) -> List[str]:
        return ["0", "1"]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        columns = self.TEST_COLUMNS if is_test else MSR_COLUMNS
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(columns)
            label = "0" if is_test else line.label(0, "Quality", self.get_labels())
            examples.append(
                InputExample(
                    guid=f"{set_type}-{line.number - 1}",
                    text_a=line.sentence(3, "#1 String"),
                    text_b=line.sentence(4, "#2 String"),
                    label=label,
                )
            )
        return examples


def read_msr_paraphrase(path: PathLike, set_type: Optional[str] = None) -> List[InputExample]:
    """Examples from a raw MSR Paraphrase Corpus file (`msr_paraphrase_train.txt` etc.).

    The layout is GLUE MRPC's train.tsv: a header line, then `Quality  #1 ID  #2 ID
    #1 String  #2 String`, and the test file has real labels. `<QUOTE>` in a sentence
    becomes `"` (some copies of the corpus write double quotes that way). Guids are
    "<set_type>-<row>" as in `MrpcProcessor`; set_type defaults to the file's stem.
    """
    path = Path(path)
    prefix = set_type if set_type is not None else path.stem
    labels = MrpcProcessor().get_labels()
    examples = []
    for line in _data_lines(path, skip_header=True):
        line.require_columns(MSR_COLUMNS)
        examples.append(
            InputExample(
                guid=f"{prefix}-{line.number - 1}",
                text_a=_restore_quotes(line.sentence(3, "#1 String")),
                text_b=_restore_quotes(line.sentence(4, "#2 String")),
                label=line.label(0, "Quality", labels),
            )
        )
    return examples


def _restore_quotes(text: str) -> str:
    return text.replace(MSR_QUOTE_PLACEHOLDER, '"')


class ColaProcessor(_SplitFilesProcessor):
    """GLUE CoLA: single sentences, label "0" (unacceptable) or "1" (acceptable).

    train.tsv and dev.tsv have no header and four columns `source  label  author's mark
    sentence`; test.tsv has a header `index  sentence`, and its examples get the
    placeholder label "0" as in Google's recipe.
    """

    COLUMNS = ("source", "label", "original mark", "sentence")
    TEST_COLUMNS = ("index", "sentence")

    def get_labels(self) -> List[str]:
        return ["0", "1"]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"  # only the test file has a header
        examples = []
        for line in _data_lines(path, skip_header=is_test):
            if is_test:
                line.require_columns(self.TEST_COLUMNS)
                text, label = line.sentence(1, "sentence"), "0"
            else:
                line.require_columns(self.COLUMNS)
                text = line.sentence(3, "sentence")
                label = line.label(1, "label", self.get_labels())
            guid = f"{set_type}-{line.number - 1}"
            examples.append(InputExample(guid=guid, text_a=text, text_b=None, label=label))
        return examples


class MnliProcessor(_SplitFilesProcessor):
    """GLUE MultiNLI, matched: train.tsv, dev_matched.tsv, test_matched.tsv.

    Each has a header; sentences are columns 8 and 9 and the gold label is the last
    column (the files differ in how many annotator labels they carry: train has 12
    columns, dev 16, test 10 and no label). Guids use the file's own index column.
    """

    COLUMNS = (
        "index",
        "promptID",
        "pairID",
        "genre",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
    )

    DEV = ("dev_matched.tsv", "dev_matched")
    TEST = ("test_matched.tsv", "test")

    def get_labels(self) -> List[str]:
        return ["contradiction", "entailment", "neutral"]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        # Labelled files need a column after sentence2 for the label.
        columns = self.COLUMNS if is_test else self.COLUMNS + ("gold_label",)
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(columns, exact=is_test)
            if is_test:
                label = "contradiction"  # Google's placeholder
            else:
                label = line.label(len(line.fields) - 1, "gold_label", self.get_labels())
            examples.append(
                InputExample(
                    guid=f"{set_type}-{line.fields[0]}",
                    text_a=line.sentence(8, "sentence1"),
                    text_b=line.sentence(9, "sentence2"),
                    label=label,
                )
            )
        return examples


class XnliProcessor(DataProcessor):
    """XNLI, one language (default "zh", as Google's recipe).

    Train: `multinli/multinli.train.<language>.tsv` (header; premise, hypothesis, label,
    where "contradictory" means "contradiction"). Dev and test: `xnli.dev.tsv` and
    `xnli.test.tsv` (header; all 15 languages, of which the lines whose column 0 is the
    language are kept; sentences in columns 6 and 7, gold label in column 1).
    """

    TRAIN_COLUMNS = ("premise", "hypo", "label")
    EVAL_COLUMNS = (
        "language",
        "gold_label",
        "sentence1_binary_parse",
        "sentence2_binary_parse",
        "sentence1_parse",
        "sentence2_parse",
        "sentence1",
        "sentence2",
    )

    def __init__(self, language: str = "zh"):
        self.language = language

    def get_train_examples(self, data_dir: PathLike) -> List[InputExample]:
        path = Path(data_dir) / "multinli" / f"multinli.train.{self.language}.tsv"
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(self.TRAIN_COLUMNS, exact=False)
            raw_label = line.fields[2]
            label = "contradiction" if raw_label == "contradictory" else raw_label
            examples.append(
                InputExample(
                    guid=f"train-{line.number - 1}",
                    text_a=line.sentence(0, "premise"),
                    text_b=line.sentence(1, "hypo"),
                    label=line.check_label(label, 2, "label", self.get_labels()),
                )
            )
        return examples

    def get_dev_examples(self, data_dir: PathLike) -> List[InputExample]:
        return self._eval_examples(Path(data_dir) / "xnli.dev.tsv", "dev")

    def get_test_examples(self, data_dir: PathLike) -> List[InputExample]:
        return self._eval_examples(Path(data_dir) / "xnli.test.tsv", "test")

    def get_labels(self) -> List[str]:
        return ["contradiction", "entailment", "neutral"]

    def _eval_examples(self, path: Path, set_type: str) -> List[InputExample]:
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(self.EVAL_COLUMNS, exact=False)
            if line.fields[0] != self.language:
                continue
            examples.append(
                InputExample(
                    guid=f"{set_type}-{line.number - 1}",
                    text_a=line.sentence(6, "sentence1"),
                    text_b=line.sentence(7, "sentence2"),
                    label=line.label(1, "gold_label", self.get_labels()),
                )
            )
        return examples


class MisMnliProcessor(MnliProcessor):
    """GLUE MultiNLI, mismatched: train.tsv, dev_mismatched.tsv, test_mismatched.tsv."""

    DEV = ("dev_mismatched.tsv", "dev_mismatched")
    TEST = ("test_mismatched.tsv", "test")


class Sst2Processor(_SplitFilesProcessor):
    """GLUE SST-2: single sentences, label "0" (negative) or "1" (positive).

    Each file has a header: train.tsv and dev.tsv are `sentence  label`, test.tsv is
    `index  sentence` (placeholder label "0")."""

    def get_labels(self) -> List[str]:
        return ["0", "1"]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        examples = []
        for line in _data_lines(path, skip_header=True):
            if is_test:
                line.require_columns(("index", "sentence"))
                text, label = line.sentence(1, "sentence"), "0"
            else:
                line.require_columns(("sentence", "label"))
                text, label = line.sentence(0, "sentence"), line.label(1, "label", ["0", "1"])
            guid = f"{set_type}-{line.number - 1}"
            examples.append(InputExample(guid=guid, text_a=text, text_b=None, label=label))
        return examples


class QqpProcessor(_SplitFilesProcessor):
    """GLUE QQP: question pairs, label "1" when duplicates.

    Each file has a header: train.tsv and dev.tsv are `id  qid1  qid2  question1
    question2  is_duplicate`, test.tsv is `id  question1  question2` (placeholder "0").
    Labelled rows with fewer columns are skipped, as upstream does (the public train
    file has some)."""

    COLUMNS = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")

    def get_labels(self) -> List[str]:
        return ["0", "1"]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        examples = []
        for line in _data_lines(path, skip_header=True):
            if is_test:
                line.require_columns(("id", "question1", "question2"))
                a, b, label = line.fields[1], line.fields[2], "0"
            elif len(line.fields) < len(self.COLUMNS):
                continue
            else:
                a, b = line.fields[3], line.fields[4]
                label = line.label(5, "is_duplicate", self.get_labels())
            guid = f"{set_type}-{line.fields[0]}"
            examples.append(InputExample(guid=guid, text_a=a, text_b=b, label=label))
        return examples


class _IndexedPairProcessor(_SplitFilesProcessor):
    """GLUE's `index  sentence1  sentence2  label` files (RTE, QNLI, WNLI): a header,
    the label last; test.tsv has no label and gets `TEST_LABEL`."""

    LABELS: List[str] = []
    TEST_LABEL = ""

    def get_labels(self) -> List[str]:
        return list(self.LABELS)

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        names = ("index", "sentence1", "sentence2") + (() if is_test else ("label",))
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(names)
            label = self.TEST_LABEL if is_test else line.label(3, "label", self.LABELS)
            examples.append(
                InputExample(
                    guid=f"{set_type}-{line.fields[0]}",
                    text_a=line.sentence(1, "sentence1"),
                    text_b=line.sentence(2, "sentence2"),
                    label=label,
                )
            )
        return examples


class RteProcessor(_IndexedPairProcessor):
    LABELS = ["entailment", "not_entailment"]
    TEST_LABEL = "entailment"


class QnliProcessor(_IndexedPairProcessor):
    LABELS = ["entailment", "not_entailment"]
    TEST_LABEL = "entailment"


class WnliProcessor(_IndexedPairProcessor):
    LABELS = ["0", "1"]
    TEST_LABEL = "0"


class StsbProcessor(_SplitFilesProcessor):
    """GLUE STS-B: sentence pairs scored 0 to 5, a regression (label list ``[None]``,
    as google-research/albert has it: one output, each label a score).

    Each file has a header; sentences are columns 7 and 8, the score the last column
    (test.tsv has none: placeholder "0")."""

    COLUMNS = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2")  # fmt: skip

    def get_labels(self) -> List[Optional[str]]:
        return [None]

    def _create_examples(self, path: Path, set_type: str) -> List[InputExample]:
        is_test = set_type == "test"
        examples = []
        for line in _data_lines(path, skip_header=True):
            line.require_columns(self.COLUMNS, exact=is_test)
            label = "0" if is_test else line.fields[-1]
            if not is_test:
                try:
                    float(label)
                except ValueError:
                    raise GlueDataError(
                        f"{line.where()}: the score (last column) is {label!r}, not a number"
                    ) from None
            examples.append(
                InputExample(
                    guid=f"{set_type}-{line.fields[0]}",
                    text_a=line.sentence(7, "sentence1"),
                    text_b=line.sentence(8, "sentence2"),
                    label=label,
                )
            )
        return examples


# Google BERT's run_classifier.py tasks.
PROCESSORS: Dict[str, Type[DataProcessor]] = {
    "cola": ColaProcessor,
    "mnli": MnliProcessor,
    "mrpc": MrpcProcessor,
    "xnli": XnliProcessor,
}
# google-research/albert's GLUE tasks, under its names.
GLUE_PROCESSORS: Dict[str, Type[DataProcessor]] = {
    "cola": ColaProcessor,
    "mnli": MnliProcessor,
    "mismnli": MisMnliProcessor,
    "mrpc": MrpcProcessor,
    "rte": RteProcessor,
    "sst-2": Sst2Processor,
    "sts-b": StsbProcessor,
    "qqp": QqpProcessor,
    "qnli": QnliProcessor,
    "wnli": WnliProcessor,
}


def get_processor(
    task_name: str, registry: Optional[Dict[str, Type[DataProcessor]]] = None, **kwargs
) -> DataProcessor:
    """The processor for `task_name` (any case, as Google lower-cases it) in `registry`
    (`PROCESSORS` by default); kwargs go to it."""
    registry = PROCESSORS if registry is None else registry
    name = task_name.lower()
    if name not in registry:
        raise UnknownTaskError(
            f"unknown GLUE task {task_name!r}: known tasks are {', '.join(sorted(registry))}"
        )
    return registry[name](**kwargs)
