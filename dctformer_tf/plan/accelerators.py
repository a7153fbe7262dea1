"""Data-parallel machines the memory plan fits runs on."""

import dataclasses

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """A data-parallel machine: `replicas` model copies, each with its own memory.

    Args:
      name: str. How tables name it.
      replicas: int. Model copies (TPU cores or chips, GPUs); the global batch is split
        evenly over them.
      memory_gib: float. Memory of one replica, GiB.
      note: str. What a replica is on this machine, for people.
    """

    name: str
    replicas: int
    memory_gib: float
    note: str = ""

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)

    def budget_bytes(self, headroom: float) -> int:
        """Bytes a plan may use per replica, leaving the fraction `headroom` to the runtime
        (XLA's fragmentation, collectives, the infeed)."""
        return int(self.memory_bytes * (1 - headroom))


# One replica per TPU v3 core, per TPU v4 chip (its two TensorCores run as one megacore
# device, so "v4-32" = 32 TensorCores = 16 replicas), per GPU.
ACCELERATORS = {
    "tpu-v3-32": Accelerator("tpu-v3-32", 32, 16, "32 cores x 16 GiB HBM (2 cores per chip)"),
    "tpu-v4-32": Accelerator("tpu-v4-32", 16, 32, "16 chips x 32 GiB HBM, one replica per chip"),
    "8xa100-80gb": Accelerator("8xa100-80gb", 8, 80, "8 GPUs x 80 GiB"),
    "8xh100-80gb": Accelerator("8xh100-80gb", 8, 80, "8 GPUs x 80 GiB"),
}


def by_total_memory() -> list[Accelerator]:
    """The listed accelerators, least total memory first (list order among equals)."""
    return sorted(ACCELERATORS.values(), key=lambda x: x.replicas * x.memory_gib)
