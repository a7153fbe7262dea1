"""Whole-sequence bpd of a held-out split in TensorBoard during training (docs/design.md §7).

Keras' validation loss scores random chunks; this scores whole sequences, every chunk with
its true partial image (`evaluation.bpd`), as the paper reports likelihood.
"""

import keras
import tensorflow as tf

from dctformer_tf.evaluation.bpd import evaluate_bpd


class HeldOutBpd(keras.callbacks.Callback):
    """At the end of every `every_epochs`-th epoch, writes `eval/bpd`, `eval/bpd_channel`,
    `eval/bpd_position`, `eval/bpd_value` and `eval/bpd_chunk_K` to `log_dir/eval`.

    Args:
      run: RunSettings. What the run trains on (its codec and chunking).
      sequences: a finite dataset of encoded held-out sequences (`encode_dataset`), cached
        by the caller so each evaluation scores the same images.
      log_dir: TensorBoard directory.
      batch_size: sequences per scoring batch.
    """

    def __init__(self, run, sequences: tf.data.Dataset, log_dir: str, every_epochs: int = 1,
                 batch_size: int = 8):
        super().__init__()
        self.run = run
        self.sequences = sequences
        self.log_dir = log_dir
        self.every_epochs = every_epochs
        self.batch_size = batch_size
        self._writer = None
        self.history = []

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(f"{self.log_dir}/eval")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        chunking = self.run.chunking
        result = evaluate_bpd(self.model, self.run.codec, self.sequences, chunking.chunk_size,
                              chunking.overlap, self.batch_size)
        step = int(self.model.optimizer.iterations.numpy())
        with self._writer.as_default(step=step):
            for name in ("bpd", "bpd_channel", "bpd_position", "bpd_value"):
                tf.summary.scalar(f"eval/{name}", result[name])
            for k, value in enumerate(result["bpd_per_chunk"]):
                tf.summary.scalar(f"eval/bpd_chunk_{k}", value)
        self._writer.flush()
        self.history.append((step, result["bpd"]))

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
