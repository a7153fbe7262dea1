"""Learning-rate schedule (docs/design.md §4, paper App. C).

Linear warmup (1000 steps) to the peak learning rate, then cosine decay to 0 at the end of
the run. The trainer sets the run length, given in steps or converted from a budget of
loss-bearing tokens (`train.experiment.train`).
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dctformer_tf")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak_learning_rate`, then cosine decay to 0.

    `lr(s) = peak · s / warmup` for `s < warmup`, then
    `lr(s) = peak · ½ (1 + cos(π · (s − warmup) / (total − warmup)))`, and 0 from
    `total_steps` on.

    Args:
      peak_learning_rate: float. Learning rate at the end of warmup (paper: 5e-4).
      total_steps: int. Step at which the rate reaches 0; greater than `warmup_steps`.
      warmup_steps: int. Length of the linear warmup (paper: 1000); 0 starts at the peak.
      name: str. Name of the schedule.

    Example:
      >>> schedule = WarmupCosine(5e-4, total_steps=100_000)
      >>> optimizer = keras.optimizers.Adam(learning_rate=schedule)
    """

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int,
        warmup_steps: int = 1000,
        name: str = "warmup_cosine",
    ):
        if peak_learning_rate <= 0:
            raise ValueError(f"peak_learning_rate must be positive, got {peak_learning_rate}")
        if warmup_steps < 0 or total_steps <= warmup_steps:
            raise ValueError(
                f"need 0 <= warmup_steps < total_steps, got warmup_steps={warmup_steps}, "
                f"total_steps={total_steps}"
            )
        self.peak_learning_rate = peak_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        warmup = float(self.warmup_steps)
        # max(·, 1) only guards the division when warmup is 0; that branch is then unused.
        ramp = peak * step / max(warmup, 1.0)
        progress = ops.clip((step - warmup) / float(self.total_steps - self.warmup_steps), 0, 1)
        decay = 0.5 * peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, ramp, decay)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "name": self.name,
        }

