"""The sequence-length distributions the input-side plan assumes, per dataset.

A data file (`gin/data/NAME.gin`) chooses its `max_length` and `l_max` from the lengths of
photos encoded at the config's geometry (`dctformer lengths`; its comments and
docs/benchmarks.md, "Sequence lengths of photos at the Table 3 geometries"). The planner
keeps the mean and the share over `max_length` here, since no binding of a run reads them.
Keys are data file names; the CPU models' `shapes` data has none.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class LengthAssumption:
    """Sequence lengths (elements, EOS included) of one dataset at its config's geometry.

    Args:
      mean_length: float. Mean length over the measured images.
      overlong_fraction: float in [0, 1). Share of them longer than the run's `max_length`
        (encoded, then skipped by `on_overflow="skip"`).
      mean_kept_length: float or None. Mean length of the images within `max_length`;
        None: `mean_length` (no image is over).
    """

    mean_length: float
    overlong_fraction: float = 0.0
    mean_kept_length: float | None = None

    @property
    def kept_length(self) -> float:
        """Mean length of the sequences the length policy sees (the kept ones)."""
        return self.mean_length if self.mean_kept_length is None else self.mean_kept_length


# The "mean" and "over max_length" lines of each data file's first measurement (photo
# crops at the config's geometry).
ASSUMED_LENGTHS = {
    "lsun": LengthAssumption(24726),
    "ffhq": LengthAssumption(44039),
    "imagenet": LengthAssumption(24726),
    "openimages": LengthAssumption(36557),
    "plant_leaves": LengthAssumption(98695),
    "retinopathy": LengthAssumption(85214),
    # Most photos at CLEVR's geometry exceed its max_length; the kept ones are the shorter.
    "clevr": LengthAssumption(55531, overlong_fraction=0.57, mean_kept_length=36677),
}
