"""SavedModel export with serving signatures; the result loads with plain
`tf.saved_model.load`, no project code.

Signatures:
  encode(image_bytes: string [])  -> triples int32 [L_max, 3], length int32 [],
                                     content_hw int32 [2]   (JPEG/PNG/GIF/BMP/WebP bytes)
     (other, truncated or corrupt bytes raise tf.errors.InvalidArgumentError with the
      decoder's reason, e.g. "Unknown image file format", "Invalid PNG data"; an error is per
      call, and the loaded model keeps serving)
  score(triples: int32 [B, L_max, 3], length: int32 [B], label: int32 [B])
                                  -> log_likelihood float32 [B, L_max] (nats, per element),
                                     channel / position / value float32 [B, L_max]
  sample(num: int32 [], seed: int32 [], temperature: float32 [], top_p: float32 []
         [, label: int32 [] for class-conditional models])
                                  -> images uint8 [num, R, R, 3], triples int32
                                     [num, L_max, 3], length int32 [num], finished bool [num]
     (all heads share temperature and top_p; same seed, same images as
      `Sampler.sample(num, seed, batch_size >= num)`)
"""

import logging
import os
import shutil
import tempfile

import tensorflow as tf

from dctformer_tf.evaluation.likelihood import sequence_nll
from dctformer_tf.model.losses import COMPONENTS
from dctformer_tf.runs import load_trained_model
from dctformer_tf.sampling.sampler import Sampler

log = logging.getLogger("dctformer_tf.export")


class ExportModule(tf.Module):
    """The model, its codec and chunking, behind `tf.function` signatures.

    Args:
      model: a built `DCTransformer`.
      codec: the `SparseCodec` it was trained with.
      chunk_size, overlap: its training chunking.
      max_length: static sequence length of the signatures (EOS included).
    """

    def __init__(self, model, codec, chunk_size: int, overlap: int, max_length: int):
        super().__init__(name="dctformer")
        self.model = model
        self.codec = codec
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.max_length = max_length
        self.encode = tf.function(
            self._encode, input_signature=[tf.TensorSpec([], tf.string, name="image_bytes")]
        )
        self.score = tf.function(
            self._score,
            input_signature=[
                tf.TensorSpec([None, max_length, 3], tf.int32, name="triples"),
                tf.TensorSpec([None], tf.int32, name="length"),
                tf.TensorSpec([None], tf.int32, name="label"),
            ],
        )
        self.sampler = Sampler(model, codec, chunk_size, overlap, max_length)
        sample_spec = [tf.TensorSpec([], tf.int32, name="num"),
                       tf.TensorSpec([], tf.int32, name="seed"),
                       tf.TensorSpec([], tf.float32, name="temperature"),
                       tf.TensorSpec([], tf.float32, name="top_p")]
        if model.num_classes:
            sample_spec.append(tf.TensorSpec([], tf.int32, name="label"))
        self.sample = tf.function(self._sample, input_signature=sample_spec)

    def _encode(self, image_bytes):
        image = tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8,
                                   expand_animations=False)
        pixels, content = self.codec.tf_canvas(image)
        # "ops": the SavedModel must load where the fused kernel's library is not built.
        triples, length = self.codec.tf_encode_canvas(pixels, self.max_length, encoder="ops")
        length = self.codec.tf_check_length(length, self.max_length)
        return {"triples": triples, "length": length, "content_hw": content}

    def _score(self, triples, length, label):
        nll = sequence_nll(self.model, self.codec, triples, length, label, self.chunk_size,
                           self.overlap)
        outputs = {name: -nll[name] for name in COMPONENTS}
        outputs["log_likelihood"] = outputs["channel"] + outputs["position"] + outputs["value"]
        return outputs

    def _sample(self, num, seed, temperature, top_p, label=None):
        heads = tf.ones([3], tf.float32)
        return self.sampler.generate_graph(num, seed, heads * temperature,
                                           tf.zeros([3], tf.int32), heads * top_p, label)

    def signatures(self) -> dict:
        return {"encode": self.encode, "score": self.score, "sample": self.sample}


def export_saved_model(model_dir: str, out: str, max_length: int | None = None,
                       checkpoint: str | None = None, overwrite: bool = False) -> str:
    """Write a SavedModel of the run's latest checkpoint to `out` (see module docstring).

    The SavedModel is written to a temporary folder beside `out` and renamed into place, so
    an export that is killed leaves no half-written model at `out`.

    Args:
      max_length: static sequence length of the signatures; default the training one.
      overwrite: replace an existing SavedModel folder at `out`.
    Raises:
      FileExistsError before any work: `out` is a file, or a non-empty folder and not
      `overwrite`.
    """
    check_export_target(out, overwrite)
    model, run = load_trained_model(model_dir, checkpoint)
    module = ExportModule(model, run.codec, run.chunking.chunk_size, run.chunking.overlap,
                          max_length or run.max_length)
    if "://" in out:  # a bucket has no rename of folders: written in place
        tf.saved_model.save(module, out, signatures=module.signatures())
        log.info("Exported SavedModel to %s (signatures: encode, score, sample)", out)
        return out
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.partial-",
                               dir=os.path.dirname(out))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o777 & ~umask)  # as a folder made by tf.saved_model.save would be
    try:
        tf.saved_model.save(module, partial, signatures=module.signatures())
        if os.path.isdir(out):  # overwrite (checked above): the old one goes only now
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-",
                                   dir=os.path.dirname(out))
            os.rename(out, os.path.join(old, "model"))
            try:
                os.rename(partial, out)
            except OSError:
                os.rename(os.path.join(old, "model"), out)  # the old model back in place
                raise
            shutil.rmtree(old)
        else:
            os.rename(partial, out)
    finally:
        if os.path.isdir(partial):
            shutil.rmtree(partial)
    log.info("Exported SavedModel to %s (signatures: encode, score, sample)", out)
    return out


def check_export_target(out: str, overwrite: bool) -> None:
    """Fails before any work when `out` cannot take a new SavedModel."""
    if "://" in out:
        if tf.io.gfile.exists(out) and not overwrite:
            raise FileExistsError(f"--out {out} exists: choose a new path, or pass --overwrite")
        return
    if os.path.isfile(out) or (os.path.exists(out) and not os.path.isdir(out)):
        raise FileExistsError(f"--out {out} is an existing file, not a folder: choose a new "
                              "path for the SavedModel")
    if os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise FileExistsError(f"--out {out} is a folder that is not empty: choose a new "
                                  "path, or pass --overwrite to replace it")
        if not os.path.exists(os.path.join(out, "saved_model.pb")):
            raise FileExistsError(f"--out {out} is not a SavedModel (no saved_model.pb): "
                                  "--overwrite replaces only a SavedModel folder")
