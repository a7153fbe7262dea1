"""A class-conditional model as a classifier: how much does it use the label?

Each image is scored under every class, `bits[n, k] = −log2 p(x_n | k)` (whole sequence,
all chunks, `evaluation.likelihood.sequence_nll`), and Bayes' rule with a uniform prior
assigns it the class of fewest bits. A model that ignores its label scores every class
alike and lands at chance; one that draws the class it is asked for must tell the classes
apart here first, so this is a cheap check (no sampling, no external classifier) to watch
during training.

Against the class mixture `p(x) = (1/K) Σ_k p(x | k)`, the true label saves
`log2 K + log2 p(y | x)` bits of an image, at most `log2 K` (1.58 bits for 3 classes) however
good the model: the label is a tiny part of an image's bits, so the training signal to use it
is weak until the model draws the classes' content. The gain over the best *wrong* label has
no such bound; its sign decides the accuracy.
"""

import math

import numpy as np
import tensorflow as tf

from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.evaluation.likelihood import sequence_nll


def class_bits(model, codec, images: np.ndarray, chunk_size: int, overlap: int,
               max_length: int, batch_size: int = 16) -> np.ndarray:
    """Bits of every image under every class label.

    The images are encoded once and scored K times by one traced function (the label is
    an input, so it does not retrace).

    Args:
      model: a class-conditional `DCTransformer` (`num_classes = K > 0`).
      codec: the run's `SparseCodec`.
      images: uint8 [N, H, W, 3].
      chunk_size, overlap, max_length: the run's chunking and sequence length.
    Returns:
      float64 [N, K]: −log2 p(x_n | k).
    """
    num_classes = model.num_classes
    if not num_classes:
        raise ValueError("the model is unconditional (num_classes = 0): nothing to classify")
    images = np.asarray(images)
    source = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.zeros(len(images), np.int32)})
    batches = list(encode_dataset(source, codec, max_length).batch(batch_size))

    @tf.function
    def nats(triples, length, label):  # -> float32 [B]
        nll = sequence_nll(model, codec, triples, length, label, chunk_size, overlap)
        return tf.add_n([tf.reduce_sum(part, axis=1) for part in nll.values()])

    bits = np.zeros((len(images), num_classes))
    for k in range(num_classes):
        first = 0
        for batch in batches:
            size = int(batch["length"].shape[0])
            label = tf.fill([size], k)
            bits[first:first + size, k] = nats(batch["triples"], batch["length"],
                                               label).numpy() / math.log(2.0)
            first += size
    return bits


def generative_classification(bits: np.ndarray, labels: np.ndarray) -> dict:
    """Bayes classification (uniform prior) from `class_bits`.

    Args:
      bits: float [N, K] −log2 p(x_n | k).
      labels: int [N] true classes.
    Returns:
      {"accuracy": float, "per_class_accuracy": list[K] (None for a class with no image),
       "confusion": int [K][K] (row = true class, column = predicted),
       "mean_gain_bits": mean over images of (fewest bits among wrong classes − bits of
         the true class): positive when the true label helps,
       "mean_true_posterior": mean p(true class | x) under the uniform prior,
       "mean_mixture_gain_bits": mean of log2 K + log2 p(true class | x), the bits the
         true label saves against the class mixture (at most log2 K),
       "num_images": N}
    """
    bits = np.asarray(bits, np.float64)
    labels = np.asarray(labels)
    num, num_classes = bits.shape
    if labels.shape != (num,):
        raise ValueError(f"labels must have shape [{num}], got {labels.shape}")
    if num == 0 or num_classes < 2:
        raise ValueError(f"need at least one image and two classes, got bits {bits.shape}")
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise ValueError(f"labels must lie in [0, {num_classes}) (the model's classes), got "
                         f"{sorted(set(outside.tolist()))}")
    rows = np.arange(num)
    predicted = bits.argmin(axis=1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    wrong = bits.copy()
    wrong[rows, labels] = np.inf
    log_posterior = -bits * np.log(2.0)
    log_posterior -= np.logaddexp.reduce(log_posterior, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # a class without images has 0/0 accuracy
        per_class = np.diag(confusion) / confusion.sum(axis=1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion": confusion.tolist(),
        "mean_gain_bits": float(np.mean(wrong.min(axis=1) - bits[rows, labels])),
        "mean_true_posterior": float(np.mean(np.exp(log_posterior[rows, labels]))),
        "mean_mixture_gain_bits": float(np.mean(
            np.log2(num_classes) + log_posterior[rows, labels] / np.log(2.0))),
        "num_images": int(num),
    }
