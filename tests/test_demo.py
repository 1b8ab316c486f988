"""The README's main job, `acs demo`, run as a user runs it: a real process, the ACS and a simulated fleet on
loopback, from factory defaults to verified compliance."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ACS = Path(sys.executable).with_name("acs")


@pytest.mark.timeout(150)
def test_demo_hardens_a_factory_default_fleet(tmp_path):
    done = subprocess.run(
        [str(ACS), "demo", "--phones", "3", "--periodic", "2", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=140, cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    before = re.search(r"before: (\d+)/3 phones compliant, (\d+) non-compliant", out)
    assert before and before.group(1) == "0" and before.group(2) == "3"
    assert "after: 3/3 phones compliant, 0 non-compliant, 0 unknown" in out
    assert re.search(r"connection request to \S+ on http://127\.0\.0\.\d+:58547/: accepted", out)
    assert "opened with 6 CONNECTION REQUEST" in out
    # The summary table: every setting rule compliant on all three phones.
    rows = [line.split() for line in out.splitlines() if re.match(r"^[a-z0-9-]+\s+(critical|high|medium|low|info)\s", line)]
    assert len(rows) >= 30
    for rule, severity, compliant, non_compliant, unknown, not_applicable, exempt in rows:
        assert non_compliant == unknown == "0", rule
        assert int(compliant) + int(not_applicable) == 3, rule
    assert "Traceback" not in out + done.stderr
    # The store the demo used is the embedded SQLite default, left in --dir.
    assert (tmp_path / "demo" / "acs.sqlite").exists()
