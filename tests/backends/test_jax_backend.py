"""The JAX backend tier: the model core trains under `KERAS_BACKEND=jax` with no TensorFlow.

The JAX side runs in a subprocess (`jax_worker.py`: Keras fixes its backend per process) on
the same weights and the same compact batch as this TensorFlow process. References:
TensorFlow's own logits, per-element NLLs and gradients of the same weights (within 1e-5
relative), and the loss before and after one `fit` epoch.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.chunking import chunk_dataset
from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.losses import element_nll, loss_summary
from dctformer_tf.model.random_init import open_rezero_branches
from dctformer_tf.train.trainer import DCTransformerTrainer

pytest.importorskip("jax")

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ModelConfig(resolution=64, block_size=8, clip=1200, d_model=32, num_heads=2,
                     encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                     value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=48,
                     chunk_overlap=16)
FIT_STEPS = 12
RTOL = 1e-5


def _compact_batch() -> dict:
    codec = SparseCodec(quality=75, resolution=64, clip=1200)
    source, _ = get_source("shapes", split="test")
    sequences = encode_dataset(source.take(8), codec, max_length=2048)
    batches = chunk_dataset(sequences.repeat(), codec, CONFIG.chunk_size, CONFIG.chunk_overlap,
                            batch_size=4, seed=3, p_min=0.5)
    return {key: value.numpy() for key, value in next(iter(batches)).items()}


def _trainer() -> DCTransformerTrainer:
    keras.utils.set_random_seed(1)
    model = DCTransformerTrainer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    return model


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The TensorFlow model, the batch, and what the JAX worker computed from them."""
    folder = tmp_path_factory.mktemp("backends")
    batch = _compact_batch()
    model = _trainer()
    open_rezero_branches(model, seed=2)  # every branch contributes, so gradients reach all
    model.save_weights(str(folder / "tf.weights.h5"))
    np.savez(folder / "batch.npz", **batch)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(CONFIG)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run(
        [sys.executable, "-m", "tests.backends.jax_worker", "--config", str(folder / "config.json"),
         "--batch", str(folder / "batch.npz"), "--weights", str(folder / "tf.weights.h5"),
         "--fit-steps", str(FIT_STEPS), "--save-weights", str(folder / "jax.weights.h5"),
         "--out", str(folder / "jax.npz")],
        cwd=ROOT, env=env, check=True, timeout=600)
    with np.load(folder / "jax.npz") as data:
        jax_result = {key: data[key] for key in data.files}
    return {"folder": folder, "batch": batch, "model": model, "jax": jax_result}


def _tensorflow_side(model, batch) -> dict:
    batch = {key: tf.convert_to_tensor(value) for key, value in batch.items()}
    with tf.GradientTape() as tape:
        out = model(batch, training=False)
        loss = loss_summary(out, out["targets"], out["loss_mask"])["loss"]
    grads = tape.gradient(loss, model.trainable_variables)
    result = {f"logits/{k}": v.numpy() for k, v in out.items() if k.endswith("_logits")}
    result.update({f"nll/{k}": v.numpy() for k, v in element_nll(out, out["targets"]).items()})
    result["loss"] = loss.numpy()
    # Embedding tables get IndexedSlices: densified to compare with JAX's dense gradients.
    # Keyed by the path inside the model: the model's own name gets a counter suffix when
    # this process has built other models before it.
    result.update({f"grad/{v.path.split('/', 1)[1]}": tf.convert_to_tensor(g).numpy()
                   for v, g in zip(model.trainable_variables, grads, strict=True)})
    return result


def _assert_close(got, want, name, scale=None):
    """Within RTOL relative, entry by entry, with RTOL × `scale` (default the reference's
    largest magnitude) as the absolute floor, so that an entry near zero is not held to a
    relative bound float32 cannot meet."""
    scale = float(np.max(np.abs(want))) if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * max(scale, 1e-30), err_msg=name)


def test_logits_nlls_and_gradients_equal_tensorflows_on_shared_weights(exchange):
    """Weights saved under TensorFlow load under JAX, and give the same numbers."""
    tf_result = _tensorflow_side(exchange["model"], exchange["batch"])
    jax_result = exchange["jax"]
    gradients = [key for key in tf_result if key.startswith("grad/")]
    assert len(gradients) == len(exchange["model"].trainable_variables) > 20
    assert sum(float(np.abs(tf_result[key]).max()) > 0 for key in gradients) > 0.9 * len(gradients)
    # Gradients on the scale of the largest one: some are zero in exact arithmetic (an
    # attention key bias shifts every score alike) and are float32 noise on both sides.
    gradient_scale = max(float(np.abs(tf_result[key]).max()) for key in gradients)
    for key, want in tf_result.items():
        assert key in jax_result, key
        _assert_close(jax_result[key], want, key,
                      gradient_scale if key.startswith("grad/") else None)
    assert exchange["batch"]["loss_tokens"].sum() > 0


def test_weights_saved_under_jax_load_under_tensorflow(exchange):
    model = _trainer()  # other initial weights until the load
    model.load_weights(str(exchange["folder"] / "jax.weights.h5"))
    out = model(exchange["batch"], training=False)
    for name in ("channel", "position", "value"):
        want = exchange["jax"][f"after_fit/logits/{name}_logits"]
        _assert_close(out[f"{name}_logits"].numpy(), want, name)
    before = _tensorflow_side(exchange["model"], exchange["batch"])["logits/value_logits"]
    assert np.abs(before - out["value_logits"].numpy()).max() > 1e-3  # the fit moved them


def test_one_fit_epoch_under_jax_lowers_the_loss(exchange):
    jax_result = exchange["jax"]
    assert float(jax_result["loss_after_fit"]) < 0.9 * float(jax_result["loss_before_fit"])
    tokens = int(exchange["batch"]["loss_tokens"].sum())
    assert int(jax_result["tokens_seen"]) == FIT_STEPS * tokens
    assert np.all(np.isfinite(jax_result["fit_loss"]))


def test_the_jax_side_never_imports_tensorflow(exchange):
    assert not bool(exchange["jax"]["tensorflow_imported"])


def test_no_module_imports_keras_private_code():
    """Training goes through Keras' public contract only: nothing imports `keras.src`."""
    offenders = []
    for folder in ("dctformer_tf", "tools", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"^\s*(from|import)\s+keras\.src\b", text, re.MULTILINE):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
