"""`DataSettings`: which data source a run reads, and its splits. Plain Python (a run file
records it, and hosts without TensorFlow read run files)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Where a run's images come from (`data.sources.get_source`).

    Args:
      source: str. "shapes", "folder:/path" or a TFDS name.
      data_dir: str or None. TFDS data directory.
      train_split: str. The split the run trains on.
      eval_split: str. The held-out split of its evaluations.
    """

    source: str
    data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "test"

    def source_kwargs(self) -> dict:
        """Extra keyword arguments of `get_source` for this source."""
        return {"data_dir": self.data_dir} if self.data_dir else {}
