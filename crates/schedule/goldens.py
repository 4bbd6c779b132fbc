"""Independent golden values for memdiff-schedule's tests (numpy, float64).

Run: ~/.venvs/torchref/bin/python crates/schedule/goldens.py > crates/schedule/src/goldens.rs
Formulas written from docs/METHOD.md §2 / diffusers' DDIMScheduler, not from the Rust code.
"""
import math
import numpy as np

def linear(s):
    return np.linspace(1e-4, 0.02, s, dtype=np.float64)

def scaled_linear(s):
    return np.minimum(linear(s) * (1000.0 / s), 0.999)

def cosine(s):
    # diffusers betas_for_alpha_bar(s, alpha_transform_type="cosine", max_beta=0.999)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / s) / f(i / s), 0.999) for i in range(s)], dtype=np.float64)

def spacing(s, k, kind):
    if kind == "trailing":
        ts = np.round(np.arange(s, 0, -s / k)).astype(np.int64) - 1
    elif kind == "leading":
        ts = (np.arange(0, k) * (s // k)).round()[::-1].astype(np.int64)
    else:
        ts = np.linspace(0, s - 1, k).round()[::-1].astype(np.int64)
    return [int(t) + 1 for t in ts]

print("//! Golden values computed independently with numpy 2.4.6 by `crates/schedule/goldens.py`")
print("//! (regenerate: `~/.venvs/torchref/bin/python crates/schedule/goldens.py > crates/schedule/src/goldens.rs`).")
print("//! Entries: (schedule, s, t, beta_t, alpha_bar_t), t in 1..=s.")
print()
rows = []
for name, fn in [("linear", linear), ("scaled-linear", scaled_linear), ("cosine", cosine)]:
    for s in [10, 200, 1000]:
        b = fn(s)
        ab = np.cumprod(1.0 - b)
        for t in sorted(set([1, 2, 3, s // 4, s // 2, (3 * s) // 4, s - 1, s])):
            rows.append((name, s, t, repr(float(b[t - 1])), repr(float(ab[t - 1]))))
print("#[rustfmt::skip]")
print("pub const SCHEDULES: &[(&str, usize, usize, f64, f64)] = &[")
for r in rows:
    print(f'    ("{r[0]}", {r[1]}, {r[2]}, {r[3]}, {r[4]}),')
print("];")
print()
print("/// (s, K, spacing, timesteps in 1..=s, noisiest first)")
print("#[rustfmt::skip]")
print("pub const SPACINGS: &[(usize, usize, &str, &[usize])] = &[")
for s, ks in [(10, [1, 3, 4, 7, 10]), (200, [3, 7, 50]), (1000, [3, 7, 30, 64])]:
    for k in ks:
        for kind in ["trailing", "leading", "linspace"]:
            ts = spacing(s, k, kind)
            assert len(ts) == k, (s, k, kind, ts)
            print(f'    ({s}, {k}, "{kind}", &{ts}),')
print("];")
