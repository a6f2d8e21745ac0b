"""Wall time of :func:`pyro_personax.metrics.r2` (the default ``kernel="ard"``), against scikit-learn's fit.

The ARD regression of ``r2`` fits its hyper-parameters by L-BFGS-B on the log marginal
likelihood with a gradient reduced by matrix products. The reference is the same
regression fitted by ``GaussianProcessRegressor.fit``, whose gradient builds an
``(n, n, D)`` array. Both run on the same synthetic latents (``--rows`` entities,
``--latents`` true latents read through a random nonlinear mix, one learned column of
pure noise); printed: seconds per call, the mean held-out R^2 of each and the largest
difference of the per-latent R^2 and of the fitted length scales.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/r2_cost.py --rows 2200 --latents 10
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor

from pyro_personax.metrics import latent


def _reference_predict(Xtr, ytr, Xte, hyper_rows):
    """``_ard_predict`` with the hyper-parameters fitted by ``GaussianProcessRegressor.fit``."""
    kernel = latent._ard_kernel(Xtr.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = GaussianProcessRegressor(kernel, normalize_y=True).fit(Xtr[hyper_rows], ytr[hyper_rows]).kernel_
    gp = GaussianProcessRegressor(fitted, normalize_y=True, optimizer=None).fit(Xtr, ytr)
    return gp.predict(Xte), np.atleast_1d(np.asarray(fitted.k1.k2.length_scale, dtype=float))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2200, help="entities (r2 holds out a tenth, fits on at most 2,000)")
    p.add_argument("--latents", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    z = rng.normal(size=(args.rows, args.latents))
    learned = np.tanh(0.5 * z @ rng.normal(size=(args.latents, args.latents))) + 0.1 * rng.normal(size=z.shape)
    learned[:, -1] = rng.normal(size=args.rows)
    start = time.perf_counter()
    ours = latent.r2(learned, z, seed=args.seed)
    ours_s = time.perf_counter() - start
    default_predict = latent._ard_predict
    latent._ard_predict = _reference_predict
    try:
        start = time.perf_counter()
        ref = latent.r2(learned, z, seed=args.seed)
        ref_s = time.perf_counter() - start
    finally:
        latent._ard_predict = default_predict
    print(f"rows {args.rows}, latents {args.latents}, training rows {ours.num_train}")
    print(f"r2 (ours)                 {ours_s:7.1f} s   R^2 {ours.value:.6f}")
    print(f"GaussianProcessRegressor  {ref_s:7.1f} s   R^2 {ref.value:.6f}")
    print(f"largest |difference|: per-latent R^2 {np.abs(ours.per_latent - ref.per_latent).max():.1e}, "
          f"log length scale {np.abs(np.log(ours.length_scales / ref.length_scales)).max():.1e}")


if __name__ == "__main__":
    main()
