"""Bits per subpixel (bpd) of whole sequences, with its breakdowns (docs/design.md §7, paper Fig. 9).

bpd = total NLL of a sequence (all chunks, EOS included) in bits / (3·h·w of the content).
Reported in total, per component (channel, position, value) and per chunk index; bits per
image ride along for the compression view (model bits against JPEG's).
"""

import math

import numpy as np
import tensorflow as tf

from dctformer_tf.dct.order import channel_bands, channel_components
from dctformer_tf.evaluation.likelihood import sequence_nll
from dctformer_tf.model.losses import COMPONENTS

NAMES = ("Y", "Cb", "Cr")  # colour components, in `channel_components`' order


def evaluate_bpd(model, codec, sequences: tf.data.Dataset, chunk_size: int, overlap: int,
                 batch_size: int = 8) -> dict:
    """Evaluate bpd over a dataset of encoded sequences (`data.pipeline.encode_dataset`).

    Returns:
      {"bpd": float, "bpd_channel"/"bpd_position"/"bpd_value": float,
       "bpd_per_chunk": list[float] (bits of chunk k / all subpixels, sums to bpd),
       "bpd_per_chunk_channel"/"_position"/"_value": list[float], the same per component
         (each sums over chunks to its component's bpd; the three sum to bpd_per_chunk),
       "bits_per_image": np.float64 [N], "num_images": int,
       "bits_by_band": {"<band>/<Y|Cb|Cr>" or "EOS": {"elements": int, "channel",
         "position", "value", "total": bits per element}}, where the bits go by frequency
         band and colour component of the elements' channels,
       "dc_bits_per_cell": {"Y", "Cb", "Cr": all bits of the component's band-0 elements
         over its DC cells (G² for Y, (G/2)² for chroma, per image): what the MED
         predictor's entropy, `placement.med_dc_bits`, compares with}}
    """
    bands = channel_bands(codec.order, codec.block_size)
    components = channel_components(codec.order, codec.block_size)
    num_bands = int(bands.max()) + 1
    group_of = np.append(bands * 3 + components, num_bands * 3)  # EOS: its own group
    groups = {name: np.zeros(num_bands * 3 + 1) for name in COMPONENTS}
    elements = np.zeros(num_bands * 3 + 1)
    score = tf.function(
        lambda batch: sequence_nll(model, codec, batch["triples"], batch["length"],
                                   batch["label"], chunk_size, overlap)
    )
    bits = {name: 0.0 for name in COMPONENTS}
    per_chunk, per_image, subpixels = None, [], 0
    per_chunk_parts = {}  # component -> float64 [num_chunks] bits
    for batch in sequences.batch(batch_size):
        nll = {name: value.numpy() / math.log(2.0) for name, value in score(batch).items()}
        element_bits = sum(nll.values())  # [B, L_max]
        if per_chunk is None:
            per_chunk = np.zeros(math.ceil(element_bits.shape[1] / chunk_size))
            per_chunk_parts = {name: np.zeros_like(per_chunk) for name in COMPONENTS}
        chunk_of = np.arange(element_bits.shape[1]) // chunk_size  # [L_max]
        for name in COMPONENTS:
            bits[name] += float(nll[name].sum())
            per_chunk_parts[name] += np.bincount(chunk_of, weights=nll[name].sum(axis=0),
                                                 minlength=len(per_chunk))
        per_chunk += np.bincount(chunk_of, weights=element_bits.sum(axis=0),
                                 minlength=len(per_chunk))
        per_image.extend(element_bits.sum(axis=1).tolist())
        channel = batch["triples"].numpy()[..., 0]
        real = np.arange(channel.shape[1])[None, :] < batch["length"].numpy()[:, None]
        group = group_of[np.where(real, channel, 0)][real]
        elements += np.bincount(group, minlength=len(elements))
        for name in COMPONENTS:
            groups[name] += np.bincount(group, weights=nll[name][real], minlength=len(elements))
        hw = batch["content_hw"].numpy()
        subpixels += int((3 * hw[:, 0] * hw[:, 1]).sum())
    if not subpixels:
        raise ValueError("evaluate_bpd: the dataset is empty")
    result = {f"bpd_{name}": bits[name] / subpixels for name in COMPONENTS}
    result["bpd"] = sum(bits.values()) / subpixels
    last = int(np.flatnonzero(per_chunk)[-1]) + 1 if per_chunk.any() else 0
    result["bpd_per_chunk"] = (per_chunk[:last] / subpixels).tolist()
    for name in COMPONENTS:  # NLLs are >= 0: where the total is 0, so is every part
        result[f"bpd_per_chunk_{name}"] = (per_chunk_parts[name][:last] / subpixels).tolist()
    result["bits_per_image"] = np.array(per_image)
    result["num_images"] = len(per_image)
    result["bits_by_band"] = {}
    for index in np.flatnonzero(elements):
        key = "EOS" if index == num_bands * 3 else f"{index // 3}/{NAMES[index % 3]}"
        per_element = {name: float(groups[name][index] / elements[index]) for name in COMPONENTS}
        per_element["total"] = sum(per_element.values())
        result["bits_by_band"][key] = {"elements": int(elements[index]), **per_element}
    grid = codec.grid[0] if codec.grid else None
    if grid:
        cells = {"Y": grid * grid, "Cb": (grid // 2) ** 2, "Cr": (grid // 2) ** 2}
        result["dc_bits_per_cell"] = {
            name: float(sum(groups[h][i] for h in COMPONENTS) / (cells[name] * len(per_image)))
            for i, name in enumerate(NAMES)}
    return result
