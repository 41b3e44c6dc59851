"""Test reference: google-research/albert's ``create_pretraining_data.py`` algorithm,
written out step by step from the published script (not importable: no PyPI package
ships it), independently of `bertfam.pretraining` (which shares BERT's core).

Tokens come in as pieces (the tokenizer under test gives them; its parity with
HuggingFace's AlbertTokenizer is tested elsewhere). The n-gram lengths are drawn as
Google draws them, ``np.random.choice`` on NumPy's global generator, which the caller
seeds; Google never seeds it.
"""

import numpy as np

SPECIALS = set('!"#$%&"()*+,-./:;?@[\\]^_`{|}~')
LETTERS = set("abcdefghijklmnopqrstuvwxyz")


def is_start_piece(piece, sentencepiece):
    if not sentencepiece:
        return not piece.startswith("##")
    if piece.startswith("\u2581") or piece.startswith("<") or piece in SPECIALS:
        return True
    return not all(str(c).lower() in LETTERS.union(SPECIALS) for c in piece)


def create_instances(documents, vocab_words, rng, flags):
    """flags: dict of Google's flag values. Returns dicts of tokens, segment_ids,
    is_random_next, token_boundary, masked_lm_positions, masked_lm_labels."""
    documents = [d for d in documents if d]
    rng.shuffle(documents)
    instances = []
    for _ in range(flags["dupe_factor"]):
        for index in range(len(documents)):
            instances.extend(from_document(documents, index, vocab_words, rng, flags))
    rng.shuffle(instances)
    return instances


def from_document(all_documents, document_index, vocab_words, rng, flags):
    document = all_documents[document_index]
    max_num_tokens = flags["max_seq_length"] - 3
    target_seq_length = max_num_tokens
    if rng.random() < flags["short_seq_prob"]:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = []
                for j in range(a_end):
                    tokens_a.extend(current_chunk[j])
                tokens_b = []
                if len(current_chunk) == 1 or (
                    flags["random_next_sentence"] and rng.random() < 0.5
                ):
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    i -= len(current_chunk) - a_end
                elif not flags["random_next_sentence"] and rng.random() < 0.5:
                    is_random_next = True
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                    tokens_a, tokens_b = tokens_b, tokens_a
                else:
                    is_random_next = False
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
                tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + tokens_b + ["[SEP]"]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                masked = mask(tokens, vocab_words, rng, flags)
                instances.append(
                    dict(tokens=masked[0], segment_ids=segment_ids,
                         is_random_next=is_random_next, token_boundary=masked[3],
                         masked_lm_positions=masked[1], masked_lm_labels=masked[2])
                )  # fmt: skip
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def truncate_pair(tokens_a, tokens_b, max_num_tokens, rng):
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


def mask(tokens, vocab_words, rng, flags):
    cand_indexes = []
    token_boundary = [0] * len(tokens)
    for i, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            token_boundary[i] = 1
            continue
        start = is_start_piece(token, flags["sentencepiece"])
        if flags["do_whole_word_mask"] and len(cand_indexes) >= 1 and not start:
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
            if start:
                token_boundary[i] = 1
    output_tokens = list(tokens)
    num_to_predict = min(
        flags["max_predictions_per_seq"],
        max(1, int(round(len(tokens) * flags["masked_lm_prob"]))),
    )
    ngrams = np.arange(1, flags["ngram"] + 1, dtype=np.int64)
    pvals = 1.0 / np.arange(1, flags["ngram"] + 1)
    pvals /= pvals.sum(keepdims=True)
    if not flags["favor_shorter_ngram"]:
        pvals = pvals[::-1]
    ngram_indexes = []
    for idx in range(len(cand_indexes)):
        ngram_indexes.append([cand_indexes[idx : idx + n] for n in ngrams])
    rng.shuffle(ngram_indexes)
    masked_lms = []
    covered = set()
    for cand_index_set in ngram_indexes:
        if len(masked_lms) >= num_to_predict:
            break
        p = pvals[: len(cand_index_set)]
        n = np.random.choice(ngrams[: len(cand_index_set)], p=p / p.sum(keepdims=True))
        index_set = sum(cand_index_set[n - 1], [])
        n -= 1
        while len(masked_lms) + len(index_set) > num_to_predict:
            if n == 0:
                break
            index_set = sum(cand_index_set[n - 1], [])
            n -= 1
        if len(masked_lms) + len(index_set) > num_to_predict:
            continue
        if any(index in covered for index in index_set):
            continue
        for index in index_set:
            covered.add(index)
            if rng.random() < 0.8:
                masked_token = "[MASK]"
            elif rng.random() < 0.5:
                masked_token = tokens[index]
            else:
                masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output_tokens[index] = masked_token
            masked_lms.append((index, tokens[index]))
    rng.shuffle(ngram_indexes)
    masked_lms.sort(key=lambda x: x[0])
    return (
        output_tokens,
        [index for index, _ in masked_lms],
        [label for _, label in masked_lms],
        token_boundary,
    )
