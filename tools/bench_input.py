"""The training input pipeline at paper scale, measured on this host (docs/benchmarks.md,
"Input pipeline").

1. Host->device bytes per training example for every Table 3 config: a dense example (int32
   partial image [G, G, C] and windows, `make_training_example`) against the compact one
   the pipeline ships (`chunk_dataset`: packed sequence and chunk bounds). Read from the
   datasets' element specs at the configs' full sizes; nothing is encoded.
2. Encodes per training example at LSUN-like lengths: photo canvases (random resized crops
   of the scikit-image photos, `dctformer_tf.data.photos.photo_canvases`) at the LSUN
   geometry (384², S = 8, q75), through the real pipeline (encoder, `max_length` and
   `l_max` of gin/data/lsun.gin, length filter, chunk choice), one pass: encodes /
   examples, for one example per encode (the paper's pipeline) and for
   `--examples_per_encode`.
3. Host cost: wall seconds and process CPU seconds per encode and per example of that pass.
4. The cost of building the dense inputs of a compact batch (`chunking.expand_chunks`, XLA
   on this CPU) against a host-side dense build (`make_training_example` in tf.data), per
   example, at the LSUN geometry on random valid sequences of `--length` elements.

Usage: python tools/bench_input.py [--num 96] [--examples_per_encode 8] [--length 25000] [--json]
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dctformer_tf.data import chunking  # noqa: E402
from dctformer_tf.data.compact import SequenceLayout  # noqa: E402
from dctformer_tf.data.pipeline import encode_dataset  # noqa: E402
from dctformer_tf.plan import TABLE3, config_files, random_compact_batch  # noqa: E402
from dctformer_tf.plan.input_side import example_bytes  # noqa: E402
from dctformer_tf.train.gin_model import read_bindings, run_from_bindings  # noqa: E402

GIN = pathlib.Path(__file__).resolve().parents[1] / "gin"


def run_settings(name: str) -> tuple:
    """(RunSettings, l_max) of config NAME, read from its gin files."""
    bound = read_bindings(config_files(GIN, name))
    return run_from_bindings(bound), bound.get("build_chunks.l_max")


def encode_pass(images: np.ndarray, run, l_max, examples_per_encode: int) -> dict:
    """One pass of the real pipeline over `images`: encodes, examples, lengths and costs."""
    source = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.zeros(len(images), np.int32)})
    sequences = encode_dataset(source, run.codec, run.max_length, on_overflow="skip")
    lengths = np.array([int(ex["length"]) for ex in sequences])  # warms the graphs up too
    chunks = chunking.chunk_dataset(sequences, run.codec, run.chunking.chunk_size,
                                    run.chunking.overlap, 16, seed=0, l_max=l_max,
                                    drop_remainder=False,
                                    examples_per_encode=examples_per_encode)
    start, cpu = time.perf_counter(), time.process_time()
    examples = sum(int(batch["chunk_index"].shape[0]) for batch in chunks)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    mean_q = float(np.mean(np.minimum(1.0, lengths / l_max))) if l_max else 1.0
    return {"examples_per_encode": examples_per_encode, "images": len(images),
            "kept": len(lengths), "examples": examples,
            "encodes_per_example": len(images) / max(examples, 1),
            "expected_encodes_per_example": 1.0 / (examples_per_encode * mean_q),
            "mean_length": float(lengths.mean()), "mean_keep_probability": mean_q,
            "wall_s_per_encode": wall / len(images), "cpu_s_per_encode": cpu / len(images),
            "cpu_s_per_example": cpu / max(examples, 1)}


def expansion_cost(run, length: int, batch: int = 8, repeats: int = 10) -> dict:
    """Seconds per example of the on-device expansion (XLA) and of a host-side dense build
    (`make_training_example` in tf.data)."""
    compact_batch = {key: tf.constant(value)
                     for key, value in random_compact_batch(run, batch, length).items()}
    layout = SequenceLayout.of_codec(run.codec)
    window = run.chunking.window
    expand = tf.function(lambda b: chunking.expand_chunks(b, layout, window)["partial_image"],
                         jit_compile=True)
    expand(compact_batch).numpy()  # compiles
    start = time.perf_counter()
    for _ in range(repeats):
        expand(compact_batch).numpy()
    device = (time.perf_counter() - start) / repeats / batch
    triples = chunking.compact.unpack_sequences(
        compact_batch["packed"], compact_batch["channel_counts"], compact_batch["length"],
        layout)
    sequences = tf.data.Dataset.from_tensor_slices(
        {"triples": triples, "length": compact_batch["length"],
         "content_hw": compact_batch["content_hw"], "label": compact_batch["label"]})
    dense = sequences.repeat().map(lambda ex: chunking.make_training_example(
        ex, run.codec, run.chunking.chunk_size, run.chunking.overlap,
        ex["length"] // (2 * run.chunking.chunk_size))).batch(batch)
    iterator = iter(dense)
    next(iterator)
    start = time.perf_counter()
    for _ in range(repeats):
        next(iterator)
    host = (time.perf_counter() - start) / repeats / batch
    return {"length": length, "batch": batch, "device_expand_s_per_example": device,
            "host_dense_build_s_per_example": host}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=96, help="photo canvases to encode")
    parser.add_argument("--examples_per_encode", type=int, default=8)
    parser.add_argument("--length", type=int, default=25000,
                        help="elements of the random sequences of the expansion timing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from dctformer_tf.data.photos import photo_canvases

    settings = {name: run_settings(name) for name in TABLE3}
    sizes = {}
    for name, (run, _) in settings.items():
        layout = SequenceLayout.of_codec(run.codec)
        sizes[name] = {**example_bytes(run), "bytes_per_element": layout.bytes_per_element,
                       "max_length": run.max_length}
    run, l_max = settings["lsun"]
    images = photo_canvases(run.codec.resolution, args.num, seed=0)
    passes = [encode_pass(images, run, l_max, r)
              for r in sorted({1, args.examples_per_encode})]
    expansion = expansion_cost(run, args.length)
    result = {"bytes": sizes, "lsun_passes": passes, "expansion": expansion,
              "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print("Host->device bytes per training example (full Table 3 sizes):")
    print(f"{'config':<13}{'dense':>12}{'compact':>12}{'ratio':>8}{'B/elem':>8}{'max_len':>9}")
    for name, s in sizes.items():
        print(f"{name:<13}{s['dense_bytes']:>12,}{s['compact_bytes']:>12,}{s['ratio']:>8.3f}"
              f"{s['bytes_per_element']:>8}{s['max_length']:>9}")
    print(f"\nLSUN geometry ({run.codec.resolution}², S={run.codec.block_size}, "
          f"q{run.codec.quality}), {args.num} photo canvases, one pass, "
          f"{os.cpu_count()} CPU cores:")
    print(f"{'r':>3}{'kept':>6}{'examples':>10}{'enc/ex':>8}{'expected':>10}{'mean L':>8}"
          f"{'mean q':>8}{'ms/enc (wall)':>15}{'CPU ms/ex':>11}")
    for p in passes:
        print(f"{p['examples_per_encode']:>3}{p['kept']:>6}{p['examples']:>10}"
              f"{p['encodes_per_example']:>8.3f}{p['expected_encodes_per_example']:>10.3f}"
              f"{p['mean_length']:>8.0f}{p['mean_keep_probability']:>8.3f}"
              f"{1e3 * p['wall_s_per_encode']:>15.1f}{1e3 * p['cpu_s_per_example']:>11.1f}")
    e = expansion
    print(f"\nDense inputs of one LSUN example ({e['length']} elements, batch {e['batch']}): "
          f"built in the step (XLA, this CPU) {1e3 * e['device_expand_s_per_example']:.2f} ms; "
          f"built on the host (old pipeline) {1e3 * e['host_dense_build_s_per_example']:.2f} ms")


if __name__ == "__main__":
    main()
