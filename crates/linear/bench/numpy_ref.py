"""NumPy reference for `memdiff linear simulate` timings (docs/BENCHMARKS.md, "Linear model").

The straightforward implementation a researcher would write: per simulation draw the n training
pairs explicitly, fit the centred least squares with numpy.linalg.lstsq, form
Sigma_G = sigma_X^2 theta_1 theta_1^T, take its eigenvalues and the exact/quadratic KL_var, KL_mean
and H^2 (docs/METHOD.md §6). Same models and formulas as memdiff; only the timing is compared.

usage: python numpy_ref.py --model reverse --d 100 --n 10000 --lambda-hat 0.1 --sims 50 --threads 2
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="reverse", choices=["forward", "reverse"])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--lambda-hat", type=float, default=0.1)
    ap.add_argument("--t", type=float, default=2.0)
    ap.add_argument("--mu", type=float, default=10.0)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--sims", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--solver", default="lstsq", choices=["lstsq", "normal"],
                    help="lstsq (SVD, the obvious choice) or normal equations (np.linalg.solve)")
    a = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(a.threads)
    import numpy as np

    rng = np.random.default_rng(a.seed)
    d, n, T, mu, s = a.d, a.n, a.t, a.mu, a.sigma
    lam = a.lambda_hat * s * s * np.exp(-2 * T)
    dt = lam * (1 - np.exp(-2 * T))
    sx2_pop = np.exp(-2 * T) * s * s + dt
    klv, klq, klm, h2 = [], [], [], []
    t0 = time.perf_counter()
    for _ in range(a.sims):
        if a.model == "forward":
            Y = mu + s * rng.standard_normal((n, d))
            X = np.exp(-T) * Y + np.sqrt(dt) * rng.standard_normal((n, d))
        else:
            X = mu * np.exp(-T) + np.sqrt(sx2_pop) * rng.standard_normal((n, d))
            Y = np.exp(T) * X + np.sqrt(dt) * rng.standard_normal((n, d))
        xb, yb = X.mean(0), Y.mean(0)
        x, y = X - xb, Y - yb
        if a.solver == "lstsq":
            th1t = np.linalg.lstsq(x, y, rcond=None)[0]  # theta_1^T
        else:
            th1t = np.linalg.solve(x.T @ x, x.T @ y)
        th1 = th1t.T
        th0 = yb - th1 @ xb
        if a.model == "forward":
            mux = np.exp(-T) * yb
            sx2 = np.exp(-2 * T) * (y * y).sum() / (n * d) + dt
        else:
            mux = np.full(d, mu * np.exp(-T))
            sx2 = sx2_pop
        mug = th0 + th1 @ mux
        g, P = np.linalg.eigh(sx2 * th1 @ th1.T)
        A = g / (s * s)
        klv.append(0.5 * (A.sum() - d - np.log(A).sum()))
        klq.append(0.25 * ((A - 1) ** 2).sum())
        dm = mug - mu
        klm.append(dm @ dm / (2 * s * s))
        pd = P.T @ dm
        c = g + s * s
        logbc = (0.5 * (np.log(2) + 0.5 * (np.log(g) + np.log(s * s)) - np.log(c))).sum() - 0.25 * (pd * pd / c).sum()
        h2.append(-np.expm1(logbc))
    sec = time.perf_counter() - t0
    print(json.dumps({
        "impl": "numpy-" + a.solver, "numpy": np.__version__, "model": a.model, "d": d, "n": n,
        "sims": a.sims, "seconds": sec, "s_per_sim": sec / a.sims,
        "kl_var_mean": float(np.mean(klv)), "kl_var_quad_mean": float(np.mean(klq)),
        "kl_mean_mean": float(np.mean(klm)), "hellinger2_mean": float(np.mean(h2)),
    }))


if __name__ == "__main__":
    main()
