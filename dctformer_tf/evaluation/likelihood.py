"""Whole-sequence log-likelihoods: every chunk scored with its true partial image (docs/design.md §7).

A sequence of L elements (EOS included) is cut into chunks exactly as in training, by the
function the training step uses (`data.chunking.chunk_windows`); chunk k is scored by one
forward pass over its decoder window, with the partial image of the elements before it. Each element's three
negative log-likelihoods (channel; position and value unless it is EOS) land at its index
in the sequence, so the sum over a sequence is the model's total NLL of the image.
"""

import tensorflow as tf

from dctformer_tf.data.chunking import chunk_bounds, chunk_windows
from dctformer_tf.model.losses import COMPONENTS, element_nll


def sequence_nll(model, codec, triples, length, label, chunk_size: int, overlap: int) -> dict:
    """Per-element negative log-likelihoods (nats) of whole sequences.

    Args:
      model: a `DCTransformer` (any subclass).
      codec: the `SparseCodec` of the sequences (with a resolution).
      triples: int32 [B, L_max, 3], zero-padded after EOS; L_max static.
      length: int32 [B], sequence lengths with EOS.
      label: int32 [B] class ids (ignored by unconditional models).
      chunk_size, overlap: the chunking the model was trained with.
    Returns:
      {"channel", "position", "value": float32 [B, L_max]} nats; 0 at padding (and for
      the position and value of EOS).
    """
    triples = tf.convert_to_tensor(triples, tf.int32)
    length = tf.convert_to_tensor(length, tf.int32)
    label = tf.convert_to_tensor(label, tf.int32)
    max_length = triples.shape[1]
    batch = tf.shape(triples)[0]
    num_chunks = (length + chunk_size - 1) // chunk_size  # [B]
    window = chunk_size + overlap

    def score_chunk(k, totals):
        """Adds chunk k of every sequence; totals: float32 [3, B, L_max]."""
        # Sequences with fewer chunks score their last chunk again, masked out below.
        k_each = tf.minimum(k, num_chunks - 1)  # [B]
        bounds = chunk_bounds(length, k_each, chunk_size, overlap)
        examples = chunk_windows(triples, *bounds, window, codec)
        examples["label"] = label
        nll = element_nll(model(examples, training=False), examples["targets"])
        valid = tf.cast(k < num_chunks, tf.float32)[:, None]  # [B, 1]
        weight = examples["loss_mask"] * valid  # [B, T]
        index = bounds[2][:, None] + tf.range(window)[None, :]  # [B, T]
        index = tf.minimum(index, max_length - 1)  # masked slots may point past the end
        rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(index))
        scatter_index = tf.stack([rows, index], axis=-1)  # [B, T, 2]
        update = tf.stack([nll[name] * weight for name in COMPONENTS])  # [3, B, T]
        scattered = tf.map_fn(
            lambda u: tf.tensor_scatter_nd_add(tf.zeros([batch, max_length]), scatter_index, u),
            update,
        )  # [3, B, L_max]
        return k + 1, totals + scattered

    # Loop over the chunks of the longest sequence of the batch, not of L_max.
    _, totals = tf.while_loop(
        lambda k, _: k < tf.reduce_max(num_chunks),
        score_chunk,
        (tf.constant(0), tf.zeros([len(COMPONENTS), batch, max_length])),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([len(COMPONENTS), None, max_length])),
    )
    return dict(zip(COMPONENTS, tf.unstack(totals), strict=True))

