"""tools/param_counts.py reads every Table 3 gin file the way training does (model file plus
gin/runs/train.gin) and lands each analytic count within 15 % of the paper's."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_param_counts_tool_reads_every_table3_file():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "param_counts.py"),
                             "--no-build"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    assert [row[0] for row in rows] == ["lsun", "ffhq", "imagenet", "openimages",
                                        "plant_leaves", "retinopathy", "clevr"]
    assert all(abs(float(row[-1]) - 1) <= 0.15 for row in rows), rows
