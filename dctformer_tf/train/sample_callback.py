"""TensorBoard sample grids during training (docs/design.md §4): a few samples every N steps."""

import numpy as np
import tensorflow as tf

from dctformer_tf.train.callbacks import StepCallback


class SampleGrid(StepCallback):
    """Every `every_steps` steps, draws `num` samples with a fixed seed from the model being
    trained and writes them as one image grid, `samples/grid`, to `log_dir/samples`.

    The same seed at every step shows how the samples of one random stream evolve.

    Args:
      run: RunSettings. What the run trains on: the sampler uses its codec, chunking and
        max_length, and a class-conditional model gives sample i class i mod num_classes.
      log_dir: TensorBoard directory.
      every_steps: sampling interval in optimizer steps.
      num: samples per grid. seed: their seed.
      max_chunks: chunk limit per sample (keeps the pause short; None = until EOS).
    """

    def __init__(self, run, log_dir: str, every_steps: int, num: int = 4, seed: int = 0,
                 max_chunks: int | None = None):
        super().__init__()
        self.run = run
        self.log_dir = log_dir
        self.every_steps = every_steps
        self.num = num
        self.seed = seed
        self.max_chunks = max_chunks
        num_classes = run.model.num_classes
        self.label = np.arange(num) % num_classes if num_classes else None
        self._sampler = None
        self._writer = None

    def on_train_begin(self, logs=None):
        from dctformer_tf.sampling import Sampler

        # XLA is off: a CPU training run should not pay a compile per grid shape.
        self._sampler = Sampler.for_run(self.model, self.run, jit_compile=False)
        self._writer = tf.summary.create_file_writer(f"{self.log_dir}/samples")

    def on_steps_end(self, logs):
        if self.crossed(self.every_steps):
            self.write_grid(self.step)

    def write_grid(self, step: int) -> np.ndarray:
        from dctformer_tf.sampling.figures import image_grid

        result = self._sampler.sample(self.num, self.seed, batch_size=self.num,
                                      max_chunks=self.max_chunks, label=self.label)
        grid = image_grid(result.images, columns=int(np.ceil(np.sqrt(self.num))))
        with self._writer.as_default(step=step):
            tf.summary.image("samples/grid", grid[None])
            tf.summary.scalar("samples/mean_length", float(result.length.mean()))
        self._writer.flush()
        return grid

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
