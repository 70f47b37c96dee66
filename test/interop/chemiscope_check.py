"""Loads a chemiscope file written by acdc with chemiscope's own Python code.

    python chemiscope_check.py file.json[.gz]

`chemiscope.show_input` (the package's loader; chemiscope 1.1 has no
`read_input`) opens the file (gzip by extension) into the widget, and
`chemiscope.create_input` is run on the file's parts, which re-checks every
property length against the structures/environments and the settings.
Prints one JSON line: version, counts and property names.
"""
import gzip
import json
import sys
import warnings

import chemiscope

path = sys.argv[1]
warnings.simplefilter("error")  # chemiscope warns about dropped keys, NaN values, guessed targets
widget = chemiscope.show_input(path)
opener = gzip.open if path.endswith(".gz") else open
with opener(path, "rt") as f:
    data = json.load(f)
for key in ("meta", "structures", "properties"):
    assert key in data, f"missing {key}"
environments = data.get("environments")
rebuilt = chemiscope.create_input(
    structures=data["structures"],
    metadata=data["meta"],
    properties=data["properties"],
    environments=[(e["structure"], e["center"], e["cutoff"]) for e in environments] if environments else None,
    settings=data.get("settings"),
)
assert set(rebuilt["properties"]) == set(data["properties"]), (sorted(rebuilt["properties"]), sorted(data["properties"]))
for name, prop in data["properties"].items():
    assert list(rebuilt["properties"][name]["values"]) == list(prop["values"]), name
print(json.dumps({
    "chemiscope": chemiscope.__version__,
    "structures": len(data["structures"]),
    "environments": len(environments or []),
    "properties": sorted(data["properties"]),
    "settings": data.get("settings"),
}))
