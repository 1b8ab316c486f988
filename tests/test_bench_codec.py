"""bench/codec.py still runs and still times what it says (its numbers are not judged here: machines are noisy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "codec.py"


def run_bench(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), "--number", "2", "--repeat", "1", *arguments],
        capture_output=True, text=True, timeout=120,
    )


def test_every_case_and_its_ceiling_is_timed():
    result = run_bench()
    # Exit status 1 only reports a missed target; anything else is a broken bench.
    assert result.returncode in (0, 1), result.stderr
    lines = result.stdout.splitlines()
    cases = [line.split(" parse")[0] for line in lines if " parse (" in line]
    assert cases == ["Inform, 20 parameters", "GPV response, 60 parameters"]
    assert sum(line.split("  ")[0].endswith(" serialize") for line in lines) == 2
    ceilings = [line for line in lines if "ceiling: no checks" in line]
    assert len(ceilings) == 2 and all(float(line.split()[-1]) > 0 for line in ceilings)


def test_the_breakdown_adds_up_to_the_codec():
    result = run_bench("--breakdown")
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith(("floor", "ceiling", "+"))]
    assert len(steps) == 6
    assert steps[-1].startswith("+ parameter list regularity (= codec.parse)")
