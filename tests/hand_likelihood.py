"""Per-element log-likelihoods of a whole sequence, built with numpy from the definitions
(docs/design.md §2 chunk windows, §7 scoring): the independent reference of the `score` signature and
of `evaluate_bpd`. One plain forward pass per chunk; no project scoring code."""

import numpy as np
import tensorflow as tf

from dctformer_tf.dct import np_ops


def hand_log_likelihoods(model, codec, chunk: int, overlap: int, triples,
                         label: int | None = None) -> np.ndarray:
    """float64 [3, L] natural-log likelihoods (channel, position, value) of each element;
    EOS has only its channel term. `label`: the class id for a class-conditional model."""
    window = chunk + overlap
    c = codec.dct_channels
    start = np.array([c + 1, codec.num_positions, codec.num_values])  # one past each vocabulary
    out = np.zeros((3, len(triples)))
    for k in range(-(-len(triples) // chunk)):
        first, end = k * chunk, min((k + 1) * chunk, len(triples))
        w0 = max(0, first - overlap)
        targets = np.zeros((window, 3), np.int32)
        targets[: end - w0] = triples[w0:end]
        previous = start if w0 == 0 else triples[w0 - 1]
        inputs = np.concatenate([previous[None], targets[:-1]]).astype(np.int32)
        partial = np_ops.sparse_to_dense(triples[:first], codec, codec.grid)
        features = {"partial_image": partial[None], "inputs": inputs[None],
                    "targets": targets[None]}
        if label is not None:
            features["label"] = np.array([label], np.int32)
        logits = model(features)
        logp = [tf.nn.log_softmax(logits[f"{name}_logits"][0]).numpy()
                for name in ("channel", "position", "value")]
        for t in range(first - w0, end - w0):
            ch, pos, val = targets[t]
            out[0, w0 + t] = logp[0][t, ch]
            if ch != c:  # EOS has no position or value
                out[1, w0 + t] = logp[1][t, pos]
                out[2, w0 + t] = logp[2][t, val]
    return out
