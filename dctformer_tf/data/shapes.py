"""The embedded default dataset `shapes` (docs/design.md §2), generated here so everything runs offline.

Each image is `size × size` RGB (64 by default): a smooth colour gradient (bilinear between
four random corner colours) under 1–3 filled shapes — circle, square, equilateral triangle —
with random colour, area, place and rotation. The label is the class of the largest shape by
pixel area. Images are a pure function of an integer seed, and the splits own disjoint seed
ranges, so `train` and `test` never share an image.

Two rules keep the label unambiguous:
- the largest shape covers at least `MIN_AREA_RATIO` × the pixels of the next largest (the
  others are drawn at most 1/1.3 of its area, and all are redrawn in the rare case that
  rasterisation still breaks the ratio), and
- shapes are painted smallest first, so the largest is on top and fully visible.
A small shape may therefore hide under a larger one.

Areas are drawn independently of the class, so the three labels are equally likely.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle")
SPLIT_SEEDS = {"train": (0, 1_000_000), "test": (1_000_000, 1_010_000)}
MIN_AREA_RATIO = 1.2
# Shape area as a fraction of the image. At 0.2 a triangle's circumradius is 0.39 of the side, so
# every shape fits inside the image.
_AREA_FRACTION = (0.02, 0.2)
# A shape's colour differs from the background under its centre by at least this much in
# one channel, so no shape is invisible.
_MIN_CONTRAST = 64
# Number of sides of the regular polygon of each class (0 = circle).
_SIDES = (0, 4, 3)


@dataclasses.dataclass(frozen=True)
class Shape:
    """One filled shape, in pixel units with the origin at the image's top-left corner.

    A pixel `(row i, column j)` belongs to the shape when its centre `(x, y) = (j + ½, i + ½)`
    lies inside it. Squares and triangles are regular polygons inscribed in the circle of
    `radius` around `center`, with a vertex at `(cx + radius·cos(angle), cy + radius·sin(angle))`
    (y points down, so growing angles turn clockwise on screen).
    """

    kind: int  # index into SHAPE_CLASSES
    center: tuple[float, float]  # (x, y)
    radius: float  # circumradius
    angle: float
    color: tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything `render_shapes` paints: corner colours, then shapes in painting order."""

    # float64 [2, 2, 3]: [[top-left, top-right], [bottom-left, bottom-right]]
    corner_colors: np.ndarray
    shapes: tuple[Shape, ...]  # smallest first; the last one is the largest
    label: int  # = shapes[-1].kind


def sample_scene(seed: int, size: int = 64) -> Scene:
    """The scene behind the example of `seed`: its corner colours and every shape's class,
    centre, size, rotation and colour, in painting order (the label is the last shape's class).

    `render_shapes(seed, size)` paints exactly this scene. The scene is the ground truth of the
    image beyond its label, e.g. to check the labelling rules or to derive other targets
    (shape count, positions). Deterministic: same seed and size, same scene.
    """
    return _scene_and_masks(seed, size)[0]


def render_shapes(seed: int, size: int = 64) -> tuple[np.ndarray, int]:
    """The example of `seed`: (image uint8 [size, size, 3], label in {0, 1, 2})."""
    scene, masks = _scene_and_masks(seed, size)
    return _paint(scene, masks, size), scene.label


def shape_mask(shape: Shape, size: int) -> np.ndarray:
    """Pixels inside `shape`: bool [size, size]."""
    cx, cy = shape.center
    # Only pixels in the bounding box of the circumcircle can be inside.
    x0, x1 = max(int(np.floor(cx - shape.radius)), 0), min(int(np.ceil(cx + shape.radius)), size)
    y0, y1 = max(int(np.floor(cy - shape.radius)), 0), min(int(np.ceil(cy + shape.radius)), size)
    dx = (np.arange(x0, x1) + 0.5 - cx)[None, :]  # [1, w]
    dy = (np.arange(y0, y1) + 0.5 - cy)[:, None]  # [h, 1]
    sides = _SIDES[shape.kind]
    if sides == 0:
        inside = dx * dx + dy * dy <= shape.radius**2  # [h, w]
    else:
        # A regular polygon is the intersection of half-planes: its outward edge normals point
        # half-way between consecutive vertices, and every edge lies at the apothem R·cos(π/n).
        normals = shape.angle + np.pi / sides + 2 * np.pi * np.arange(sides) / sides  # [n]
        projections = dx[..., None] * np.cos(normals) + dy[..., None] * np.sin(normals)  # [h, w, n]
        inside = projections.max(axis=-1) <= shape.radius * np.cos(np.pi / sides)  # [h, w]
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def shapes_arrays(
    split: str, num: int, start: int = 0, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Examples `start ... start + num − 1` of `split` stacked.

    Returns:
      images uint8 [num, size, size, 3] and labels int32 [num].
    """
    first, end = split_seed_range(split, num, start)
    images = np.empty((num, size, size, 3), dtype=np.uint8)
    labels = np.empty((num,), dtype=np.int32)
    for i, seed in enumerate(range(first, end)):
        images[i], labels[i] = render_shapes(seed, size)
    return images, labels


def split_seed_range(split: str, num: int | None = None, start: int = 0) -> tuple[int, int]:
    """Seeds `[first, end)` of examples `start ... start + num − 1` of `split`.

    Raises:
      ValueError: unknown split, negative `start`/`num`, or a range past the split's end.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"shapes: unknown split {split!r}; splits are {sorted(SPLIT_SEEDS)}")
    lo, hi = SPLIT_SEEDS[split]
    available = hi - lo
    if num is None:
        num = available - start
    if start < 0 or num < 0 or start + num > available:
        raise ValueError(
            f"shapes: examples [{start}, {start + num}) requested from split {split!r}, "
            f"which has {available} (indices 0 to {available - 1})"
        )
    return lo + start, lo + start + num


def _scene_and_masks(seed: int, size: int) -> tuple[Scene, list[np.ndarray]]:
    """The scene of `seed` and its shapes' masks (bool [size, size] each), in painting order."""
    rng = np.random.default_rng(seed)
    corner_colors = rng.uniform(0, 255, size=(2, 2, 3))
    num_shapes = int(rng.integers(1, 4))
    kinds = rng.integers(0, len(SHAPE_CLASSES), size=num_shapes)
    while True:
        areas = rng.uniform(*_AREA_FRACTION, size=num_shapes) * size * size
        # Shrinking the others to 1/1.3 of the largest leaves a margin over MIN_AREA_RATIO for
        # rasterisation, so the pixel check below almost never has to redraw.
        largest = int(np.argmax(areas))
        areas = np.where(
            np.arange(num_shapes) == largest, areas, np.minimum(areas, areas[largest] / 1.3)
        )
        shapes = [
            _sample_shape(rng, int(k), a, size, corner_colors)
            for k, a in zip(kinds, areas, strict=True)
        ]
        masks = [shape_mask(shape, size) for shape in shapes]
        pixels = [int(np.count_nonzero(mask)) for mask in masks]
        order = np.argsort(pixels, kind="stable")
        if num_shapes == 1 or pixels[order[-1]] >= MIN_AREA_RATIO * pixels[order[-2]]:
            break
    shapes = tuple(shapes[i] for i in order)
    scene = Scene(corner_colors=corner_colors, shapes=shapes, label=shapes[-1].kind)
    return scene, [masks[i] for i in order]


def _paint(scene: Scene, masks: list[np.ndarray], size: int) -> np.ndarray:
    image = np.rint(_gradient(scene.corner_colors, size)).astype(np.uint8)
    for shape, mask in zip(scene.shapes, masks, strict=True):
        image[mask] = shape.color
    return image


def _sample_shape(
    rng: np.random.Generator, kind: int, area: float, size: int, corner_colors: np.ndarray
) -> Shape:
    sides = _SIDES[kind]
    if sides == 0:
        radius = np.sqrt(area / np.pi)
    else:  # area of a regular n-gon of circumradius R: (n/2)·R²·sin(2π/n)
        radius = np.sqrt(area / (sides / 2 * np.sin(2 * np.pi / sides)))
    cx, cy = rng.uniform(radius, size - radius, size=2)  # the whole shape inside the image
    angle = rng.uniform(0, 2 * np.pi)
    under = _bilinear(corner_colors, cx / size, cy / size)
    while True:
        color = rng.integers(0, 256, size=3)
        if np.abs(color - under).max() >= _MIN_CONTRAST:
            break
    return Shape(
        kind=kind,
        center=(float(cx), float(cy)),
        radius=float(radius),
        angle=float(angle),
        color=(int(color[0]), int(color[1]), int(color[2])),
    )


def _bilinear(corner_colors: np.ndarray, u: float, v: float) -> np.ndarray:
    """The background colour at relative position (u, v) ∈ [0, 1]²: float64 [3]."""
    (tl, tr), (bl, br) = corner_colors
    return (1 - v) * ((1 - u) * tl + u * tr) + v * ((1 - u) * bl + u * br)


def _gradient(corner_colors: np.ndarray, size: int) -> np.ndarray:
    """`_bilinear` at every pixel centre: float64 [size, size, 3]."""
    weights = _bilinear_weights(size)  # [size * size, 4]
    return (weights @ corner_colors.reshape(4, 3)).reshape(size, size, 3)


@functools.lru_cache(maxsize=8)
def _bilinear_weights(size: int) -> np.ndarray:
    """Weights of the corners (tl, tr, bl, br) at each pixel centre: float64 [size * size, 4]."""
    t = (np.arange(size) + 0.5) / size
    v, u = np.meshgrid(t, t, indexing="ij")  # [size, size] each
    weights = np.stack([(1 - v) * (1 - u), (1 - v) * u, v * (1 - u), v * u], axis=-1)
    weights.flags.writeable = False  # shared by every call through the cache
    return weights.reshape(size * size, 4)
