"""A folder of natural photo crops at a given size, for `dctformer lengths` and other
measurements that need photos offline.

The photos are the six that scikit-image ships (dctformer_tf/data/photos.py: astronaut, coffee, chelsea,
rocket, hubble_deep_field, retina), cropped at random, square. The smallest photo is 300 px
high, so a crop is at most 300 px (`--crop`); a larger `--size` is reached by resizing the
crop up with Pillow (Lanczos). Upscaled crops lack the fine detail of photos taken at that
size: their sequences are shorter than those of native photos. `--whole` writes the six photos
as they are instead (300 to 1411 px), for a check with less upscaling.

Usage: python tools/photo_folder.py --size 384 --num 60 --out /tmp/photos_384
       python tools/photo_folder.py --whole --out /tmp/photos_whole
"""

import argparse
import os
import sys

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from dctformer_tf.data.photos import MAX_CROP, PHOTOS, photo_canvases  # noqa: E402


def write_photo_folder(out: str, size: int, num: int, crop: int = MAX_CROP,
                       seed: int = 0) -> list[str]:
    """Writes `num` PNGs of `size`² pixels to `out` (`dctformer_tf.data.photos.photo_canvases`: crops of
    min(size, crop) pixels, resized up to `size` with Lanczos when smaller). Returns their
    paths."""
    canvases = photo_canvases(size, num, seed, crop)
    os.makedirs(out, exist_ok=True)
    paths = []
    for i, pixels in enumerate(canvases):
        paths.append(os.path.join(out, f"photo_{i:04d}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths


def write_whole_photos(out: str) -> list[str]:
    """Writes the six photos of dctformer_tf/data/photos.py, uncropped, as PNGs to `out`; returns their
    paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in PHOTOS:
        paths.append(os.path.join(out, f"{name}.png"))
        Image.fromarray(np.asarray(getattr(skdata, name)())[..., :3]).save(paths[-1])
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="image side in pixels")
    parser.add_argument("--whole", action="store_true",
                        help="the six photos as they are (no --size, --num, --crop)")
    parser.add_argument("--num", type=int, default=60, help="how many images")
    parser.add_argument("--crop", type=int, default=MAX_CROP,
                        help=f"largest crop side before resizing up (at most {MAX_CROP})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    parser.add_argument("--out", required=True, help="the folder to write")
    args = parser.parse_args(argv)
    if args.whole:
        print(f"{len(write_whole_photos(args.out))} whole photos -> {args.out}")
        return 0
    if args.size is None:
        parser.error("give --size (or --whole)")
    paths = write_photo_folder(args.out, args.size, args.num, args.crop, args.seed)
    side = min(args.size, args.crop)
    resized = f", resized up to {args.size} px with Lanczos" if side < args.size else ""
    print(f"{len(paths)} crops of {side} px{resized} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
