"""Sharded input (`data.training_input.sharded_input`): `train` builds its data through
`distribute_datasets_from_function`, each input pipeline reading and encoding only its shard
of the source; two MultiWorkerMirroredStrategy workers on loopback together encode every
image exactly once per epoch."""

import hashlib
import json
import os
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dctformer_tf.data import training_input
from dctformer_tf.data.sources import Shard, get_source
from dctformer_tf.train import experiment, gin_model
from dctformer_tf.train.trainer import DCTransformerTrainer
from tests.train.test_experiment import ROOT, TINY, TINY_BINDINGS, _free_ports, _train


def _context(pipelines: int, pipeline: int, replicas: int) -> tf.distribute.InputContext:
    return tf.distribute.InputContext(num_input_pipelines=pipelines, input_pipeline_id=pipeline,
                                      num_replicas_in_sync=replicas)


def _run_settings(*bindings):
    """The tiny run's (RunSettings, SequenceSource, ChunkPolicy) with extra gin bindings."""
    gin.clear_config()
    gin.parse_config_files_and_bindings(TINY, TINY_BINDINGS + ["train.model_dir = 'unused'",
                                                               *bindings])
    try:
        return (*experiment.build_run_settings(), gin_model.chunk_policy())
    finally:
        gin.clear_config()


def test_a_lone_pipeline_reads_everything_and_keeps_the_run_seed():
    assert training_input.pipeline_shard(_context(1, 0, 2)) is None
    assert training_input.pipeline_shard(_context(3, 2, 6)) == Shard(2, 3)
    assert training_input.pipeline_seed(7, 0) == 7
    seeds = {training_input.pipeline_seed(seed, i) for seed in range(4) for i in range(4)}
    assert len(seeds) == 16  # no two pipelines of nearby run seeds share a seed


@pytest.mark.parametrize("strategy", ["default", "one_device", "mirrored"])
def test_single_worker_strategies_have_one_whole_source_pipeline(strategy, two_cpu_strategy):
    dist = {"default": tf.distribute.get_strategy(),
            "one_device": tf.distribute.OneDeviceStrategy("/cpu:0"),
            "mirrored": two_cpu_strategy}[strategy]
    (context,) = training_input.local_input_contexts(dist)
    assert (context.num_input_pipelines, context.input_pipeline_id) == (1, 0)
    assert training_input.pipeline_shard(context) is None
    assert context.get_per_replica_batch_size(8) == 8 // dist.num_replicas_in_sync


@pytest.mark.slow  # the slow two-worker test covers the same on real workers
def test_each_pipeline_chunks_its_own_shard_per_replica_with_its_own_seed(monkeypatch):
    run, sequences, policy = _run_settings("build_sequences.num_examples = 5",
                                   "build_chunks.shuffle_buffer = 4")
    chunked = []
    real = training_input.training_chunks

    def spy(data, codec, chunking, policy, batch_size, seed):
        chunked.append((data, batch_size, seed))
        return real(data, codec, chunking, policy, batch_size, seed)

    monkeypatch.setattr(training_input, "training_chunks", spy)
    input_fn = training_input.sharded_input(sequences, run.codec, run.chunking, policy, "train",
                                            8, seed=3)
    batches = [next(iter(input_fn(_context(2, i, 4)))) for i in range(2)]
    assert [b["loss_tokens"].shape[0] for b in batches] == [2, 2]  # 8 over 4 replicas
    assert [(size, seed) for _, size, seed in chunked] == [
        (2, 3), (2, 3 + training_input.PIPELINE_SEED_STRIDE)]

    def lengths(dataset):
        return [int(s["length"]) for s in dataset]

    for index, (data, _, _) in enumerate(chunked):
        assert lengths(data) == lengths(sequences.dataset(run.codec, "train",
                                                          shard=Shard(index, 2)))
    assert sorted(lengths(chunked[0][0]) + lengths(chunked[1][0])) == sorted(
        lengths(sequences.dataset(run.codec, "train")))


@pytest.mark.slow  # training under MirroredStrategy (the default tier's tiny-run
# test spies on the same function under the default strategy): `make test-slow`
def test_train_builds_its_data_through_the_sharded_input_function(tmp_path, monkeypatch,
                                                                 two_cpu_strategy):
    """Training and eval data come from `sharded_input` via the strategy's
    `distribute_datasets_from_function` (MirroredStrategy over two CPUs: one pipeline, per
    replica batches), and Keras' fit takes the distributed datasets."""
    built = []
    real_input = experiment.sharded_input

    def spy_input(sequences, codec, chunking, policy, split, batch_size, seed, overlong=None):
        input_fn = real_input(sequences, codec, chunking, policy, split, batch_size, seed,
                              overlong)

        def traced(context):
            built.append((split, batch_size, seed, context.num_input_pipelines,
                          context.get_per_replica_batch_size(batch_size)))
            return input_fn(context)

        return traced

    fitted = []
    real_fit = DCTransformerTrainer.fit

    def spy_fit(self, x, **kwargs):
        fitted.append((x, kwargs["validation_data"]))
        return real_fit(self, x, **kwargs)

    monkeypatch.setattr(experiment, "sharded_input", spy_input)
    monkeypatch.setattr(DCTransformerTrainer, "fit", spy_fit)
    # The session's one MirroredStrategy (tests/conftest.py: a second one breaks collectives).
    monkeypatch.setattr(experiment, "make_strategy", lambda name, tpu=None: two_cpu_strategy)
    history = _train(tmp_path, "train.strategy = 'mirrored'", "train.total_steps = 2",
                     "train.steps_per_epoch = 2", "train.eval_steps = 1", "train.seed = 5")
    assert built == [("train", 8, 5, 1, 4), ("test", 8, 6, 1, 4)]
    (train_data, eval_data), = fitted
    assert isinstance(train_data, tf.distribute.DistributedDataset)
    assert isinstance(eval_data, tf.distribute.DistributedDataset)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()


def test_a_worker_whose_shard_would_be_empty_fails_before_building_the_model(tmp_path,
                                                                             monkeypatch):
    """The pre-flight data check reads this worker's shard: worker 2 of 3 on 2 images."""
    monkeypatch.setattr(experiment, "local_input_contexts", lambda dist: [_context(3, 2, 3)])
    monkeypatch.setattr(experiment, "build_trainer", lambda *args: pytest.fail("model built"))
    with pytest.raises(ValueError, match=r"shapes split 'train' \(num_examples=2\) has 2 "
                                         r"examples, fewer than its 3 shards.*shard 2 of 3"):
        _train(tmp_path, "train.total_steps = 2", "build_sequences.num_examples = 2")


# ------------------------------------------------------------- two workers on loopback

# One MultiWorkerMirroredStrategy worker: builds its input as `train` does, through the
# strategy, then reports what one epoch of its encoded sequences encoded (a hash of each
# image entering the encoder, counted there), what the chunk pipeline fit would read
# encodes, the per-replica batch and the token budget in steps.
WORKER = r"""
import hashlib, json, sys
import gin
import tensorflow as tf
from dctformer_tf.data import training_input
from dctformer_tf.train import experiment, gin_model
from dctformer_tf.train.strategy import make_strategy

files, bindings, sources = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
encoded, built = [], []
real_encode = training_input.encode_dataset


def counting_encode(images, *args, **kwargs):
    def note(image):
        encoded.append(hashlib.sha1(image.numpy().tobytes()).hexdigest())
        return image

    def tap(example):
        image = tf.py_function(note, [example["image"]], tf.uint8)
        image.set_shape(example["image"].shape)
        return dict(example, image=image)

    sequences = real_encode(images.map(tap), *args, **kwargs)
    built.append(sequences)
    return sequences


training_input.encode_dataset = counting_encode
strategy = make_strategy("multi_worker")
report = {}
for name, extra in sources:
    gin.clear_config()
    gin.parse_config_files_and_bindings(files, bindings + extra)
    run, sequences = experiment.build_run_settings()
    policy = gin_model.chunk_policy()
    contexts = []
    input_fn = training_input.sharded_input(sequences, run.codec, run.chunking, policy,
                                            run.data.train_split, 4, 0)

    def spied(context):
        contexts.append(context)
        return input_fn(context)

    built.clear()
    distributed = strategy.distribute_datasets_from_function(spied)
    (context,), (epoch,) = contexts, built
    encoded.clear()
    num_sequences = sum(1 for _ in epoch)
    one_epoch = list(encoded)
    encoded.clear()
    batch = strategy.experimental_local_results(next(iter(distributed)))[0]
    in_training = sorted(set(encoded))
    budget = experiment.steps_for_tokens(3e4, training_input.budget_chunks(
        sequences, run.codec, run.chunking, policy, 4, 0))
    report[name] = dict(pipeline=context.input_pipeline_id, pipelines=context.num_input_pipelines,
                        encoded=one_epoch, sequences=num_sequences, in_training=in_training,
                        per_replica_batch=int(batch["loss_tokens"].shape[0]), budget=budget)
print("REPORT " + json.dumps(report), flush=True)
"""


def _image_digests(source: str, num_examples: int | None) -> list[str]:
    images, _ = get_source(source, "train", num_examples=num_examples)
    return [hashlib.sha1(example["image"].numpy().tobytes()).hexdigest() for example in images]


@pytest.mark.slow  # two TensorFlow processes: `make test-slow`
def test_two_workers_encode_every_image_exactly_once_per_epoch(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(np.full((20, 24, 3), 30 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    sources = {"shapes": ("shapes", 9), "folder": (f"folder:{folder}", None)}
    worker_sources = [[name, [f"build_sequences.source = '{source}'",
                              f"build_sequences.num_examples = {num}"]]
                      for name, (source, num) in sources.items()]
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    # A small shuffle buffer: filling the usual 1024 re-encodes a shard of 4 images 250 times.
    bindings = TINY_BINDINGS + ["train.model_dir = 'unused'", "build_chunks.shuffle_buffer = 16"]
    command = [sys.executable, "-c", WORKER, json.dumps(TINY), json.dumps(bindings),
               json.dumps(worker_sources)]
    start = time.time()
    workers = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, TF_CONFIG=json.dumps(
                                    {"cluster": cluster,
                                     "task": {"type": "worker", "index": index}})))
               for index in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out[-3000:]
    print(f"two workers took {time.time() - start:.0f} s")
    reports = [json.loads(out.split("REPORT ", 1)[1].splitlines()[0]) for out in outputs]

    for name, (source, num) in sources.items():
        first, second = (report[name] for report in reports)
        whole = _image_digests(source, num)
        assert len(set(whole)) == len(whole) == (num or 7)
        assert [(r["pipeline"], r["pipelines"]) for r in (first, second)] == [(0, 2), (1, 2)]
        assert not set(first["encoded"]) & set(second["encoded"]), name  # disjoint
        assert sorted(first["encoded"] + second["encoded"]) == sorted(whole), name  # once each
        assert abs(len(first["encoded"]) - len(second["encoded"])) <= 1
        for report in (first, second):
            assert report["sequences"] == len(report["encoded"])
            # What fit would read is encoded from this worker's shard only.
            assert report["in_training"] == sorted(set(report["encoded"]))
            assert report["per_replica_batch"] == 2  # global batch 4 over 2 replicas
        assert first["budget"] == second["budget"]  # every worker runs the same steps
