"""The DCTransformer network (docs/design.md §3, paper App. B): Keras 3 layers in `keras.ops`
(one module per layer), the model (`dctransformer`), its configuration and parameter count
(`configs`), the loss (`losses`), FLOPs (`flops`) and untrained models for benchmarks
(`random_init`).

May import `dct` and the plain-Python parts of `data` (`layout`); never TensorFlow directly,
never gin, so it runs on every Keras backend.
"""

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from dctformer_tf.model.channel_decoder import ChannelDecoder, start_triple
from dctformer_tf.model.configs import ModelConfig, build_model, count_parameters
from dctformer_tf.model.dctransformer import DCTransformer
from dctformer_tf.model.decoder_trunk import DecoderTrunk
from dctformer_tf.model.feed_forward import FeedForward
from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import (
    PartialImageEncoder,
    encoder_cell_index,
    encoder_grid_size,
    encoder_padding,
)
from dctformer_tf.model.position_decoder import PositionDecoder
from dctformer_tf.model.rezero_residual import ReZeroResidual
from dctformer_tf.model.value_decoder import ValueDecoder, gather_encoder_cells

__all__ = [
    "CachedMultiHeadAttention",
    "ChannelDecoder",
    "DCTransformer",
    "DecoderTrunk",
    "FeedForward",
    "ModelConfig",
    "PARStack",
    "PartialImageEncoder",
    "PositionDecoder",
    "ReZeroResidual",
    "ValueDecoder",
    "build_model",
    "count_parameters",
    "encoder_cell_index",
    "encoder_grid_size",
    "encoder_padding",
    "gather_encoder_cells",
    "normalize_layer_spec",
    "start_triple",
]
