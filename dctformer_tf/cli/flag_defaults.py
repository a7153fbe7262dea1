"""Flag defaults and choices that mirror library constants, written here as literals so that
building the parser (`dctformer --help`) imports no TensorFlow: the library modules that define
them import it. tests/cli/test_flag_defaults.py checks each one against the library's value."""

# sampling.processors.HEADS and the fields of sampling.processors.HeadSettings().
HEADS = ("channel", "position", "value")
HEAD_SETTINGS = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}

# train.strategy.STRATEGIES.
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")

# evaluation.report.ALL_METRICS.
METRICS = ("bpd", "compression", "fid", "sfid", "pr", "structure")

# dct.ORDERS, dct.codec.VALUE_ENCODINGS and the defaults of dct.SparseCodec().
ORDERS = ("bands", "luma_first")
VALUE_ENCODINGS = ("quantized", "dequantized")
CODEC = {"block_size": 8, "quality": 75, "order": "bands", "value_encoding": "quantized"}
