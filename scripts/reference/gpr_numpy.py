"""A plain numpy transcription of acdc's SparseGPR and LinearModel (dev-only).

Reads the dump written by scripts/reference/gpr_dump.js (acdc's per-atom
power spectrum with position and strain gradients, joined in JS; targets;
the SparseGPR's sparse environments) and the settings in
test/fixtures/models/small_case.json, builds the full (not streamed) design
matrices, solves the regularised least squares by one QR of the stacked
matrix, predicts the test frames and writes test/fixtures/models/small_case_expected.json.

The algebra is in model_algebra.py (shared with the other transcriptions);
its equations (docs/MODELS.md):
  k(x, x') = δ² (x̂·x̂')^ζ, same centre species only
  E = Σ_i e0 + Σ_i Σ_m α_m k(x_i, x_m);  F_j = −∂E/∂r_j;  σ_ab = (1/V) ∂E/∂ε_ab
  rows: energies (σ_E √N), forces (σ_F), Voigt stress xx yy zz yz xz xy of the
  symmetrised (1/V)∂E/∂ε (σ_S); prior rows Lᵀ with L Lᵀ = K_MM + jitter δ² I
  variance = k** − |L⁻¹k*|² + |R⁻ᵀk*|²
  linear: E = Σ_i e0 + w_Z·x_i, prior rows √λ I, variance |R⁻ᵀφ|²

Run:
  node scripts/reference/gpr_dump.js /tmp/gpr_dump.json
  /tmp/venv-models/bin/python scripts/reference/gpr_numpy.py /tmp/gpr_dump.json
"""
import json
import os
import sys

import numpy as np

from model_algebra import Case, fit_and_predict

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "test", "fixtures", "models")

dump = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpr_dump.json"))
case = Case(dump, len(dump["pairs"]) * dump["blockSize"])
setup = json.load(open(os.path.join(FIXTURES, "small_case.json")))
versions = {"numpy": np.__version__, "python": sys.version.split()[0], "acdc_features_from": dump["acdcVersion"]}

e0, models = fit_and_predict(case, setup)
with open(os.path.join(FIXTURES, "small_case_expected.json"), "w") as f:
    json.dump({"versions": versions, "e0": e0, **models}, f)
    f.write("\n")
print("wrote", os.path.join(FIXTURES, "small_case_expected.json"))

# the same fits with per-structure sigmas (small_case.json "frameSigmas", one entry per training frame)
e0, models = fit_and_predict(case, setup, setup["frameSigmas"])
with open(os.path.join(FIXTURES, "small_case_frame_sigmas_expected.json"), "w") as f:
    json.dump({"versions": versions, "e0": e0, **models}, f)
    f.write("\n")
print("wrote", os.path.join(FIXTURES, "small_case_frame_sigmas_expected.json"))
