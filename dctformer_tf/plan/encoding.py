"""The encoding load of the input side (docs/design.md §2.4): how many encodes feed one
training example, and the host CPU they take.

A kept sequence of length L yields r·min(1, L / l_max) examples on average (r =
`examples_per_encode`, 1 in the paper's pipeline), and a sequence over `max_length` is
encoded, then skipped. Host cores are the CPU time of the encodes that feed a step, at the
step rate. Plain arithmetic: no TensorFlow.
"""

from dctformer_tf.plan.lengths import LengthAssumption

# CPU milliseconds the tf.data encoder (`data/pipeline.py`, fused kernel) spends per
# megapixel of canvas, when it is not measured: the most any Table 3 geometry measured
# (docs/benchmarks.md, "Input pipeline"), so a conservative default.
ENCODE_CPU_MS_PER_MEGAPIXEL = 16.0


def modelled_encode_seconds(resolution: int,
                            ms_per_megapixel: float = ENCODE_CPU_MS_PER_MEGAPIXEL) -> float:
    """CPU seconds to encode one canvas of `resolution`² pixels at `ms_per_megapixel`."""
    return ms_per_megapixel * resolution**2 / 1e6 / 1e3


def mean_keep_probability(assumed: LengthAssumption, l_max: int | None) -> float:
    """Mean examples per encode at r = 1: the share of images within `max_length` times
    E[min(1, L / l_max)] over the kept ones.

    That expectation is E[L | kept] / l_max when every kept L is at most l_max, as when
    `max_length` = `l_max` (every Table 3 data file); None disables the length filter."""
    kept_q = min(1.0, assumed.kept_length / l_max) if l_max else 1.0
    return (1.0 - assumed.overlong_fraction) * kept_q


def encode_load(assumed: LengthAssumption, l_max: int | None, examples_per_encode: int,
                paper_batch: int, steps_per_second: float, encode_cpu_s: float) -> dict:
    """Encodes per training example, CPU seconds per example and the host cores that feed
    `steps_per_second` steps of `paper_batch` examples, for the paper's one example per
    encode ("paper_*") and for `examples_per_encode` ("this_run_*").

    Args:
      assumed: the dataset's lengths.
      l_max: the length filter's `l_max` (None: no filter).
      examples_per_encode: r >= 1.
      paper_batch: global batch B.
      steps_per_second: train steps per second to feed.
      encode_cpu_s: CPU seconds to encode one image.
    Returns:
      dict with "mean_keep_probability" and, for key "paper" and "this_run",
      "{key}_encodes_per_example", "{key}_cpu_s_per_example", "{key}_host_cores".
    """
    keep = mean_keep_probability(assumed, l_max)
    load = {"mean_keep_probability": keep}
    for key, per_encode in (("paper", 1), ("this_run", examples_per_encode)):
        encodes = 1.0 / (per_encode * keep)
        load[f"{key}_encodes_per_example"] = encodes
        load[f"{key}_cpu_s_per_example"] = encodes * encode_cpu_s
        load[f"{key}_host_cores"] = steps_per_second * paper_batch * encodes * encode_cpu_s
    return load
