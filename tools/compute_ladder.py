"""The compute ladder (docs/results.md): one recipe trained for growing CPU budgets, each rung
evaluated the same way, and the trend of its figures against tokens seen.

Each rung is its own run (the learning rate decays to zero at the end of every run, so a
checkpoint in the middle of a longer run is not the same thing). Its length in steps is the
CPU budget times a measured rate of steps per CPU-minute; the CPU time actually spent
(user + system of the train command, all threads, data encoding included) is recorded next to
it.

    python tools/compute_ladder.py run --out outputs/ladder --cpu-minutes 2.5 10 40 80 \\
        --steps-per-cpu-minute RATE --feature_weights outputs/shapes_classifier.keras
    python tools/compute_ladder.py report --out outputs/ladder --figure docs/figures/ladder.png

RATE is the recipe's steps per CPU-minute on this machine (a demo run's steps over the CPU
time of its training); docs/results.md lists the rates and commands of its ladder.

`run` skips rungs whose evaluation is already written, so it can be restarted (a rung cut
short is trained again from scratch, so that its CPU time is whole). Each rung
writes `rung_<cpu-minutes>/{model, eval, train.log, rung.json}`; `report` prints the table
(markdown), the fitted trends and the compute they predict for the goals, and draws the figure.

`run --twin` trains the class-conditional twin of each rung instead (`NUM_CLASSES = 3`, the
`shapes` classes; folders `twin_<cpu-minutes>`) and evaluates it with
`tools/generative_classifier.py` (held-out images classified by the model's own bits per
label) and `tools/class_conditional_accuracy.py` (samples per label, read by the classifier);
`report` adds both to the rung of the same budget.

Fits (least squares in log space, over the rungs):
  model/JPEG bits:  log(ratio)  = a + b · log(tokens)   (a power law)
  FID:              log(FID)    = a + b · log(tokens)
The FID goal is 3× the codec floor (the data through the codec, measured in each rung's
evaluation; the median over rungs is used).
"""

import argparse
import functools
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

QUICKSTART = ["gin/models/small.gin", "gin/data/shapes.gin", "gin/runs/train.gin",
              "gin/runs/quickstart.gin"]
METRICS = "bpd,compression,fid,pr,structure"


def rung_name(cpu_minutes: float, prefix: str = "rung") -> str:
    return f"{prefix}_{cpu_minutes:g}"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dctformer_tf.cli.main", *args]


def train_rung(out: str, cpu_minutes: float, steps: int, args, prefix: str = "rung",
               extra_bindings: tuple = ()) -> dict:
    """Trains one rung (unless its model is complete) and returns its record."""
    folder = os.path.join(out, rung_name(cpu_minutes, prefix))
    record_path = os.path.join(folder, "rung.json")
    if os.path.exists(record_path):
        with open(record_path) as f:
            return json.load(f)
    # An interrupted rung is trained again from scratch: resuming its checkpoints would leave
    # out the CPU time spent before the interruption.
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    command = cli("train", "--model_dir", os.path.join(folder, "model"))
    for path in args.gin_file or QUICKSTART:
        command += ["--gin_file", path]
    bindings = [f"train.total_steps = {steps}", "train.sample_every = 0",
                f"train.steps_per_epoch = {args.steps_per_epoch}", *(args.gin_bindings or []),
                *extra_bindings]
    for binding in bindings:
        command += ["--gin_bindings", binding]
    cpu, start = children_cpu_seconds(), time.perf_counter()
    with open(os.path.join(folder, "train.log"), "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    record = {"cpu_minutes_target": cpu_minutes, "steps": steps,
              "cpu_seconds": children_cpu_seconds() - cpu,
              "wall_seconds": time.perf_counter() - start,
              "tokens": tokens_seen(os.path.join(folder, "train.log")),
              "command": " ".join(command[2:]).replace("dctformer_tf.cli.main", "dctformer")}
    with open(record_path, "w") as f:
        json.dump(record, f, indent=2)
    return record


def tokens_seen(log_path: str) -> float:
    """The token count of the train log's closing line ("Done at step N, X tokens seen")."""
    with open(log_path) as f:
        found = re.findall(r"Done at step \d+, ([0-9.e+]+) tokens seen", f.read())
    if not found:
        raise ValueError(f"{log_path}: no 'Done at step ..., ... tokens seen' line")
    return float(found[-1])


def evaluate_rung(out: str, cpu_minutes: float, args) -> None:
    folder = os.path.join(out, rung_name(cpu_minutes))
    if os.path.exists(os.path.join(folder, "eval", "evaluation.json")):
        return
    command = cli("evaluate", "--model_dir", os.path.join(folder, "model"),
                  "--metrics", METRICS, "--num_images", str(args.num_images),
                  "--num_samples", str(args.num_samples), "--batch_size", "50",
                  "--feature_weights", args.feature_weights, "--out",
                  os.path.join(folder, "eval"))
    with open(os.path.join(folder, "eval.log"), "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)


def evaluate_twin(out: str, cpu_minutes: float, args) -> None:
    folder = os.path.join(out, rung_name(cpu_minutes, "twin"))
    model_dir = os.path.join(folder, "model")
    tools = os.path.dirname(os.path.abspath(__file__))
    generative = os.path.join(folder, "generative.json")
    if not os.path.exists(generative):
        with open(os.path.join(folder, "generative.log"), "w") as log:
            subprocess.run([sys.executable, os.path.join(tools, "generative_classifier.py"),
                            "--model_dir", model_dir, "--num", "150", "--out", generative],
                           stdout=log, stderr=subprocess.STDOUT, check=True)
    samples = os.path.join(folder, "class_accuracy")
    if not os.path.exists(os.path.join(samples, "class_accuracy.json")):
        with open(os.path.join(folder, "class_accuracy.log"), "w") as log:
            subprocess.run([sys.executable, os.path.join(tools, "class_conditional_accuracy.py"),
                            "--model_dir", model_dir, "--classifier", args.feature_weights,
                            "--num_per_class", "100", "--out", samples],
                           stdout=log, stderr=subprocess.STDOUT, check=True)


def run(args) -> None:
    prefix = "twin" if args.twin else "rung"
    extra = ("NUM_CLASSES = 3",) if args.twin else ()
    for cpu_minutes in args.cpu_minutes:
        epochs = max(1, round(cpu_minutes * args.steps_per_cpu_minute / args.steps_per_epoch))
        steps = epochs * args.steps_per_epoch  # whole epochs: the trainer runs whole epochs
        record = train_rung(args.out, cpu_minutes, steps, args, prefix, extra)
        print(f"{rung_name(cpu_minutes, prefix)}: {record['steps']} steps, "
              f"{record['cpu_seconds'] / 60:.1f} CPU-min, {record['tokens']:.3g} tokens",
              flush=True)
        (evaluate_twin if args.twin else evaluate_rung)(args.out, cpu_minutes, args)


def load_rungs(out: str) -> list[dict]:
    """Every evaluated rung under `out`, by CPU budget: its record plus its figures."""
    rungs = []
    for name in sorted(os.listdir(out)):
        folder = os.path.join(out, name)
        paths = [os.path.join(folder, "rung.json"), os.path.join(folder, "eval", "evaluation.json")]
        if not (name.startswith("rung_") and all(os.path.exists(p) for p in paths)):
            continue
        with open(paths[0]) as f:
            rung = json.load(f)
        with open(paths[1]) as f:
            report = json.load(f)
        rung.update(folder=folder, ratio=report["compression"]["model_over_jpeg"],
                    bpd=report["bpd"]["bpd"],
                    fid=report["samples"]["fid"], precision=report["samples"]["precision"],
                    recall=report["samples"]["recall"],
                    codec_fid=report["codec_floor"]["fid"],
                    smoothness=report["structure"]["samples"]["mean"],
                    data_smoothness=report["structure"]["data"]["mean"])
        rung.update(twin_figures(out, rung["cpu_minutes_target"]))
        rungs.append(rung)
    return sorted(rungs, key=lambda r: r["cpu_minutes_target"])


def twin_figures(out: str, cpu_minutes: float) -> dict:
    """The class-conditional twin's figures at this budget, where evaluated: generative-
    classifier accuracy, the sample accuracy per class, and the twin's own tokens and CPU
    seconds (its run length may differ from the rung's)."""
    folder = os.path.join(out, rung_name(cpu_minutes, "twin"))
    paths = [os.path.join(folder, "generative.json"),
             os.path.join(folder, "class_accuracy", "class_accuracy.json"),
             os.path.join(folder, "rung.json")]
    if not all(os.path.exists(p) for p in paths):
        return {}
    with open(paths[0]) as f:
        generative = json.load(f)
    with open(paths[1]) as f:
        samples = json.load(f)["samples"]
    with open(paths[2]) as f:
        record = json.load(f)
    return {"generative_accuracy": generative["accuracy"],
            "sample_accuracy": {name: r["accuracy"] for name, r in samples.items()},
            "twin_tokens": record["tokens"], "twin_cpu_seconds": record["cpu_seconds"]}


def power_law(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of log y = a + b log x, least squares."""
    b, a = np.polyfit(np.log(x), np.log(y), 1)
    return float(a), float(b)


def solve(fit: tuple[float, float], target: float) -> float:
    """x where the power law `fit` reaches `target` (inf if it never does)."""
    a, b = fit
    if b >= 0:
        return math.inf
    return math.exp((math.log(target) - a) / b)


def report(args) -> None:
    rungs = load_rungs(args.out)
    if len(rungs) < 2:
        raise SystemExit(f"{args.out}: need at least two evaluated rungs, found {len(rungs)}")
    tokens = np.array([r["tokens"] for r in rungs])
    cpu = np.array([r["cpu_seconds"] / 60 for r in rungs])
    tokens_per_cpu_minute = float(np.sum(tokens) / np.sum(cpu))
    print("| CPU-min (budget) | CPU-min (spent) | steps | tokens | model/JPEG | bpd | FID "
          "(codec floor) | precision | recall | DC smoothness (data) | twin: generative "
          "classifier | twin: sample accuracy per class |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rungs:
        twin = ("not run", "not run")
        if "generative_accuracy" in r:
            twin = (f"{r['generative_accuracy']:.3f}",
                    ", ".join(f"{name} {a:.2f}" for name, a in r["sample_accuracy"].items()))
        print(f"| {r['cpu_minutes_target']:g} | {r['cpu_seconds'] / 60:.1f} | {r['steps']} | "
              f"{r['tokens'] / 1e6:.2f} M | {r['ratio']:.3f} | {r['bpd']:.4f} | "
              f"{r['fid']:.1f} ({r['codec_fid']:.1f}) | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['smoothness']:.3f} ({r['data_smoothness']:.3f}) | "
              f"{twin[0]} | {twin[1]} |")
    ratio_fit = power_law(tokens, np.array([r["ratio"] for r in rungs]))
    fid_fit = power_law(tokens, np.array([r["fid"] for r in rungs]))
    codec_fid = float(np.median([r["codec_fid"] for r in rungs]))
    print(f"\nfits over {len(rungs)} rungs ({tokens_per_cpu_minute:.3g} tokens per CPU-minute):")
    print(f"  model/JPEG = {math.exp(ratio_fit[0]):.3g} · tokens^{ratio_fit[1]:.4f}")
    print(f"  FID        = {math.exp(fid_fit[0]):.3g} · tokens^{fid_fit[1]:.4f}")
    goals = [("model/JPEG <= 0.70", ratio_fit, 0.70, tokens_per_cpu_minute),
             (f"FID <= 3 x codec floor ({3 * codec_fid:.1f})", fid_fit, 3 * codec_fid,
              tokens_per_cpu_minute)]
    # The twin's goal, generative-classifier accuracy >= 0.8, as its error 1 - accuracy <= 0.2,
    # over the twin's own tokens.
    twins = [r for r in rungs if "generative_accuracy" in r]
    if len(twins) >= 2:
        twin_tokens = np.array([r["twin_tokens"] for r in twins])
        error_fit = power_law(twin_tokens, np.array([1 - r["generative_accuracy"]
                                                     for r in twins]))
        twin_rate = float(np.sum(twin_tokens) / sum(r["twin_cpu_seconds"] / 60 for r in twins))
        print(f"  twin generative-classifier error = {math.exp(error_fit[0]):.3g} · "
              f"tokens^{error_fit[1]:.4f} (over {len(twins)} twin rungs)")
        goals.append(("twin generative classifier >= 0.8", error_fit, 0.2, twin_rate))
    for label, fit, target, rate in goals:
        needed = solve(fit, target)
        if math.isinf(needed):
            print(f"  {label}: not reached (the fitted trend does not fall)")
        else:
            print(f"  {label}: {needed:.3g} tokens, about {needed / rate:.3g} "
                  "CPU-minutes on this machine")
    if args.figure:
        save_figure(rungs, ratio_fit, fid_fit, codec_fid, args.figure)
        print(f"figure: {args.figure}")
    if args.grids:
        os.makedirs(args.grids, exist_ok=True)
        for r in rungs:
            target = os.path.join(args.grids, f"ladder_{rung_name(r['cpu_minutes_target'])}.png")
            save_grid_rows(os.path.join(r["folder"], "eval", "samples_grid.png"), target,
                           args.grid_rows)
            print(f"samples: {target}")


def save_grid_rows(source: str, target: str, rows: int, columns: int = 8, gap: int = 2) -> None:
    """The first `rows` rows of an evaluation's samples grid (`columns` square tiles per row,
    `gap` pixels apart, as `sampling.figures.image_grid` draws it): a small PNG for docs/."""
    from PIL import Image

    grid = Image.open(source)
    tile = (grid.width + gap) // columns - gap
    height = min(grid.height, rows * (tile + gap) - gap)
    grid.crop((0, 0, grid.width, height)).save(target, optimize=True)


def save_figure(rungs: list[dict], ratio_fit, fid_fit, codec_fid: float, path: str) -> None:
    """Two log-log panels against tokens seen: model/JPEG bits and sample FID, each with its
    fitted line; FID also with 3× the codec floor. Pillow only, like evaluation/plots.py."""
    from PIL import Image, ImageDraw

    from dctformer_tf.evaluation.plots import label_font

    width, height, margin = 900, 380, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = label_font()
    text = functools.partial(draw.text, font=font)
    tokens = np.array([r["tokens"] for r in rungs])
    x_lo, x_hi = math.log10(tokens.min()) - 0.2, math.log10(tokens.max()) + 0.2
    panels = [("model / JPEG bits", [r["ratio"] for r in rungs], ratio_fit, None),
              ("sample FID", [r["fid"] for r in rungs], fid_fit, 3 * codec_fid)]
    panel_width = (width - 3 * margin) // 2
    for index, (title, values, fit, goal) in enumerate(panels):
        left = margin + index * (panel_width + margin)
        top, bottom, right = margin // 2 + 10, height - margin, left + panel_width
        values = np.array(values, float)
        candidates = list(values) + ([goal] if goal else [])
        y_lo = math.log10(min(candidates)) - 0.05
        y_hi = math.log10(max(candidates)) + 0.05

        def xy(t, v, left=left, right=right, top=top, bottom=bottom, y_lo=y_lo, y_hi=y_hi):
            x = left + (math.log10(t) - x_lo) / (x_hi - x_lo) * (right - left)
            y = bottom - (math.log10(v) - y_lo) / (y_hi - y_lo) * (bottom - top)
            return x, y

        draw.rectangle([left, top, right, bottom], outline="black")
        text((left, 4), title + " against tokens seen (log-log)", fill="black")
        line = [xy(10**x, math.exp(fit[0]) * (10**x) ** fit[1])
                for x in np.linspace(x_lo, x_hi, 50)]
        line = [(x, min(max(y, top), bottom)) for x, y in line]
        draw.line(line, fill=(70, 110, 200), width=2)
        if goal:
            y = xy(tokens.min(), goal)[1]
            draw.line([(left, y), (right, y)], fill=(200, 60, 60), width=1)
            text((left + 4, y - 12), f"3x codec floor {goal:.1f}", fill=(200, 60, 60))
        for t, v, r in zip(tokens, values, rungs, strict=True):
            x, y = xy(t, v)
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill="black")
            # only the rung's budget by the point, so close points keep clear labels; the
            # values are listed under the title
            text((x, y - 7), f"{r['cpu_minutes_target']:g}", fill="black", anchor="ms")
        text((left, 20), "CPU-min: " + ", ".join(
            f"{r['cpu_minutes_target']:g}: {v:.3g}" for v, r in zip(values, rungs, strict=True)),
            fill="black")
        text((left, bottom + 8), f"{tokens.min():.2g}", fill="black")
        text((right - 40, bottom + 8), f"{tokens.max():.2g}", fill="black")
        text((left + panel_width // 2 - 30, bottom + 24), "tokens seen", fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="train and evaluate the rungs")
    run_parser.add_argument("--out", required=True)
    run_parser.add_argument("--cpu-minutes", type=float, nargs="+", default=[2.5, 10, 40, 80])
    run_parser.add_argument("--steps-per-cpu-minute", type=float, required=True,
                            help="measured on this machine, e.g. from a demo run's train time")
    run_parser.add_argument("--steps-per-epoch", type=int, default=100,
                            help="checkpoint interval (steps)")
    run_parser.add_argument("--feature_weights", required=True,
                            help="tools/train_shapes_classifier.py --codec_quality 75 output")
    run_parser.add_argument("--gin_file", action="append", help="default: the quickstart files")
    run_parser.add_argument("--gin_bindings", action="append")
    run_parser.add_argument("--num_images", type=int, default=200)
    run_parser.add_argument("--num_samples", type=int, default=200)
    run_parser.add_argument("--twin", action="store_true",
                            help="the class-conditional twin of each rung (see the docstring)")
    report_parser = commands.add_parser("report", help="table, fits and figure")
    report_parser.add_argument("--out", required=True)
    report_parser.add_argument("--figure", help="PNG path for the figure")
    report_parser.add_argument("--grids", help="folder for each rung's samples grid")
    report_parser.add_argument("--grid-rows", type=int, default=2,
                               help="rows of 8 samples kept in each grid")
    args = parser.parse_args(argv)
    run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    main()
