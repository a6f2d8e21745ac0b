"""Level I battery at CelebPersona size: wall time per test and the KCI strategy's cost.

A synthetic table with 9,444 rows, 5 aggregated traits on the paper's 3-point scale
(medians of three LLM scores, so values 1, 1.5, ..., 3) and 23 features (birth date,
location, body size, occupation, gender and 14 +-1 face attributes). Eight
(trait, feature) pairs are planted dependences, some deliberately weak; the other 107
pairs are independent. All five tests run on all 115 pairs; the script prints the wall
time per test, how many planted pairs each test flags (power) and how many null pairs
(false discoveries), then reruns KCI at full n on the planted pairs to state what the
subsampling (default 2,000 rows) costs in power.

Run:  OMP_NUM_THREADS=1 python benchmarks/level1_battery.py [--n-jobs 2] [--skip-full-kci]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from pyro_personax import independence as ind

FACES = ["Arched_Eyebrows", "Big_Nose", "Pointy_Nose", "Bushy_Eyebrows", "Big_Lips", "Oval_Face",
         "Double_Chin", "Receding_Hairline", "Narrow_Eyes", "High_Cheekbones", "Chubby", "Young",
         "Attractive", "Smiling"]
TRAITS = ["final_o", "final_c", "final_e", "final_a", "final_n"]
OCCUPATIONS = ["actor", "singer", "athlete", "politician", "model", "writer", "director", "comedian",
               "musician", "host", "businessperson", "journalist"]
# (trait, feature): planted dependences, with the effect used below
PLANTED = [
    ("final_a", "Gender"), ("final_n", "Gender"), ("final_e", "Occupation"), ("final_o", "Occupation"),
    ("final_o", "Birthyear"), ("final_e", "High_Cheekbones"), ("final_c", "Pointy_Nose"),
    ("final_n", "Latitude"),
]


def synthetic_celebpersona(n=9444, seed=0):
    """A CelebPersona-shaped table with the dependences of PLANTED; returns a DataFrame."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "Birthyear": rng.integers(1920, 2005, n), "Birthmonth": rng.integers(1, 13, n),
        "Birthday": rng.integers(1, 29, n), "Latitude": rng.uniform(-40, 60, n),
        "Longitude": rng.uniform(-120, 140, n), "Weight": rng.normal(70, 12, n),
        "Height": rng.normal(172, 9, n), "Occupation": rng.choice(OCCUPATIONS, n),
        "Gender": rng.choice(["female", "male"], n),
    })
    for face in FACES:
        df[face] = rng.choice([-1, 1], n)
    occ_effect = {o: v for o, v in zip(OCCUPATIONS, rng.normal(0, 0.25, len(OCCUPATIONS)))}
    female = (df["Gender"] == "female").to_numpy()
    age = (df["Birthyear"].to_numpy() - 1962) / 25
    latent = {
        "final_o": df["Occupation"].map(occ_effect).to_numpy() + 0.15 * np.sin(3 * age),
        "final_c": 0.04 * df["Pointy_Nose"].to_numpy(),
        "final_e": 0.8 * df["Occupation"].map(occ_effect).to_numpy() + 0.06 * df["High_Cheekbones"].to_numpy(),
        "final_a": 0.3 * female,
        "final_n": 0.2 * female + 0.08 * ((df["Latitude"].to_numpy() - 10) / 30) ** 2,
    }
    for trait, mean in latent.items():
        scores = np.clip(np.round(2 + mean[:, None] + rng.normal(0, 0.7, (n, 3))), 1, 3)
        df[trait] = np.median(scores, axis=1)
    return df


def power_table(table: pd.DataFrame) -> pd.DataFrame:
    planted = table.set_index(["trait", "feature"]).index.isin(PLANTED)
    ok = table["status"] == "ok"
    rows = []
    for test, g in table.groupby("test", sort=False):
        m_ok, m_planted = ok[g.index], planted[g.index]
        dep = g["dependent"].fillna(False).astype(bool)
        rows.append({
            "test": test, "seconds": g["seconds"].sum(), "tested": int(m_ok.sum()),
            "planted_tested": int((m_ok & m_planted).sum()), "planted_flagged": int((dep & m_planted).sum()),
            "null_flagged": int((dep & ~m_planted).sum()),
        })
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-full-kci", action="store_true")
    args = parser.parse_args()
    df = synthetic_celebpersona(seed=args.seed)
    features = [c for c in df.columns if c not in TRAITS]
    print(f"table: {len(df)} rows, {len(features)} features x {len(TRAITS)} traits; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, n_jobs={args.n_jobs}")
    total = time.perf_counter()
    per_test = {}
    tables = []
    for test in ind.DEFAULT_TESTS:
        start = time.perf_counter()
        tables.append(ind.test_battery(df, TRAITS, features, tests=(test,), n_jobs=args.n_jobs,
                                       seed=args.seed, progress=False))
        per_test[test] = time.perf_counter() - start
    table = pd.concat(tables, ignore_index=True)
    print(f"whole battery: {time.perf_counter() - total:.1f} s wall")
    summary = power_table(table).assign(wall_s=lambda d: d["test"].map(per_test))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if not args.skip_full_kci:
        kci_full(df, table, args.seed)


def kci_full(df, table, seed):
    """KCI at full n on the planted pairs against the default 2,000-row subsample."""
    sub = table[table["test"] == "kci"].set_index(["trait", "feature"])
    print(f"\nKCI strategy: subsample of 2000 of {len(df)} rows vs full n, planted pairs")
    for trait, feature in PLANTED:
        start = time.perf_counter()
        full = ind.test_battery(df, [trait], [feature], tests=("kci",), kci_max_n=len(df), seed=seed)
        print(f"  {trait:8s} ~ {feature:16s} p(sub 2000) = {sub.loc[(trait, feature), 'p_value']:.2e}  "
              f"p(full 9444) = {full['p_value'].iloc[0]:.2e}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
