"""Interop check run by test/interop.test.ts (dev and CI only; acdc never needs Python).

    python metatensor_roundtrip.py DIR

Reads what acdc wrote in DIR (soap.mts, design.npy, design32.npy) with
metatensor-core and numpy, checks them, and writes back with the Python side:
  py_soap.mts   metatensor.save of the loaded tensor (acdc must read it identically)
  py_ktp.mts    metatensor-core's keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
  py_kts.mts    ... then keys_to_samples("center_type")
  py_design.npy np.save of the acdc design matrix, transposed and made C-contiguous
Prints a JSON summary on stdout.
"""
import json
import os
import sys

import metatensor
import numpy as np

d = sys.argv[1]
tm = metatensor.load(os.path.join(d, "soap.mts"))
summary = {"metatensor": metatensor.__version__, "numpy": np.__version__}
summary["keys"] = tm.keys.names
summary["blocks"] = len(tm)
summary["gradients"] = tm.block(0).gradients_list()
summary["value_sum"] = float(sum(b.values.sum() for b in tm.blocks()))
summary["gradient_shapes"] = [list(b.gradient("positions").values.shape) for b in tm.blocks()]
metatensor.save(os.path.join(d, "py_soap.mts"), tm)

ktp = tm.keys_to_properties(["neighbor_1_type", "neighbor_2_type"])
metatensor.save(os.path.join(d, "py_ktp.mts"), ktp)
metatensor.save(os.path.join(d, "py_kts.mts"), ktp.keys_to_samples("center_type"))

design = np.load(os.path.join(d, "design.npy"))
design32 = np.load(os.path.join(d, "design32.npy"))
summary["design_shape"] = list(design.shape)
summary["design_dtype"] = str(design.dtype)
summary["design32_dtype"] = str(design32.dtype)
summary["design32_matches"] = bool(np.array_equal(design32, design.astype(np.float32)))
summary["design_sum"] = float(design.sum())
np.save(os.path.join(d, "py_design.npy"), np.ascontiguousarray(design.T))
print(json.dumps(summary))
