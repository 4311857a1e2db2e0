"""`python -m bench` on a machine without wrk says what to install, with no traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_without_wrk_says_what_to_install(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},  # a PATH with no wrk on it
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "bench: wrk is not installed (apt-get install wrk" in done.stderr
    assert "Traceback" not in done.stderr
