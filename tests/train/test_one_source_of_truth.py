"""One binding changes the chunking everywhere: the training batches, the held-out bpd, the
sample grid, run.json, the sampler of the finished run and the exported SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data import training_input
from dctformer_tf.data.chunking import Chunking
from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.export.saved_model import export_saved_model
from dctformer_tf.runs import load_trained_model, read_run_file
from dctformer_tf.sampling import Sampler
from dctformer_tf.train import bpd_callback
from tests.hand_likelihood import hand_log_likelihoods
from tests.train.test_experiment import _train

# gin/models/tiny.gin chunks by 48 + 16; one binding makes it 32 + 16.
CHUNK, OVERLAP = 32, 16


def test_one_binding_changes_the_chunk_size_everywhere(tmp_path, monkeypatch):
    seen = {"data": [], "bpd": [], "sampler": []}
    chunk_dataset, evaluate_bpd = training_input.chunk_dataset, bpd_callback.evaluate_bpd
    sampler_init = Sampler.__init__

    def data_spy(sequences, codec, chunk_size, overlap, *args, **kwargs):
        seen["data"].append((chunk_size, overlap))
        return chunk_dataset(sequences, codec, chunk_size, overlap, *args, **kwargs)

    def bpd_spy(model, codec, sequences, chunk_size, overlap, *args, **kwargs):
        seen["bpd"].append((chunk_size, overlap))
        return evaluate_bpd(model, codec, sequences, chunk_size, overlap, *args, **kwargs)

    def sampler_spy(self, model, codec, chunk_size, overlap, *args, **kwargs):
        seen["sampler"].append((chunk_size, overlap))
        sampler_init(self, model, codec, chunk_size, overlap, *args, **kwargs)

    monkeypatch.setattr(training_input, "chunk_dataset", data_spy)
    monkeypatch.setattr(bpd_callback, "evaluate_bpd", bpd_spy)
    monkeypatch.setattr(Sampler, "__init__", sampler_spy)
    history = _train(tmp_path, f"build_chunking.chunk_size = {CHUNK}", "train.total_steps = 2",
                     "train.steps_per_epoch = 2", "train.sample_every = 2",
                     "train.sample_num = 1", "train.sample_max_chunks = 1",
                     "train.bpd_eval_images = 2")
    assert seen["data"] and set(seen["data"]) == {(CHUNK, OVERLAP)}
    assert seen["bpd"] == [(CHUNK, OVERLAP)]
    assert seen["sampler"] == [(CHUNK, OVERLAP)]  # the TensorBoard sample grid
    assert history.model.window == CHUNK + OVERLAP  # the trainer's decoder window

    run = read_run_file(str(tmp_path))
    assert run.chunking == Chunking(CHUNK, OVERLAP)
    assert run.model.window == CHUNK + OVERLAP
    seen["sampler"].clear()
    sampler = Sampler.from_model_dir(str(tmp_path))
    assert seen["sampler"] == [(CHUNK, OVERLAP)] and sampler.window == CHUNK + OVERLAP

    # The SavedModel's `score` cuts a sequence of several chunks by 32, not by 48.
    out = str(tmp_path / "saved")
    export_saved_model(str(tmp_path), out, max_length=512)
    model, _ = load_trained_model(str(tmp_path))
    image = shapes_arrays("test", 1, size=32)[0][0]
    triples = run.codec.encode(image, max_length=512)
    assert len(triples) > 2 * CHUNK  # several chunks, each scored with its partial image
    padded = np.zeros((1, 512, 3), np.int32)
    padded[0, : len(triples)] = triples
    scored = tf.saved_model.load(out).signatures["score"](
        triples=tf.constant(padded), length=tf.constant([len(triples)]), label=tf.constant([0]))
    got = scored["log_likelihood"].numpy()[0, : len(triples)]
    ours = hand_log_likelihoods(model, run.codec, CHUNK, OVERLAP, triples).sum(axis=0)
    # Another chunking that fits the window scores differently: the comparison can fail.
    other = hand_log_likelihoods(model, run.codec, 24, 8, triples).sum(axis=0)
    np.testing.assert_allclose(got, ours, atol=1e-5, rtol=1e-5)
    assert not np.allclose(got, other, atol=1e-4, rtol=1e-4)


def test_the_run_file_refuses_a_model_that_disagrees_with_its_codec(tmp_path):
    import json

    _train(tmp_path, "train.total_steps = 1", "train.steps_per_epoch = 1")
    settings = json.loads((tmp_path / "run.json").read_text())
    settings["model"]["resolution"] = 64  # a file of an earlier version, edited by hand
    (tmp_path / "run.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="run.json: model and codec/chunking settings "
                                         "disagree: resolution: model 64 vs codec/chunking 32"):
        read_run_file(str(tmp_path))


def test_a_run_file_of_an_earlier_version_loads(tmp_path):
    """run.json before the run layer: the model entry held the codec and chunking fields, and
    neither "chunking" nor "data" existed; `evaluate` then reads the source from the gin
    config the run wrote."""
    import json

    from dctformer_tf.evaluation.report import run_data

    _train(tmp_path, "train.total_steps = 1", "train.steps_per_epoch = 1")
    current = read_run_file(str(tmp_path))
    settings = json.loads((tmp_path / "run.json").read_text())
    model = dict(settings["model"], resolution=32, block_size=8, clip=1200,
                 value_scale="quantized", chunk_size=48, chunk_overlap=16)
    old = {"codec": settings["codec"], "model": model, "max_length": settings["max_length"]}
    (tmp_path / "run.json").write_text(json.dumps(old))
    run = read_run_file(str(tmp_path))
    assert (run.chunking, run.model, run.data) == (current.chunking, current.model, None)
    assert run_data(str(tmp_path)) == ("shapes", {})
