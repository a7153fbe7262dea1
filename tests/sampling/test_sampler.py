"""The sampler's loop (docs/design.md §5): scripted stub logits come out exactly, across all three
heads, chunk boundaries and the overlap; per-sample stopping; prefixes; masks on 10,000
random-logit triples; seeds; cached == no-cache on a real tiny model; and an end-to-end run
where a model that memorised one image samples it back."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.random_init import favour_long_samples, open_rezero_branches
from dctformer_tf.sampling import Sampler, SamplingSettings, masks
from tests.sampling.stub_model import RandomModel, ScriptedModel, random_sequence

CODEC = SparseCodec(block_size=8, quality=75, resolution=32)  # G = 4, P = 16, C = 192
CHUNK, OVERLAP, MAX_LENGTH = 16, 5, 128


def _script(lengths, seed=0):
    rng = np.random.default_rng(seed)
    script = np.zeros((len(lengths), MAX_LENGTH, 3), np.int32)
    for b, n in enumerate(lengths):
        script[b, : n + 1] = random_sequence(CODEC, rng, n)
    return script


@pytest.mark.parametrize("jit", [False, True])
def test_scripted_logits_come_out_exactly_across_chunks_and_overlap(jit):
    # 70 elements + EOS: chunks 0-4, the overlap reaching back into earlier chunks.
    script = _script([70, 70])
    sampler = Sampler(ScriptedModel(CODEC, CHUNK, OVERLAP, script), CODEC, CHUNK, OVERLAP,
                      MAX_LENGTH, jit_compile=jit)
    result = sampler.sample(2, seed=0, batch_size=2)
    np.testing.assert_array_equal(result.triples, script)
    assert result.length.tolist() == [71, 71] and result.finished.all()
    assert result.chunks.tolist() == [5, 5]


def test_a_wrong_input_breaks_the_script():
    # The stub is only useful if it notices wrong inputs: a sampler with the overlap off by
    # one (windows starting one element late) must fail to reproduce the script.
    script = _script([40])
    model = ScriptedModel(CODEC, CHUNK, OVERLAP, script)
    model.overlap = OVERLAP - 1
    sampler = Sampler(model, CODEC, CHUNK, OVERLAP, MAX_LENGTH, jit_compile=False)
    assert not np.array_equal(sampler.sample(1, seed=0).triples, script)


def test_each_sample_stops_at_its_own_eos():
    script = _script([6, 90, 33])
    sampler = Sampler(ScriptedModel(CODEC, CHUNK, OVERLAP, script), CODEC, CHUNK, OVERLAP,
                      MAX_LENGTH, jit_compile=False)
    result = sampler.sample(3, seed=0, batch_size=3)
    np.testing.assert_array_equal(result.triples, script)  # zero after each EOS
    assert result.length.tolist() == [7, 91, 34]
    assert result.chunks.tolist() == [1, 6, 3]
    assert result.seconds[0] <= result.seconds[2] <= result.seconds[1]


def test_prefix_is_forced_and_generation_continues_after_it():
    script = _script([60, 60])
    prefix = script[:, :37].copy()
    prefix[1, 20:] = 0  # the second sample forces only 20 elements
    sampler = Sampler(ScriptedModel(CODEC, CHUNK, OVERLAP, script), CODEC, CHUNK, OVERLAP,
                      MAX_LENGTH, jit_compile=False)
    result = sampler.sample(2, seed=0, prefix=prefix, prefix_length=[37, 20])
    np.testing.assert_array_equal(result.triples, script)
    # Chunk 0 (elements 0-15) lies inside both prefixes and is skipped.
    assert result.chunks.tolist() == [3, 3]


def test_prefix_that_breaks_the_ordering_is_rejected():
    script = _script([30])
    prefix = script[0, :10].copy()
    prefix[[2, 3]] = prefix[[3, 2]]
    sampler = Sampler(ScriptedModel(CODEC, CHUNK, OVERLAP, script), CODEC, CHUNK, OVERLAP,
                      MAX_LENGTH, jit_compile=False)
    with pytest.raises(ValueError, match="element 3"):
        sampler.sample(1, seed=0, prefix=prefix)


def _random_model_sampler():
    return Sampler(RandomModel(CODEC, CHUNK, OVERLAP), CODEC, CHUNK, OVERLAP, MAX_LENGTH,
                   jit_compile=True)


def test_masks_never_let_an_invalid_triple_through():
    geometry = masks.MaskGeometry.from_codec(CODEC)
    sampler = _random_model_sampler()
    count = 0
    for seed, content in enumerate(([32, 32], [32, 16])):
        result = sampler.sample(64, seed=seed, batch_size=64, content_hw=content)
        for triples, n in zip(result.triples, result.length, strict=True):
            masks.check_triples_valid(geometry, triples[:n], content, 8)
            count += n
    assert count >= 10_000, count


def test_the_mask_test_can_fail(monkeypatch):
    # With the position mask switched off, the same random logits produce invalid
    # sequences: the check above is not vacuous.
    geometry = masks.MaskGeometry.from_codec(CODEC)
    everything = lambda *args: tf.ones([tf.shape(args[1])[0], CODEC.num_positions], tf.bool)  # noqa: E731
    monkeypatch.setattr(masks, "position_allowed_after", everything)
    result = _random_model_sampler().sample(8, seed=0, batch_size=8)
    with pytest.raises(ValueError):
        for triples, n in zip(result.triples, result.length, strict=True):
            masks.check_triples_valid(geometry, triples[:n], (32, 32), 8)


TINY = ModelConfig(resolution=32, block_size=8, clip=1200, d_model=32, num_heads=2,
                   encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                   value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=24,
                   chunk_overlap=8)


@pytest.fixture(scope="module")
def tiny_model():
    from dctformer_tf.model import DCTransformer

    keras.utils.set_random_seed(0)
    model = DCTransformer(**TINY.model_kwargs())
    model.build(TINY.input_shapes())
    open_rezero_branches(model, seed=1)
    favour_long_samples(model)  # so that samples span chunks
    return model


def test_cached_and_no_cache_sampling_give_identical_triples(tiny_model):
    kwargs = dict(num=2, seed=7, settings=SamplingSettings.uniform(temperature=0.7),
                  max_chunks=3)
    cached = Sampler(tiny_model, CODEC, 24, 8, 256, jit_compile=False).sample(**kwargs)
    reference = Sampler(tiny_model, CODEC, 24, 8, 256, cache=False,
                        jit_compile=False).sample(**kwargs)
    assert cached.length.min() > 24 + 8  # the comparison spans a chunk boundary
    np.testing.assert_array_equal(cached.triples, reference.triples)


def test_same_seed_same_images_other_seed_other_images(tiny_model):
    sampler = Sampler(tiny_model, CODEC, 24, 8, 256)
    a = sampler.sample(3, seed=1, max_chunks=2)
    calls = []
    b = sampler.sample(3, seed=1, max_chunks=2, on_batch=lambda *args: calls.append(args))
    assert calls == [(3, 3)]  # one batch of 3 (batch_size 16): progress reported once
    c = sampler.sample(3, seed=2, max_chunks=2)
    np.testing.assert_array_equal(a.triples, b.triples)
    assert not np.array_equal(a.triples, c.triples)
    for image, triples, n in zip(a.images, a.triples, a.length, strict=True):
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        masks.check_triples_valid(sampler.geometry, triples[:n], (32, 32), 8)
        np.testing.assert_array_equal(image, CODEC.decode(triples[:n], 32, 32))


@pytest.mark.slow  # ~40-70 s of training: `make test-slow`
def test_a_model_that_memorised_one_image_samples_it_back():
    """End to end: train on every chunk of one sequence until the loss is ~0, then greedy
    sampling (top_k = 1) must reproduce that sequence exactly, through 6 chunks."""
    from dctformer_tf.data.chunking import make_training_example
    from dctformer_tf.data.shapes import shapes_arrays
    from dctformer_tf.train.trainer import DCTransformerTrainer

    codec = SparseCodec(block_size=8, quality=50, resolution=32)
    image = shapes_arrays("test", 1, size=32)[0][0]
    real = codec.encode(image)  # 191 elements with EOS
    triples = np.zeros([256, 3], np.int32)
    triples[: len(real)] = real
    config = ModelConfig(**{**TINY.__dict__, "d_model": 64, "chunk_size": 32,
                            "chunk_overlap": 8})
    examples = [make_training_example({"triples": triples, "length": len(real),
                                       "content_hw": [32, 32], "label": 0},
                                      codec, 32, 8, k) for k in range(-(-len(real) // 32))]
    batch = {key: tf.stack([e[key] for e in examples]) for key in examples[0]}
    keras.utils.set_random_seed(0)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(), steps_per_epoch=60,
                        epochs=3, verbose=0)
    assert history.history["loss"][-1] < 0.05
    result = Sampler(model, codec, 32, 8, 256).sample(
        2, seed=0, settings=SamplingSettings.uniform(top_k=1))
    for sample in result.triples:
        np.testing.assert_array_equal(sample[: len(real)], real)
    assert result.length.tolist() == [len(real)] * 2 and result.chunks.tolist() == [6, 6]
