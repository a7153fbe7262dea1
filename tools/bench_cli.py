"""Start-up time of the command line, side by side in one run: `dctformer --help` and every
sub-command's `--help` against `python -c "import tensorflow"` (the least a command that imports
TensorFlow at start-up would cost), and a bare `python -c pass`. Each is a fresh interpreter;
the figure is the median wall time of --repeats runs, in the order listed.

Usage: python tools/bench_cli.py [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from dctformer_tf.cli.main import build_parser  # noqa: E402


def command_names() -> list:
    subparsers = [action for action in build_parser()._actions
                  if isinstance(action, argparse._SubParsersAction)]
    return list(subparsers[0].choices)


def median_seconds(argv: list, repeats: int, env: dict) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()}")
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per row (median)")
    args = parser.parse_args()

    # This checkout's code, and TensorFlow's C++ logging as a user's shell has it.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    cli = [sys.executable, "-m", "dctformer_tf.cli.main"]
    rows = [("python -c 'import tensorflow'", [sys.executable, "-c", "import tensorflow"]),
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("dctformer --help", [*cli, "--help"])]
    rows += [(f"dctformer {name} --help", [*cli, name, "--help"]) for name in command_names()]

    seconds = {label: median_seconds(argv, args.repeats, env) for label, argv in rows}
    baseline = seconds[rows[0][0]]
    width = max(len(label) for label, _ in rows)
    print(f"{sys.executable}, median of {args.repeats} runs each\n")
    print(f"{'command':<{width}}  {'seconds':>8}  {'/ import tensorflow':>19}")
    for label, _ in rows:
        print(f"{label:<{width}}  {seconds[label]:8.3f}  {seconds[label] / baseline:19.3f}")


if __name__ == "__main__":
    main()
