"""The retention settings (witchcraft/platform/retention.py): defaults, bounds, one-line
refusals."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from witchcraft.platform import retention

ROOT = Path(__file__).resolve().parents[2]


def _read(**values):
    return retention.read(lambda name, default: values.get(name, default))


def test_the_defaults_are_the_seeds():
    assert _read() == {
        "USAGE_ARCHIVE_AFTER_MONTHS": 12,
        "USAGE_ARCHIVE_PARTITIONS_PER_RUN": 2,
        "AUDIT_COMPRESS_AFTER_DAYS": 90,
        "AUDIT_COMPRESS_ROWS_PER_RUN": 50_000,
    }


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("USAGE_ARCHIVE_AFTER_MONTHS", 1, "between 2 and 120 (months), not 1"),
        ("USAGE_ARCHIVE_AFTER_MONTHS", 121, "between 2 and 120"),
        ("USAGE_ARCHIVE_PARTITIONS_PER_RUN", -1, "between 0 and 120"),
        ("AUDIT_COMPRESS_AFTER_DAYS", 0, "between 1 and 3650 (days), not 0"),
        ("AUDIT_COMPRESS_ROWS_PER_RUN", 5_000_001, "between 0 and 5000000"),
        ("AUDIT_COMPRESS_AFTER_DAYS", None, "a whole number of days"),
        ("AUDIT_COMPRESS_AFTER_DAYS", True, "a whole number of days"),
    ],
)
def test_values_out_of_their_range_are_refused(name, value, message):
    with pytest.raises(ImproperlyConfigured, match=rf"^{name} must .*{re.escape(message)}"):
        _read(**{name: value})


def test_the_bounds_are_accepted():
    assert (
        _read(USAGE_ARCHIVE_AFTER_MONTHS=2, AUDIT_COMPRESS_ROWS_PER_RUN=0)[
            "USAGE_ARCHIVE_AFTER_MONTHS"
        ]
        == 2
    )


@pytest.mark.parametrize("value", ["twelve", "0"])
def test_a_bad_environment_value_refuses_to_start_in_one_line(value):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "witchcraft.settings",
        "DEBUG": "true",
        "USAGE_ARCHIVE_AFTER_MONTHS": value,
    }
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: USAGE_ARCHIVE_AFTER")
