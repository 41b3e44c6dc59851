r"""ELECTRA pre-training step throughput: ours (TensorFlow) against HuggingFace's PyTorch
``ElectraForPreTraining`` + ``ElectraForMaskedLM`` of the same shapes.

    cd TensorFlow/nlp/electra
    python benchmarks/pretraining_throughput.py --size small --batch_size 8 --seq_length 128
    python benchmarks/pretraining_throughput.py --size base --batch_size 4 --steps 2

Needs the test requirements (``pip install -r tests/requirements.txt``).

One update each, fp32, the same batch, masking and shapes (the discriminator of
``--size``, the generator at upstream's fraction, tied embedding tables, dropout 0.1):
ours is run_pretraining.py's step (generator on the masked text, Gumbel samples, the
discriminator on them, masked-LM + 50 x discriminator loss, gradients, clipping,
AdamWeightDecay) compiled with ``tf.function``; HuggingFace's is the same in eager
PyTorch (generator loss from ``labels``, samples from its logits, discriminator loss from
``labels``, backward, clipping, ``torch.optim.AdamW``). After ``--warmup`` untimed
updates each (tracing included), ``--rounds`` rounds alternate ``--steps`` timed updates
of each; the figure is the median over rounds, in sequences per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bertfam.folder_modules import folder_module

FOLDER = Path(__file__).resolve().parents[1]

GENERATOR_FRACTION = {"small": 0.25, "base": 1 / 3, "large": 0.25}  # NVIDIA's and Google's
IDS = dict(cls=101, sep=102, mask=103)  # BERT's uncased vocabulary


def batch(size: int, length: int):
    rng = np.random.RandomState(0)
    ids = rng.randint(1000, 30522, (size, length))
    ids[:, 0], ids[:, length // 2], ids[:, -1] = IDS["cls"], IDS["sep"], IDS["sep"]
    return (
        ids,
        np.ones_like(ids),
        (np.arange(length) > length // 2).astype(int)[None].repeat(size, 0),
    )


def ours(config, ids, mask, segments, fraction):
    import tensorflow as tf

    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.optimization import AdamWeightDecay, clip_by_global_norm

    modeling = folder_module(FOLDER, "modeling")
    objective = folder_module(FOLDER, "objective")
    SpecialIds, electra_loss = objective.SpecialIds, objective.electra_loss
    mask_batch, max_predictions = objective.mask_batch, objective.max_predictions
    model = modeling.ElectraPretrainingModel(config, fraction)
    variables = variables_by_name(model)
    optimizer = AdamWeightDecay(variables, weight_decay_rate=0.01, beta_1=0.878, beta_2=0.974,
                                epsilon=1e-6)  # fmt: skip
    data = {"input_ids": tf.constant(ids, tf.int32), "input_mask": tf.constant(mask, tf.int32),
            "segment_ids": tf.constant(segments, tf.int32)}  # fmt: skip
    slots = max_predictions(0.15, ids.shape[1])
    data = mask_batch(data, SpecialIds(**IDS), 0.15, slots, tf.constant([1, 2], tf.int64))
    data["row_ids"] = tf.range(ids.shape[0], dtype=tf.int64)
    names = list(variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = electra_loss(model, data, 50.0, training=True)
        grads = tape.gradient(loss, [variables[n] for n in names])
        grads, _ = clip_by_global_norm(dict(zip(names, grads)), 1.0)
        optimizer.apply(grads, tf.constant(1e-4))
        return loss

    return lambda: float(step()), data


def huggingface(config, data, fraction):
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    values = {k: v for k, v in config.to_dict().items() if k != "source"}
    generator_config = config.generator(fraction)
    generator_values = {k: v for k, v in generator_config.to_dict().items() if k != "source"}
    torch.manual_seed(0)
    discriminator = ElectraForPreTraining(ElectraConfig(**values)).train()
    generator = ElectraForMaskedLM(ElectraConfig(**generator_values)).train()
    generator.electra.embeddings = discriminator.electra.embeddings  # tied, as pre-training
    parameters = list(
        {id(p): p for m in (discriminator, generator) for p in m.parameters()}.values()
    )
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, betas=(0.878, 0.974), eps=1e-6,
                                  weight_decay=0.01)  # fmt: skip
    ids = torch.tensor(data["input_ids"].numpy(), dtype=torch.long)
    masked = torch.tensor(data["masked_input_ids"].numpy(), dtype=torch.long)
    mask = torch.tensor(data["input_mask"].numpy(), dtype=torch.long)
    segments = torch.tensor(data["segment_ids"].numpy(), dtype=torch.long)
    positions = torch.tensor(data["masked_lm_positions"].numpy(), dtype=torch.long)
    weights = torch.tensor(data["masked_lm_weights"].numpy()) > 0
    labels = torch.full_like(ids, -100)
    rows = torch.arange(ids.shape[0])[:, None].expand_as(positions)
    labels[rows[weights], positions[weights]] = ids[rows[weights], positions[weights]]

    def step():
        mlm = generator(input_ids=masked, attention_mask=mask, token_type_ids=segments,
                        labels=labels)  # fmt: skip
        with torch.no_grad():
            logits = mlm.logits[rows, positions]
            noise = -torch.log(-torch.log(torch.rand_like(logits) + 1e-9) + 1e-9)
            sampled = (logits + noise).argmax(-1)
            fake = ids.clone()
            fake[rows[weights], positions[weights]] = sampled[weights]
            replaced = (fake != ids).long()
        disc = discriminator(input_ids=fake, attention_mask=mask, token_type_ids=segments,
                             labels=replaced)  # fmt: skip
        loss = mlm.loss + 50.0 * disc.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("small", "base", "large"), default="small")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    import tensorflow as tf
    import torch

    from bertfam.electra_config import SIZES, ElectraConfig

    config = ElectraConfig.from_dict(dict(SIZES[args.size], vocab_size=30528))
    fraction = GENERATOR_FRACTION[args.size]
    ids, mask, segments = batch(args.batch_size, args.seq_length)
    our_step, data = ours(config, ids, mask, segments, fraction)
    variants = {"ours (TF)": our_step, "HuggingFace (PyTorch)": huggingface(config, data, fraction)}
    for step in variants.values():
        for _ in range(args.warmup):
            step()
    seconds = {name: [] for name in variants}
    for round_index in range(args.rounds):
        names = list(variants)[round_index % 2 :] + list(variants)[: round_index % 2]
        for name in names:
            start = time.perf_counter()
            for _ in range(args.steps):
                variants[name]()
            seconds[name].append((time.perf_counter() - start) / args.steps)
    versions = f"tf {tf.__version__}, torch {torch.__version__}"
    print(f"ELECTRA-{args.size}, batch {args.batch_size} x {args.seq_length}, fp32, "
          f"{torch.get_num_threads()} threads, {versions}")  # fmt: skip
    rates = {}
    for name, values in seconds.items():
        rates[name] = args.batch_size / statistics.median(values)
        print(f"{name:>22}: {rates[name]:8.2f} sequences/s")
    print(f"ours / HuggingFace: {rates['ours (TF)'] / rates['HuggingFace (PyTorch)']:.2f}")


if __name__ == "__main__":
    main()
