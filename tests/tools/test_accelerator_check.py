"""tools/accelerator_check.sh on a machine without an accelerator: its syntax, its argument
errors, and a dry run that checks every tool it calls and prints the table."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "accelerator_check.sh")


def _run(*args, timeout=300):
    return subprocess.run(["bash", SCRIPT, "--python", sys.executable, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", SCRIPT], capture_output=True).returncode == 0


def test_bad_arguments_are_named_with_exit_2(tmp_path):
    for args, message in [(["--bogus"], "unknown argument '--bogus'"),
                          (["--config", "nope"], "no gin/models/nope.gin"),
                          (["--memory-gib", "lots"], "--memory-gib 'lots' is not a number")]:
        result = _run("--out", str(tmp_path), *args, timeout=60)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


@pytest.mark.slow
def test_a_dry_run_checks_the_tools_and_prints_the_table(tmp_path):
    result = _run("--dry-run", "--out", str(tmp_path), "--config", "retinopathy",
                  "--memory-gib", "80")
    assert result.returncode == 0, result.stdout + result.stderr
    table = (tmp_path / "table.txt").read_text().splitlines()
    steps = {line[:24].strip(): line[24:] for line in table}
    assert list(steps) == ["environment", "plan_run", "bench_model --help",
                           "bench_sampling --help", "accelerator_step --help",
                           "plan_run --help", "pytest collect", "device steps"]
    assert "retinopathy bfloat16 remat=1: batch" in steps["plan_run"]
    assert all(line.split()[0] == "ok" for name, line in steps.items() if name != "device steps")
    assert all("usage:" in line for name, line in steps.items() if name.endswith("--help"))
    assert "skipped" in steps["device steps"]
    assert "2 tests collected" in steps["pytest collect"]
