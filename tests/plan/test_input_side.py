"""dctformer_tf.plan's input side: bytes per example counted by hand from the shapes at the
LSUN geometry, the encoding load of a hand-picked case, its encodes per example against the
numpy pipeline's own length policy (`numpy_chunking.examples_from_sequence`), and the measured
encode running the encoder it is asked for."""

import pathlib
import types

import numpy as np
import pytest

from dctformer_tf.data import numpy_chunking, pipeline
from dctformer_tf.dct import SparseCodec
from dctformer_tf.plan import LengthAssumption, config_files, encode_load, modelled_encode_seconds
from dctformer_tf.plan.input_side import example_bytes, measure_encode_seconds
from dctformer_tf.train.gin_model import read_bindings, run_from_bindings

GIN = pathlib.Path(__file__).resolve().parents[2] / "gin"


def test_lsun_example_bytes_by_hand():
    """LSUN: G = 48, C = 192, T = 1024, max_length 60000, P = 2304 and V = 2401 (12 bits
    each, so 3 bytes per packed element)."""
    run = run_from_bindings(read_bindings(config_files(GIN, "lsun")))
    sizes = example_bytes(run)
    # int32 partial image [48, 48, 192], inputs and targets [1024, 3], loss mask [1024],
    # content size [2] and five scalars (length, label, chunk index, start, end)
    assert sizes["dense_bytes"] == 4 * (48 * 48 * 192 + 6 * 1024 + 1024 + 2 + 5)
    # packed uint8 [60000, 3], int16 channel counts [192], int32 content size [2] and eight
    # scalars (length, label, chunk index, start, end, window start, loss-from channel,
    # loss tokens)
    assert sizes["compact_bytes"] == 60000 * 3 + 2 * 192 + 4 * (2 + 8)
    assert sizes["ratio"] == sizes["compact_bytes"] / sizes["dense_bytes"] < 1 / 8


def test_encode_load_of_a_hand_picked_case():
    """Half the images over max_length; the kept ones a quarter of l_max long: a kept
    sequence yields r/4 examples, so 8 encodes per example at r = 1 and 1 at r = 8. At
    10 ms per encode, 2 steps/s of 64 examples take 2·64·8·0.01 = 10.24 cores, then 1.28."""
    assumed = LengthAssumption(40000, overlong_fraction=0.5, mean_kept_length=15000)
    load = encode_load(assumed, l_max=60000, examples_per_encode=8, paper_batch=64,
                       steps_per_second=2.0, encode_cpu_s=0.01)
    assert load["mean_keep_probability"] == pytest.approx(0.125)
    assert load["paper_encodes_per_example"] == pytest.approx(8.0)
    assert load["this_run_encodes_per_example"] == pytest.approx(1.0)
    assert load["paper_cpu_s_per_example"] == pytest.approx(0.08)
    assert load["paper_host_cores"] == pytest.approx(10.24)
    assert load["this_run_host_cores"] == pytest.approx(1.28)
    # without a length filter only the over-long images cost encodes
    no_filter = encode_load(assumed, None, 1, 64, 2.0, 0.01)
    assert no_filter["paper_encodes_per_example"] == pytest.approx(2.0)


def test_encodes_per_example_follow_the_pipelines_length_policy():
    """The same lengths through the numpy pipeline's policy: over-long sequences are skipped,
    each kept one yields floor or ceil of r·min(1, L / l_max) examples."""
    rng = np.random.default_rng(0)
    l_max, r, n = 60000, 8, 20000
    lengths = rng.integers(1000, 90000, n)
    kept = lengths[lengths <= l_max]
    examples = numpy_chunking.examples_from_sequence(kept, l_max, r, rng).sum()
    assumed = LengthAssumption(float(lengths.mean()), overlong_fraction=1 - len(kept) / n,
                               mean_kept_length=float(kept.mean()))
    load = encode_load(assumed, l_max, r, paper_batch=1, steps_per_second=1.0, encode_cpu_s=1.0)
    assert load["this_run_encodes_per_example"] == pytest.approx(n / examples, rel=0.01)


def test_modelled_encode_cost_is_per_megapixel():
    assert modelled_encode_seconds(1000, ms_per_megapixel=16.0) == pytest.approx(0.016)
    assert modelled_encode_seconds(2000, 16.0) == pytest.approx(4 * 0.016)


@pytest.mark.parametrize("encoder", ["ops", "auto"])
def test_measured_encode_runs_the_chosen_encoder(monkeypatch, encoder):
    """The measurement times the pipeline with the encoder it is given, over every repeat
    of its canvases, and returns CPU seconds per image."""
    calls = []
    real = pipeline.encode_dataset

    def recording(source, *args, **kwargs):
        calls.append((kwargs["encoder"], int(source.cardinality())))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pipeline, "encode_dataset", recording)
    run = types.SimpleNamespace(codec=SparseCodec(resolution=32, block_size=8, quality=75),
                                max_length=2000)
    seconds = measure_encode_seconds(run, num=2, repeats=3, encoder=encoder)
    assert calls == [(encoder, 6)] and 0 < seconds < 1
