"""A small CNN that names the largest shape of a `shapes` image (circle, square, triangle).

It gives offline feature-based metrics (FID, sFID, precision/recall through
`features.ShapesClassifierFeatures`) a network that knows these images, and a class-accuracy
check of class-conditional samples. Trained by `tools/train_shapes_classifier.py`.

Samples are decoded DCT sequences: JPEG-quality blur, ringing and 4:2:0 chroma. A classifier
trained on clean renders only calls most of those "square", even real images round-tripped
through the codec (docs/results.md, class-conditional generation), so the class-accuracy
check uses one trained with `codec_quality`, on a mix of clean and codec round-tripped images.

Layers named here are read by `ShapesClassifierFeatures`: `POOL_LAYER` (the 256-d
penultimate features) and `SPATIAL_LAYER` (the mid-level 8×8×64 map of block 2).
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from dctformer_tf.data.shapes import SHAPE_CLASSES, shapes_arrays
from dctformer_tf.dct import SparseCodec, codec_round_trip

IMAGE_SIZE = 64
POOL_LAYER = "pool"
SPATIAL_LAYER = "block2_pool"


def build_shapes_classifier(image_size: int = IMAGE_SIZE) -> keras.Model:
    """The CNN: uint8-valued [B, S, S, 3] in, class logits [B, 3] out (about 190k params).

    Shapes have random colours on random gradients, so a shape's outline is an edge of any
    colour and either sign. A fixed (untrained) layer of horizontal and vertical pixel
    differences, split into positive and negative parts, hands the network edges of every
    polarity, which shortens the steps spent at chance before learning starts.
    A 64² image is then averaged down 2× (shapes cover at least 2 % of it, so 32×32 still
    shows them and every conv costs 4× less); a 32² one is used whole, since averaging it
    down to 16² costs accuracy. Four conv + batch-norm blocks
    (32×32 -> 16 -> 8 -> 4) end in 128 channels whose global average and global max are
    concatenated into the 256-d penultimate features. The max picks the strongest shape
    evidence anywhere and also shortens the start at chance; the average keeps the area
    evidence that decides which shape is the largest. The runs behind these choices are in
    docs/results.md (sample quality).
    """
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    differences = keras.layers.DepthwiseConv2D(2, depth_multiplier=2, padding="same",
                                               use_bias=False, trainable=False, name="edges")
    edges = differences(x)  # [B, S, S, 6]: per colour, x[i, j+1] − x[i, j], x[i+1, j] − x[i, j]
    kernel = np.zeros((2, 2, 3, 2), np.float32)  # [kh, kw, colour, direction]
    kernel[0, 0] = -1.0
    kernel[0, 1, :, 0] = 1.0
    kernel[1, 0, :, 1] = 1.0
    differences.set_weights([kernel])
    x = keras.layers.Concatenate(name="image_and_edges")([
        x,
        keras.layers.ReLU(name="rising_edges")(edges),
        keras.layers.ReLU(name="falling_edges")(keras.layers.Rescaling(-1.0, name="negate")(edges)),
    ])  # [B, S, S, 15]
    if image_size > 32:  # 64² inputs are averaged down to 32²; 32² ones are kept whole
        x = keras.layers.AveragePooling2D(image_size // 32, name="downsample")(x)  # [B, 32, 32, 15]
    for i, filters in enumerate((32, 64, 96, 128), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                name=f"block{i}_conv")(x)
        # Momentum 0.9: the moving statistics must be right after a few hundred steps.
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"block{i}_norm")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        if i < 4:
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)  # halves the side
    pooled = [keras.layers.GlobalAveragePooling2D(name="average")(x),
              keras.layers.GlobalMaxPooling2D(name="max")(x)]
    x = keras.layers.Concatenate(name=POOL_LAYER)(pooled)  # [B, 256]
    logits = keras.layers.Dense(len(SHAPE_CLASSES), name="logits")(x)
    return keras.Model(inputs, logits, name="shapes_classifier")


def train_shapes_classifier(out_path: str, num_train: int = 10000, epochs: int = 4,
                            seed: int = 0, batch_size: int = 32, verbose: int = 0,
                            image_size: int = IMAGE_SIZE,
                            codec_quality: int | None = None) -> dict:
    """Trains the classifier on the first `num_train` shapes train images; saves `out_path`.

    Flips and quarter turns augment the data for free: none of them changes a shape's class.
    The defaults make 1250 steps (10,000 images × 4 epochs / batch 32). `image_size` is the
    side the images are drawn at (and the input size): a classifier for 32² runs sees shapes
    rasterised at 32² rather than 64² images resized down. With `codec_quality`, each epoch
    shows a random half of the images as they come back from `codec_round_trip` at that
    quality (8×8 blocks), the domain of a model's samples; the other half clean.

    Returns:
      {"train_seconds": float, "num_train": int, "epochs": int, "path": str}
    """
    if not out_path.endswith(".keras"):
        raise ValueError(f"train_shapes_classifier: out_path must end in .keras, got {out_path!r}")
    keras.utils.set_random_seed(seed)
    start = time.time()
    images, labels = shapes_arrays("train", num_train, size=image_size)
    coded = None
    if codec_quality is not None:
        coded = codec_round_trip(images, shapes_codec(image_size, codec_quality))
    model = build_shapes_classifier(image_size)
    steps = epochs * -(-num_train // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        shown = images
        if coded is not None:
            half = rng.random(len(images)) < 0.5
            shown = np.where(half[:, None, None, None], coded, images)
        model.fit(_augment(shown, rng), labels, batch_size=batch_size, epochs=1, shuffle=True,
                  verbose=verbose)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    model.save(out_path)
    return {"train_seconds": time.time() - start, "num_train": num_train, "epochs": epochs,
            "path": out_path}


def load_shapes_classifier(path: str) -> keras.Model:
    """Loads a classifier saved by `train_shapes_classifier`.

    Raises:
      FileNotFoundError: no file at `path` (naming the tool that writes it).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"shapes classifier: no file {path!r}; train one with "
            f"`python tools/train_shapes_classifier.py --out {path}`"
        )
    return keras.models.load_model(path)


def classify(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 [N, s, s, 3] -> int64 [N] class ids (indices into `SHAPE_CLASSES`); square
    images of another size than the classifier's input are resized (bilinear)."""
    images = _check_images(resize_to_input(images, model), model)
    logits = model.predict(images, batch_size=batch_size, verbose=0)  # [N, 3]
    return np.argmax(logits, axis=-1)


def resize_to_input(images, model: keras.Model) -> np.ndarray:
    """uint8 [N, s, s, 3] -> uint8 at the model's square input size (bilinear), or as is."""
    images = np.asarray(images)
    size = model.input_shape[1]
    # Only square images of another size: anything else is left for the shape check.
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[1] == size:
        return images
    resized = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8).numpy()


def split_accuracy(model: keras.Model, split: str = "test", num: int = 2000,
                   start: int = 0, codec: SparseCodec | None = None) -> float:
    """Accuracy on examples `start ... start + num − 1` of a shapes split, drawn at the
    classifier's input size (and round-tripped through `codec` when given)."""
    images, labels = shapes_arrays(split, num, start=start, size=model.input_shape[1])
    if codec is not None:
        images = codec_round_trip(images, codec)
    return float(np.mean(classify(model, images) == labels))


def shapes_codec(image_size: int, quality: int) -> SparseCodec:
    """The codec of the shapes runs at `image_size`: 8×8 blocks, `quality`, no resize."""
    return SparseCodec(block_size=8, quality=quality, resolution=image_size)


def _augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 flips/quarter turns of each image: uint8 [N, S, S, 3]."""
    out = images.copy()
    turns = rng.integers(0, 4, len(images))
    flips = rng.integers(0, 2, len(images)).astype(bool)
    out[flips] = out[flips, :, ::-1]
    for k in range(1, 4):
        out[turns == k] = np.rot90(out[turns == k], k, axes=(1, 2))
    return out


def _check_images(images, model: keras.Model) -> np.ndarray:
    images = np.asarray(images)
    expected = tuple(model.input_shape[1:])
    if images.ndim != 4 or images.shape[1:] != expected:
        raise ValueError(
            f"shapes classifier: images must be [N, {', '.join(map(str, expected))}], "
            f"got shape {images.shape}"
        )
    return images
