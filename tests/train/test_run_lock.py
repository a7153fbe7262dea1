"""One trainer per run directory (`train/run_lock.py`): a second trainer exits at once naming
the first; a trainer killed by SIGKILL leaves no lock behind and the next run resumes;
readers take no lock. The two runs of `dctformer train` in subprocesses are in the slow tier;
the default tier covers the lock inside `train()` in-process."""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from dctformer_tf.runs import load_trained_model
from dctformer_tf.train.run_lock import LOCK_FILE, RunLock, RunLockedError
from tests.train.test_experiment import ROOT, TINY, TINY_BINDINGS, _train


def _trainer(model_dir, *bindings) -> subprocess.Popen:
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train",
               "--model_dir", str(model_dir)]
    for path in TINY:
        command += ["--gin_file", path]
    for binding in [*TINY_BINDINGS, *bindings]:
        command += ["--gin_bindings", binding]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)


def _wait_for(condition, process, timeout=240):
    start = time.time()
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the trainer ended early:\n{process.stdout.read()[-3000:]}")
        if time.time() - start > timeout:
            process.kill()
            raise AssertionError("timed out")
        time.sleep(0.2)


def _holds_lock(model_dir, pid):
    path = os.path.join(model_dir, LOCK_FILE)
    return os.path.exists(path) and f'"pid": {pid}' in open(path).read()


@pytest.mark.slow
def test_a_second_trainer_exits_at_once_naming_the_first(tmp_path):
    first = _trainer(tmp_path, "train.total_steps = 30", "train.steps_per_epoch = 10")
    _wait_for(lambda: _holds_lock(tmp_path, first.pid), first)
    started = time.time()
    second = _trainer(tmp_path, "train.total_steps = 30", "train.steps_per_epoch = 10")
    out, _ = second.communicate(timeout=240)
    assert second.returncode == 2, out[-3000:]
    assert f"is being trained by process {first.pid} on host" in out
    assert "train into another --model_dir" in out and "Building dataset" not in out
    assert time.time() - started < 120
    first_out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, first_out[-3000:]
    events = os.listdir(tmp_path / "tensorboard" / "train")
    assert len([name for name in events if name.startswith("events.out")]) == 1
    assert sorted(os.listdir(tmp_path / "checkpoints"))[-1].startswith("ckpt-30")


@pytest.mark.slow
def test_a_killed_trainer_leaves_no_lock_and_the_next_run_resumes(tmp_path, caplog):
    killed = _trainer(tmp_path, "train.total_steps = 2000", "train.steps_per_epoch = 2")
    _wait_for(lambda: os.path.exists(tmp_path / "checkpoints" / "checkpoint"), killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert os.path.exists(tmp_path / LOCK_FILE)  # the file stays; the kernel dropped the lock
    step = int(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).rsplit("-", 1)[1])
    caplog.set_level("INFO", logger="dctformer_tf.train")
    _train(tmp_path, f"train.total_steps = {step + 2}", "train.steps_per_epoch = 2")
    assert f"Resuming at step {step}" in caplog.text
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith(f"ckpt-{step + 2}")


def test_readers_take_no_lock(tmp_path):
    _train(tmp_path, "train.total_steps = 2", "train.steps_per_epoch = 2")
    with RunLock(str(tmp_path)):  # as a trainer would hold it
        model, run = load_trained_model(str(tmp_path))
        assert model.built and run.model.d_model > 0
        with pytest.raises(RunLockedError, match=f"process {os.getpid()} on host"):
            _train(tmp_path, "train.total_steps = 4", "train.steps_per_epoch = 2")


def test_a_remote_path_is_not_locked_and_says_so(caplog):
    with RunLock("gs://bucket/run") as lock:
        assert lock._file is None
    assert "no lock guards it" in caplog.text
