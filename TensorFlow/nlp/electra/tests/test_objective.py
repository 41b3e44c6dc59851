"""The pre-training objective: on a fixed masking and fixed samples, the generator's
logits, the discriminator's and the combined loss equal HuggingFace's
`ElectraForMaskedLM` / `ElectraForPreTraining` (to 1e-5); the masking and the replaced
labels follow upstream's rules."""

import modeling
import numpy as np
import tensorflow as tf
import torch
from objective import SpecialIds, electra_loss, mask_batch, max_predictions, scatter_update
from transformers import ElectraConfig as HFConfig
from transformers import ElectraForMaskedLM as HFGenerator
from transformers import ElectraForPreTraining as HFDiscriminator

from bertfam.electra_config import ElectraConfig
from bertfam.testing import parity_inputs
from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint, variables_by_name

SHAPES = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
              type_vocab_size=2, hidden_act="gelu")  # fmt: skip
# What --generator_hidden_size=0.5 makes of it: rounded up to heads of 64.
GENERATOR_SHAPES = dict(SHAPES, hidden_size=64, num_attention_heads=1, intermediate_size=256)
IDS = SpecialIds(cls=2, sep=3, mask=4)


def test_max_predictions_are_upstreams():
    # int((0.15 + 0.005) * L): 19.84 -> 19 at 128 (not the 20 upstream's notes say), 79 at 512.
    assert max_predictions(0.15, 128) == 19 and max_predictions(0.15, 512) == 79


def test_scatter_update_skips_slot_0_and_floors_the_mean_of_repeats():
    sequence = tf.constant([[10, 11, 12, 13]])
    updated, written = scatter_update(
        sequence, tf.constant([[7, 5, 8, 9]]), tf.constant([[0, 2, 2, 3]])
    )
    np.testing.assert_array_equal(updated.numpy(), [[10, 11, 6, 9]])  # (5 + 8) // 2 = 6
    np.testing.assert_array_equal(written.numpy(), [[0, 0, 1, 1]])


def test_masking_draws_real_tokens_and_shows_mask_85_percent():
    rng = np.random.RandomState(0)
    ids = rng.randint(5, 99, (64, 40))
    ids[:, 0], ids[:, 20], ids[:, 39] = IDS.cls, IDS.sep, IDS.sep
    mask = np.ones_like(ids)
    mask[::2, 30:] = 0
    batch = {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32)}
    made = mask_batch(batch, IDS, 0.15, 6, tf.constant([1, 2], tf.int64))
    weights = made["masked_lm_weights"].numpy()
    positions = made["masked_lm_positions"].numpy()
    tokens = mask.sum(1)
    np.testing.assert_array_equal(
        weights.sum(1), np.minimum(6, np.maximum(1, np.round(tokens * 0.15)))
    )
    real = positions[weights > 0]
    rows = np.nonzero(weights > 0)[0]
    assert (mask[rows, real] == 1).all()
    assert not np.isin(ids[rows, real], [IDS.cls, IDS.sep]).any()
    np.testing.assert_array_equal(made["masked_lm_ids"].numpy()[weights > 0], ids[rows, real])
    shown = made["masked_input_ids"].numpy()[rows, real]
    assert 0.75 < np.mean(shown == IDS.mask) < 0.95
    assert ((shown == IDS.mask) | (shown == ids[rows, real])).all()
    again = mask_batch(batch, IDS, 0.15, 6, tf.constant([1, 2], tf.int64))
    np.testing.assert_array_equal(again["masked_lm_positions"].numpy(), positions)


def hf_pair(tmp_path):
    torch.manual_seed(0)
    discriminator = HFDiscriminator(HFConfig(**SHAPES)).eval()
    generator = HFGenerator(HFConfig(**GENERATOR_SHAPES)).eval()
    # The pair shares the embedding tables, as pre-training trains them.
    generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
    for name, model in (("disc", discriminator), ("gen", generator)):
        model.save_pretrained(tmp_path / name)
    return discriminator, generator


def test_combined_loss_matches_huggingface_on_a_fixed_masking(tmp_path):
    discriminator, generator = hf_pair(tmp_path)
    ours = modeling.ElectraPretrainingModel(
        ElectraConfig.from_dict(SHAPES), generator_hidden_size=0.5
    )
    variables = variables_by_name(ours)
    for name in ("disc", "gen"):
        weights, source = read_init_checkpoint(tmp_path / name)
        assign_weights(variables, weights, source, fresh_prefixes=("",))
    ids, mask, segments = parity_inputs(SHAPES["vocab_size"], batch=3, length=13)
    positions = np.array([[1, 3, 5], [2, 4, 7], [1, 2, 0]])
    weights = np.array([[1.0, 1, 1], [1, 1, 1], [1, 1, 0]], np.float32)
    masked_ids = np.take_along_axis(ids, positions, 1) * weights.astype(int)
    masked_input = ids.copy()
    np.put_along_axis(masked_input, positions[:, :2], IDS.mask, 1)
    sampled = np.array([[7, ids[0, 3], 9], [11, 12, 13], [14, 15, 0]])
    batch = {
        "input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
        "segment_ids": tf.constant(segments, tf.int32),
        "masked_input_ids": tf.constant(masked_input, tf.int32),
        "masked_lm_positions": tf.constant(positions, tf.int32),
        "masked_lm_ids": tf.constant(masked_ids, tf.int32),
        "masked_lm_weights": tf.constant(weights),
    }  # fmt: skip
    total, metrics = electra_loss(ours, batch, 50.0, sampled=tf.constant(sampled, tf.int32))

    labels = np.full_like(ids, -100)
    for row in range(3):
        for slot in range(3):
            if weights[row, slot]:
                labels[row, positions[row, slot]] = ids[row, positions[row, slot]]
    fake = ids.copy()
    for row in range(3):
        for slot in range(3):
            if weights[row, slot]:
                fake[row, positions[row, slot]] = sampled[row, slot]
    replaced = (fake != ids).astype(int)
    assert replaced[0, 3] == 0 and replaced.sum() >= 4  # a sample equal to the original is not
    with torch.no_grad():
        as_torch = dict(attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments))
        mlm = generator(input_ids=torch.tensor(masked_input), labels=torch.tensor(labels),
                        **as_torch)  # fmt: skip
        disc = discriminator(input_ids=torch.tensor(fake), labels=torch.tensor(replaced),
                             **as_torch)  # fmt: skip
    expected = mlm.loss.item() + 50.0 * disc.loss.item()
    np.testing.assert_allclose(total.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["disc_loss"].numpy(), disc.loss.item(), rtol=1e-5)
    our_gen = ours.generator(*(tf.constant(a, tf.int32) for a in (masked_input, mask, segments,
                                                                  positions)))  # fmt: skip
    reference = np.take_along_axis(mlm.logits.numpy(), positions[..., None], 1)
    np.testing.assert_allclose(our_gen.numpy(), reference, atol=1e-5)
    our_disc = ours.discriminator(*(tf.constant(a, tf.int32) for a in (fake, mask, segments)))
    np.testing.assert_allclose(our_disc.numpy(), disc.logits.numpy(), atol=1e-5)
