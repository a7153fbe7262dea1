"""Trains the `shapes` classifier behind the offline FID/sFID/precision-recall features and
prints its training time and test accuracy.

    python tools/train_shapes_classifier.py --out outputs/shapes_classifier.keras
    python tools/train_shapes_classifier.py --image_size 32 --codec_quality 75 \
      --out outputs/shapes_classifier_32.keras

Its accuracy and training time are in docs/results.md ("Sample quality"). With
`--codec_quality Q` half of each epoch's images come through a quality-Q round trip of the
codec, as samples do, and the test accuracy is also printed on test images so coded: use it
for the class accuracy of samples (tools/class_conditional_accuracy.py).
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dctformer_tf.evaluation.shapes_classifier import (  # noqa: E402
    load_shapes_classifier,
    shapes_codec,
    split_accuracy,
    train_shapes_classifier,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/shapes_classifier.keras")
    parser.add_argument("--num_train", type=int, default=10000, help="shapes train images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_test", type=int, default=2000, help="shapes test images")
    parser.add_argument("--verbose", type=int, default=2, help="Keras fit verbosity")
    parser.add_argument("--image_size", type=int, default=64,
                        help="side the shapes are drawn at (32 for the 32² class-conditional run)")
    parser.add_argument("--codec_quality", type=int, default=None,
                        help="also train on images round-tripped through the codec at this "
                             "JPEG quality (75 for the shapes runs)")
    args = parser.parse_args(argv)
    print(f"Training the shapes classifier on {args.num_train} images, {args.epochs} epochs...",
          flush=True)
    result = train_shapes_classifier(args.out, num_train=args.num_train, epochs=args.epochs,
                                     seed=args.seed, verbose=args.verbose,
                                     image_size=args.image_size,
                                     codec_quality=args.codec_quality)
    model = load_shapes_classifier(args.out)
    accuracy = split_accuracy(model, num=args.num_test)
    print(f"train time {result['train_seconds']:.1f} s (data generation included), "
          f"{model.count_params()} parameters")
    print(f"test accuracy {accuracy:.4f} on {args.num_test} shapes test images")
    if args.codec_quality is not None:
        codec = shapes_codec(args.image_size, args.codec_quality)
        coded = split_accuracy(model, num=args.num_test, codec=codec)
        print(f"test accuracy {coded:.4f} on the same images through the codec "
              f"(quality {args.codec_quality})")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
