"""DCTransformerTrainer: its loss equals the numpy per-token loss, is the same under
MirroredStrategy over two logical CPUs as under the default strategy, and trains under both."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.random_init import open_rezero_branches
from dctformer_tf.train.trainer import DCTransformerTrainer

CONFIG = ModelConfig(resolution=32, block_size=8, clip=1200, d_model=32, num_heads=2,
                     encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                     value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=48,
                     chunk_overlap=16)


def _batch(seed=0, batch=4):
    rng = np.random.default_rng(seed)
    t = CONFIG.window
    targets = np.stack([rng.integers(0, 193, (batch, t)), rng.integers(0, 16, (batch, t)),
                        rng.integers(0, 2401, (batch, t))], axis=-1).astype(np.int32)
    inputs = np.concatenate([np.tile([[[193, 16, 2401]]], (batch, 1, 1)), targets[:, :-1]], 1)
    mask = (rng.uniform(size=(batch, t)) < 0.7).astype(np.float32)
    partial = rng.integers(-3, 4, (batch, 4, 4, 192)).astype(np.int32)
    return {"partial_image": partial, "inputs": inputs.astype(np.int32), "targets": targets,
            "loss_mask": mask}


def _trainer(weights=None):
    model = DCTransformerTrainer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    if weights is not None:
        model.set_weights(weights)
    return model


def _numpy_loss(model, batch):
    logits = model(batch)  # the trainer passes "targets" and "loss_mask" through as well
    log_probs = {k: tf.nn.log_softmax(v).numpy() for k, v in logits.items() if "logits" in k}
    targets, mask = batch["targets"], batch["loss_mask"]
    b, t = np.indices(mask.shape)
    nll = -log_probs["channel_logits"][b, t, targets[..., 0]]
    not_eos = targets[..., 0] != 192
    nll += not_eos * -log_probs["position_logits"][b, t, targets[..., 1]]
    nll += not_eos * -log_probs["value_logits"][b, t, targets[..., 2]]
    return float((nll * mask).sum() / mask.sum())


def test_loss_is_nats_per_loss_token():
    model = _trainer()
    open_rezero_branches(model, seed=1)
    batch = _batch()
    result = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(_numpy_loss(model, batch), rel=1e-5)
    parts = sum(result[f"{k}_loss"] for k in ("channel", "position", "value"))
    assert parts == pytest.approx(result["loss"], rel=1e-5)
    assert result["bits_per_token"] == pytest.approx(result["loss"] / np.log(2), rel=1e-5)


# slow: 85 s on 2 cores (two strategies traced and trained). The default tier keeps a
# mirrored fit step (tests/model/test_dctransformer.py::test_fit_step_under_mirrored_strategy).
@pytest.mark.slow
def test_mirrored_and_default_strategies_agree_and_train(two_cpu_strategy):
    reference = _trainer()
    open_rezero_branches(reference, seed=2)
    weights = reference.get_weights()
    batch = _batch(seed=3, batch=4)
    data = tf.data.Dataset.from_tensors(batch)
    default_loss = reference.evaluate(data, verbose=0, return_dict=True)["loss"]
    with two_cpu_strategy.scope():
        mirrored = _trainer(weights)
    mirrored_loss = mirrored.evaluate(data, verbose=0, return_dict=True)["loss"]
    assert mirrored_loss == pytest.approx(default_loss, abs=1e-5)

    for model in (reference, mirrored):
        history = model.fit(data.repeat(), steps_per_epoch=5, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = model.evaluate(data, verbose=0, return_dict=True)["loss"]
        assert after < default_loss
    # Same start, same batches, same summed gradients: the two runs stay together.
    np.testing.assert_allclose(
        mirrored.evaluate(data, verbose=0, return_dict=True)["loss"],
        reference.evaluate(data, verbose=0, return_dict=True)["loss"], rtol=1e-3)
    assert float(mirrored.tokens_seen.numpy()) == float(reference.tokens_seen.numpy()) == 5 * batch["loss_mask"].sum()


def test_the_trainer_loss_is_the_tested_loss_function(monkeypatch):
    """The trainer's loss comes from `losses.loss_summary`, the function the loss tests and
    the strategy tests check: a change to that function shows in what the trainer reports."""
    from dctformer_tf.train import trainer as trainer_module

    real, calls = trainer_module.loss_summary, []

    def doubled(*args, **kwargs):
        calls.append(args)
        summary = dict(real(*args, **kwargs))
        summary["loss"] = 2.0 * summary["loss"]
        return summary

    model = _trainer()
    open_rezero_branches(model, seed=1)
    batch = _batch()
    monkeypatch.setattr(trainer_module, "loss_summary", doubled)
    result = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
    assert calls
    assert result["loss"] == pytest.approx(2.0 * _numpy_loss(model, batch), rel=1e-5)


def _compact_and_dense_batch():
    """A compact batch of four real sequences (`chunk_dataset`) and its dense expansion."""
    from dctformer_tf.data import chunking, compact
    from dctformer_tf.dct import SparseCodec
    from tests.dct.images import random_image

    codec = SparseCodec(quality=75, resolution=CONFIG.resolution, clip=CONFIG.clip)
    rng = np.random.default_rng(5)
    sequences = [codec.encode(random_image(rng, 32, 32)) for _ in range(4)]
    triples = np.zeros((4, 600, 3), np.int32)
    for i, s in enumerate(sequences):
        triples[i, : len(s)] = s
    source = tf.data.Dataset.from_tensor_slices({
        "triples": triples, "length": np.array([len(s) for s in sequences], np.int32),
        "content_hw": np.full((4, 2), 32, np.int32), "label": np.zeros(4, np.int32)})
    batch = next(iter(chunking.chunk_dataset(source.repeat(), codec, CONFIG.chunk_size,
                                             CONFIG.chunk_overlap, 4, seed=2)))
    dense = chunking.expand_chunks(batch, compact.SequenceLayout.of_codec(codec), CONFIG.window)
    dense = {key: dense[key].numpy() for key in ("partial_image", "inputs", "targets",
                                                 "loss_mask")}
    return batch, dense


def test_compact_batches_evaluate_exactly_as_their_dense_expansion():
    """The trainer expands compact batches in its step: `evaluate` on a compact batch and on
    its expansion gives the same loss and metrics (the train step: next test, slow tier)."""
    batch, dense = _compact_and_dense_batch()
    model = _trainer()
    open_rezero_branches(model, seed=3)
    results = [model.evaluate(tf.data.Dataset.from_tensors(data), verbose=0, return_dict=True)
               for data in (batch, dense)]
    for key in ("loss", "channel_loss", "position_loss", "value_loss", "bits_per_token"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-6), key
    assert results[0]["loss"] == pytest.approx(_numpy_loss(model, dense), rel=1e-5)


@pytest.mark.slow  # two XLA compiles of the train step, ~45 s: `make test-slow`
def test_compact_batches_train_exactly_as_their_dense_expansion():
    """The trainer scatters compact batches (packed sequences, chunk bounds) into the dense
    model inputs inside its compiled step: one XLA-compiled train step on a compact batch and
    one on its expansion, from the same weights, give the same loss, metrics and updated
    weights."""
    batch, dense = _compact_and_dense_batch()
    first = _trainer()
    open_rezero_branches(first, seed=3)
    weights = first.get_weights()
    results = []
    for data in (batch, dense):
        model = _trainer(weights)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
        logs = model.fit(tf.data.Dataset.from_tensors(data), epochs=1, verbose=0,
                         shuffle=False).history
        results.append((logs, model.get_weights()))
    (compact_logs, compact_weights), (dense_logs, dense_weights) = results
    for key in ("loss", "channel_loss", "position_loss", "value_loss", "tokens_seen"):
        assert compact_logs[key][0] == pytest.approx(dense_logs[key][0], rel=1e-6), key
    for got, want in zip(compact_weights, dense_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert compact_logs["tokens_seen"][0] == int(batch["loss_tokens"].numpy().sum())
