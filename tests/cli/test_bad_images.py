"""Broken image files on the command line: `dctformer encode` and `show` end in exit code 2 and one
error line naming the file; `dctformer train` on a photo folder skips them, names each once and
counts them, and trains on the rest (docs/design.md §1.1, §2)."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _picture(seed: int) -> Image.Image:
    y, x = np.mgrid[0:32, 0:32]
    pixels = np.stack([x * 8, y * 8, (x + y) * 4], axis=-1).astype(np.uint8)
    pixels[8:20, 6:24] = np.random.default_rng(seed).integers(0, 256, size=3)
    return Image.fromarray(pixels)


def _encoded(image_format: str, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    _picture(seed).save(buffer, image_format)
    return buffer.getvalue()


def broken_files(folder: Path) -> dict[str, Path]:
    """The three kinds of broken file, written under `folder`."""
    jpeg, png = _encoded("JPEG"), _encoded("PNG")
    files = {
        "jpeg cut in its header": (folder / "header.jpg", jpeg[: jpeg.index(b"\xff\xda") // 2]),
        "png cut in its pixels": (folder / "cut.png", png[: len(png) // 2]),
        "garbage named .jpg": (folder / "garbage.jpg", np.random.default_rng(1).bytes(500)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in files.values():
        path.write_bytes(data)
    return {kind: path for kind, (path, _) in files.items()}


def _env() -> dict[str, str]:
    """This checkout first on the path, whatever is installed in the environment."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path)


@pytest.mark.parametrize("command", ["encode", "show"])
@pytest.mark.parametrize("kind", ["jpeg cut in its header", "png cut in its pixels",
                                  "garbage named .jpg"])
def test_codec_commands_name_the_broken_file_in_one_line(tmp_path, capsys, command, kind):
    path = broken_files(tmp_path)[kind]
    out = tmp_path / ("x.npz" if command == "encode" else "x.png")
    assert main([command, str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"dctformer {command}: error: {path}: "), lines[0]
    assert "Traceback" not in captured.err and not captured.out and not out.exists()


def test_encode_process_exits_2_with_one_line(tmp_path):
    """The issue's case, as a user runs it: a JPEG cut inside its header."""
    path = broken_files(tmp_path)["jpeg cut in its header"]
    result = subprocess.run(
        [sys.executable, "-m", "dctformer_tf.cli.main", "encode", str(path),
         "--out", str(tmp_path / "x.npz")],
        capture_output=True, text=True, timeout=300, env=_env(),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"dctformer encode: error: {path}: cannot read the header (OSError: Truncated File Read); "
        "the file is truncated or corrupt"
    ]


@pytest.mark.slow
def test_train_on_a_photo_folder_skips_broken_files(tmp_path):
    photos = tmp_path / "photos"
    for index in range(6):
        folder = photos / ("cats" if index % 2 else "dogs")
        folder.mkdir(parents=True, exist_ok=True)
        _picture(index).save(folder / f"{index}.{'png' if index < 3 else 'jpg'}")
    broken = list(broken_files(photos / "cats").values())
    broken[2] = broken[2].rename(photos / "dogs" / broken[2].name)

    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train",
               "--model_dir", str(tmp_path / "run")]
    for name in ("models/tiny.gin", "data/shapes.gin", "runs/train.gin"):
        command += ["--gin_file", str(ROOT / "gin" / name)]
    for binding in (f"build_sequences.source = 'folder:{photos}'",
                    "build_codec.resolution = 32", "build_sequences.max_length = 1024",
                    "build_sequences.num_eval_examples = 2", "train.tokens = None",
                    "train.total_steps = 2", "train.steps_per_epoch = 2",
                    "train.warmup_steps = 1",
                    "train.eval_steps = 1"):  # the held-out split: the same folder again
        command += ["--gin_bindings", binding]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=600, env=_env())
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    for path in broken:
        assert out.count(str(path)) == 1, (path, out[-3000:])
        assert f"Skipping image file {path}: " in out
    assert f"Skipped 3 of 9 image files under {photos}" in out
    assert "Done at step 2" in out
