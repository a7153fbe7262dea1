"""evaluate_bpd's per-chunk breakdown by component (paper Figure 9) against per-element
log-likelihoods computed by hand from a tiny untrained model, window by window."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.evaluation.bpd import evaluate_bpd
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.dctransformer import DCTransformer
from dctformer_tf.model.random_init import open_rezero_branches
from tests.hand_likelihood import hand_log_likelihoods

CONFIG = ModelConfig(resolution=16, block_size=8, clip=200, d_model=16, num_heads=2, key_size=8,
                     encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                     value_spec=[(1, 1)], conv_kernel=2, conv_stride=1, chunk_size=24,
                     chunk_overlap=8)
MAX_LENGTH = 128  # the two 16×16 test images need 107 and 99 elements
COMPONENTS = ("channel", "position", "value")


@pytest.fixture(scope="module")
def setup():
    codec = SparseCodec(block_size=8, quality=75, clip=200, resolution=16)
    model = DCTransformer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    open_rezero_branches(model, seed=3)  # at alpha = 0 every window would score alike
    images, _ = shapes_arrays("test", 2, size=16)
    sequences = [codec.encode(image, max_length=MAX_LENGTH) for image in images]
    return model, codec, sequences


def _hand_bits(model, codec, triples):
    """Bits of each element by component, float64 [3, L], one forward pass per chunk."""
    return -hand_log_likelihoods(model, codec, CONFIG.chunk_size, CONFIG.chunk_overlap,
                                 triples) / np.log(2)


def test_per_chunk_component_bpd_matches_hand_scores_and_adds_up(setup):
    model, codec, sequences = setup
    padded = np.zeros((len(sequences), MAX_LENGTH, 3), np.int32)
    for i, triples in enumerate(sequences):
        padded[i, : len(triples)] = triples
    dataset = tf.data.Dataset.from_tensor_slices({
        "triples": padded,
        "length": np.array([len(t) for t in sequences], np.int32),
        "content_hw": np.full((len(sequences), 2), 16, np.int32),
        "label": np.zeros(len(sequences), np.int32),
    })
    result = evaluate_bpd(model, codec, dataset, CONFIG.chunk_size, CONFIG.chunk_overlap,
                          batch_size=1)  # two batches: the per-chunk sums accumulate

    num_chunks = max(-(-len(t) // CONFIG.chunk_size) for t in sequences)
    assert num_chunks >= 3 and len({len(t) for t in sequences}) == 2
    want = np.zeros((3, num_chunks))
    for triples in sequences:
        bits = _hand_bits(model, codec, triples)
        chunk_of = np.arange(len(triples)) // CONFIG.chunk_size
        for j in range(3):
            want[j] += np.bincount(chunk_of, weights=bits[j], minlength=num_chunks)
    subpixels = 2 * 3 * 16 * 16
    for j, name in enumerate(COMPONENTS):
        got = np.array(result[f"bpd_per_chunk_{name}"])
        np.testing.assert_allclose(got, want[j] / subpixels, rtol=1e-4, err_msg=name)
        assert got.sum() == pytest.approx(result[f"bpd_{name}"], rel=1e-6)
    parts = sum(np.array(result[f"bpd_per_chunk_{name}"]) for name in COMPONENTS)
    np.testing.assert_allclose(parts, result["bpd_per_chunk"], rtol=1e-6)
    assert parts.sum() == pytest.approx(result["bpd"], rel=1e-6)
    # The last chunk of the shorter sequence is shorter: chunks differ, the test can fail.
    assert np.ptp(want.sum(axis=0)) > 0


def test_bits_by_band_and_component_match_hand_scores(setup):
    """Each element's hand-scored bits land in the group of its channel's band and colour
    component (independently: `order.frequency_band` of the raw coefficient, and the
    component from the raw index), EOS in its own group."""
    from dctformer_tf.dct.order import frequency_band, rank_to_raw

    model, codec, sequences = setup
    padded = np.zeros((len(sequences), MAX_LENGTH, 3), np.int32)
    for i, triples in enumerate(sequences):
        padded[i, : len(triples)] = triples
    dataset = tf.data.Dataset.from_tensor_slices({
        "triples": padded, "length": np.array([len(t) for t in sequences], np.int32),
        "content_hw": np.full((len(sequences), 2), 16, np.int32),
        "label": np.zeros(len(sequences), np.int32)})
    result = evaluate_bpd(model, codec, dataset, CONFIG.chunk_size, CONFIG.chunk_overlap)
    raw = rank_to_raw(codec.order, 8)
    want, count = {}, {}
    for triples in sequences:
        bits = _hand_bits(model, codec, triples)
        for t, (channel, _, _) in enumerate(triples):
            if channel == codec.eos:
                key = "EOS"
            else:
                coefficient = raw[channel] % 64
                key = (f"{frequency_band(coefficient // 8, coefficient % 8)}/"
                       f"{('Y', 'Cb', 'Cr')[raw[channel] // 64]}")
            want[key] = want.get(key, 0) + bits[:, t]
            count[key] = count.get(key, 0) + 1
    got = result["bits_by_band"]
    assert set(got) == set(want) and len(want) > 4
    for key, total in want.items():
        assert got[key]["elements"] == count[key], key
        for j, name in enumerate(COMPONENTS):
            assert got[key][name] == pytest.approx(total[j] / count[key], rel=1e-4, abs=1e-6)
    assert got["EOS"]["elements"] == 2 and got["EOS"]["position"] == 0
    # The Y DC cells of two 2x2-block images: 8 cells; chroma: 2.
    y_dc = want["0/Y"].sum()
    assert result["dc_bits_per_cell"]["Y"] == pytest.approx(y_dc / 8, rel=1e-4)
