"""Sampling throughput: cached decoding against the no-cache reference loop (docs/design.md §5).

    python tools/bench_sampling.py [--window 1024] [--steps 48] [--batch 8]

For the `tiny` and `small` model shapes (random weights; the channel bias is tilted toward
low channels so that no sample ends early), both samplers run the same number of window
steps at the same settings, window and batch in one process; each is run once to compile and
once timed. The no-cache loop reruns the three decoders over the whole window at every step
(what the public PyTorch peer does); the cached one feeds one token per step. Prints
triples/s of each and their ratio (issue target: cached >= 10x at window 1024 on `small`).
"""

import argparse
import dataclasses
import os
import pathlib
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The random-model helpers live with the tests (tests/random_init.py), not in the package.
ROOT = pathlib.Path(__file__).resolve().parents[1]

import gin  # noqa: E402
import keras  # noqa: E402

from dctformer_tf.dct import SparseCodec  # noqa: E402
from dctformer_tf.model.configs import build_model  # noqa: E402
from dctformer_tf.model.random_init import favour_long_samples, open_rezero_branches  # noqa: E402
from dctformer_tf.sampling import Sampler  # noqa: E402
from dctformer_tf.train.experiment import gin_model_config  # noqa: E402

GIN = ROOT / "gin" / "models"
TRAIN_GIN = ROOT / "gin" / "runs" / "train.gin"


def random_model(name: str, window: int, overlap: int):
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        [str(GIN / f"{name}.gin"), str(TRAIN_GIN)],
        [f"CHUNK_SIZE = {window - overlap}", f"CHUNK_OVERLAP = {overlap}",
         "train.model_dir = ''"])  # train.gin's run-only setting: a dummy
    keras.utils.set_random_seed(0)
    model = build_model(**dataclasses.asdict(gin_model_config()))  # built, random weights
    open_rezero_branches(model)
    favour_long_samples(model)
    codec = SparseCodec(block_size=model.block_size, clip=model.clip,
                        resolution=model.grid_size * model.block_size)
    return model, codec


def triples_per_second(sampler: Sampler, batch: int) -> tuple:
    sampler.sample(batch, seed=0, batch_size=batch, max_chunks=1)  # compile
    start = time.perf_counter()
    result = sampler.sample(batch, seed=1, batch_size=batch, max_chunks=1)
    seconds = time.perf_counter() - start
    return float(result.length.sum()) / seconds, result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1024, help="decoder window T")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--steps", type=int, default=48,
                        help="window steps sampled (the cost per step does not depend on "
                             "how far into the window the sampler is: both use fixed-size "
                             "buffers of the whole window)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", default="tiny,small")
    args = parser.parse_args(argv)
    print(f"window {args.window}, batch {args.batch}, {args.steps} steps per sample")
    for name in args.models.split(","):
        model, codec = random_model(name, args.window, args.overlap)
        chunk_size, overlap = args.window - args.overlap, args.overlap
        rates = {}
        for cache in (True, False):
            # max_length bounds the run to `steps` elements in chunk 0 (EOS at the last slot).
            sampler = Sampler(model, codec, chunk_size, overlap,
                              max_length=args.steps, cache=cache, jit_compile=cache)
            rates[cache], result = triples_per_second(sampler, args.batch)
            assert result.length.min() == args.steps, "a sample ended early"
        no_cache_jit = Sampler(model, codec, chunk_size, overlap,
                               max_length=args.steps, cache=False, jit_compile=True)
        try:
            rate_jit, _ = triples_per_second(no_cache_jit, args.batch)
        except Exception as error:  # noqa: BLE001 - report and go on
            rate_jit = float("nan")
            print(f"  (no-cache under XLA failed: {type(error).__name__})")
        best_reference = max(rates[False], rate_jit) if rate_jit == rate_jit else rates[False]
        print(f"{name:6s} cached {rates[True]:8.1f} triples/s | no-cache graph "
              f"{rates[False]:7.1f}, XLA {rate_jit:7.1f} triples/s | ratio cached / best "
              f"no-cache {rates[True] / best_reference:6.1f}x")


if __name__ == "__main__":
    main()
