"""The "variant MNIST" multi-measurement image benchmark, generated offline.

Four latent causal variables ``[Z11, Z12, Z21, Z22]`` with the DAG
``Z11 -> Z12``, ``Z11 -> Z21``, ``Z21 -> Z22`` and nonlinear structural equations with
additive, non-Gaussian noise (every noise term has unit variance)::

    Z11 = e1                                   e1 ~ Uniform(-sqrt(3), sqrt(3))
    Z12 = 1.2 tanh(1.5 Z11) + s e2             e2 ~ Laplace, unit variance
    Z21 = sin(1.3 Z11) + 0.3 Z11 + s e3        e3 ~ Uniform, unit variance
    Z22 = 1.2 tanh(Z21) - 0.3 Z21^2 + s e4     e4 ~ Laplace, unit variance

with ``s = noise_scale = 1.0`` by default. No child is a deterministic function of its
parents: at the default the noise is about half of each child's variance, and parents
and children are clearly correlated (``benchmarks/RESULTS.md`` has the figures).
Correlated latents make MCC gameable: a predictor that copies Z11 into every column
scores a high MCC, so read MCC beside held-out R^2 and the graph metrics. A child is
identified from the images only up to adding a function of its parent
(:func:`structural_noise` says why and gives the exogenous terms to check a
representation against), and :func:`sparsest_equivalent` gives a representation that is
exactly as likely as the truth, with only the edge ``Z11 -> Z21``.

Two modalities observe the latents:

- ``"colour"``: 3 measurements, each an RGB 14 x 14 image of a *different* random
  handwritten digit (the digit identity is measurement noise), tinted by the colour
  :func:`colour_tint` ``(Z11, Z12)``; flattened to ``3 * 14 * 14 = 588`` values in
  channel-first order ``(channel, row, column)``.
- ``"fashion"``: 1 measurement, a grey 14 x 14 image of a random garment-like shape
  (or of one garment for every entity, ``fashion_template``), rotated and scaled by
  :func:`fashion_pose` ``(Z21, Z22)``; flattened to ``196`` values.

Pixel values lie in ``[0, 1]``. The colour images declare the ``"tinted_rgb"`` likelihood
(:class:`~pyro_personax.models.TintedRGBLikelihood`: one colour per image times a grey
intensity, the form they are made in; ``colour_likelihood="normal"`` gives the paper's
per-pixel Gaussian, its MSE loss), the fashion image the ``"normal"`` one.

Image sources: by default the digits bundled with scikit-learn (1,797 images, 8 x 8,
upsampled to 14 x 14 with ``scipy.ndimage.zoom``) and five procedural garment-like
shapes (t-shirt, trousers, dress, bag, ankle boot) with random stroke width. When the
user gives paths to MNIST / Fashion-MNIST IDX image files, those 28 x 28 images are
used instead, downsampled to 14 x 14 by 2 x 2 average pooling.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from pyro_personax.checks import check_int
from pyro_personax.data.multimodal import MultiModalData
from pyro_personax.layout import LatentLayout
from pyro_personax.synthetic.idx import read_idx
from pyro_personax.synthetic.truth import GroundTruth

logger = logging.getLogger(__name__)

__all__ = [
    "LATENT_NAMES",
    "IMAGE_SIZE",
    "variant_mnist_layout",
    "variant_mnist_adjacency",
    "sample_variant_mnist_latents",
    "colour_tint",
    "fashion_pose",
    "generating_factors",
    "structural_noise",
    "sparsest_equivalent",
    "load_templates",
    "render_colour",
    "render_fashion",
    "variant_mnist",
    "render_latent_sweep",
]

LATENT_NAMES = ("Z11", "Z12", "Z21", "Z22")
IMAGE_SIZE = 14
NUM_COLOUR_MEASUREMENTS = 3
_SQRT3 = float(np.sqrt(3.0))


def variant_mnist_layout() -> LatentLayout:
    """The latent layout: no shared block, ``colour`` = (Z11, Z12), ``fashion`` = (Z21, Z22)."""
    return LatentLayout(shared_dim=0, modality_dims={"colour": 2, "fashion": 2}, names=LATENT_NAMES)


def variant_mnist_adjacency() -> np.ndarray:
    """True DAG ``(4, 4)`` int, ``[i, j]`` = parent i -> child j: Z11->Z12, Z11->Z21, Z21->Z22."""
    A = np.zeros((4, 4), dtype=int)
    A[0, 1] = A[0, 2] = A[2, 3] = 1
    return A


def _mechanism_z12(z11):
    return 1.2 * np.tanh(1.5 * z11)


def _mechanism_z21(z11):
    return np.sin(1.3 * z11) + 0.3 * z11


def _mechanism_z22(z21):
    return 1.2 * np.tanh(z21) - 0.3 * z21**2


def _check_latents(latents) -> np.ndarray:
    """``latents`` as a ``(N, 4)`` float array, or a ValueError naming the shape found."""
    z = np.asarray(latents, dtype=float)
    if z.ndim != 2 or z.shape[1] != len(LATENT_NAMES):
        raise ValueError(f"latents: expected shape (N, {len(LATENT_NAMES)}); found {z.shape}")
    return z


def _laplace(rng, n):
    return rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=n)


def sample_variant_mnist_latents(num_entities: int, *, seed: int = 0, noise_scale: float = 1.0) -> np.ndarray:
    """Ancestral sampling of the four latents from the structural equations above.

    Parameters
    ----------
    num_entities
        Number of rows ``N``.
    seed
        Seed of the noise.
    noise_scale
        Scale of the additive noise of the three child variables (> 0).

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64, columns ``Z11, Z12, Z21, Z22``.
    """
    if noise_scale <= 0:
        raise ValueError(f"noise_scale must be > 0 (children must not be deterministic); found {noise_scale}")
    rng = np.random.default_rng(seed)
    n = int(num_entities)
    z11 = rng.uniform(-_SQRT3, _SQRT3, size=n)
    z12 = _mechanism_z12(z11) + noise_scale * _laplace(rng, n)
    z21 = _mechanism_z21(z11) + noise_scale * rng.uniform(-_SQRT3, _SQRT3, size=n)
    z22 = _mechanism_z22(z21) + noise_scale * _laplace(rng, n)
    return np.column_stack([z11, z12, z21, z22])


def structural_noise(latents) -> np.ndarray:
    """The exogenous term of every latent: the root itself, each child minus its mechanism.

    ``[Z11, Z12 - f12(Z11), Z21 - f21(Z11), Z22 - f22(Z21)]`` with the mechanisms of the
    structural equations above, i.e. ``[e1, s e2, s e3, s e4]`` for latents drawn by
    :func:`sample_variant_mnist_latents` (``s`` its ``noise_scale``). The columns are
    mutually independent.

    This is what a child latent can be confused with. A child enters the data only
    through its block's decoder, so a representation ``Z12' = a(Z11) + s e2`` with
    any smooth ``a`` explains the images as well as ``Z12`` does, with the same
    additive-noise form of ``p(Z12' | Z11)``; the same holds for ``Z22`` given ``Z21``.
    The learned latent matched to a child can therefore lie anywhere between the child
    itself and its noise term, which correlate only partly. Scoring learned latents
    against these columns tells which of the two a model has found.

    Parameters
    ----------
    latents
        ``(N, 4)`` latents ``Z11, Z12, Z21, Z22``.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64.
    """
    z = _check_latents(latents)
    z11, z12, z21, z22 = z.T
    return np.column_stack([z11, z12 - _mechanism_z12(z11), z21 - _mechanism_z21(z11), z22 - _mechanism_z22(z21)])


def sparsest_equivalent(latents) -> tuple[np.ndarray, np.ndarray]:
    """A representation exactly as likely as the truth, under a graph with one edge.

    ``[Z11, Z12 - f12(Z11), Z21, Z22 - f22(Z21)]``: each child whose parent lies in its
    own block replaced by its exogenous term, with the DAG ``Z11 -> Z21`` alone. Why it
    is observationally equivalent to the truth, for any model whose decoder of a
    modality reads only that modality's block (as :class:`~pyro_personax.models.PersonaXModel`
    and the paper's model do):

    1. The map from the true latents acts within each block and is invertible there
       (``Z12 = f12(Z11) + e2``, ``Z22 = f22(Z21) + e4``), with Jacobian determinant 1.
       Composing each block's decoder with the inverse gives every entity the same
       images, so the likelihood is the same.
    2. The new latents factorise along ``Z11 -> Z21`` with additive noise of the same
       densities (``Z11``, ``e2`` and ``e4`` are exogenous draws, ``Z21 = f21(Z11) + e3``),
       so with the unit Jacobian the prior density is the same at every entity too.
    3. The graph has one edge instead of three, so any prior or penalty that favours
       fewer edges (the library's BIC penalty, a ``Bernoulli(p < 1/2)`` edge prior)
       prefers it to the truth.

    The edge between the blocks cannot be removed this way: a map within one block
    does not change that an entity's fashion image depends on its colour images. The
    children inside a block and their edges are therefore not pinned by the data; the
    recovery benchmark scores this representation as a row beside the model
    (``docs/experiments.md`` has its scores).

    Parameters
    ----------
    latents
        ``(N, 4)`` latents ``Z11, Z12, Z21, Z22``.

    Returns
    -------
    (latents, adjacency)
        ``(N, 4)`` float64 equivalent latents, and their DAG ``(4, 4)`` int
        (parent -> child), whose only edge is ``Z11 -> Z21``.
    """
    z = _check_latents(latents)
    noise = structural_noise(z)
    A = np.zeros((4, 4), dtype=int)
    A[0, 2] = 1
    return np.column_stack([z[:, 0], noise[:, 1], z[:, 2], noise[:, 3]]), A


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def colour_tint(z11, z12) -> np.ndarray:
    """RGB tint of the colour images, a smooth injective function of ``(Z11, Z12)``.

    ``red = 0.1 + 0.85 sigmoid(1.5 Z11)``, ``green = 0.1 + 0.85 sigmoid(1.5 Z12)``,
    ``blue = 0.2 + 0.6 sigmoid(Z11 - Z12)``.

    Parameters
    ----------
    z11, z12
        Arrays of shape ``(N,)``.

    Returns
    -------
    numpy.ndarray
        ``(N, 3)`` in ``[0.1, 0.95]``.
    """
    z11, z12 = np.asarray(z11, dtype=float), np.asarray(z12, dtype=float)
    red = 0.1 + 0.85 * _sigmoid(1.5 * z11)
    green = 0.1 + 0.85 * _sigmoid(1.5 * z12)
    blue = 0.2 + 0.6 * _sigmoid(z11 - z12)
    return np.stack([red, green, blue], axis=-1)


def fashion_pose(z21, z22) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (radians) and scale of the fashion image, smooth in ``(Z21, Z22)``.

    ``angle = (pi / 3) tanh(0.8 Z21)`` (within +-60 degrees) and
    ``scale = exp(0.35 tanh(0.8 Z22))`` (within 0.70 - 1.42).

    Parameters
    ----------
    z21, z22
        Arrays of shape ``(N,)``.

    Returns
    -------
    (angle, scale)
        Two arrays of shape ``(N,)``.
    """
    z21, z22 = np.asarray(z21, dtype=float), np.asarray(z22, dtype=float)
    return (np.pi / 3.0) * np.tanh(0.8 * z21), np.exp(0.35 * np.tanh(0.8 * z22))


def generating_factors(latents) -> np.ndarray:
    """The image factors each latent sets: red and green tint, rotation and scale.

    ``[red, green, angle, scale]`` of :func:`colour_tint` and :func:`fashion_pose`;
    each column is a strictly increasing function of one latent, so this is a perfect
    component-wise representation (MCC 1) that saturates where the images do. Scored
    like a learned representation it gives the ceiling of the recovery metrics on this
    benchmark (held-out R^2 of :func:`~pyro_personax.metrics.r2` reads it through normal
    scores, so the saturation costs nothing; the isotropic ``kernel="rbf"`` stays below 1
    in the saturated tails).

    Parameters
    ----------
    latents
        ``(N, 4)`` true latents ``Z11, Z12, Z21, Z22``.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` float64.
    """
    z = _check_latents(latents)
    tint = colour_tint(z[:, 0], z[:, 1])
    angle, scale = fashion_pose(z[:, 2], z[:, 3])
    return np.column_stack([tint[:, 0], tint[:, 1], angle, scale])


# ---------------------------------------------------------------------- image templates
def _pool_to_size(images: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` uint8/float -> ``(T, 14, 14)`` float32 in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"image file: expected images of shape (T, H, W); found {images.shape}")
    top = 255.0 if images.max(initial=0) > 1.0 else 1.0
    T, H, W = images.shape
    if (H, W) == (IMAGE_SIZE, IMAGE_SIZE):
        return images / top
    if H % IMAGE_SIZE or W % IMAGE_SIZE:
        zoomed = ndimage.zoom(images, (1, IMAGE_SIZE / H, IMAGE_SIZE / W), order=1)
        return np.clip(zoomed / top, 0.0, 1.0)
    fh, fw = H // IMAGE_SIZE, W // IMAGE_SIZE
    return images.reshape(T, IMAGE_SIZE, fh, IMAGE_SIZE, fw).mean(axis=(2, 4)) / top


def _sklearn_digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8), values 0..16
    up = ndimage.zoom(raw, (1, 12 / 8, 12 / 8), order=1)  # 12 x 12 digit, 1-pixel margin
    out = np.zeros((len(raw), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[:, 1:13, 1:13] = np.clip(up, 0.0, 1.0)
    return out


def _garment_masks() -> list[np.ndarray]:
    """Five garment-like silhouettes on a 14 x 14 grid (row 0 = top)."""
    y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5
    shirt = ((3 <= y) & (y <= 12) & (4.5 <= x) & (x <= 9.5)) | ((3 <= y) & (y <= 6) & (1.5 <= x) & (x <= 12.5))
    trousers = ((2 <= y) & (y <= 4) & (4 <= x) & (x <= 10)) | (
        (4 <= y) & (y <= 12.5) & (((4 <= x) & (x <= 6.5)) | ((7.5 <= x) & (x <= 10)))
    )
    half = 1.5 + 0.45 * (y - 2)
    dress = (2 <= y) & (y <= 12.5) & (np.abs(x - 7) <= half)
    bag = ((5 <= y) & (y <= 12) & (2.5 <= x) & (x <= 11.5)) | (
        (2 <= y) & (y <= 5) & (np.abs(np.hypot(x - 7, y - 5) - 2.6) <= 0.7)
    )
    boot = ((2 <= y) & (y <= 12) & (3 <= x) & (x <= 7)) | ((9 <= y) & (y <= 12) & (3 <= x) & (x <= 12))
    return [m.astype(np.float32) for m in (shirt, trousers, dress, bag, boot)]


def _procedural_garments(num_variants: int = 40, seed: int = 12345) -> np.ndarray:
    """Garment templates with random blur and intensity: ``(5 * num_variants, 14, 14)``."""
    rng = np.random.default_rng(seed)
    out = []
    for mask in _garment_masks():
        for _ in range(num_variants):
            img = ndimage.gaussian_filter(mask, sigma=rng.uniform(0.4, 0.9))
            img = img * rng.uniform(0.7, 1.0) + 0.15 * mask * rng.uniform(0, 1, size=mask.shape)
            out.append(np.clip(img / max(img.max(), 1e-6), 0.0, 1.0))
    return np.stack(out).astype(np.float32)


def load_templates(mnist_path=None, fashion_path=None) -> tuple[np.ndarray, np.ndarray]:
    """Grey 14 x 14 templates for the colour (digits) and fashion (garments) modalities.

    Parameters
    ----------
    mnist_path
        Optional path to an MNIST image IDX file (e.g. ``train-images-idx3-ubyte.gz``);
        default: scikit-learn's bundled digits.
    fashion_path
        Optional path to a Fashion-MNIST image IDX file; default: procedural
        garment-like shapes.

    Returns
    -------
    (digits, garments)
        Float32 arrays ``(T_d, 14, 14)`` and ``(T_f, 14, 14)`` in ``[0, 1]``.
    """
    digits = _sklearn_digits() if mnist_path is None else _pool_to_size(read_idx(mnist_path))
    garments = _procedural_garments() if fashion_path is None else _pool_to_size(read_idx(fashion_path))
    return digits, garments


# ---------------------------------------------------------------------- rendering
def render_colour(templates: np.ndarray, index: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """Tinted RGB images.

    Parameters
    ----------
    templates
        ``(T, 14, 14)`` grey templates.
    index
        ``(N,)`` template of each image.
    tint
        ``(N, 3)`` RGB colours from :func:`colour_tint`.

    Returns
    -------
    numpy.ndarray
        ``(N, 3, 14, 14)`` float32 in ``[0, 1]``.
    """
    grey = templates[np.asarray(index)]
    return (grey[:, None, :, :] * tint[:, :, None, None]).astype(np.float32)


def render_fashion(templates: np.ndarray, index: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Rotated and scaled grey images (one vectorised bilinear resampling).

    Parameters
    ----------
    templates
        ``(T, 14, 14)`` grey templates.
    index
        ``(N,)`` template of each image.
    angle, scale
        ``(N,)`` from :func:`fashion_pose`; rotation about the image centre, counter-
        clockwise in radians, and zoom factor (> 1 enlarges).

    Returns
    -------
    numpy.ndarray
        ``(N, 14, 14)`` float32 in ``[0, 1]``.
    """
    index = np.asarray(index)
    c = (IMAGE_SIZE - 1) / 2.0
    r, col = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(float) - c
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    s = np.asarray(scale, dtype=float)[:, None, None]
    # output pixel (r, col) samples the template at R(-angle) (r, col) / scale
    src_r = (cos * r - sin * col) / s + c
    src_c = (sin * r + cos * col) / s + c
    src_t = np.broadcast_to(index[:, None, None].astype(float), src_r.shape)
    coords = np.stack([src_t, src_r, src_c])
    out = ndimage.map_coordinates(templates, coords, order=1, mode="constant", cval=0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def variant_mnist(
    num_entities: int = 10_000,
    *,
    seed: int = 0,
    noise_scale: float = 1.0,
    pixel_noise: float = 0.0,
    fashion_template: int | None = None,
    mnist_path=None,
    fashion_path=None,
    colour_likelihood: str = "tinted_rgb",
) -> tuple[MultiModalData, GroundTruth]:
    """Generate the variant-MNIST benchmark.

    Parameters
    ----------
    num_entities
        Number of entities ``N`` (>= 2).
    seed
        Seed of latents, digit choices and pixel noise (same seed -> same data).
    noise_scale
        Noise scale of the child latents (see the module docstring).
    pixel_noise
        Standard deviation of Gaussian pixel noise added before clipping to ``[0, 1]``
        (default 0: the digit identity is the only measurement noise).
    fashion_template
        ``None`` (default): every entity's fashion image shows a random garment, drawn
        independently of the latents, so the garment is a nuisance of the entity that
        its single measurement cannot separate from the latents. An index into the
        garment templates (``0 <= fashion_template < T_f``, see :func:`load_templates`;
        the procedural set has 200, the first 40 t-shirts, then 40 trousers): every
        fashion image shows that one garment, and it varies only in pose. The other
        random draws (latents, digits, pixel noise) are the same either way, so the two
        data sets differ only in the garment.
    mnist_path, fashion_path
        Optional MNIST / Fashion-MNIST image IDX files (see :func:`load_templates`).
    colour_likelihood
        The likelihood the data declare for the colour images: ``"tinted_rgb"`` (default;
        :class:`~pyro_personax.models.TintedRGBLikelihood`, the images' own form, one tint
        per image times a grey digit) or ``"normal"`` (a Gaussian per pixel, the paper's
        MSE loss).

    Returns
    -------
    (data, truth)
        ``data``: :class:`MultiModalData` with ``colour`` ``(N, 3, 588)`` and
        ``fashion`` ``(N, 1, 196)`` float32, likelihoods ``colour_likelihood`` and ``"normal"``.
        ``truth``: :class:`GroundTruth` with latents ``(N, 4)``, the DAG ``(4, 4)`` and
        the layout of :func:`variant_mnist_layout`.

    Examples
    --------
    >>> data, truth = variant_mnist(100, seed=0)
    >>> data.values["colour"].shape, data.values["fashion"].shape
    ((100, 3, 588), (100, 1, 196))
    >>> truth.names
    ('Z11', 'Z12', 'Z21', 'Z22')
    """
    check_int("num_entities", num_entities, low=2)
    if pixel_noise < 0:
        raise ValueError(f"pixel_noise: expected >= 0; found {pixel_noise}")
    digits, garments = load_templates(mnist_path, fashion_path)
    if fashion_template is not None and (
        isinstance(fashion_template, bool)
        or not isinstance(fashion_template, (int, np.integer))
        or not 0 <= fashion_template < len(garments)
    ):
        raise ValueError(
            f"fashion_template: expected None or an int in [0, {len(garments)}) "
            f"(the number of garment templates); found {fashion_template!r}"
        )
    z = sample_variant_mnist_latents(num_entities, seed=seed, noise_scale=noise_scale)
    rng = np.random.default_rng([seed, 1])
    tint = colour_tint(z[:, 0], z[:, 1])
    colour = [
        render_colour(digits, rng.integers(len(digits), size=num_entities), tint).reshape(num_entities, -1)
        for _ in range(NUM_COLOUR_MEASUREMENTS)
    ]
    angle, scale = fashion_pose(z[:, 2], z[:, 3])
    # drawn with or without fashion_template, so that the pixel-noise draws after it
    # are the same and the two data sets differ only in the garment
    garment = rng.integers(len(garments), size=num_entities)
    if fashion_template is not None:
        garment = np.full(num_entities, int(fashion_template))
    fashion = render_fashion(garments, garment, angle, scale)
    fashion = fashion.reshape(num_entities, -1)
    if pixel_noise > 0:
        colour = [np.clip(c + pixel_noise * rng.standard_normal(c.shape), 0, 1).astype(np.float32) for c in colour]
        fashion = np.clip(fashion + pixel_noise * rng.standard_normal(fashion.shape), 0, 1).astype(np.float32)
    data = MultiModalData(
        {"colour": colour, "fashion": [fashion]},
        likelihoods={"colour": colour_likelihood, "fashion": "normal"},
        measurement_names={"colour": ("colour_1", "colour_2", "colour_3"), "fashion": ("fashion_1",)},
    )
    info = {
        "generator": "variant_mnist",
        "seed": seed,
        "noise_scale": noise_scale,
        "pixel_noise": pixel_noise,
        "fashion_template": None if fashion_template is None else int(fashion_template),
        "digits": "sklearn" if mnist_path is None else str(mnist_path),
        "garments": "procedural" if fashion_path is None else str(fashion_path),
        "colour_likelihood": colour_likelihood,
    }
    truth = GroundTruth(z, variant_mnist_adjacency(), variant_mnist_layout(), info)
    logger.info("variant_mnist: %d entities, seed %d", num_entities, seed)
    return data, truth


def render_latent_sweep(
    num_steps: int = 7,
    *,
    span: float = 2.0,
    seed: int = 0,
    mnist_path=None,
    fashion_path=None,
):
    """A grid of images sweeping each latent with the others held at 0.

    Row ``i`` sweeps latent ``i`` over ``[-span, span]``; each cell shows the first
    colour measurement (a fixed digit) next to the fashion image (a fixed garment), so
    the tint follows ``Z11``/``Z12`` and the rotation/scale follow ``Z21``/``Z22``.

    Parameters
    ----------
    num_steps
        Number of columns (>= 2).
    span
        Half-width of the sweep.
    seed
        Seed of the digit and garment choice.
    mnist_path, fashion_path
        Optional IDX files (see :func:`load_templates`).

    Returns
    -------
    matplotlib.figure.Figure
        Figure with ``4 x num_steps`` panels.
    """
    import matplotlib.pyplot as plt

    if num_steps < 2:
        raise ValueError(f"num_steps: expected >= 2; found {num_steps}")
    digits, garments = load_templates(mnist_path, fashion_path)
    rng = np.random.default_rng(seed)
    d_idx = np.full(num_steps, rng.integers(len(digits)))
    g_idx = np.full(num_steps, rng.integers(len(garments)))
    values = np.linspace(-span, span, num_steps)
    fig, axes = plt.subplots(4, num_steps, figsize=(1.6 * num_steps, 7.0), squeeze=False)
    for i, name in enumerate(LATENT_NAMES):
        z = np.zeros((num_steps, 4))
        z[:, i] = values
        rgb = render_colour(digits, d_idx, colour_tint(z[:, 0], z[:, 1])).transpose(0, 2, 3, 1)
        grey = render_fashion(garments, g_idx, *fashion_pose(z[:, 2], z[:, 3]))
        for j, ax in enumerate(axes[i]):
            pair = np.concatenate([rgb[j], np.repeat(grey[j][:, :, None], 3, axis=2)], axis=1)
            ax.imshow(pair, interpolation="nearest", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}={values[j]:+.1f}", fontsize=8)
    fig.suptitle("variant MNIST: colour measurement (left) | fashion (right)")
    fig.tight_layout()
    return fig
