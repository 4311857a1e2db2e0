"""deploy/prometheus/witchcraft-rules.yml: the seed's alerts (and its database size growth, a
recording rule) as Prometheus rules, valid for promtool, unit-tested with promtool, and on
gauges that /metrics really serves.

promtool comes with Debian's ``prometheus`` package; ``make test`` and ``.ci/run`` install it
when it is missing, so these tests never skip.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from witchcraft.operations.metrics import key_metrics
from witchcraft.platform.replica import state as replica_state

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "witchcraft-rules.yml"
RULES_TEST = RULES_DIR / "witchcraft-rules.test.yml"
# The seed's "Alerts to Set Up", each with its rule.
SEED_ALERTS = {
    "WitchcraftQuotaExceeded": "quota exceeded (>100%)",
    "WitchcraftQuotaWarning": "quota warning (>80%)",
    "WitchcraftFailedLoginSpike": "failed login spike (>10/min)",
    "WitchcraftHighErrorRate": "high error rate (>5%)",
    "WitchcraftDatabaseSize": "database size (>80% capacity)",
    "WitchcraftSlowQueries": "slow queries (>1s)",
}
# Issue 20's backup alerts (point-in-time recovery).
BACKUP_ALERTS = {
    "WitchcraftBackupStale",
    "WitchcraftWalArchivingBehind",
    "WitchcraftBackupDrillFailed",
}
TOKEN = "a-scrape-token-of-some-length"


def _promtool(*args: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    assert promtool, (
        "promtool is missing: install Debian's prometheus package"
        " (apt-get install --no-install-recommends prometheus; make test and .ci/run do)"
    )
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules_file():
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    rules = len(re.findall(r"^\s+- (?:alert|record): ", RULES.read_text(), re.M))
    assert f"SUCCESS: {rules} rules found" in done.stdout


def test_promtool_refuses_a_broken_rule(tmp_path):
    """The check above can fail: a rule whose expression does not parse is refused."""
    broken = tmp_path / "broken.yml"
    rule = "expr: witchcraft_failed_logins_last_minute > 10"
    assert rule in RULES.read_text()
    broken.write_text(RULES.read_text().replace(rule, rule.replace(">", ">>")))
    done = _promtool("check", "rules", str(broken))
    assert done.returncode != 0
    assert "parse error" in (done.stdout + done.stderr)


def test_the_rules_unit_tests_pass():
    done = _promtool("test", "rules", str(RULES_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_seed_alert_has_a_rule():
    names = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(), re.M))
    assert set(SEED_ALERTS) <= names, set(SEED_ALERTS) - names
    assert names >= BACKUP_ALERTS, BACKUP_ALERTS - names


def test_every_rule_has_a_unit_test():
    """Each alert is evaluated by an alert_rule_test, each recording rule (the seed's
    "Database size growth") by a promql_expr_test, so test_the_rules_unit_tests_pass covers
    every rule."""
    rules, tests = RULES.read_text(), RULES_TEST.read_text()
    alerts = set(re.findall(r"^\s+- alert: (\S+)$", rules, re.M))
    records = set(re.findall(r"^\s+- record: (\S+)$", rules, re.M))
    assert "witchcraft:database_size_bytes:growth_per_day" in records
    assert alerts - set(re.findall(r"^\s+alertname: (\S+)$", tests, re.M)) == set()
    assert records - set(re.findall(r"^\s+- expr: (\S+)$", tests, re.M)) == set()


@pytest.mark.django_db
def test_every_metric_the_rules_read_is_served(client, settings):
    """With backups on and their runs recorded (a gauge whose figure is unknown is left out)."""
    from witchcraft.testing.backups import healthy_backups

    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    settings.PITR_ENABLED = True
    healthy_backups()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    served = {
        sample.name
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    # The read replica's gauges are served only with DATABASE_REPLICA_URL (the suite has none;
    # test_replica_live.py reads them from a real standby): the ones a live replica gives.
    served |= {
        family.name
        for family in key_metrics.replica_families(replica_state.ReplicaStatus("ok", 0, 0.0))
    }
    code = "\n".join(
        line for line in RULES.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    read = set(re.findall(r"\bwitchcraft_[a-z_]+", code))
    assert read, "the rules read no witchcraft_ metric"
    assert read <= served, read - served
