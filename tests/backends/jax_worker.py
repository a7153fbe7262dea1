"""The JAX side of the backend tests, run as `KERAS_BACKEND=jax python -m tests.backends.jax_worker`.

Keras picks its backend once per process, so the TensorFlow test process hands this worker a
model configuration, weights and a batch through files, and reads back what the same model
computes under JAX:

    --config CONFIG.json   ModelConfig fields
    --batch BATCH.npz      a compact training batch (`chunking.chunk_dataset`)
    --weights IN.weights.h5  load these (else the model keeps its random initial weights)
    --fit-steps N          after the forward pass, `fit` one epoch of N steps on the batch
    --save-weights OUT.weights.h5
    --out OUT.npz          logits, per-element NLLs, loss, gradients (by variable path),
                           losses before/after the fit, and whether TensorFlow was imported
"""

import argparse
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from dctformer_tf.model.configs import ModelConfig  # noqa: E402
from dctformer_tf.model.losses import element_nll, loss_summary  # noqa: E402
from dctformer_tf.train.nonfinite import MonitoredAdam  # noqa: E402
from dctformer_tf.train.trainer import DCTransformerTrainer  # noqa: E402


def forward_and_gradients(model, batch: dict) -> dict:
    """Logits, per-element NLLs, the loss and its gradient for every trainable variable."""

    def loss_fn(trainable, non_trainable):
        out, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
        return loss_summary(out, out["targets"], out["loss_mask"])["loss"], out

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable)
    result = {f"logits/{k}": np.asarray(v) for k, v in out.items() if k.endswith("_logits")}
    nll = element_nll(out, out["targets"])
    result.update({f"nll/{k}": np.asarray(v) for k, v in nll.items()})
    result["loss"] = np.asarray(loss)
    result.update({f"grad/{v.path.split('/', 1)[1]}": np.asarray(g)  # path inside the model
                   for v, g in zip(model.trainable_variables, grads, strict=True)})
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--batch", required=True)
    parser.add_argument("--weights")
    parser.add_argument("--fit-steps", type=int, default=0)
    parser.add_argument("--save-weights")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    with open(args.config) as f:
        config = ModelConfig(**json.load(f))
    with np.load(args.batch) as data:
        batch = {key: data[key] for key in data.files}
    # No keras.utils.set_random_seed: it seeds TensorFlow too, importing it where installed.
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    if args.weights:
        model.load_weights(args.weights)
    result = forward_and_gradients(model, batch)
    if args.fit_steps:
        model.compile(optimizer=MonitoredAdam(3e-3))
        result["loss_before_fit"] = result["loss"]
        history = model.fit(_repeat(batch, args.fit_steps), steps_per_epoch=args.fit_steps,
                            epochs=1, verbose=0)
        result["fit_loss"] = np.asarray(history.history["loss"])
        # Eagerly (op by op: no second compile for a tiny model): the loss and logits after.
        out = model(batch, training=False)
        result["loss_after_fit"] = np.asarray(
            loss_summary(out, out["targets"], out["loss_mask"])["loss"])
        result.update({f"after_fit/logits/{k}": np.asarray(v) for k, v in out.items()
                       if k.endswith("_logits")})
        result["tokens_seen"] = np.asarray(keras.ops.convert_to_numpy(model.tokens_seen))
    if args.save_weights:
        model.save_weights(args.save_weights)
    result["tensorflow_imported"] = np.asarray("tensorflow" in sys.modules)
    np.savez(args.out, **result)
    return 0


def _repeat(batch: dict, steps: int):
    """`steps` copies of the batch, as Keras wants a generator's items: 1-tuples."""
    for _ in range(steps):
        yield (batch,)


if __name__ == "__main__":
    sys.exit(main())
