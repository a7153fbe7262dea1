"""`Shard`: the part of an image source that one input pipeline reads (docs/design.md §4)."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Shard:
    """Part `index` of `count` of a source: what one input pipeline reads.

    Under a multi-worker strategy each worker (TPU host) builds its own input pipeline; each
    reading and encoding only its shard, the pipelines together read every example once per
    epoch instead of each encoding the whole source to keep 1/count of it (docs/design.md §4).
    Sources cut their first `num_examples` first, then shard what is left: a folder takes
    every `count`-th file from `index`, `shapes` and TFDS a contiguous range (`bounds`, the
    arithmetic of `tfds.even_splits`). Shard sizes differ by at most one.
    """

    index: int
    count: int

    def __post_init__(self):
        for field in ("index", "count"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"Shard.{field} must be an int, got {value!r}")
        if self.count < 1:
            raise ValueError(f"Shard.count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"Shard.index must be in [0, {self.count}) for Shard.count = "
                             f"{self.count}, got {self.index}")

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}"

    def bounds(self, num: int) -> tuple[int, int]:
        """`[start, stop)` of this shard's contiguous part of `num` items; the first
        `num % count` shards hold one item more."""
        base, extra = divmod(num, self.count)
        start = self.index * base + min(self.index, extra)
        return start, start + base + int(self.index < extra)

    def check_fits(self, num: int, source: str, what: str = "examples") -> None:
        """Raises ValueError when `num` items leave some shard empty.

        Every shard raises, not only the empty ones: a worker that went on alone would wait
        for the others in its first collective forever.
        """
        if num < self.count:
            raise ValueError(
                f"{source} has {num} {what}, fewer than its {self.count} shards (one per "
                f"input pipeline, i.e. per worker), so at least one shard would be empty "
                f"(this is {self}); use at most {num} workers or more data"
            )
