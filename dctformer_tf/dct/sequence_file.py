"""Sequence files: one encoded image as `.npz` (`dctformer encode` writes, `decode` reads).

    triples     int32 [L, 3]   (channel, position, value_token), EOS last
    content_hw  int32 [2]      the content's height and width
    codec       str []         the `SparseCodec` settings, JSON (`SparseCodec.config()`)

Reading trusts nothing in the file: it must be a zip archive of `.npy` arrays with these
names, integer arrays of these shapes and a codec that builds, and pickles are never
loaded (an `.npz` can carry object arrays, which numpy would unpickle, running code).
Every failure is a `ValueError` that names the file and what is wrong with it.
"""

import json
import zipfile
import zlib

import numpy as np

from dctformer_tf.dct.codec import SparseCodec

ARRAYS = ("triples", "content_hw", "codec")
MAX_BYTES = 2**30  # unpacked; a sequence of a 4096² image at q100 is a few hundred MiB
MAX_SIDE = 2**16  # pixels of the content, each way


def save_sequence(path: str, triples, content_hw, codec: SparseCodec) -> None:
    """Writes a sequence file (module docstring)."""
    np.savez_compressed(path, triples=np.asarray(triples, np.int32),
                        content_hw=np.asarray(content_hw, np.int32),
                        codec=json.dumps(codec.config()))


def load_sequence(path: str) -> tuple:
    """A sequence file -> (SparseCodec, int32 [L, 3] triples, (h, w)).

    Raises:
      FileNotFoundError: no such file.
      ValueError naming `path`: not a zip archive, a missing or extra-typed array, an
      object (pickled) array, a wrong shape or dtype, codec settings that do not build, or
      triples outside the codec's ranges.
    """
    if not zipfile.is_zipfile(path):
        with open(path, "rb"):  # FileNotFoundError / IsADirectoryError name the path
            pass
        raise ValueError(f"{path}: not an .npz sequence file (not a zip archive); "
                         "`dctformer encode` writes them")
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(member.file_size for member in archive.infolist())
    if unpacked > MAX_BYTES:
        raise ValueError(f"{path}: unpacks to {unpacked} bytes, more than a sequence file "
                         f"holds (at most {MAX_BYTES})")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ARRAYS if name not in data.files]
            if missing:
                raise ValueError(f"{path}: not a dctformer sequence file (no array "
                                 f"{', '.join(missing)}; it has {', '.join(data.files) or 'none'})")
            arrays = {name: data[name] for name in ARRAYS}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValueError(f"{path}: a damaged zip archive ({type(error).__name__}: "
                         f"{error})") from None
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(f"{path}: holds an object (pickled) array; sequence files hold "
                             "numbers and text only, and pickles are never loaded") from None
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path}: an array does not read as .npy ({error})") from None
    triples, content, settings = arrays["triples"], arrays["content_hw"], arrays["codec"]
    _check_array(path, "triples", triples, 2, 3)
    _check_array(path, "content_hw", content, 1, 2)
    if settings.shape != () or settings.dtype.kind != "U":
        raise ValueError(f"{path}: 'codec' must be a JSON string, got a {settings.dtype} "
                         f"array of shape {settings.shape}")
    try:
        codec = SparseCodec(**json.loads(str(settings)))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: the codec settings do not build a codec ({error})") from None
    h, w = int(content[0]), int(content[1])
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"{path}: content_hw {h}x{w} is not an image size (1 to "
                         f"{MAX_SIDE} pixels each way)")
    if len(triples) == 0 or int(triples[-1, 0]) != codec.eos:
        raise ValueError(f"{path}: the triples do not end with EOS (channel {codec.eos}): "
                         "not a whole encoded sequence")
    try:
        triples = codec.validate_triples(triples, codec.canvas_grid(h, w))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return codec, triples, (h, w)


def _check_array(path: str, name: str, array: np.ndarray, ndim: int, last: int) -> None:
    if array.dtype.kind not in "iu":
        raise ValueError(f"{path}: '{name}' must hold integers, got {array.dtype}")
    if array.ndim != ndim or array.shape[-1] != last:
        want = "[L, 3]" if ndim == 2 else f"[{last}]"
        raise ValueError(f"{path}: '{name}' must have shape {want}, got {list(array.shape)}")
