"""The sequence lengths of a data source under a codec: the numbers behind a length policy
(`max_length`, `l_max`; docs/design.md §2), for `dctformer lengths`.

- `measure_lengths`: the length of every image's sequence, EOS included, through the
  `tf.data` encoding graph (`data.pipeline.encode_lengths`: no length limit).
- `length_statistics`: count, mean, percentiles, max and the images over a `max_length`.
- `length_report` / `format_length_report`: both, for a source named as configs name it.
"""

import numpy as np

from dctformer_tf.data.pipeline import encode_lengths
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import SparseCodec

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def measure_lengths(source: str, codec: SparseCodec, split: str = "train",
                    num: int | None = None, data_dir: str | None = None
                    ) -> tuple[tuple[str, ...], np.ndarray]:
    """The sparse sequence length of each of the first `num` images of a source.

    Args:
      source: "shapes", "folder:PATH" (or a folder) or a prepared TFDS name (`get_source`).
      codec: the `SparseCodec` (its resolution sets the canvas).
      split: the source's split.
      num: how many images, from the start of the split; None: all of them.
      data_dir: TFDS data directory.
    Returns:
      (names, int64 [N] lengths, EOS included), in source order.
    Raises:
      ValueError: the split yields no image.
    """
    kwargs = {"data_dir": data_dir} if data_dir else {}
    images, _ = get_source(source, split, num_examples=num or None, **kwargs)
    names, lengths = [], []
    for example in encode_lengths(images, codec).as_numpy_iterator():
        names.append(example["name"].decode("utf-8", "replace"))
        lengths.append(int(example["length"]))
    if not lengths:
        raise ValueError(f"data source {source!r} split {split!r} yields no images")
    return tuple(names), np.asarray(lengths, np.int64)


def length_statistics(lengths, max_length: int | None = None,
                      names: tuple[str, ...] | None = None) -> dict:
    """Summary numbers of sequence lengths.

    Args:
      lengths: int [N], N >= 1, EOS included.
      max_length: count the lengths over it (None: no such count).
      names: the images' names, to list the ones over `max_length`.
    Returns:
      {"count", "mean", "min", "p1" ... "p99" (numpy's linear percentiles), "max"} and, with
      a `max_length`: "max_length", "over_max_length" (how many), "fraction_over", "over"
      (a list of {"name", "length"}, longest first; names only when `names` is given).
    """
    lengths = np.asarray(lengths, np.int64)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"length_statistics: expected a non-empty list of lengths, got shape "
                         f"{lengths.shape}")
    stats = {"count": int(lengths.size), "mean": float(lengths.mean()),
             "min": int(lengths.min())}
    for p, value in zip(PERCENTILES, np.percentile(lengths, PERCENTILES), strict=True):
        stats[f"p{p}"] = float(value)
    stats["max"] = int(lengths.max())
    if max_length is not None:
        over = np.flatnonzero(lengths > max_length)
        over = over[np.argsort(-lengths[over], kind="stable")]
        stats.update(max_length=int(max_length), over_max_length=int(over.size),
                     fraction_over=float(over.size / lengths.size),
                     over=[{"name": names[i] if names is not None else None,
                            "length": int(lengths[i])} for i in over])
    return stats


def length_report(source: str, codec: SparseCodec, split: str = "train",
                  num: int | None = None, max_length: int | None = None,
                  data_dir: str | None = None) -> tuple[dict, np.ndarray]:
    """`length_statistics` of `measure_lengths`, with what was measured: ({"source",
    "split", "codec": codec.config(), statistics...}, int64 [N] lengths)."""
    names, lengths = measure_lengths(source, codec, split, num, data_dir)
    report = {"source": source, "split": split, "codec": codec.config()}
    report.update(length_statistics(lengths, max_length, names))
    return report, lengths


def format_length_report(report: dict, max_listed: int = 20) -> str:
    """The report as lines for a terminal; at most `max_listed` over-long images named."""
    codec = report["codec"]
    lines = [
        f"{report['source']} ({report['split']}): {report['count']} images, resolution "
        f"{codec['resolution']}, block {codec['block_size']}, quality {codec['quality']}",
        f"sequence length (EOS included): mean {report['mean']:.1f}, min {report['min']}, "
        f"max {report['max']}",
        "  " + "  ".join(f"p{p} {report[f'p{p}']:.0f}" for p in PERCENTILES),
    ]
    if "max_length" in report:
        lines.append(f"over max_length={report['max_length']}: {report['over_max_length']} of "
                     f"{report['count']} ({100 * report['fraction_over']:.2f}%)")
        for entry in report["over"][:max_listed]:
            lines.append(f"  {entry['length']:>9}  {entry['name']}")
        if len(report["over"]) > max_listed:
            lines.append(f"  ... and {len(report['over']) - max_listed} more")
    return "\n".join(lines)
