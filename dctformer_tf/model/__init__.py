"""The DCTransformer network (SPEC §3, paper App. B): Keras 3 layers and the model."""

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from dctformer_tf.model.feed_forward import FeedForward
from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec
from dctformer_tf.model.rezero_residual import ReZeroResidual

__all__ = [
    "CachedMultiHeadAttention",
    "FeedForward",
    "PARStack",
    "ReZeroResidual",
    "normalize_layer_spec",
]
