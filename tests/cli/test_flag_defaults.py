"""The literals of `cli.flag_defaults` (there so that --help imports no TensorFlow) equal the
library's own values, and the parser's defaults give the library's defaults."""

import dataclasses

from dctformer_tf.cli import flag_defaults
from dctformer_tf.cli.main import build_parser
from dctformer_tf.cli.sample_commands import settings_from_args
from dctformer_tf.dct import ORDERS, SparseCodec
from dctformer_tf.dct.codec import VALUE_ENCODINGS
from dctformer_tf.evaluation.report import ALL_METRICS
from dctformer_tf.sampling.processors import HEADS, HeadSettings, SamplingSettings
from dctformer_tf.train.strategy import STRATEGIES


def test_literals_equal_the_library_constants():
    assert flag_defaults.HEADS == HEADS
    assert flag_defaults.HEAD_SETTINGS == dataclasses.asdict(HeadSettings())
    assert flag_defaults.STRATEGIES == STRATEGIES
    assert flag_defaults.METRICS == ALL_METRICS
    assert flag_defaults.ORDERS == ORDERS
    assert flag_defaults.VALUE_ENCODINGS == VALUE_ENCODINGS
    codec = SparseCodec()
    assert flag_defaults.CODEC == {key: getattr(codec, key) for key in flag_defaults.CODEC}


def test_parser_defaults_are_the_library_defaults():
    parser = build_parser()
    for command in ("sample", "upsample", "colorize", "evaluate"):
        args = parser.parse_args([command, "--model_dir", "run", "--out", "out",
                                  *(["image.png"] if command in ("upsample", "colorize") else [])])
        assert settings_from_args(args) == SamplingSettings(), command
    args = parser.parse_args(["encode", "image.png", "--out", "x.npz"])
    codec = SparseCodec()
    assert (args.block_size, args.quality, args.order, args.value_encoding) == (
        codec.block_size, codec.quality, codec.order, codec.value_encoding)

