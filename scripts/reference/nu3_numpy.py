"""A plain numpy transcription of acdc's SparseGPR and LinearModel on the
ν = 3 features (features: 'bispectrum'), dev-only.

Reads the dump written by scripts/reference/nu3_dump.js (acdc's SOAP
bispectrum per atom with position and strain gradients, placed by property
label in JS; targets; the SparseGPR's sparse environments) and the settings
in test/fixtures/models/nu3_case.json, builds the full (not streamed) design
matrices, solves the regularised least squares by one QR of the stacked
matrix, predicts the test frames and writes
test/fixtures/models/nu3_case_expected.json. The model algebra is the same
as for the power spectrum (scripts/reference/model_algebra.py); only the
per-atom feature vector differs:

  k(x, x') = δ² (x̂·x̂')^ζ, same centre species only
  E = Σ_i e0 + Σ_i Σ_m α_m k(x_i, x_m);  F_j = −∂E/∂r_j;  σ_ab = (1/V) ∂E/∂ε_ab
  rows: energies (σ_E √N), forces (σ_F), Voigt stress xx yy zz yz xz xy of the
  symmetrised (1/V)∂E/∂ε (σ_S); prior rows Lᵀ with L Lᵀ = K_MM + jitter δ² I
  variance = k** − |L⁻¹k*|² + |R⁻ᵀk*|²
  linear: E = Σ_i e0 + w_Z·x_i, prior rows √λ I, variance |R⁻ᵀφ|²

Run:
  node scripts/reference/nu3_dump.js /tmp/nu3_dump.json
  /tmp/venv-nu3/bin/python scripts/reference/nu3_numpy.py /tmp/nu3_dump.json
"""
import json
import os
import sys

import numpy as np

from model_algebra import Case, fit_and_predict

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")

dump = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/nu3_dump.json"))
case = Case(dump, dump["nFeatures"])
setup = json.load(open(os.path.join(FIXTURES, "nu3_case.json")))
versions = {"numpy": np.__version__, "python": sys.version.split()[0], "acdc_features_from": dump["acdcVersion"]}

e0, models = fit_and_predict(case, setup)
with open(os.path.join(FIXTURES, "nu3_case_expected.json"), "w") as f:
    json.dump({"versions": versions, "n_features": case.P, "e0": e0, **models}, f)
    f.write("\n")
print("wrote", os.path.join(FIXTURES, "nu3_case_expected.json"))
