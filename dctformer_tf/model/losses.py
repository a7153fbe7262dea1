"""The DCTransformer loss: three masked cross-entropies, summed (docs/design.md §3–4).

Every element `(c, p, v)` costs `−log p(c) − log p(p | c) − log p(v | c, p)` nats, except
EOS (`c = C`, the last channel id), whose position and value are padding and cost nothing:
EOS contributes its channel term only. Only elements with `loss_mask = 1` (the targets of the
chunk, see `data.chunking`) count, and losses are nats per loss token, so a short last chunk
weighs each of its elements as much as a full one does.

`element_nll` gives the per-element terms (bpd evaluation and the exported `score`
signature use them directly); `nll_sums` and `loss_summary` reduce them for training and
metrics. Written in `keras.ops` only: the same loss trains on the TensorFlow and the JAX
backends.
"""

import math

from keras import ops

COMPONENTS = ("channel", "position", "value")


def element_nll(logits: dict, targets) -> dict:
    """Per-element negative log-likelihoods in nats, with no mask applied.

    Args:
      logits: {"channel_logits": [B, T, C + 1], "position_logits": [B, T, P],
        "value_logits": [B, T, V]}, any float dtype (computed in float32).
      targets: int32 [B, T, 3], (channel, position, value_token) per element.
    Returns:
      {"channel", "position", "value"}: float32 [B, T] each; position and value are 0 where
      the target is EOS.
    """
    targets = ops.cast(targets, "int32")
    eos = logits["channel_logits"].shape[-1] - 1
    not_eos = targets[..., 0] != eos  # [B, T]
    nll = {}
    for index, name in enumerate(COMPONENTS):
        nll[name] = _cross_entropy(logits[f"{name}_logits"], targets[..., index])
        if name != "channel":
            # where, not a product: whatever the heads say about EOS's padding is ignored.
            nll[name] = ops.where(not_eos, nll[name], 0.0)
    return nll


def _cross_entropy(logits, labels):
    """float [B, T, K] logits, int32 [B, T] labels -> float32 [B, T] nats.

    `logsumexp − the label's logit`: no [B, T, K] one-hot (Keras' JAX cross-entropy makes one,
    as large as the logits, at V = 2401 values or P = 2304 positions).
    """
    logits = ops.cast(logits, "float32")
    picked = ops.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return ops.logsumexp(logits, axis=-1) - picked


def nll_sums(logits: dict, targets, loss_mask) -> dict:
    """Summed masked nats per component, and the number of loss tokens.

    Args:
      logits, targets: as in `element_nll`.
      loss_mask: float [B, T]; 1 on loss-bearing elements.
    Returns:
      {"channel", "position", "value", "total": float32 [] nats, "loss_tokens": float32 []}.
    """
    mask = ops.cast(loss_mask, "float32")
    sums = {name: ops.sum(nll * mask) for name, nll in element_nll(logits, targets).items()}
    sums["total"] = sums["channel"] + sums["position"] + sums["value"]
    sums["loss_tokens"] = ops.sum(mask)
    return sums


def loss_summary(
    logits: dict, targets, loss_mask, num_tokens=None
) -> dict:
    """Losses in nats per loss token, and bits per loss token.

    For Keras metrics, update a `keras.metrics.Mean` with a value and
    `sample_weight=loss_tokens`: the running result is then nats per token over all batches,
    not an average of batch averages.

    Args:
      logits, targets, loss_mask: as in `nll_sums`.
      num_tokens: float []. Divisor; default the batch's own loss tokens. Under a
        distribution strategy pass the global batch's token count (summed over replicas), so
        that the replicas' losses add up to the global-batch loss.
    Returns:
      {"loss" (total), "channel_loss", "position_loss", "value_loss", "bits_per_token":
      float32 [], "loss_tokens": float32 [] (this batch's own count)}.
    """
    sums = nll_sums(logits, targets, loss_mask)
    tokens = sums["loss_tokens"] if num_tokens is None else ops.cast(num_tokens, "float32")
    summary = {f"{name}_loss": ops.divide_no_nan(sums[name], tokens) for name in COMPONENTS}
    summary["loss"] = ops.divide_no_nan(sums["total"], tokens)
    summary["bits_per_token"] = summary["loss"] / math.log(2.0)
    summary["loss_tokens"] = sums["loss_tokens"]
    return summary
