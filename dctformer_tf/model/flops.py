"""Model FLOPs of a DCTransformer train step, counted analytically, for MFU figures.

Matmul FLOPs only (every dense and conv layer, the attention score and mixing products in
full, the three output heads); a train step is 3x the forward pass (forward + 2x backward).
Element-wise work, softmax and layer norms are not counted, as in the usual MFU convention.
"""

from dctformer_tf.model.partial_image_encoder import encoder_grid_size


def forward_flops(config: dict, batch_size: int) -> int:
    """Matmul FLOPs of one forward pass over a full window (`config` = model.get_config())."""
    d, hk = config["d_model"], config["num_heads"] * config["key_size"]
    t = config["window"]
    channels, positions = 3 * config["block_size"] ** 2, config["grid_size"] ** 2
    values = 2 * config["clip"] + 1
    n = encoder_grid_size(config["grid_size"], config["conv_stride"]) ** 2

    def self_attention(length):
        return 2 * length * d * hk * 4 + 2 * 2 * length * length * hk

    def cross_attention(length):
        return 2 * length * d * hk * 2 + 2 * n * d * hk * 2 + 2 * 2 * length * n * hk

    def stack(spec, length, cross):
        per_attention = self_attention(length) + (cross_attention(length) if cross else 0)
        per_dense = 2 * length * 8 * d * d
        return sum(a * per_attention + f * per_dense for a, f in spec)

    encoder = 2 * n * config["conv_kernel"] ** 2 * channels * d
    encoder += stack(config["encoder_spec"], n, cross=False)
    decoders = sum(
        stack(config[name], t, cross=True)
        for name in ("channel_spec", "position_spec", "value_spec")
    )
    heads = 2 * t * d * (channels + 1 + positions + values)
    return batch_size * (encoder + decoders + heads)


def train_step_flops(config: dict, batch_size: int) -> int:
    """Model FLOPs of one train step: 3x `forward_flops`."""
    return 3 * forward_flops(config, batch_size)
