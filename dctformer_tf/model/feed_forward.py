"""Position-wise feed-forward layer D -> expansion*D -> D."""

import keras


@keras.saving.register_keras_serializable(package="dctformer_tf")
class FeedForward(keras.layers.Layer):
    """Two dense layers with a GELU between them, applied at every position.

    Maps `inputs [B, T, D]` to `[B, T, D]` through a hidden layer of `expansion * D` units.

    Args:
        expansion: int. Width of the hidden layer as a multiple of the input width `D`.

    Example:
    ```python
    outputs = FeedForward()(np.zeros((2, 5, 32), "float32"))  # [2, 5, 32]
    ```
    """

    def __init__(self, expansion: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.expansion = expansion

    def build(self, inputs_shape):
        d_model = inputs_shape[-1]
        self.hidden_dense = keras.layers.Dense(
            self.expansion * d_model, activation="gelu", dtype=self.dtype_policy, name="hidden"
        )
        self.hidden_dense.build((None, None, d_model))
        self.output_dense = keras.layers.Dense(d_model, dtype=self.dtype_policy, name="output")
        self.output_dense.build((None, None, self.expansion * d_model))
        self.built = True

    def call(self, inputs):
        return self.output_dense(self.hidden_dense(inputs))  # [B, T, D] -> [B, T, 4D] -> [B, T, D]

    def get_config(self):
        config = super().get_config()
        config.update({"expansion": self.expansion})
        return config
