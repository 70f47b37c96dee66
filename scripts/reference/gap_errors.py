"""Test errors of a GAP model (quippy Potential) on an extxyz file, overall
and per value of an info key (e.g. `pt`, the Pt count of the Pt–Ni frames
of scripts/reference/emt_ptni_alloy_data.py). Energy RMSE in meV/atom (per-atom
errors of each frame), force RMSE in eV/Å over all components, and the mean
signed energy error per group (meV/atom). Prints one JSON line.

Versions: quippy-ase==0.10.3, ase==3.29.0, numpy==2.4.6.

    OMP_NUM_THREADS=1 python scripts/reference/gap_errors.py gap.xml ptni-test.xyz --group pt
"""
import argparse
import json
import sys
import time

import numpy as np
from ase.io import read
from quippy.potential import Potential


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("xml")
    p.add_argument("test")
    p.add_argument("--group", default=None)
    args = p.parse_args(argv)
    frames = read(args.test, ":")
    pot = Potential(param_filename=args.xml)
    de, df, groups = [], [], []
    t0 = time.process_time()
    for at in frames:
        ref_e = at.get_potential_energy()
        ref_f = at.get_forces()
        a = at.copy()
        a.calc = pot
        de.append((a.get_potential_energy() - ref_e) / len(a))
        df.append((a.get_forces() - ref_f).ravel())
        groups.append(at.info.get(args.group) if args.group else None)
    cpu = time.process_time() - t0
    de = np.array(de)
    out = {
        "energy_rmse_meV_atom": 1000 * float(np.sqrt(np.mean(de**2))),
        "forces_rmse": float(np.sqrt(np.mean(np.concatenate(df) ** 2))),
        "predict_cpu_s": cpu,
    }
    if args.group:
        g = np.array(groups)
        out["by_group"] = {
            str(k): {"energy_rmse_meV_atom": 1000 * float(np.sqrt(np.mean(de[g == k] ** 2))), "energy_mean_meV_atom": 1000 * float(np.mean(de[g == k]))}
            for k in sorted(set(groups))
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
