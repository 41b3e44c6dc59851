import pytest
from squad_fixtures import qa, write_squad

from bertfam.squad.data import read_squad_examples
from bertfam.squad.features import convert_examples_to_features
from bertfam.testing import shared_file
from bertfam.tokenization.wordpiece import WordPieceTokenizer

pytest_plugins = ["bertfam.testing"]  # shared_data, minilm_dir, http_server


@pytest.fixture
def tiny(tmp_path, shared_data):
    context = "Carolina won in 1895.\nThe  Panthers lost in 1896."
    path = write_squad(
        tmp_path / "dev.json",
        [{"context": context, "qas": [qa("q1", "Who won?", [("Carolina", 0)], False)]}],
        version="v2.0",
    )
    tokenizer = WordPieceTokenizer(shared_file(shared_data, "bert_uncased/vocab.txt"))
    examples = read_squad_examples(path, is_training=False, version_2_with_negative=True)
    features = convert_examples_to_features(
        examples, tokenizer, max_seq_length=32, doc_stride=8, max_query_length=8, is_training=False
    )
    return examples, features, tokenizer
