"""`dctformer export --out`: an existing file or a non-empty folder fails before any work,
`--overwrite` replaces a folder, and a killed export leaves `--out` absent or complete."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from dctformer_tf.cli.main import main
from dctformer_tf.export import saved_model
from tests.train.test_experiment import ROOT, _train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    _train(folder, "train.total_steps = 2", "train.steps_per_epoch = 2")
    return folder


def _no_restore(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("restored a checkpoint before checking --out")

    monkeypatch.setattr(saved_model, "load_trained_model", refuse)


def test_an_existing_file_fails_before_any_work(run_dir, tmp_path, capsys, monkeypatch):
    target = tmp_path / "model"
    target.write_text("a file")
    _no_restore(monkeypatch)
    assert main(["export", "--model_dir", str(run_dir), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--out {target} is an existing file" in err and "Traceback" not in err
    assert target.read_text() == "a file"


def test_a_non_empty_folder_fails_unless_overwrite(run_dir, tmp_path, capsys, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with monkeypatch.context() as patch:
        _no_restore(patch)
        assert main(["export", "--model_dir", str(run_dir), "--out", str(target)]) == 2
        assert "is a folder that is not empty" in capsys.readouterr().err
        assert (target / "keep.txt").read_text() == "mine"
    with monkeypatch.context() as patch:  # --overwrite replaces a SavedModel, nothing else
        _no_restore(patch)
        assert main(["export", "--model_dir", str(run_dir), "--out", str(target),
                     "--overwrite"]) == 2
        assert "is not a SavedModel (no saved_model.pb)" in capsys.readouterr().err
        assert main(["export", "--model_dir", str(run_dir), "--out", str(run_dir),
                     "--overwrite"]) == 2
        assert (run_dir / "run.json").exists()
    (target / "saved_model.pb").write_text("an older export")
    assert main(["export", "--model_dir", str(run_dir), "--out", str(target),
                 "--overwrite"]) == 0
    assert not (target / "keep.txt").exists()
    assert "sample" in tf.saved_model.load(str(target)).signatures
    assert not glob.glob(str(tmp_path / ".model.*"))  # no temporary folder left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o777 & ~umask  # not the 0700 of a temp dir


@pytest.mark.slow
def test_a_killed_export_leaves_out_absent_or_complete(run_dir, tmp_path):
    target = tmp_path / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "dctformer_tf.cli.main", "export", "--model_dir", str(run_dir),
         "--out", str(target)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    start = time.time()
    while not glob.glob(str(tmp_path / ".model.partial-*")) and process.poll() is None:
        assert time.time() - start < 300
        time.sleep(0.05)
    time.sleep(0.5)  # inside tf.saved_model.save, writing
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    if process.returncode == 0:  # it finished first: then the model is whole
        assert "sample" in tf.saved_model.load(str(target)).signatures
    else:
        assert not target.exists()
