"""Does a class-conditional `shapes` run draw the class it is asked for? (issue: conditional
generation). Samples `--num_per_class` images of each class, classifies them with the
`shapes` classifier (tools/train_shapes_classifier.py), and prints the accuracy per class
next to the classifier's accuracy on real test images at the run's resolution, clean and
round-tripped through the run's codec. The coded figure is the ceiling: a perfect model
draws images as they come out of the codec.

    python tools/train_shapes_classifier.py --image_size 32 --codec_quality 75 \
      --out outputs/shapes_classifier_32.keras
    python tools/class_conditional_accuracy.py --model_dir outputs/class_conditional \
      --classifier outputs/shapes_classifier_32.keras --out outputs/class_conditional_eval

Use a classifier trained at the run's resolution (32² for class_conditional_shapes.gin) and
with `--codec_quality`: one trained on clean renders only calls coded images "square".
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dctformer_tf.cli.common import add_run_arguments  # noqa: E402
from dctformer_tf.data.shapes import SHAPE_CLASSES, shapes_arrays  # noqa: E402
from dctformer_tf.dct import codec_round_trip  # noqa: E402
from dctformer_tf.evaluation.shapes_classifier import classify, load_shapes_classifier  # noqa: E402
from dctformer_tf.runs import resolve_checkpoint  # noqa: E402
from dctformer_tf.sampling import Sampler, SamplingSettings  # noqa: E402
from dctformer_tf.sampling.figures import image_grid  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--classifier", required=True, help=".keras file of the classifier")
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_per_class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--num_real", type=int, default=1000,
                        help="real test images for the classifier's own accuracy")
    parser.add_argument("--max_chunks", type=int, default=None,
                        help="stop each sample after this many chunks (default: no limit)")
    parser.add_argument("--no_jit", action="store_true", help="sample without XLA")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    classifier = load_shapes_classifier(args.classifier)
    checkpoint = resolve_checkpoint(args.model_dir, args.checkpoint)  # named in the report
    sampler = Sampler.from_model_dir(args.model_dir, checkpoint,
                                     jit_compile=not args.no_jit)
    if sampler.model.num_classes != len(SHAPE_CLASSES):
        raise SystemExit(f"{args.model_dir}: not a {len(SHAPE_CLASSES)}-class run "
                         f"(num_classes = {sampler.model.num_classes})")
    resolution = sampler.codec.resolution
    real, labels = shapes_arrays("test", args.num_real, size=resolution)
    real_accuracy, coded_accuracy = (
        {name: float(np.mean(classify(classifier, images[labels == k]) == k))
         for k, name in enumerate(SHAPE_CLASSES)}
        for images in (real, codec_round_trip(real, sampler.codec)))
    settings = SamplingSettings.uniform(temperature=args.temperature, top_p=args.top_p)
    report = {"model_dir": args.model_dir, "checkpoint": checkpoint,
              "temperature": args.temperature,
              "top_p": args.top_p, "real_test_accuracy": real_accuracy,
              "real_coded_test_accuracy": coded_accuracy, "samples": {}}
    rows = []
    for k, name in enumerate(SHAPE_CLASSES):
        start = time.perf_counter()
        result = sampler.sample(args.num_per_class, args.seed + k, settings,
                                batch_size=args.batch_size, max_chunks=args.max_chunks,
                                label=k)
        images = np.stack(result.images)
        predicted = classify(classifier, images)
        report["samples"][name] = {
            "accuracy": float(np.mean(predicted == k)),
            "predicted_counts": np.bincount(predicted, minlength=3).tolist(),
            "mean_length": float(result.length.mean()),
            "seconds": round(time.perf_counter() - start, 1),
        }
        rows.extend(list(images[:8]))
        print(f"{name:9s} samples classified as {name}: "
              f"{report['samples'][name]['accuracy']:.3f} (real test images: "
              f"{real_accuracy[name]:.3f}, through the codec: {coded_accuracy[name]:.3f})",
              flush=True)
    Image.fromarray(image_grid(rows, 8)).save(os.path.join(args.out, "samples_by_class.png"))
    with open(os.path.join(args.out, "class_accuracy.json"), "w") as f:
        json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
