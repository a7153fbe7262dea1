"""`dctformer encode | decode | show`: the sparse DCT codec from the command line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dctformer_tf.cli.flag_defaults import CODEC, ORDERS, VALUE_ENCODINGS

if TYPE_CHECKING:
    from dctformer_tf.dct import SparseCodec


def add_codec_arguments(parser, resolution_required: bool = False):
    """The codec's flags; `resolution_required` for commands whose numbers depend on the canvas
    (sequence lengths)."""
    parser.add_argument("--quality", type=int, default=CODEC["quality"],
                        help="IJG quality in [1, 100]")
    parser.add_argument("--block-size", type=int, default=CODEC["block_size"],
                        help="DCT block size: 8, 16 or 32")
    parser.add_argument("--clip", type=int, default=None,
                        help="value clip (default: 1200, 3200, 4000 for S = 8, 16, 32)")
    parser.add_argument("--order", default=CODEC["order"],
                        help="channel order: " + " | ".join(ORDERS))
    parser.add_argument("--value-encoding", default=CODEC["value_encoding"],
                        help=" | ".join(VALUE_ENCODINGS))
    if resolution_required:
        parser.add_argument("--resolution", type=int, required=True,
                            help="canvas side R (long side resized to R)")
    else:
        parser.add_argument("--resolution", type=int, default=None,
                            help="canvas side R (long side resized to R); default: keep the size")


DEFAULT_CLIP = {8: 1200, 16: 3200, 32: 4000}


def codec_from_args(args) -> SparseCodec:
    from dctformer_tf.dct import SparseCodec

    clip = args.clip if args.clip is not None else DEFAULT_CLIP.get(args.block_size, 1200)
    return SparseCodec(block_size=args.block_size, quality=args.quality, clip=clip,
                       order=args.order, value_encoding=args.value_encoding,
                       resolution=args.resolution)


def add_parsers(subparsers):
    encode = subparsers.add_parser("encode", help="image -> sparse DCT sequence (.npz)")
    encode.add_argument("image")
    encode.add_argument("--out", required=True, help="output .npz")
    add_codec_arguments(encode)
    encode.set_defaults(run=run_encode)

    decode = subparsers.add_parser("decode", help="sparse DCT sequence (.npz) -> image")
    decode.add_argument("npz")
    decode.add_argument("--out", required=True, help="output image (.png)")
    decode.add_argument("--prefix", type=int, default=None,
                        help="decode only the first N elements of the sequence")
    decode.set_defaults(run=run_decode)

    show = subparsers.add_parser("show", help="progressive-decoding strip of an image")
    show.add_argument("image")
    show.add_argument("--out", required=True, help="output figure (.png)")
    add_codec_arguments(show)
    show.set_defaults(run=run_show)


def run_encode(args):
    from dctformer_tf.data.image_io import load_image
    from dctformer_tf.dct.sequence_file import save_sequence

    codec = codec_from_args(args)
    triples, (h, w) = codec.encode_with_size(load_image(args.image), name=args.image)
    _make_parent(args.out)
    save_sequence(args.out, triples, (h, w), codec)
    print(f"{args.image}: {h}x{w}, {len(triples)} triples (EOS included) -> {args.out}")


def run_decode(args):
    from PIL import Image

    from dctformer_tf.dct.sequence_file import load_sequence

    codec, triples, (h, w) = load_sequence(args.npz)
    if args.prefix is not None:
        triples = triples[: args.prefix]
    pixels = codec.decode(triples, h, w)
    _make_parent(args.out)
    Image.fromarray(pixels).save(args.out)
    print(f"{args.npz}: {len(triples)} triples -> {h}x{w} image {args.out}")


def run_show(args):
    from PIL import Image

    from dctformer_tf.data.image_io import load_image
    from dctformer_tf.dct.progressive import progressive_strip
    from dctformer_tf.evaluation.jpeg import jpeg_bits_per_pixel

    codec = codec_from_args(args)
    image = load_image(args.image)
    triples, (h, w) = codec.encode_with_size(image, name=args.image)
    strip, lengths = progressive_strip(codec, triples, h, w)
    _make_parent(args.out)
    Image.fromarray(strip).save(args.out)
    bpp = jpeg_bits_per_pixel(codec.content_pixels(image), codec.quality)
    print(f"{args.image}: {h}x{w}, sequence length {len(triples)} (EOS included), "
          f"{len(triples) / (h * w):.3f} elements/pixel; JPEG q={codec.quality} (4:2:0, optimized) "
          f"{bpp:.3f} bits/pixel; strip of prefixes {lengths} -> {args.out}")


def _make_parent(path: str):
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
