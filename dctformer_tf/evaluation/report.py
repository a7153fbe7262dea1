"""The whole evaluation of a trained run (`dctformer evaluate`, docs/design.md §7): bpd with its
breakdowns and Figure 9 plot, the compression report, and FID / sFID / precision-recall of
samples against a data split, with the same metrics for the data's own floor (the split
against the training split) and for the codec's floor (the training split's images as their
whole sequences decode, against the split), so the numbers can be read.

Writes to `out`: `evaluation.json`, `bpd_per_chunk.png`, and `samples_grid.png`.
"""

import json
import logging
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import codec_round_trip
from dctformer_tf.evaluation.bpd import evaluate_bpd
from dctformer_tf.evaluation.compression import compression_report
from dctformer_tf.evaluation.placement import ac_placement, dense_images, med_dc_bits
from dctformer_tf.evaluation.plots import save_bpd_per_chunk_plot
from dctformer_tf.evaluation.sample_metrics import image_set_metrics
from dctformer_tf.evaluation.structure import second_difference_medians, smoothness_summary
from dctformer_tf.runs import RUN_FILE, read_run_file

log = logging.getLogger("dctformer_tf.evaluation")
ALL_METRICS = ("bpd", "compression", "fid", "sfid", "pr", "structure")


def run_data(model_dir: str, source: str | None = None) -> tuple[str, dict]:
    """(source, get_source keyword arguments) of a run: `source` when given, else the data
    its run.json records."""
    if source:
        return source, {}
    data = read_run_file(model_dir).data
    if data is None:  # a run written before run.json recorded its data
        return _operative_source(model_dir), {}
    return data.source, data.source_kwargs()


def _operative_source(model_dir: str) -> str:
    """`build_sequences.source` from the operative gin config of an older run."""
    path = os.path.join(model_dir, "operative_config.gin")
    try:
        text = open(path).read()
    except OSError:
        raise ValueError(f"{os.path.join(model_dir, RUN_FILE)} records no data source and "
                         f"{path} cannot be read: pass --source") from None
    match = re.search(r"^build_sequences\.source\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if not match:
        raise ValueError(f"{path}: no build_sequences.source; pass --source")
    return match.group(1)


def load_split(source: str, split: str, num: int, resolution: int, **source_kwargs) -> tuple:
    """(uint8 [N, h, w, 3] images at the run's content size, int32 [N] labels) of a split.

    `shapes` is rendered at the run's resolution; other sources keep their size (the codec
    resizes them when encoding) and must share one size to be stacked.
    """
    if source == "shapes":
        source_kwargs.setdefault("size", resolution)
    ds, _ = get_source(source, split, **source_kwargs)
    images, labels = [], []
    for example in ds.take(num).as_numpy_iterator():
        images.append(example["image"])
        labels.append(example["label"])
    if len(images) < num:
        raise ValueError(f"source {source!r} split {split!r} has {len(images)} images, "
                         f"fewer than the {num} asked")
    return np.stack(images), np.asarray(labels, np.int32)


def evaluate_run(model_dir: str, out: str, metrics=ALL_METRICS, split: str = "test",
                 num_images: int = 200, num_samples: int = 1000, features=None,
                 source: str | None = None, baseline_split: str | None = "train",
                 seed: int = 0, batch_size: int = 16, settings=None, progress=print,
                 checkpoint: str | None = None, max_chunks: int | None = None,
                 **sampler_kwargs) -> dict:
    """Evaluate a run; see the module docstring.

    Args:
      metrics: any of ALL_METRICS. bpd and compression score `num_images` images of
        `split`; fid/sfid/pr compare `num_samples` samples with as many `split` images.
      features: a `FeatureExtractor` (required for fid/sfid/pr).
      baseline_split: the floor: `split` against this split with the same metrics (None: no
        floor).
      settings: `SamplingSettings` for the samples.
      checkpoint, sampler_kwargs: passed to `Sampler.from_model_dir` (cache, jit_compile).
    """
    from dctformer_tf.sampling import Sampler

    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {', '.join(ALL_METRICS)}")
    sample_metrics = [m for m in ("fid", "sfid", "pr") if m in metrics]
    if sample_metrics and features is None:
        raise ValueError(f"metrics {sample_metrics} need a feature extractor (--features)")
    os.makedirs(out, exist_ok=True)
    sampler = Sampler.from_model_dir(model_dir, checkpoint, **sampler_kwargs)
    source, source_kwargs = run_data(model_dir, source)
    report = {"model_dir": model_dir, "source": source, "split": split}

    def load(which: str, num: int) -> tuple:
        return load_split(source, which, num, sampler.codec.resolution, **source_kwargs)

    if "bpd" in metrics or "compression" in metrics:
        progress(f"bpd: {num_images} {split} images...")
        try:
            report.update(likelihood_report(sampler, *load(split, num_images), out,
                                            "compression" in metrics, progress))
        except tf.errors.InvalidArgumentError as error:  # a sequence overflowed max_length
            raise ValueError(f"{source} {split}: {error.message.splitlines()[0]}") from None
    if sample_metrics or "structure" in metrics:
        real, real_labels = load(split, num_samples)
        fake = draw_samples(sampler, num_samples, seed, settings, batch_size, max_chunks,
                            real_labels, out, progress)
    if "structure" in metrics:
        report["structure"] = structure_report(real, fake, sampler.codec)
        for line in structure_lines(report["structure"], split):
            progress(line)
    if sample_metrics:
        report["samples"] = image_set_metrics(real, fake, features, sample_metrics)
        progress(f"  samples vs {split}: {_metric_line(report['samples'])}")
        if baseline_split:
            floor, _ = load(baseline_split, num_samples)
            report["floor"] = image_set_metrics(real, floor, features, sample_metrics)
            report["floor"]["against"] = baseline_split
            progress(f"  floor ({baseline_split} vs {split}): {_metric_line(report['floor'])}")
            # Samples are decoded sequences: they read at best like real images through the
            # codec, which blurs and rings at JPEG quality. This floor says how far that is.
            coded = codec_round_trip(floor, sampler.codec)
            report["codec_floor"] = image_set_metrics(real, coded, features, sample_metrics)
            report["codec_floor"]["against"] = baseline_split
            progress(f"  codec floor ({baseline_split} through the codec vs {split}): "
                     f"{_metric_line(report['codec_floor'])}")

    with open(os.path.join(out, "evaluation.json"), "w") as f:
        json.dump(report, f, indent=2, default=float)
    return report


def structure_report(real: np.ndarray, fake: np.ndarray, codec) -> dict:
    """Structure across blocks of the samples, and of the real images through the codec
    (what a perfect model's samples would score): DC smoothness and the median second
    difference of block means (`evaluation.structure`), where the AC terms sit
    (`evaluation.placement.ac_placement`), and the MED predictor's bits per DC cell."""
    coded = codec_round_trip(real, codec)
    report = {}
    for name, images in (("samples", fake), ("data", coded)):
        dense = dense_images(images, codec)
        report[name] = {**smoothness_summary(images, codec.block_size),
                        "second_differences": second_difference_medians(images,
                                                                        codec.block_size),
                        "ac_placement": ac_placement(dense, codec),
                        "med_dc_bits": med_dc_bits(dense, codec)}
    return report


def structure_lines(structure: dict, split: str) -> list[str]:
    """The structure report as lines: samples beside the data through the codec."""
    samples, data = structure["samples"], structure["data"]

    def pair(get, fmt=".3f"):
        return f"samples {get(samples):{fmt}}, {split} through the codec {get(data):{fmt}}"

    lines = [f"  DC smoothness (mean): {pair(lambda r: r['mean'])}"]
    for name in ("Y", "Cb", "Cr"):
        lines.append(f"  median 2nd difference of block means, {name}: "
                     f"{pair(lambda r, n=name: r['second_differences'][n], '.1f')}")
    for key, label in (("blocks_with_ac", "Y blocks with band >= 2 AC"),
                       ("ac_share_at_edges", "share of that AC in the strongest-edge quarter of blocks"),
                       ("spearman", "Spearman(AC magnitude, edge strength)")):
        lines.append(f"  {label}: {pair(lambda r, k=key: r['ac_placement'][k])}")
    return lines


def likelihood_report(sampler, images: np.ndarray, labels: np.ndarray, out: str,
                      compression: bool, progress=print) -> dict:
    """{"bpd": ..., ["compression": ...]} of images under the sampler's model; writes the
    bpd-per-chunk plot to `out`."""
    codec = sampler.codec
    data = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    result = evaluate_bpd(sampler.model, codec, encode_dataset(data, codec, sampler.max_length),
                          sampler.chunk_size, sampler.overlap)
    bits = result.pop("bits_per_image")
    report = {"bpd": result}
    save_bpd_per_chunk_plot(result, os.path.join(out, "bpd_per_chunk.png"))
    progress(f"  bpd {result['bpd']:.4f} (channel {result['bpd_channel']:.4f}, position "
             f"{result['bpd_position']:.4f}, value {result['bpd_value']:.4f})")
    med = med_dc_bits(dense_images(images, codec), codec)
    report["med_dc_bits"] = med
    for name, cell_bits in result.get("dc_bits_per_cell", {}).items():
        progress(f"  DC band {name}: model {cell_bits:.2f} bits per cell, MED predictor "
                 f"{med[name]['bits_per_cell']:.2f}")
    if compression:
        report["compression"] = compression_report(bits, images, codec)
        report["compression"].pop("per_image", None)
        progress(f"  model / JPEG bits {report['compression']['model_over_jpeg']:.3f}")
        clipped = report["compression"]["clipped_values"]
        if clipped:
            progress(f"  warning: {clipped} coefficients exceed ±clip = {codec.clip} and "
                     "were clipped: the model coded fewer distinct values than JPEG "
                     f"(clip >= {codec.max_magnitude} avoids it)")
    return report


def draw_samples(sampler, num: int, seed: int, settings, batch_size: int,
                 max_chunks: int | None, real_labels: np.ndarray, out: str,
                 progress=print) -> np.ndarray:
    """uint8 [num, h, w, 3] samples (the real split's class balance for a class-conditional
    model); writes a grid of the first 64 to `out/samples_grid.png`."""
    from PIL import Image

    from dctformer_tf.sampling.figures import image_grid

    progress(f"sampling {num} images...")
    start = time.perf_counter()
    label = real_labels if sampler.model.num_classes else None
    bar = keras.utils.Progbar(num, unit_name="sample")
    result = sampler.sample(num, seed, settings, batch_size=batch_size, max_chunks=max_chunks,
                            label=label, on_batch=lambda done, _: bar.update(done))
    progress(f"  {time.perf_counter() - start:.0f} s, mean length "
             f"{result.length.mean():.0f}, unfinished {int((~result.finished).sum())}")
    fake = np.stack(result.images)
    Image.fromarray(image_grid(list(fake[:64]), 8)).save(os.path.join(out, "samples_grid.png"))
    return fake


def _metric_line(result: dict) -> str:
    names = ("fid", "sfid", "precision", "recall")
    return ", ".join(f"{n} {result[n]:.3f}" for n in names if n in result)
