"""Prefix fidelity through the real sampler (docs/design.md §6): every super-resolved sample keeps the
input's DC band, so its ×S block means are the input up to DC quantization; every colorized
sample keeps the input's Y coefficients, so its luma is the gray input's JPEG decode; samples
differ between seeds while keeping the prefix."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.sampling import Sampler, masks
from dctformer_tf.sampling import conditional as cond
from tests.conditional.conftest import MAX_LENGTH, TINY
from tests.conditional.test_prefixes import jpeg_dc_steps, mid_range_image, ycbcr
from tests.sampling.stub_model import RandomModel

BANDS = SparseCodec(block_size=8, quality=75, resolution=32)
LUMA_FIRST = dataclasses.replace(BANDS, order="luma_first")
S = 8


def _sequence(triples, length):
    """The elements before EOS of one padded sampler row."""
    triples = triples[:length]
    return triples[triples[:, 0] != BANDS.eos]


def _sampler(model, codec, task):
    return Sampler(model, codec, TINY.chunk_size, TINY.chunk_overlap, MAX_LENGTH,
                   jit_compile=False)


@pytest.fixture(scope="module")
def upsampled(tiny_model):
    sampler = _sampler(tiny_model, BANDS, "upsample")
    low = mid_range_image(np.random.default_rng(4), 4, 4)
    runs = {seed: cond.upsample(sampler, low, 3, seed=seed, max_chunks=2) for seed in (1, 2)}
    again = cond.upsample(sampler, low, 3, seed=1, max_chunks=2)
    return low, runs, again


@pytest.fixture(scope="module")
def colorized(tiny_model):
    sampler = _sampler(tiny_model, LUMA_FIRST, "colorize")
    gray = Image.fromarray(shapes_arrays("test", 1, size=32)[0][0]).convert("L")
    runs = {seed: cond.colorize(sampler, np.array(gray), 3, seed=seed, max_chunks=2)
            for seed in (1, 2)}
    return gray, runs


def test_every_super_resolved_sample_keeps_the_dc_band(upsampled):
    low, runs, _ = upsampled
    geometry = masks.MaskGeometry.from_codec(BANDS)
    for out in runs.values():
        assert len(out.prefix) == 24  # 16 Y + 4 Cr + 4 Cb DC terms, none zero here
        for triples, n, fidelity in zip(out.result.triples, out.result.length, out.fidelity,
                                        strict=True):
            sequence = _sequence(triples, n)
            masks.check_triples_valid(geometry, triples[:n], (32, 32), S)
            # Channels 0, 1, 2 are the DC band under "bands" (Y, Cr, Cb; docs/design.md §1.7).
            np.testing.assert_array_equal(sequence[sequence[:, 0] < 3], out.prefix)
            assert len(sequence) >= len(out.prefix) + 30  # the model drew the rest
            assert fidelity["dc_band_equal"]


def test_downsampling_a_super_resolved_sample_gives_back_the_input(upsampled):
    """The ×S block means of a sample's luma are the input pixel's luma within
    Q_dc/(2S) (the DC term is round(S·y/Q), the block mean is DC/S) + 0.5 (the sample's RGB
    rounding to uint8; luma weights sum to 1). Chroma is 4:2:0: its DC covers 2S×2S pixels,
    so its means are compared over 2S×2S (chroma upsampled by nearest neighbour to keep each
    chroma block inside its 2S×2S square) against the mean of the 2x2 input pixels. The
    bounds hold without clipping, which the samples here never need."""
    low, runs, _ = upsampled
    nearest = dataclasses.replace(BANDS, upsample="nearest")
    q_luma, q_chroma = jpeg_dc_steps(BANDS.quality)
    target = ycbcr(low)
    target_chroma = target[..., 1:].reshape(2, 2, 2, 2, 2).mean(axis=(1, 3))
    for out in runs.values():
        for triples, n, image, fidelity in zip(out.result.triples, out.result.length,
                                               out.result.images, out.fidelity, strict=True):
            decoded = nearest.decode(triples[:n], 32, 32)
            assert ((decoded > 0) & (decoded < 255)).all(), "test set-up: a sample clipped"
            yuv = ycbcr(decoded)
            luma_means = yuv[..., 0].reshape(4, S, 4, S).mean(axis=(1, 3))
            assert np.abs(luma_means - target[..., 0]).max() <= q_luma / (2 * S) + 0.5
            chroma_means = yuv[..., 1:].reshape(2, 2 * S, 2, 2 * S, 2).mean(axis=(1, 3))
            assert np.abs(chroma_means - target_chroma).max() <= q_chroma / (2 * S) + 0.5
            # The default (triangle) decode has the same luma: the library's report agrees.
            assert fidelity["luma_block_error"] <= fidelity["luma_block_bound"] == 1.0
            assert not np.array_equal(image, cond.upscale_nearest(low, S))  # detail was drawn


def test_super_resolution_samples_differ_between_seeds_not_for_the_same_seed(upsampled):
    _, runs, again = upsampled
    np.testing.assert_array_equal(again.result.triples, runs[1].result.triples)
    first, second = runs[1].result.images, runs[2].result.images
    for a in first:
        for b in second:
            assert not np.array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # and between rows of one call


def test_every_colorized_sample_keeps_the_luma(colorized):
    gray, runs = colorized
    buffer = io.BytesIO()
    gray.save(buffer, "JPEG", quality=LUMA_FIRST.quality)
    jpeg = np.array(Image.open(buffer), np.float64)  # the gray input as JPEG codes it
    images = []
    for out in runs.values():
        assert (out.prefix[:, 0] < 64).all() and len(out.prefix) > 100
        for triples, n, image, fidelity in zip(out.result.triples, out.result.length,
                                               out.result.images, out.fidelity, strict=True):
            sequence = _sequence(triples, n)
            # Y channels are ids 0 ... S² − 1 under "luma_first" (docs/design.md §1.7).
            np.testing.assert_array_equal(sequence[sequence[:, 0] < 64], out.prefix)
            assert (sequence[len(out.prefix):, 0] >= 64).sum() >= 10  # chroma was drawn
            assert cond.psnr(cond.luma(image), jpeg) >= 40
            assert np.abs(ycbcr(image)[..., 1:]).max() > 2  # and it is in colour
            assert fidelity["luma_equal"] and fidelity["luma_psnr_db"] >= 40
            images.append(image)
    for i, a in enumerate(images):
        for b in images[i + 1:]:
            assert not np.array_equal(a, b)


def test_without_the_floor_a_model_adds_to_the_prefix_channels():
    """The prefix lists only non-zero DC terms: a model that likes to stay in its previous
    channel (the stub) adds DC terms after it unless the floor forbids them."""
    low = np.full((4, 4, 3), 128, np.uint8)
    low[1, 2], low[3, 0] = (200, 40, 90), (20, 160, 60)  # most DC terms are zero
    prefix, _ = cond.downsample_prefix(BANDS, low)
    plain = Sampler(RandomModel(BANDS, 16, 5), BANDS, 16, 5, 64, jit_compile=False)
    kept = {}
    for name, floor in (("plain", None), ("floored", cond.first_free_channel(BANDS,
                                                                             "upsample"))):
        result = plain.sample(8, seed=0, prefix=prefix, max_chunks=1, min_channel=floor)
        kept[name] = [np.array_equal(cond.dc_band(BANDS, t, n), prefix)
                      for t, n in zip(result.triples, result.length, strict=True)]
    assert not all(kept["plain"])
    assert all(kept["floored"])
