"""DCTransformer: partial-image encoder plus channel, position and value decoders."""

import inspect
from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.channel_decoder import ChannelDecoder, start_triple
from dctformer_tf.model.par_stack import normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import PartialImageEncoder
from dctformer_tf.model.position_decoder import PositionDecoder
from dctformer_tf.model.value_decoder import ValueDecoder


@keras.saving.register_keras_serializable(package="dctformer_tf")
class DCTransformer(keras.Model):
    """DCTransformer (Nash et al. 2021): a likelihood model of sparse DCT sequences.

    Each sequence element is a triple `(channel, position, value_token)`, factored as
    `p(c_t) p(p_t | c_t) p(v_t | c_t, p_t)` given everything before it: a
    `PartialImageEncoder` reads the dense image of the elements before the current chunk, and
    three stacked causal decoders (`ChannelDecoder`, `PositionDecoder`, `ValueDecoder`) read
    the window of triples, each cross-attending to the encoder output.

    Inputs to `call`, a dict:
    - `partial_image`: int32/float `[B, G, G, C]`, the signed quantized (or dequantized, see
      `value_scale`) coefficients of the elements before the target chunk.
    - `inputs`: int32 `[B, T, 3]`, the window triples shifted right by one, with
      `start_triple()` at sequence start. Padding may hold any valid ids (0).
    - `targets`: int32 `[B, T, 3]`, the window triples (teacher forcing for the position and
      value decoders).
    - `label`: int32 `[B]`, class ids; required iff `num_classes > 0`.

    Returns a dict of float32 logits (also under `mixed_bfloat16`):
    `channel_logits [B, T, C + 1]`, `position_logits [B, T, P]`, `value_logits [B, T, V]`,
    where `C = 3 * S**2`, `P = G**2`, `V = 2 * clip + 1`.

    Mixed precision (`mixed_bfloat16`): the matmuls (attention projections and scores,
    feed-forward, the encoder's conv) run in bfloat16; the embeddings, the residual streams,
    every layer norm, the attention softmax, the logits layers and the encoder output stay
    float32, as do all variables. The decoding caches hold keys/values in the compute dtype.

    Cached decoding for samplers (all shapes static; usable in `tf.function`, `tf.while_loop`
    and XLA): `encode`, `init_cache`, then per window step `t` `decode_channel_step`,
    `decode_position_step`, `decode_value_step`. Their logits equal the teacher-forced ones.

    Args:
        block_size: int. DCT block size `S`.
        grid_size: int. Luma block-grid side `G = R / S`.
        clip: int. Clip value of the quantized coefficients.
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        encoder_spec: list of `(n_attention, n_dense)` tuples for the encoder.
        channel_spec: layer spec of the channel decoder.
        position_spec: layer spec of the position decoder.
        value_spec: layer spec of the value decoder.
        conv_kernel: int. Kernel side of the encoder's downsampling conv.
        conv_stride: int. Stride of the encoder's downsampling conv.
        window: int. Maximum decoder window `T` (chunk size + overlap).
        num_classes: int. Number of classes for class conditioning; 0 = unconditional.
        key_size: int. Size of each attention head (64 in the paper, whatever `D`).
        dropout: float. Dropout rate on every residual branch.
        value_scale: str. `"quantized"` (partial image holds `v`, scaled by `1 / clip`) or
            `"dequantized"` (holds `v * Q`, scaled by `1 / (S * 128)`).
        value_init: str. `"normal"` or `"sinusoidal"`: how the value-token embedding and the
            value logits kernel start (`value_init.py`); same shapes either way.
        position_init: str. `"normal"` or `"sinusoidal_2d"`: how the position embeddings and
            the position logits kernel start (`position_init.py`); same shapes either way.
        attention_bias: str. `"none"` or `"grid_2d"`: a learned bias per head and grid offset
            in the value decoder's self-attention (`grid_attention_bias.py`); starts at zero.
        input_transform: str. `"linear"` or `"signed_log"`: how the encoder maps partial-image
            values into [-1, 1] (`PartialImageEncoder`).
        layer_norm_epsilon: float. Epsilon of every layer norm.
        remat: bool. Whether every residual block recomputes its activations in the
            backward pass instead of storing them (less memory, about one more forward pass
            of compute); the weights and their names are the same either way.

    Example:
    ```python
    model = DCTransformer(block_size=8, grid_size=4, clip=1200, d_model=32, num_heads=2,
                          encoder_spec=[(1, 1)], channel_spec=[(1, 1)],
                          position_spec=[(1, 1)], value_spec=[(1, 1)],
                          conv_kernel=2, conv_stride=2, window=64)
    outputs = model({"partial_image": np.zeros((2, 4, 4, 192), "int32"),
                     "inputs": np.zeros((2, 64, 3), "int32"),
                     "targets": np.zeros((2, 64, 3), "int32")})
    ```

    References:
    - [Nash et al., 2021](https://arxiv.org/abs/2103.03841)
    """

    def __init__(
        self,
        block_size: int,
        grid_size: int,
        clip: int,
        d_model: int,
        num_heads: int,
        encoder_spec: Sequence[Sequence[int]],
        channel_spec: Sequence[Sequence[int]],
        position_spec: Sequence[Sequence[int]],
        value_spec: Sequence[Sequence[int]],
        conv_kernel: int,
        conv_stride: int,
        window: int,
        num_classes: int = 0,
        key_size: int = 64,
        dropout: float = 0.0,
        value_scale: str = "quantized",
        value_init: str = "normal",
        position_init: str = "normal",
        attention_bias: str = "none",
        input_transform: str = "linear",
        layer_norm_epsilon: float = 1e-6,
        remat: bool = False,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # float partial images stay float32
        self.block_size = block_size
        self.grid_size = grid_size
        self.clip = clip
        self.d_model = d_model
        self.num_heads = num_heads
        self.encoder_spec = normalize_layer_spec(encoder_spec)
        self.channel_spec = normalize_layer_spec(channel_spec)
        self.position_spec = normalize_layer_spec(position_spec)
        self.value_spec = normalize_layer_spec(value_spec)
        self.conv_kernel = conv_kernel
        self.conv_stride = conv_stride
        self.window = window
        self.num_classes = num_classes
        self.key_size = key_size
        self.dropout = dropout
        self.value_scale = value_scale
        self.value_init = value_init
        self.position_init = position_init
        self.attention_bias = attention_bias
        self.input_transform = input_transform
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat

        self.num_channels = 3 * block_size**2
        self.num_positions = grid_size**2
        self.num_values = 2 * clip + 1

        shared = dict(
            num_heads=num_heads,
            key_size=key_size,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            remat=remat,
            dtype=self.dtype_policy,
        )
        self.encoder = PartialImageEncoder(
            grid_size=grid_size,
            block_size=block_size,
            clip=clip,
            d_model=d_model,
            layer_spec=self.encoder_spec,
            conv_kernel=conv_kernel,
            conv_stride=conv_stride,
            num_classes=num_classes,
            value_scale=value_scale,
            input_transform=input_transform,
            name="encoder",
            **shared,
        )
        self.channel_decoder = ChannelDecoder(
            num_channels=self.num_channels,
            num_positions=self.num_positions,
            num_values=self.num_values,
            window=window,
            d_model=d_model,
            layer_spec=self.channel_spec,
            num_classes=num_classes,
            value_init=value_init,
            position_init=position_init,
            grid_size=grid_size,
            name="channel_decoder",
            **shared,
        )
        self.position_decoder = PositionDecoder(
            num_channels=self.num_channels,
            num_positions=self.num_positions,
            d_model=d_model,
            layer_spec=self.position_spec,
            position_init=position_init,
            grid_size=grid_size,
            name="position_decoder",
            **shared,
        )
        self.value_decoder = ValueDecoder(
            num_positions=self.num_positions,
            num_values=self.num_values,
            grid_size=grid_size,
            conv_stride=conv_stride,
            d_model=d_model,
            layer_spec=self.value_spec,
            value_init=value_init,
            position_init=position_init,
            attention_bias=attention_bias,
            name="value_decoder",
            **shared,
        )

    def start_triple(self) -> tuple[int, int, int]:
        """`(C + 1, P, V)`: the decoder input at sequence start (see `start_triple`)."""
        return start_triple(self.num_channels, self.num_positions, self.num_values)

    def build(self, input_shape):
        batch_size = input_shape["partial_image"][0]
        self.encoder.build(input_shape["partial_image"])
        encoder_output_shape = (batch_size, self.encoder.num_tokens, self.d_model)
        window_shape = tuple(input_shape["inputs"])
        hidden_shape = (*window_shape[:2], self.d_model)
        self.channel_decoder.build(window_shape, encoder_output_shape)
        self.position_decoder.build(hidden_shape, window_shape[:2], encoder_output_shape)
        self.value_decoder.build(hidden_shape, window_shape[:2], encoder_output_shape)
        self.built = True

    def _label(self, label):
        if self.num_classes and label is None:
            raise ValueError(
                f"This model is class-conditional ({self.num_classes} classes): pass a label."
            )
        return label if self.num_classes else None

    def call(self, inputs, training=None):
        label = self._label(inputs.get("label"))
        encoder_output = self.encoder(inputs["partial_image"], label=label, training=training)
        targets = ops.cast(inputs["targets"], "int32")  # [B, T, 3]
        channel_logits, channel_hidden = self.channel_decoder(
            inputs["inputs"], encoder_output, label=label, training=training
        )
        position_logits, position_hidden = self.position_decoder(
            channel_hidden, targets[..., 0], encoder_output, training=training
        )
        value_logits = self.value_decoder(
            position_hidden, targets[..., 1], encoder_output, training=training
        )
        return {
            "channel_logits": channel_logits,
            "position_logits": position_logits,
            "value_logits": value_logits,
        }

    def encode(self, partial_image, label=None, training=False):
        """`partial_image [B, G, G, C]`, `label [B]` -> float32 encoder output `[B, N, D]`."""
        return self.encoder(partial_image, label=self._label(label), training=training)

    def init_cache(self, encoder_output, window: int | None = None) -> dict:
        """The decoding state for one window of `window` steps (default `self.window`).

        A dict of fixed-shape tensors (`L_x` = attention layers of decoder `x`, `H` heads,
        `K` key size):
        - `encoder_output [B, N, D]` (for the value decoder's gather);
        - `channel`, `position`, `value`: `{"self": [B, L_x, 2, H, window, K] zeros,
          "cross": [B, L_x, 2, H, N, K]}`, the self-attention key/value caches and the
          cross-attention keys/values of the encoder output, computed here once (with
          `attention_bias="grid_2d"` the value cache also holds `"positions"` int32
          `[B, window]`, the target positions written so far);
        - `channel_hidden`, `position_hidden` float32 `[B, D]`: the current step's channel
          and position decoder hidden states (residual streams), passed between the three
          sub-steps.
        """
        window = self.window if window is None else window
        if window > self.window:
            raise ValueError(f"init_cache: window {window} is longer than the model's "
                             f"step embedding ({self.window} steps)")
        batch_size = ops.shape(encoder_output)[0]
        hidden = ops.zeros((batch_size, self.d_model), dtype="float32")
        return {
            "encoder_output": encoder_output,
            "channel": self.channel_decoder.init_cache(encoder_output, window),
            "position": self.position_decoder.init_cache(encoder_output, window),
            "value": self.value_decoder.init_cache(encoder_output, window),
            "channel_hidden": hidden,
            "position_hidden": hidden,
        }

    def decode_channel_step(self, cache: dict, previous_triple, step, label=None):
        """Channel logits `[B, C + 1]` at window step `step` (int32 scalar or `[B]`).

        `previous_triple [B, 3]` is the decoder input at `step`: the triple at `step - 1`,
        or `start_triple()` at sequence start. Returns `(logits, cache)`.
        """
        logits, hidden, channel_cache = self.channel_decoder.decode_step(
            ops.cast(previous_triple, "int32"), step, cache["channel"], label=self._label(label)
        )
        return logits, {**cache, "channel": channel_cache, "channel_hidden": hidden}

    def decode_position_step(self, cache: dict, channel, step):
        """Position logits `[B, P]` at `step` given this step's `channel [B]`; run after
        `decode_channel_step` for the same step. Returns `(logits, cache)`."""
        logits, hidden, position_cache = self.position_decoder.decode_step(
            cache["channel_hidden"], channel, step, cache["position"]
        )
        return logits, {**cache, "position": position_cache, "position_hidden": hidden}

    def decode_value_step(self, cache: dict, position, step):
        """Value logits `[B, V]` at `step` given this step's `position [B]`; run after
        `decode_position_step` for the same step. Returns `(logits, cache)`."""
        logits, value_cache = self.value_decoder.decode_step(
            cache["position_hidden"],
            ops.cast(position, "int32"),
            step,
            cache["encoder_output"],
            cache["value"],
        )
        return logits, {**cache, "value": value_cache}

    def get_config(self):
        config = super().get_config()
        # Every constructor argument, read back from the attribute of the same name.
        config.update({name: getattr(self, name) for name in constructor_arguments()})
        return config


def constructor_arguments() -> tuple[str, ...]:
    """The names of `DCTransformer`'s constructor arguments, in order (`**kwargs` aside)."""
    parameters = inspect.signature(DCTransformer.__init__).parameters.values()
    return tuple(p.name for p in parameters
                 if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self")
