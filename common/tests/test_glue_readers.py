"""GLUE readers: the real MSR Paraphrase files, and each task's files in upstream layout."""

from pathlib import Path

import pytest

from bertfam.errors import UserError
from bertfam.glue.readers import (
    GLUE_PROCESSORS,
    PROCESSORS,
    ColaProcessor,
    GlueDataError,
    InputExample,
    MnliProcessor,
    MrpcProcessor,
    UnknownTaskError,
    XnliProcessor,
    get_processor,
    read_msr_paraphrase,
    read_tsv,
)
from bertfam.testing import shared_file

BOM = "\ufeff".encode()
DOUBLE_ENCODED_BOM = "\ufeff".encode().decode("latin-1").encode()  # c3 af c2 bb c2 bf

# ---------------------------------------------------------------------------------------
# The real corpus


def raw_data_lines(path):
    """The file's data lines split into columns, read independently of the library.

    This copy went through a latin-1 round trip as a whole (its first bytes are the
    double-encoded BOM), so undo that, drop the BOM and the header, and put back quotes.
    """
    data = path.read_bytes()
    assert data.startswith(DOUBLE_ENCODED_BOM)
    text = data.decode("utf-8").encode("latin-1").decode("utf-8")
    lines = text.removeprefix("\ufeff").rstrip("\n").split("\n")
    assert lines[0] == "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    return [line.replace("<QUOTE>", '"').split("\t") for line in lines[1:]]


@pytest.mark.parametrize(
    "name, pairs, positives",
    [("msr_paraphrase_train.txt", 4076, 2753), ("msr_paraphrase_test.txt", 1725, 1147)],
)
def test_reads_every_pair_of_the_real_msr_files(shared_data, name, pairs, positives):
    path = shared_file(shared_data, f"mrpc/{name}")
    examples = read_msr_paraphrase(path)
    assert len(examples) == pairs

    # The label counts, made from the raw bytes: each data line starts "<label>\t".
    raw_lines = path.read_bytes().split(b"\n")[1:]
    raw_lines = [line for line in raw_lines if line]
    assert len(raw_lines) == pairs
    assert sum(line.startswith(b"1\t") for line in raw_lines) == positives
    assert sum(line.startswith(b"0\t") for line in raw_lines) == pairs - positives
    labels = [example.label for example in examples]
    assert set(labels) == {"0", "1"}
    assert labels.count("1") == positives

    # The first data line, column by column (it has <QUOTE>s in the train file).
    first_line = raw_lines[0].decode("utf-8").split("\t")
    first = examples[0]
    assert first.label == first_line[0]
    assert first.text_a == first_line[3].replace("<QUOTE>", '"')
    assert first.text_b == first_line[4].replace("<QUOTE>", '"')
    assert first.guid == f"{Path(name).stem}-1"

    # Every line, against the independent reading.
    expected = [(cols[0], cols[3], cols[4]) for cols in raw_data_lines(path)]
    assert [(e.label, e.text_a, e.text_b) for e in examples] == expected

    for example in examples:
        for field in (example.guid, example.text_a, example.text_b, example.label):
            assert "<QUOTE>" not in field
            assert "\ufeff" not in field and "ï»¿" not in field
            # No mojibake left: C1 controls only appear in UTF-8 read as latin-1.
            assert not any(0x80 <= ord(char) < 0xA0 for char in field), field


def test_the_train_file_really_has_quotes_and_non_ascii(shared_data):
    """Guards the checks above against a corpus copy without the mess they are about."""
    examples = read_msr_paraphrase(shared_file(shared_data, "mrpc/msr_paraphrase_train.txt"))
    texts = [e.text_a + e.text_b for e in examples]
    assert '" the witness "' in examples[0].text_a
    assert sum('"' in text for text in texts) > 800
    assert any("president ’ s appearance" in text for text in texts)


def test_msr_guid_prefix_can_be_set(shared_data):
    path = shared_file(shared_data, "mrpc/msr_paraphrase_test.txt")
    assert read_msr_paraphrase(path, set_type="test")[1].guid == "test-2"


# ---------------------------------------------------------------------------------------
# Files in the GLUE layout, written here


def write(path, text, prefix=b"", newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(prefix + text.replace("\n", newline).encode("utf-8"))
    return path


MRPC_TRAIN = (
    "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    '1\t702876\t702977\tHe called him " the witness " , twice .\tHe said " the witness " .\n'
    "0\t2108705\t2108831\tYucaipa owned Dominick 's before 1998 .\tYucaipa bought it in 1995 .\n"
)
MRPC_DEV = (
    "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    "1\t1355540\t1355592\tHe is 'unfit' .\tThe man 's unfit , said Café Noir .\n"
)
MRPC_TEST = (
    "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    "0\t1089874\t1089925\tPCCW 's chief will report to Mr So .\tThe chief will report to So .\n"
    '1\t3019446\t3019327\tSales fell "sharply" .\tSales declined .\n'
)


@pytest.fixture
def mrpc_dir(tmp_path):
    write(tmp_path / "train.tsv", MRPC_TRAIN)
    write(tmp_path / "dev.tsv", MRPC_DEV)
    write(tmp_path / "test.tsv", MRPC_TEST)
    return tmp_path


def test_mrpc_glue_files(mrpc_dir):
    processor = MrpcProcessor()
    assert processor.get_labels() == ["0", "1"]
    assert processor.get_train_examples(mrpc_dir) == [
        InputExample(
            "train-1", 'He called him " the witness " , twice .', 'He said " the witness " .', "1"
        ),
        InputExample(
            "train-2", "Yucaipa owned Dominick 's before 1998 .", "Yucaipa bought it in 1995 .", "0"
        ),
    ]
    assert processor.get_dev_examples(str(mrpc_dir)) == [
        InputExample("dev-1", "He is 'unfit' .", "The man 's unfit , said Café Noir .", "1")
    ]
    # Test labels are Google's placeholder "0", not the index column.
    assert processor.get_test_examples(mrpc_dir) == [
        InputExample(
            "test-1", "PCCW 's chief will report to Mr So .", "The chief will report to So .", "0"
        ),
        InputExample("test-2", 'Sales fell "sharply" .', "Sales declined .", "0"),
    ]


def test_mrpc_glue_files_keep_the_literal_quote_placeholder(tmp_path):
    """<QUOTE> is a quirk of raw MSR copies; GLUE's TSVs are taken as they are."""
    write(tmp_path / "train.tsv", MRPC_TRAIN.replace('"', "<QUOTE>"))
    assert "<QUOTE>" in MrpcProcessor().get_train_examples(tmp_path)[0].text_a


COLA_TRAIN = (
    "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
    'gj04\t0\t*\tThey drank the pub "dry".\n'
)
COLA_TEST = "index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked its way.\n"


def test_cola_files(tmp_path):
    write(tmp_path / "train.tsv", COLA_TRAIN)
    write(tmp_path / "dev.tsv", COLA_TRAIN.replace("gj04", "bc01"))
    write(tmp_path / "test.tsv", COLA_TEST)
    processor = ColaProcessor()
    assert processor.get_labels() == ["0", "1"]
    expected = [
        InputExample(
            "train-0",
            "Our friends won't buy this analysis, let alone the next one we propose.",
            None,
            "1",
        ),
        InputExample("train-1", 'They drank the pub "dry".', None, "0"),
    ]
    # train and dev have no header: the first line is an example.
    assert processor.get_train_examples(tmp_path) == expected
    assert processor.get_dev_examples(tmp_path) == [
        InputExample(e.guid.replace("train", "dev"), e.text_a, None, e.label) for e in expected
    ]
    assert processor.get_test_examples(tmp_path) == [
        InputExample("test-1", "Bill whistled past the house.", None, "0"),
        InputExample("test-2", "The car honked its way.", None, "0"),
    ]


MNLI_PREFIX = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2"
)


def mnli_row(index, s1, s2, *labels):
    parses = ["( ( a b ) c )", "( d e )", "(ROOT (S a))", "(ROOT (S d))"]
    return "\t".join([str(index), "31193", f"{index}n", "government", *parses, s1, s2, *labels])


def test_mnli_matched_files(tmp_path):
    train = "\n".join(
        [
            MNLI_PREFIX + "\tlabel1\tgold_label",
            mnli_row(0, 'He said "no".', "He refused.", "entailment", "entailment"),
            mnli_row(1, "Product and geography.", "Ignore it.", "neutral", "contradiction"),
        ]
    )
    dev = "\n".join(
        [
            MNLI_PREFIX + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label",
            mnli_row(9815, "The new rights are nice.", "Everyone loves them.", "neutral",
                     "contradiction", "neutral", "neutral", "neutral", "neutral"),
        ]
    )  # fmt: skip
    test = "\n".join([MNLI_PREFIX, mnli_row(0, "Hierbas, ans seco.", "Hierbas is a name.")])
    write(tmp_path / "train.tsv", train + "\n")
    write(tmp_path / "dev_matched.tsv", dev + "\n")
    write(tmp_path / "test_matched.tsv", test)  # no newline at the end
    write(tmp_path / "dev_mismatched.tsv", "not read\n")
    processor = MnliProcessor()
    assert processor.get_labels() == ["contradiction", "entailment", "neutral"]
    assert processor.get_train_examples(tmp_path) == [
        InputExample("train-0", 'He said "no".', "He refused.", "entailment"),
        InputExample("train-1", "Product and geography.", "Ignore it.", "contradiction"),
    ]
    # The gold label is the last column, not label1.
    assert processor.get_dev_examples(tmp_path) == [
        InputExample(
            "dev_matched-9815", "The new rights are nice.", "Everyone loves them.", "neutral"
        )
    ]
    assert processor.get_test_examples(tmp_path) == [
        InputExample("test-0", "Hierbas, ans seco.", "Hierbas is a name.", "contradiction")
    ]


XNLI_HEADER = (
    "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
    "sentence2_parse\tsentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\t"
    "label4\tlabel5\tsentence1_tokenized\tsentence2_tokenized\tmatch"
)


def xnli_row(language, label, s1, s2):
    rest = ["1", "1", "facetoface", label, label, label, label, label, s1, s2, "True"]
    return "\t".join([language, label, "", "", "", "", s1, s2, *rest])


def test_xnli_files(tmp_path):
    write(
        tmp_path / "multinli" / "multinli.train.zh.tsv",
        "premise\thypo\tlabel\n"
        "从 概念 上 看 , 奶油 收入 有 两 个 基本 方面 产品 和 地理 .\t产品 和 地理 是 什么 使 奶油 抹 霜 工作 .\tneutral\n"
        '你 知道 " 在 这个 季节 "\t人们 会 失去 .\tcontradictory\n',
    )
    write(
        tmp_path / "multinli" / "multinli.train.de.tsv", "premise\thypo\tlabel\nA\tB\tentailment\n"
    )
    eval_lines = [
        XNLI_HEADER,
        xnli_row("en", "neutral", "Well, I wasn't even thinking.", "I havent spoken."),
        xnli_row("zh", "contradiction", "他 说 , 妈妈 , 我 回来 了 .", "他 没 说 一 句 话 ."),
        xnli_row("de", "entailment", "Und er sagte: Mama.", "Er rief."),
        xnli_row("zh", "entailment", '他 说 " 好 "', "他 同意 了"),
    ]
    write(tmp_path / "xnli.dev.tsv", "\n".join(eval_lines) + "\n")
    write(tmp_path / "xnli.test.tsv", "\n".join(eval_lines[:3]) + "\n")

    processor = XnliProcessor()
    assert processor.language == "zh"
    assert processor.get_labels() == ["contradiction", "entailment", "neutral"]
    assert processor.get_train_examples(tmp_path) == [
        InputExample(
            "train-1",
            "从 概念 上 看 , 奶油 收入 有 两 个 基本 方面 产品 和 地理 .",
            "产品 和 地理 是 什么 使 奶油 抹 霜 工作 .",
            "neutral",
        ),
        # "contradictory" in the machine-translated train files means "contradiction".
        InputExample("train-2", '你 知道 " 在 这个 季节 "', "人们 会 失去 .", "contradiction"),
    ]
    # Only the chosen language; guids keep the line's position in the whole file.
    assert processor.get_dev_examples(tmp_path) == [
        InputExample(
            "dev-2", "他 说 , 妈妈 , 我 回来 了 .", "他 没 说 一 句 话 .", "contradiction"
        ),
        InputExample("dev-4", '他 说 " 好 "', "他 同意 了", "entailment"),
    ]
    assert processor.get_test_examples(tmp_path) == [
        InputExample(
            "test-2", "他 说 , 妈妈 , 我 回来 了 .", "他 没 说 一 句 话 .", "contradiction"
        )
    ]
    german = XnliProcessor(language="de")
    assert german.get_train_examples(tmp_path) == [InputExample("train-1", "A", "B", "entailment")]
    assert german.get_dev_examples(tmp_path) == [
        InputExample("dev-3", "Und er sagte: Mama.", "Er rief.", "entailment")
    ]


@pytest.mark.parametrize("prefix", [b"", BOM, DOUBLE_ENCODED_BOM, BOM + BOM])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_byte_order_marks_and_line_ends_read_the_same(tmp_path, prefix, newline):
    write(tmp_path / "train.tsv", MRPC_TRAIN, prefix=prefix, newline=newline)
    write(tmp_path / "cola" / "train.tsv", COLA_TRAIN, prefix=prefix, newline=newline)
    # The mark must not stick to the first field, whichever reader looks at it.
    assert read_tsv(tmp_path / "train.tsv")[0][0] == "Quality"
    assert read_tsv(tmp_path / "cola" / "train.tsv")[0][0] == "gj04"
    assert read_tsv(tmp_path / "train.tsv")[2][-1] == "Yucaipa bought it in 1995 ."
    clean = tmp_path / "clean"
    write(clean / "train.tsv", MRPC_TRAIN)
    assert MrpcProcessor().get_train_examples(tmp_path) == MrpcProcessor().get_train_examples(clean)


def test_a_file_double_encoded_as_a_whole_is_repaired(tmp_path):
    """The shared MSR copy's condition: all of its UTF-8 was read as latin-1 once."""
    mojibake = ("\ufeff" + MRPC_DEV).encode("utf-8").decode("latin-1").encode("utf-8")
    assert mojibake.startswith(DOUBLE_ENCODED_BOM)
    write(tmp_path / "dev.tsv", "")
    (tmp_path / "dev.tsv").write_bytes(mojibake)
    (example,) = MrpcProcessor().get_dev_examples(tmp_path)
    assert example.text_b == "The man 's unfit , said Café Noir ."


def test_a_double_encoded_mark_on_clean_text_only_loses_the_mark(tmp_path):
    """Text that cannot have made the round trip ("’" is no latin-1 byte) stays as it is."""
    text = MRPC_DEV.replace("'unfit'", "’unfit’")
    write(tmp_path / "dev.tsv", text, prefix=DOUBLE_ENCODED_BOM)
    assert read_tsv(tmp_path / "dev.tsv")[0][0] == "Quality"
    assert MrpcProcessor().get_dev_examples(tmp_path)[0].text_a == "He is ’unfit’ ."


def test_blank_lines_are_skipped_but_counted(tmp_path):
    write(tmp_path / "train.tsv", COLA_TRAIN.replace("\n", "\n\n", 1))
    examples = ColaProcessor().get_train_examples(tmp_path)
    assert [e.guid for e in examples] == ["train-0", "train-2"]


# ---------------------------------------------------------------------------------------
# Bad input: one line that names the file, the line and the column


def error_message(call, *args):
    with pytest.raises(GlueDataError) as caught:
        call(*args)
    assert isinstance(caught.value, UserError)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    message = error_message(MrpcProcessor().get_dev_examples, tmp_path)
    assert message == f"{tmp_path / 'dev.tsv'}: no such file"
    message = error_message(XnliProcessor().get_train_examples, tmp_path)
    assert message == f"{tmp_path / 'multinli' / 'multinli.train.zh.tsv'}: no such file"


BAD_MRPC_TRAIN = [
    (
        MRPC_TRAIN + "1\t1\t2\tonly four columns\n",
        "line 4: expected 5 tab-separated columns (Quality, #1 ID, #2 ID, #1 String, #2 String), found 4",
    ),
    (
        MRPC_TRAIN + "1\t1\t2\ta stray\ttab\tin b\n",
        "line 4: expected 5 tab-separated columns (Quality, #1 ID, #2 ID, #1 String, #2 String), found 6",
    ),
    (
        MRPC_TRAIN.replace("0\t2108705", "yes\t2108705"),
        "line 3: column 0 (Quality) is 'yes', expected one of 0, 1",
    ),
    (
        MRPC_TRAIN.replace('He said " the witness " .', "  "),
        "line 2: column 4 (#2 String) is empty",
    ),
    (
        MRPC_TRAIN.replace("Yucaipa owned Dominick 's before 1998 .", ""),
        "line 3: column 3 (#1 String) is empty",
    ),
]


@pytest.mark.parametrize("text, problem", BAD_MRPC_TRAIN)
def test_bad_mrpc_train_lines(tmp_path, text, problem):
    path = write(tmp_path / "train.tsv", text)
    assert error_message(MrpcProcessor().get_train_examples, tmp_path) == f"{path}, {problem}"


def test_bad_msr_file(tmp_path):
    path = write(tmp_path / "msr_paraphrase_train.txt", MRPC_TRAIN.replace("0\t2108705", "2\t21"))
    assert error_message(read_msr_paraphrase, path) == (
        f"{path}, line 3: column 0 (Quality) is '2', expected one of 0, 1"
    )


def test_bad_mrpc_test_line(tmp_path):
    path = write(tmp_path / "test.tsv", MRPC_TEST + "2\t5\t6\ta\n")
    assert error_message(MrpcProcessor().get_test_examples, tmp_path) == (
        f"{path}, line 4: expected 5 tab-separated columns "
        "(index, #1 ID, #2 ID, #1 String, #2 String), found 4"
    )


def test_not_utf8(tmp_path):
    path = write(tmp_path / "train.tsv", COLA_TRAIN)
    path.write_bytes(path.read_bytes() + b"gj04\t1\t\tna\xefve\n")
    assert error_message(ColaProcessor().get_train_examples, tmp_path) == (
        f"{path}, line 3: not UTF-8 text (byte 0xef)"
    )


def test_bad_cola_lines(tmp_path):
    path = write(
        tmp_path / "train.tsv", COLA_TRAIN + "gj04\t1\tA sentence without a mark column.\n"
    )
    assert error_message(ColaProcessor().get_train_examples, tmp_path) == (
        f"{path}, line 3: expected 4 tab-separated columns "
        "(source, label, original mark, sentence), found 3"
    )
    path = write(tmp_path / "dev.tsv", COLA_TRAIN.replace("gj04\t0\t*", "gj04\t*\t0"))
    assert error_message(ColaProcessor().get_dev_examples, tmp_path) == (
        f"{path}, line 2: column 1 (label) is '*', expected one of 0, 1"
    )
    path = write(tmp_path / "test.tsv", COLA_TEST + "2\t\n")
    assert error_message(ColaProcessor().get_test_examples, tmp_path) == (
        f"{path}, line 4: column 1 (sentence) is empty"
    )


def test_bad_mnli_lines(tmp_path):
    header = MNLI_PREFIX + "\tlabel1\tgold_label"
    path = write(tmp_path / "train.tsv", "\n".join([header, mnli_row(7, "a", "b", "n", "-")]))
    assert error_message(MnliProcessor().get_train_examples, tmp_path) == (
        f"{path}, line 2: column 11 (gold_label) is '-', "
        "expected one of contradiction, entailment, neutral"
    )
    # A labelled file whose line ends at sentence2 has no label column at all.
    path = write(tmp_path / "dev_matched.tsv", "\n".join([header, mnli_row(7, "a", "b")]))
    assert error_message(MnliProcessor().get_dev_examples, tmp_path) == (
        f"{path}, line 2: expected at least 11 tab-separated columns (index, promptID, pairID, "
        "genre, sentence1_binary_parse, sentence2_binary_parse, sentence1_parse, "
        "sentence2_parse, sentence1, sentence2, gold_label), found 10"
    )


def test_bad_xnli_lines(tmp_path):
    path = write(
        tmp_path / "multinli" / "multinli.train.zh.tsv", "premise\thypo\tlabel\na\tb\tmaybe\n"
    )
    assert error_message(XnliProcessor().get_train_examples, tmp_path) == (
        f"{path}, line 2: column 2 (label) is 'maybe', "
        "expected one of contradiction, entailment, neutral"
    )
    path = write(tmp_path / "xnli.dev.tsv", XNLI_HEADER + "\n" + xnli_row("zh", "neutral", "a", ""))
    assert error_message(XnliProcessor().get_dev_examples, tmp_path) == (
        f"{path}, line 2: column 7 (sentence2) is empty"
    )


def test_registry_and_unknown_task():
    assert set(PROCESSORS) == {"mrpc", "cola", "mnli", "xnli"}
    assert isinstance(get_processor("MRPC"), MrpcProcessor)
    assert get_processor("xnli", language="fr").language == "fr"
    with pytest.raises(UnknownTaskError) as caught:
        get_processor("sst-2")
    assert isinstance(caught.value, UserError)
    assert str(caught.value) == "unknown GLUE task 'sst-2': known tasks are cola, mnli, mrpc, xnli"


# ---------------------------------------------------------------------------------------
# google-research/albert's other classification tasks


def write_rows(folder, name, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join("\t".join(row) + "\n" for row in rows))


def texts(examples):
    return [(e.text_a, e.text_b, e.label) for e in examples]


def test_sst2_files(tmp_path):
    write_rows(tmp_path, "train.tsv", [("sentence", "label"), ("a fine film", "1"), ("dull", "0")])
    write_rows(tmp_path, "test.tsv", [("index", "sentence"), ("0", "quite good")])
    processor = get_processor("SST-2", GLUE_PROCESSORS)
    assert texts(processor.get_train_examples(tmp_path)) == [
        ("a fine film", None, "1"),
        ("dull", None, "0"),
    ]
    assert texts(processor.get_test_examples(tmp_path)) == [("quite good", None, "0")]


def test_qqp_files_skip_short_labelled_rows(tmp_path):
    header = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
    write_rows(
        tmp_path, "dev.tsv", [header, ("7", "1", "2", "why?", "how?", "0"), ("8", "3", "why")]
    )
    write_rows(tmp_path, "test.tsv", [("id", "question1", "question2"), ("0", "who?", "what?")])
    processor = get_processor("qqp", GLUE_PROCESSORS)
    dev = processor.get_dev_examples(tmp_path)
    assert texts(dev) == [("why?", "how?", "0")] and dev[0].guid == "dev-7"
    assert texts(processor.get_test_examples(tmp_path)) == [("who?", "what?", "0")]


@pytest.mark.parametrize(
    "task, labels, test_label",
    [
        ("rte", ["entailment", "not_entailment"], "entailment"),
        ("qnli", ["entailment", "not_entailment"], "entailment"),
        ("wnli", ["0", "1"], "0"),
    ],
)
def test_indexed_pair_files(tmp_path, task, labels, test_label):
    header = ("index", "sentence1", "sentence2", "label")
    write_rows(
        tmp_path, "train.tsv", [header, ("0", "a b", "c", labels[1]), ("1", "d", "e", labels[0])]
    )
    write_rows(tmp_path, "test.tsv", [header[:3], ("5", "x", "y")])
    processor = get_processor(task, GLUE_PROCESSORS)
    assert processor.get_labels() == labels
    assert texts(processor.get_train_examples(tmp_path)) == [
        ("a b", "c", labels[1]),
        ("d", "e", labels[0]),
    ]
    test = processor.get_test_examples(tmp_path)
    assert texts(test) == [("x", "y", test_label)] and test[0].guid == "test-5"
    write_rows(tmp_path, "dev.tsv", [header, ("0", "a", "b", "maybe")])
    with pytest.raises(GlueDataError, match="column 3 \\(label\\) is 'maybe'"):
        processor.get_dev_examples(tmp_path)


def test_mismatched_mnli_reads_the_mismatched_files(tmp_path):
    columns = MnliProcessor.COLUMNS
    row = ("3", "p", "q", "fiction", "-", "-", "-", "-", "one", "two", "neutral")
    write_rows(tmp_path, "dev_mismatched.tsv", [columns + ("gold_label",), row])
    write_rows(tmp_path, "test_mismatched.tsv", [columns, row[:10]])
    processor = get_processor("mismnli", GLUE_PROCESSORS)
    assert texts(processor.get_dev_examples(tmp_path)) == [("one", "two", "neutral")]
    assert texts(processor.get_test_examples(tmp_path)) == [("one", "two", "contradiction")]


def test_the_albert_registry_is_not_berts():
    assert set(GLUE_PROCESSORS) - set(PROCESSORS) == {
        "mismnli", "rte", "sst-2", "sts-b", "qqp", "qnli", "wnli"
    }  # fmt: skip
    with pytest.raises(UnknownTaskError, match="known tasks are cola, mnli, mrpc, xnli"):
        get_processor("rte")


def test_sts_b_files_are_a_regression(tmp_path):
    columns = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2")  # fmt: skip
    row = ("4", "main", "f", "2012", "9", "s", "t", "a plane", "an airplane")
    write_rows(tmp_path, "dev.tsv", [columns + ("score",), row + ("4.750",)])
    write_rows(tmp_path, "test.tsv", [columns, row])
    processor = get_processor("sts-b", GLUE_PROCESSORS)
    assert processor.get_labels() == [None]  # upstream's: one output
    dev = processor.get_dev_examples(tmp_path)
    assert texts(dev) == [("a plane", "an airplane", "4.750")] and dev[0].guid == "dev-4"
    assert texts(processor.get_test_examples(tmp_path)) == [("a plane", "an airplane", "0")]
    write_rows(tmp_path, "dev.tsv", [columns + ("score",), row + ("high",)])
    with pytest.raises(GlueDataError, match="the score \\(last column\\) is 'high'"):
        processor.get_dev_examples(tmp_path)
