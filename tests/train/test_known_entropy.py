"""Known entropy (docs/results.md, "Known-entropy runs"): a run trained on K fixed images,
equally likely, has a data distribution of entropy log2 K bits per image. Trained to
convergence it must code each image in about log2 K bits, and its samples must be those K
sequences, equally often.

The run is the real one: `experiment.train` with the tiny model on a folder of K `shapes`
images whose sequences span six chunks (compact batches, chunk draws, checkpoints); then
whole-sequence likelihoods (`sequence_nll`, the `evaluate` path), the Python sampler and the
exported SavedModel's `sample` signature. The images are chosen with the same number of
chunks: the chunk draw `P(k | L)` depends on the chunk count, and with unequal counts the
first chunk of some images would be seen more often, which biases the learned mixture
(a property of the paper's training scheme, not of this test).
"""

import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import stats

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.evaluation.likelihood import sequence_nll
from dctformer_tf.export.saved_model import export_saved_model
from dctformer_tf.runs import load_trained_model
from dctformer_tf.sampling import Sampler, SamplingSettings
from dctformer_tf.train import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K, CHUNK, OVERLAP, MAX_LENGTH, NUM_SAMPLES = 4, 48, 16, 512, 120
CODEC = SparseCodec(quality=75, resolution=32)  # gin/models/tiny.gin's codec
# Nucleus sampling cuts the tail the model still gives to other elements (a converged run
# leaves about 1 sample in 200 off its images at temperature 1); it keeps every branch
# between the K images (each about 1/K, 1/2, ...) and their relative frequencies.
TOP_P = 0.95


def _images_with_equal_chunk_counts() -> tuple[np.ndarray, list[np.ndarray]]:
    """K `shapes` test images at 32² whose sequences have the most common chunk count."""
    images, _ = shapes_arrays("test", 200, size=32)
    sequences = [CODEC.encode(image) for image in images]
    chunks = np.array([-(-len(s) // CHUNK) for s in sequences])
    common = np.bincount(chunks).argmax()
    chosen = np.flatnonzero(chunks == common)[:K]
    assert common >= 4 and len(chosen) == K
    return images[chosen], [sequences[i] for i in chosen]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, sequences = _images_with_equal_chunk_counts()
    folder = tmp_path_factory.mktemp("images")
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    model_dir = str(tmp_path_factory.mktemp("run"))
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        [os.path.join(ROOT, "gin", name) for name in
         ("models/tiny.gin", "data/shapes.gin", "runs/train.gin")],
        [f"train.model_dir = '{model_dir}'", f"build_sequences.source = 'folder:{folder}'",
         f"build_sequences.max_length = {MAX_LENGTH}", "build_sequences.cache = True",
         "architecture.d_model = 64", "train.batch_size = 32", "train.learning_rate = 1e-2",
         "train.adam_beta_2 = 0.98", "train.warmup_steps = 50", "train.tokens = None",
         "train.total_steps = 800", "train.steps_per_epoch = 800", "train.verbose = 0",
         "train.deterministic = True", "build_chunks.p_min = 1.0",
         "build_chunks.shuffle_buffer = 64"])
    try:
        experiment.train()
    finally:
        gin.clear_config()
    return model_dir, sequences


def _which(sequences, triples, lengths) -> np.ndarray:
    """Index of the training sequence each sample equals exactly, -1 for none."""
    found = []
    for sample, length in zip(triples, lengths, strict=True):
        match = [i for i, s in enumerate(sequences)
                 if length == len(s) and np.array_equal(sample[:length], s)]
        found.append(match[0] if match else -1)
    return np.array(found)


def _check_samples(found: np.ndarray, name: str) -> None:
    assert (found >= 0).all(), f"{np.sum(found < 0)} of {len(found)} samples are no copy"
    counts = np.bincount(found, minlength=K)
    pvalue = stats.chisquare(counts).pvalue
    print(f"{name}: counts {counts.tolist()}, chi-square p {pvalue:.3f}")  # shown with -s
    assert pvalue > 0.01, counts


@pytest.mark.slow  # minutes of training and sampling: `make test-slow`
def test_a_run_on_k_images_codes_each_in_log2_k_bits_and_samples_them_uniformly(
        trained, tmp_path):
    model_dir, sequences = trained
    model, run = load_trained_model(model_dir)
    assert (run.chunking.chunk_size, run.chunking.overlap) == (CHUNK, OVERLAP)
    triples = np.zeros((K, MAX_LENGTH, 3), np.int32)
    for i, s in enumerate(sequences):
        triples[i, : len(s)] = s
    nll = sequence_nll(model, CODEC, triples, [len(s) for s in sequences], [0] * K, CHUNK,
                       OVERLAP)
    bits = sum(part.numpy().sum(axis=1) for part in nll.values()) / np.log(2)
    print(f"bits per image {np.round(bits, 3).tolist()}, log2 K = {np.log2(K):g}")
    assert (bits <= np.log2(K) + 0.5).all(), bits
    assert abs(bits.mean() - np.log2(K)) <= 0.25, bits  # no image starved for the others

    settings = SamplingSettings.uniform(top_p=TOP_P)
    python = Sampler(model, CODEC, CHUNK, OVERLAP, MAX_LENGTH).sample(
        NUM_SAMPLES, seed=3, settings=settings)
    _check_samples(_which(sequences, python.triples, python.length), "Python sampler")

    saved = export_saved_model(model_dir, str(tmp_path / "saved"), max_length=MAX_LENGTH)
    sample = tf.saved_model.load(saved).signatures["sample"]
    exported = sample(num=tf.constant(NUM_SAMPLES), seed=tf.constant(4),
                      temperature=tf.constant(1.0), top_p=tf.constant(TOP_P))
    _check_samples(_which(sequences, exported["triples"].numpy(), exported["length"].numpy()),
                   "SavedModel sample")
