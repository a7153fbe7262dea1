"""The embedded `shapes` data: deterministic, disjoint splits, and labels checked independently.

The label check redraws every shape with Pillow's `ImageDraw` (4× supersampled) from the scene
parameters, so it shares no rasterisation code with the generator.
"""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dctformer_tf.data.shapes import (
    MIN_AREA_RATIO,
    SHAPE_CLASSES,
    SPLIT_SEEDS,
    Shape,
    render_shapes,
    sample_scene,
    shape_mask,
    shapes_arrays,
    split_seed_range,
)

SIZE = 64
SUPERSAMPLE = 4
NUM_CHECKED = 300


def pillow_coverage(shape: Shape, size: int = SIZE) -> np.ndarray:
    """Fraction of each pixel the shape covers, drawn by Pillow: float [size, size]."""
    canvas = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE))
    draw = ImageDraw.Draw(canvas)
    (cx, cy), r, s = shape.center, shape.radius, SUPERSAMPLE
    if SHAPE_CLASSES[shape.kind] == "circle":
        draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=1)
    else:
        sides = {"square": 4, "triangle": 3}[SHAPE_CLASSES[shape.kind]]
        angles = shape.angle + 2 * np.pi * np.arange(sides) / sides
        draw.polygon([((cx + r * np.cos(a)) * s, (cy + r * np.sin(a)) * s) for a in angles], fill=1)
    supersampled = np.asarray(canvas, dtype=np.float64)
    return supersampled.reshape(size, s, size, s).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def checked():
    """(scene, image, label) for the first NUM_CHECKED training seeds."""
    out = []
    for seed in range(NUM_CHECKED):
        image, label = render_shapes(seed)
        out.append((sample_scene(seed), image, label))
    return out


def test_image_format():
    image, label = render_shapes(0)
    assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
    assert isinstance(label, int) and 0 <= label < len(SHAPE_CLASSES)
    assert render_shapes(0, size=32)[0].shape == (32, 32, 3)


def test_same_seed_same_image():
    first, label = render_shapes(1234)
    again, label_again = render_shapes(1234)
    np.testing.assert_array_equal(first, again)
    assert label == label_again == sample_scene(1234).label
    scene, again_scene = sample_scene(1234), sample_scene(1234)
    np.testing.assert_array_equal(scene.corner_colors, again_scene.corner_colors)
    assert scene.shapes == again_scene.shapes


def test_different_seeds_differ(checked):
    images = np.stack([image for _, image, _ in checked[:50]])
    flat = images.reshape(len(images), -1)
    assert len(np.unique(flat, axis=0)) == len(images)


def test_splits_are_disjoint():
    (train_lo, train_hi), (test_lo, test_hi) = SPLIT_SEEDS["train"], SPLIT_SEEDS["test"]
    assert train_hi <= test_lo or test_hi <= train_lo
    assert split_seed_range("test", 3, start=2) == (test_lo + 2, test_lo + 5)
    assert split_seed_range("train") == (train_lo, train_hi)
    train = shapes_arrays("train", 100)[0].reshape(100, -1)
    test = shapes_arrays("test", 100)[0].reshape(100, -1)
    shared = {row.tobytes() for row in train} & {row.tobytes() for row in test}
    assert not shared, "train and test splits share images"


def test_split_errors():
    with pytest.raises(
        ValueError, match=r"unknown split 'validation'; splits are \['test', 'train'\]"
    ):
        split_seed_range("validation", 1)
    test_size = SPLIT_SEEDS["test"][1] - SPLIT_SEEDS["test"][0]
    with pytest.raises(
        ValueError, match=rf"examples \[{test_size - 1}, {test_size + 1}\) .* has {test_size}"
    ):
        split_seed_range("test", 2, start=test_size - 1)
    with pytest.raises(ValueError, match="examples"):
        split_seed_range("train", -1)


def test_arrays_follow_the_split_seeds():
    first_test_seed = SPLIT_SEEDS["test"][0]
    images, labels = shapes_arrays("test", 3, start=1)
    assert images.shape == (3, SIZE, SIZE, 3) and labels.dtype == np.int32
    for i in range(3):
        image, label = render_shapes(first_test_seed + 1 + i)
        np.testing.assert_array_equal(images[i], image)
        assert labels[i] == label


def test_one_to_three_shapes_painted_smallest_first(checked):
    counts = {len(scene.shapes) for scene, _, _ in checked}
    assert counts == {1, 2, 3}
    for scene, _, label in checked:
        pixels = [shape_mask(shape, SIZE).sum() for shape in scene.shapes]
        assert pixels == sorted(pixels)
        assert scene.label == label == scene.shapes[-1].kind
        if len(pixels) > 1:
            assert pixels[-1] >= MIN_AREA_RATIO * pixels[-2]


def test_label_is_the_largest_shape_by_independent_rasterisation(checked):
    for seed, (scene, image, label) in enumerate(checked):
        coverages = [pillow_coverage(shape) for shape in scene.shapes]
        areas = [coverage.sum() for coverage in coverages]
        assert scene.shapes[int(np.argmax(areas))].kind == label, f"seed {seed}: areas {areas}"
        for shape, coverage in zip(scene.shapes, coverages, strict=True):  # same shape, same place
            ours, theirs = shape_mask(shape, SIZE), coverage >= 0.5
            assert (ours & theirs).sum() / (ours | theirs).sum() > 0.8, f"seed {seed}: {shape}"
        # The largest shape is on top: every pixel of its colour in the image is its own.
        top = scene.shapes[-1]
        painted = np.all(image == np.array(top.color, dtype=np.uint8), axis=-1).sum()
        assert abs(painted - areas[-1]) <= 0.1 * areas[-1], f"seed {seed}"


def test_all_classes_occur(checked):
    frequencies = np.bincount([label for _, _, label in checked], minlength=3) / len(checked)
    assert np.all(frequencies > 0.25), frequencies


def bilinear_background(corner_colors: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Bilinear interpolation between the four corner colours at every pixel centre, written
    out in numpy: float [size, size, 3]."""
    (tl, tr), (bl, br) = corner_colors
    t = (np.arange(size) + 0.5) / size
    u, v = t[None, :, None], t[:, None, None]  # column and row fractions
    return (1 - v) * ((1 - u) * tl + u * tr) + v * ((1 - u) * bl + u * br)


def test_smooth_background_and_visible_shapes(checked):
    for scene, image, _ in checked:
        background = bilinear_background(scene.corner_colors)
        uncovered = ~np.any([shape_mask(shape, SIZE) for shape in scene.shapes], axis=0)
        assert uncovered.any()
        # Every pixel no shape covers is the gradient, up to rounding.
        np.testing.assert_allclose(image[uncovered], background[uncovered], atol=0.5 + 1e-9)
        for shape in scene.shapes:
            cx, cy = shape.center
            assert np.abs(np.array(shape.color) - background[int(cy), int(cx)]).max() >= 60
