"""tools/bench_input.py: one pass of the real input pipeline over photo canvases at the LSUN
geometry yields, per encoded sequence, floor(r·q) or ceil(r·q) examples, q = min(1, L/l_max)."""

import numpy as np

from dctformer_tf.data.photos import photo_canvases
from tests.tools import load_tool

bench_input = load_tool("bench_input")


def test_examples_per_encode_at_the_lsun_geometry():
    run, l_max = bench_input.run_settings("lsun")
    images = photo_canvases(run.codec.resolution, 6, seed=3)
    result = bench_input.encode_pass(images, run, l_max, examples_per_encode=8)
    lengths = [len(run.codec.encode(image)) for image in images]  # the numpy codec
    q = np.minimum(1.0, np.array(lengths) / l_max)
    assert result["mean_length"] == np.mean(lengths)
    assert np.floor(8 * q).sum() <= result["examples"] <= np.ceil(8 * q).sum()
    assert result["encodes_per_example"] == 6 / result["examples"]
