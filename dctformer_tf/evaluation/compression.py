"""The compression view (docs/design.md §7): a likelihood model of the sparse sequences is a learned
entropy coder of JPEG's own quantized coefficients, so its bits per image compare directly
with the entropy-coded scan data of a JPEG of the same pixels at the same quality (Pillow,
Huffman tables optimized, headers and tables excluded).
"""

import dataclasses

import numpy as np

from dctformer_tf.evaluation.jpeg import entropy_coded_size, jpeg_bytes


def compression_report(model_bits, images, codec) -> dict:
    """Model bits per image against JPEG's entropy-coded bits of the same images.

    Args:
      model_bits: float [N] model bits of each image's whole sequence (`evaluate_bpd`'s
        `bits_per_image`, in the same image order).
      images: N uint8 [H, W, 3] images (an array [N, H, W, 3] or a list of differing sizes).
      codec: the `SparseCodec` of the sequences; the JPEG gets `codec.content_pixels(image)`
        (the pixels the sequence stands for) at `codec.quality`.
    Returns:
      {"per_image": {"model_bits", "jpeg_bits", "ratio" (model / JPEG), "model_bpd",
                     "jpeg_bpd" (bits over the 3·h·w subpixels of the content): float64 [N]},
       "model_bits_per_image", "jpeg_entropy_coded_bits_per_image": float means,
       "model_over_jpeg": float, total model bits / total JPEG bits (the set's ratio),
       "mean_ratio": float, mean of the per-image ratios,
       "model_bpd", "jpeg_bpd": float, total bits / total subpixels,
       "clipped_values": int, coefficients of these images beyond ±codec.clip. The model
         coded the clipped values, so the comparison is exact only when this is 0 (always
         so when codec.clip >= codec.max_magnitude).}
    """
    if not len(images):
        raise ValueError("compression_report: no images")
    model_bits = np.asarray(model_bits, np.float64)
    if model_bits.ndim != 1 or len(model_bits) != len(images):
        raise ValueError(
            f"compression_report: model_bits has shape {model_bits.shape}, expected one "
            f"value for each of the {len(images)} images"
        )
    jpeg_bits, subpixels = np.empty(len(images)), np.empty(len(images))
    clipped = 0
    # The same codec without clipping: what JPEG itself quantizes.
    unclipped = dataclasses.replace(codec, clip=max(codec.clip, codec.max_magnitude))
    for i, image in enumerate(images):
        pixels = codec.content_pixels(image, name=f"image {i}")  # uint8 [h, w, 3]
        jpeg_bits[i] = 8 * entropy_coded_size(jpeg_bytes(pixels, codec.quality))
        subpixels[i] = pixels.size
        if unclipped.clip > codec.clip:
            dense, _ = unclipped.encode_dense(image, name=f"image {i}")
            clipped += int(np.count_nonzero(np.abs(dense) > codec.clip))
    return {
        "per_image": {
            "model_bits": model_bits,
            "jpeg_bits": jpeg_bits,
            "ratio": model_bits / jpeg_bits,
            "model_bpd": model_bits / subpixels,
            "jpeg_bpd": jpeg_bits / subpixels,
        },
        "model_bits_per_image": float(model_bits.mean()),
        "jpeg_entropy_coded_bits_per_image": float(jpeg_bits.mean()),
        "model_over_jpeg": float(model_bits.sum() / jpeg_bits.sum()),
        "mean_ratio": float(np.mean(model_bits / jpeg_bits)),
        "model_bpd": float(model_bits.sum() / subpixels.sum()),
        "jpeg_bpd": float(jpeg_bits.sum() / subpixels.sum()),
        "clipped_values": clipped,
    }
