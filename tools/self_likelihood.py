"""A trained model's bits on its own samples against its bits on held-out images.

A sampler that draws from the model's teacher-forced distribution gives samples that the
model codes in about its entropy per element; one whose masks, windows or caches disagreed
with training would give samples the model finds unlikely. Prints bits per element by
component, overall and by position in the sequence (docs/results.md, "Do the samples come
from the model?").

Usage: python tools/self_likelihood.py --model_dir outputs/demo/model --num 32
"""

import argparse

import numpy as np

from dctformer_tf.data.training_input import SequenceSource
from dctformer_tf.evaluation.likelihood import sequence_nll
from dctformer_tf.runs import load_trained_model
from dctformer_tf.sampling import Sampler

HEADS = ("channel", "position", "value")
SPANS = ((0, 64), (64, 128), (128, 256), (256, 512), (512, 1024), (1024, 4096))


def nats(model, run, triples: np.ndarray, length: np.ndarray, label: np.ndarray,
         batch: int = 8) -> dict:
    """Per-element NLLs {head: float [N, L_max]} (nats) of sequences `triples [N, L_max, 3]`
    with their class `label [N]` (ignored by an unconditional model)."""
    import tensorflow as tf

    # One graph for every batch, as `evaluation.bpd` scores (eagerly, the per-chunk loop
    # would run op by op).
    score = tf.function(lambda t, n, y: sequence_nll(model, run.codec, t, n, y,
                                                     run.chunking.chunk_size,
                                                     run.chunking.overlap))
    parts = {head: [] for head in HEADS}
    for first in range(0, len(length), batch):
        rows = slice(first, first + batch)
        result = score(tf.constant(triples[rows], tf.int32), tf.constant(length[rows], tf.int32),
                       tf.constant(label[rows], tf.int32))
        for head in HEADS:
            parts[head].append(result[head].numpy())
    return {head: np.concatenate(parts[head]) for head in HEADS}


def bits_table(nll: dict, length: np.ndarray) -> list[str]:
    """Lines: bits per element of each head, overall and per span of sequence positions."""
    to_bits = 1 / np.log(2)
    inside = np.arange(nll["channel"].shape[1])[None] < length[:, None]  # [N, L_max]
    lines = [f"  all elements (mean length {length.mean():.0f}): "
             + " / ".join(f"{head} {nll[head][inside].mean() * to_bits:.3f}" for head in HEADS)]
    for start, end in SPANS:
        span = inside.copy()
        span[:, :start] = False
        span[:, end:] = False
        if span.any():
            lines.append(f"  elements {start}-{end}: " + " / ".join(
                f"{head} {nll[head][span].mean() * to_bits:.3f}" for head in HEADS))
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--num", type=int, default=32, help="samples and test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, run = load_trained_model(args.model_dir)
    samples = Sampler.for_run(model, run).sample(args.num, seed=args.seed)
    held_out = SequenceSource(run.data, run.max_length).dataset(run.codec, run.data.eval_split,
                                                                args.num)
    examples = list(held_out.as_numpy_iterator())
    triples = np.stack([example["triples"] for example in examples])
    length = np.array([example["length"] for example in examples], np.int32)
    label = np.array([example["label"] for example in examples], np.int32)
    print(f"bits per element, {args.num} samples (seed {args.seed}, temperature 1):")
    print("\n".join(bits_table(nats(model, run, samples.triples, samples.length,
                                    samples.label), samples.length)))
    print(f"bits per element, {len(length)} {run.data.eval_split} images:")
    print("\n".join(bits_table(nats(model, run, triples, length, label), length)))


if __name__ == "__main__":
    main()
