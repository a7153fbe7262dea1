"""`ModelSizes`: the sizes of a model and its batch that the memory plan reads.

Letters as in docs/design.md: D model width, H heads, K key size, T decoder window
(chunk + overlap), N encoder tokens, G block grid side, C DCT channels (EOS excluded),
P positions, V values, L the compact sequence buffer (`max_length`).
"""

import dataclasses

from dctformer_tf.data.layout import SequenceLayout
from dctformer_tf.model.configs import ModelConfig, count_parameters
from dctformer_tf.model.par_stack import normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import encoder_grid_size, encoder_padding


@dataclasses.dataclass(frozen=True)
class ModelSizes:
    """What the plan needs of one model and its input, as plain numbers.

    Args:
      name: str. The config's name.
      d: int. Model width D.
      heads: int. Attention heads H.
      key_size: int. K; every head projects to K, so H·K need not equal D.
      window: int. Decoder window T = chunk + overlap.
      tokens: int. Encoder tokens N.
      grid: int. Block grid side G.
      padded_grid: int. G plus the encoder conv's zero padding.
      channels: int. C, EOS excluded.
      positions: int. P = G².
      values: int. V = 2·clip + 1.
      encoder_spec: tuple of (attention, dense) layer counts per block.
      decoder_specs: tuple of three such specs: channel, position, value decoders.
      dropout: float. Residual dropout rate (a nonzero rate keeps a mask per residual).
      parameters: int. Trainable parameters (`count_parameters`).
      paper_batch: int or None. The run's global batch.
      max_length: int or None. The compact sequence buffer L the step is fed (it expands
        the examples itself, docs/design.md §2.4); None: it is fed dense examples.
      bytes_per_element: int. Bytes of one packed sequence element (`SequenceLayout`).
      grid_bias: bool. `attention_bias="grid_2d"` (model/grid_attention_bias.py).
    """

    name: str
    d: int
    heads: int
    key_size: int
    window: int
    tokens: int
    grid: int
    padded_grid: int
    channels: int
    positions: int
    values: int
    encoder_spec: tuple
    decoder_specs: tuple
    dropout: float
    parameters: int
    paper_batch: int | None = None
    max_length: int | None = None
    bytes_per_element: int = 4
    grid_bias: bool = False

    @property
    def hk(self) -> int:
        """H·K, the width of the attention projections."""
        return self.heads * self.key_size


def model_from_config(name: str, config: ModelConfig, paper_batch: int | None = None,
                      max_length: int | None = None) -> ModelSizes:
    """The `ModelSizes` of a `ModelConfig`.

    Args:
      name: str. What the plan calls it.
      config: the model's `ModelConfig`.
      paper_batch: int or None. The run's global batch.
      max_length: int or None. The run's sequence buffer, when the step is fed compact
        examples (as in training); None for dense examples.
    """
    kwargs = config.model_kwargs()
    g = config.grid_size
    return ModelSizes(
        name=name, d=config.d_model, heads=config.num_heads, key_size=config.key_size,
        window=config.window, tokens=encoder_grid_size(g, config.conv_stride) ** 2, grid=g,
        padded_grid=g + sum(encoder_padding(g, config.conv_kernel, config.conv_stride)),
        channels=3 * config.block_size**2, positions=g**2, values=2 * config.clip + 1,
        encoder_spec=tuple(normalize_layer_spec(config.encoder_spec)),
        decoder_specs=tuple(tuple(normalize_layer_spec(kwargs[f"{x}_spec"]))
                            for x in ("channel", "position", "value")),
        dropout=config.dropout, parameters=count_parameters(kwargs), paper_batch=paper_batch,
        max_length=max_length,
        bytes_per_element=SequenceLayout(config.block_size, g, config.clip).bytes_per_element,
        grid_bias=config.attention_bias == "grid_2d",
    )
