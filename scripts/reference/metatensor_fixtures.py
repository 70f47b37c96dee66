"""Writes test/fixtures/metatensor/: files made by Python that acdc must read.

    python -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install -r scripts/reference/requirements.txt
    /tmp/refvenv/bin/python scripts/reference/metatensor_fixtures.py

- systems.xyz + featomic_soap.mts: featomic's SOAP power spectrum (positions
  and strain gradients) saved with metatensor.save; acdc loads it and compares
  with its own computation.
- *.npy: numpy arrays of several dtypes and shapes, all holding
  (i - 5.5) * 0.25 for i = 0..11 (i - 5 for int32), and one Fortran-ordered
  array that acdc must refuse with a clear error.
- meta.json: hyper-parameters and the versions that wrote the files.
"""
import json
import os

import ase
import featomic
import metatensor
import numpy as np
from ase.io import write

out = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "metatensor")
os.makedirs(out, exist_ok=True)

rng = np.random.default_rng(11)
frames = []
cell = np.array([[5.0, 0.2, 0.0], [0.3, 5.4, 0.1], [0.0, -0.2, 4.9]])
for types in (["O", "H", "H", "C", "H"], ["C", "N", "H", "H"]):
    positions = rng.uniform(0, 1, size=(len(types), 3)) @ cell
    frames.append(ase.Atoms(types, positions=positions, cell=cell, pbc=True))
write(os.path.join(out, "systems.xyz"), frames, format="extxyz")

hypers = {
    "cutoff": {"radius": 3.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
    "density": {"type": "Gaussian", "width": 0.3},
    "basis": {"type": "TensorProduct", "max_angular": 2, "radial": {"type": "Gto", "max_radial": 2}},
}
calc = featomic.SoapPowerSpectrum(**hypers)
tm = calc.compute(frames, gradients=["positions", "strain"])
metatensor.save(os.path.join(out, "featomic_soap.mts"), tm)

base = (np.arange(12) - 5.5) * 0.25
np.save(os.path.join(out, "f8_2d.npy"), base.reshape(3, 4))
np.save(os.path.join(out, "f4_2d.npy"), base.reshape(3, 4).astype(np.float32))
np.save(os.path.join(out, "i4_1d.npy"), (np.arange(12) - 5).astype(np.int32))
np.save(os.path.join(out, "f8_3d.npy"), base.reshape(2, 3, 2))
np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(base.reshape(3, 4)))

with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump(
        {
            "hypers": hypers,
            "versions": {
                "featomic": featomic.__version__,
                "metatensor-core": metatensor.__version__,
                "numpy": np.__version__,
                "ase": ase.__version__,
            },
        },
        f,
        indent=1,
    )
