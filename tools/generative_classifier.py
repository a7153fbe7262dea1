"""Does a class-conditional run use its label? Scores held-out images under every class and
classifies each by Bayes' rule (`dctformer_tf.evaluation.generative_classifier`). Chance
(1/K) means the model ignores the label; a run whose samples follow the label must score
well here first. No sampling, so it is cheap enough to run on every checkpoint.

    python tools/generative_classifier.py --model_dir outputs/class_conditional --num 150
    python tools/generative_classifier.py --model_dir outputs/class_conditional \
      --checkpoint outputs/class_conditional/checkpoints/ckpt-500 --out report.json
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from dctformer_tf.cli.common import add_run_arguments  # noqa: E402
from dctformer_tf.evaluation.generative_classifier import (  # noqa: E402
    class_bits,
    generative_classification,
)
from dctformer_tf.evaluation.report import load_split, run_data  # noqa: E402
from dctformer_tf.runs import load_trained_model, resolve_checkpoint  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--source", default=None,
                        help="data source (default: the one the run's run.json records)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--num", type=int, default=150, help="held-out images to score")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    args = parser.parse_args(argv)
    checkpoint = resolve_checkpoint(args.model_dir, args.checkpoint)  # named in the report
    model, run = load_trained_model(args.model_dir, checkpoint)
    codec = run.codec
    if not model.num_classes:
        raise SystemExit(f"{args.model_dir}: not a class-conditional run (num_classes = 0)")
    source, source_kwargs = run_data(args.model_dir, args.source)
    images, labels = load_split(source, args.split, args.num, codec.resolution, **source_kwargs)
    start = time.perf_counter()
    bits = class_bits(model, codec, images, run.chunking.chunk_size, run.chunking.overlap,
                      run.max_length, args.batch_size)
    report = generative_classification(bits, labels)
    report.update(model_dir=args.model_dir, checkpoint=checkpoint, source=source,
                  split=args.split, mean_bits=float(bits.mean()),
                  seconds=round(time.perf_counter() - start, 1))
    per_class = " ".join("n/a" if a is None else f"{a:.2f}"
                         for a in report["per_class_accuracy"])
    print(f"generative classifier on {report['num_images']} {source} {args.split} images: "
          f"accuracy {report['accuracy']:.3f} (chance {1 / model.num_classes:.3f}), per class "
          f"{per_class}; true label's gain over the best wrong one "
          f"{report['mean_gain_bits']:.2f} bits per image", flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
