"""tools/photo_folder.py writes square photo crops of the asked size, resized up from crops of
at most --crop pixels, or the whole photos."""

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.photos import photo_crops
from tests.tools import load_tool


def test_crops_at_the_size_resized_up_past_the_crop(tmp_path):
    tool = load_tool("photo_folder")
    assert tool.main(["--size", "40", "--num", "3", "--out", str(tmp_path / "a")]) == 0
    native = sorted((tmp_path / "a").glob("*.png"))
    assert len(native) == 3
    np.testing.assert_array_equal(np.asarray(Image.open(native[0])), photo_crops(40, 3)[0])
    paths = tool.write_photo_folder(str(tmp_path / "b"), 48, 2, crop=16)
    assert [Image.open(p).size for p in paths] == [(48, 48)] * 2
    with pytest.raises(ValueError, match="--crop must be in"):
        tool.write_photo_folder(str(tmp_path / "c"), 48, 2, crop=400)
    assert tool.main(["--whole", "--out", str(tmp_path / "d")]) == 0
    assert Image.open(tmp_path / "d" / "chelsea.png").size == (451, 300)
