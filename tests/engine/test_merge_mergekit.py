"""Our merges against mergekit's own, when mergekit is installed (it is in the test extra).

`scripts/compare_mergekit.py` runs mergekit-pytorch's planner and executor and ours (the
command line's streamed merge and the merge edit) on locally built variants, in a child
process (mergekit sets up logging and imports a lot). Every method that draws no random
numbers must agree within float32 rounding (1e-6 relative; in practice bit for bit); the
random ones must draw task vectors of the same size within 5%.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mergekit") is None,
                                reason="mergekit is not installed")


def test_every_method_equals_mergekit(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_mergekit.py"),
                             "--json", str(tmp_path)], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    methods = {row["method"].split(" ")[0] for row in rows}
    assert methods == {"linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp",
                       "passthrough"}
    for row in rows:
        for path in ("streamed", "edit"):
            value = row[path]["max_relative"]
            limit = 0.05 if row["random"] else 1e-6
            assert value <= limit, f"{row['method']} ({row['inputs']}, {path}): {value:.3g}"
