"""dctformer_tf: DCTransformer (Nash et al., ICML 2021) in TensorFlow/Keras."""

__version__ = "0.1.0"
