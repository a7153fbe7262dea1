"""The sparse DCT representation (docs/design.md §1): numpy reference (`np_ops`), TensorFlow twin
(`tf_ops`), tables, channel orders and the `SparseCodec` that ties them together; the fast
encoder's forms (`np_fast`, `tf_fast`, the fused kernel `fused_op`) and the one place that
chooses among them (`encoders.choose_encoder`); sequence files and progressive decodes.

Imports nothing of the project; never gin.
"""

from dctformer_tf.dct.codec import SequenceOverflowError, SparseCodec, codec_round_trip
from dctformer_tf.dct.order import ORDERS, channel_bands, channel_components, rank_to_raw
from dctformer_tf.dct.tables import quantization_table, zigzag_order

__all__ = [
    "ORDERS",
    "SequenceOverflowError",
    "SparseCodec",
    "channel_bands",
    "channel_components",
    "codec_round_trip",
    "quantization_table",
    "rank_to_raw",
    "zigzag_order",
]
