"""The floors of the house (README, Layout): who may import whom, read from the source.

- the ground floor, ``witchcraft.platform``, imports no app and nothing else of the project;
- the domains import the ground floor and the domains below them only: accounts at the bottom,
  then billing, usage, agents;
- the roof (``witchcraft.operations``, ``witchcraft.dashboard``, ``witchcraft.selfservice``,
  ``witchcraft.demo``) composes the domains; nothing below it imports it;
- the top of the project package (settings, urls, the API root, the project's jobs and
  commands) may import anything, and nothing imports it but itself;
- no circle of imports between modules, except Django's sessions idiom (the user model's
  module and ``accounts.sessions`` name each other).

Every import counts, a function's lazy import too. Test support (``witchcraft.testing``) and
the test modules may import anything and are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ["accounts", "billing", "usage", "agents"]  # bottom first
GROUND = "witchcraft.platform"
# witchcraft.models holds the operations' own records (maintenance_runs): roof, as is the
# project app's admin registering them.
ROOF = (
    "witchcraft.operations",
    "witchcraft.dashboard",
    "witchcraft.selfservice",
    "witchcraft.demo",
    "witchcraft.models",
    "witchcraft.admin",
    "witchcraft.migrations",
)
ALLOWED_CIRCLES = [{"accounts.models", "accounts.sessions"}]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules = {}
    for top in ("witchcraft", *DOMAINS):
        for path in (ROOT / top).rglob("*.py"):
            relative = path.relative_to(ROOT).parts
            if "tests" in relative or relative[:2] == ("witchcraft", "testing"):
                continue
            modules[_module_name(path)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts ``a.b`` when it is a
    module, else ``a``)."""
    found = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [name if name in modules else base for name in names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # a name inside a module: the module
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _project_modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _floor(module: str) -> tuple[str, int]:
    """(kind, rank): ground 0, the domains 1.., the roof, then the top."""
    if module == GROUND or module.startswith(GROUND + "."):
        return "ground", 0
    top = module.split(".")[0]
    if top in DOMAINS:
        return top, 1 + DOMAINS.index(top)
    if any(module == roof or module.startswith(roof + ".") for roof in ROOF):
        return "roof", 1 + len(DOMAINS)
    return "top", 2 + len(DOMAINS)


def _violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in sorted(graph.items()):
        kind, rank = _floor(module)
        for target in sorted(imported):
            target_kind, target_rank = _floor(target)
            if kind == "top" or kind == target_kind:
                continue
            if kind == "roof" and target_kind != "top":
                continue
            if target_rank >= rank:
                wrong.append(f"{module} ({kind}) imports {target} ({target_kind})")
    return wrong


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_runs_down_to_up():
    assert _violations(_graph()) == []


def test_no_circle_but_the_sessions_idiom():
    assert [group for group in _circles(_graph()) if group not in ALLOWED_CIRCLES] == []


def test_the_rules_catch_an_upward_import_and_a_circle():
    """The checks are not empty: a domain importing the roof, the ground importing a domain, a
    lower domain importing a higher one, and a circle of two are each found."""
    graph = {
        "accounts.views": {"witchcraft.dashboard.user360"},
        "witchcraft.platform.mail": {"billing.models"},
        "billing.selectors": {"usage.models"},
        "usage.models": set(),
        "usage.services": {"usage.selectors"},
        "usage.selectors": {"usage.services"},
        "witchcraft.dashboard.user360": {"usage.models", "witchcraft.operations.health"},
        "witchcraft.operations.health": set(),
        "witchcraft.api": {"accounts.views"},
    }
    assert _violations(graph) == [
        "accounts.views (accounts) imports witchcraft.dashboard.user360 (roof)",
        "billing.selectors (billing) imports usage.models (usage)",
        "witchcraft.platform.mail (ground) imports billing.models (billing)",
    ]
    assert _circles(graph) == [{"usage.services", "usage.selectors"}]


def test_the_graph_reads_every_kind_of_import():
    """Lazy imports inside functions, ``from package import module`` and relative imports
    are all edges (checked on modules known to use each)."""
    graph = _graph()
    assert "witchcraft.platform.rls" in graph["accounts.models"] | graph["accounts.audit"]
    assert graph["witchcraft.urls"] >= {"witchcraft.api", "witchcraft.operations.health"}
    assert any(target.startswith("billing") for target in graph["witchcraft.api"])


def test_each_domain_keeps_its_jobs_in_its_own_tasks_module():
    """procrastinate finds each app's ``tasks.py``: the jobs of a domain are defined there, and
    the project's own ``witchcraft/tasks.py`` (maintenance schedule, a queued mail, queue
    upkeep) imports no domain."""
    from procrastinate.contrib.django import app

    owners = {name: task.func.__module__ for name, task in app.tasks.items()}
    assert owners["send_alert_mails"] == "billing.tasks"
    assert owners["release_quota_reservations"] == "billing.tasks"
    assert owners["mail_quota_alerts"] == "billing.tasks"
    assert owners["refresh_usage_today"] == "usage.tasks"
    assert owners["mail_email_verification"] == "accounts.tasks"
    assert owners["mail_password_reset"] == "accounts.tasks"
    project_jobs = {name for name, module in owners.items() if module == "witchcraft.tasks"}
    assert project_jobs >= {"daily_maintenance", "monthly_maintenance", "send_mail"}
    domains = re.compile(r"(accounts|billing|usage|agents)\b")
    assert not any(domains.match(target) for target in _graph()["witchcraft.tasks"])


def test_modules_below_the_package_still_find_the_project_root():
    """The embedded server's data, the static files and the worker's manage.py are found from
    the module's own path: a module one floor deeper must say so (parents[2])."""
    from witchcraft.operations import worker
    from witchcraft.platform import embedded_db, serving

    assert (embedded_db.BASE_DIR / "manage.py").is_file()
    assert serving.BASE_DIR == embedded_db.BASE_DIR == ROOT
    assert worker.MANAGE_PY == ROOT / "manage.py"


# --- Pages compose the domains' selectors (issue 18, "reads owned by their domain") ----------

PAGE_MODULES = ("views", "dashboard", "dashboard_reports")
# The data export writes every table of the user row by row, as Django's dumpdata would: it
# reads each domain's models by design and is no page composed from selectors.
NOT_PAGES = ("witchcraft.selfservice.export",)


def _is_page(module: str) -> bool:
    """The roof's dashboard and self-service packages, and every app's views and dashboards."""
    if any(module == other or module.startswith(other + ".") for other in NOT_PAGES):
        return False
    if module.startswith(("witchcraft.dashboard", "witchcraft.selfservice")):
        return True
    top, _, rest = module.partition(".")
    return top in DOMAINS and rest.split(".")[0] in PAGE_MODULES


def _pages_reading_models(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in sorted(graph.items()):
        if not _is_page(module):
            continue
        own = module.split(".")[0]
        for target in sorted(imported):
            app, _, rest = target.partition(".")
            if app in DOMAINS and app != own and rest.split(".")[0] == "models":
                wrong.append(f"{module} imports {target}")
    return wrong


def test_no_page_imports_another_apps_models():
    graph = _graph()
    pages = {module for module in graph if _is_page(module)}
    # The rule looks at the pages it means (it is not empty by a wrong name).
    assert pages >= {
        "witchcraft.dashboard.user360",
        "witchcraft.dashboard.archive_search",
        "witchcraft.selfservice.overview",
        "accounts.views.privacy",
        "accounts.dashboard",
        "agents.views",
        "billing.views",
        "billing.dashboard",
        "usage.dashboard",
        "usage.dashboard_reports",
    }
    assert "usage.dashboard_selectors" not in pages
    assert _pages_reading_models(graph) == []


def test_the_page_rule_catches_a_page_importing_another_apps_models():
    graph = {
        "witchcraft.dashboard.user360": {"billing.models", "billing.selectors"},
        "usage.dashboard": {"usage.models", "billing.models"},
        "accounts.views.profile": {"accounts.models"},
        "usage.dashboard_selectors": {"billing.models"},  # a selector, not a page
        "witchcraft.selfservice.export.writer": {"usage.models"},
    }
    assert _pages_reading_models(graph) == [
        "usage.dashboard imports billing.models",
        "witchcraft.dashboard.user360 imports billing.models",
    ]


# Each fact's one ORM reader: (module, top-level name) where the fact's filter is written.
ONE_READER = {
    "current subscription": {("billing.selectors", "subscriptions_current")},
    "unresolved alerts": {("billing.selectors", "_ALERT_FILTERS")},
    "daily usage of a user": {("usage.selectors", "usage_daily_rows")},
}
# Where the same filter is written for another purpose.
OTHER_PURPOSES = {
    "current subscription": {
        # The partial unique index: at most one current subscription per user.
        ("billing.models.plans", "UserSubscription"),
        # The demo writes its users' quota alerts in set-based SQL over a batch of users.
        ("witchcraft.demo.rollups", "ALERTS"),
    },
    "unresolved alerts": {
        # The partial indexes of open alerts and of alerts not mailed yet.
        ("billing.models.quotas", "UsageAlert"),
        # The mail job's queue: it locks the unmailed alerts and marks them notified.
        ("billing.alerts", "alerts_notify"),
    },
    "daily usage of a user": {
        # The data export writes every daily row the user has (see NOT_PAGES).
        ("witchcraft.selfservice.export.writer", "_usage_daily"),
    },
}
_CURRENT_SQL = re.compile(r"status\s+IN\s*\(\s*'trialing',\s*'active',\s*'past_due'\s*\)", re.I)


def _is_current_statuses(node: ast.expr) -> bool:
    """``CURRENT_STATUSES`` (by any import), or the three current statuses spelled out."""
    if isinstance(node, ast.Name | ast.Attribute):
        return (node.id if isinstance(node, ast.Name) else node.attr) == "CURRENT_STATUSES"
    if isinstance(node, ast.Tuple | ast.List):
        values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
        return values == {"trialing", "active", "past_due"}
    return False


def _on_daily_rows(call: ast.Call) -> bool:
    """``AIUsageDaily.objects.filter(user...=...)`` (or get/exclude): one user's daily rows."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in ("filter", "get", "exclude")
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "objects"
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "AIUsageDaily"
        and any(k.arg and k.arg.split("__")[0] in ("user", "user_id") for k in call.keywords)
    )


def _facts_in(node: ast.AST) -> set[str]:
    found = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            for keyword in inner.keywords:
                if keyword.arg == "status__in" and _is_current_statuses(keyword.value):
                    found.add("current subscription")
                if keyword.arg == "resolved_at__isnull":
                    found.add("unresolved alerts")
            if _on_daily_rows(inner):
                found.add("daily usage of a user")
        elif (
            isinstance(inner, ast.Constant)
            and isinstance(inner.value, str)
            and _CURRENT_SQL.search(inner.value)
        ):
            found.add("current subscription")
    return found


def _fact_readers(sources: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    """For each fact, the (module, top-level name) pairs of ``sources`` that write its filter."""
    readers: dict[str, set[tuple[str, str]]] = {fact: set() for fact in ONE_READER}
    for module, source in sources.items():
        for top in ast.parse(source).body:
            if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = top.name
            elif isinstance(top, ast.Assign | ast.AnnAssign):
                targets = top.targets if isinstance(top, ast.Assign) else [top.target]
                name = ",".join(t.id for t in targets if isinstance(t, ast.Name))
            else:
                name = "<module>"
            for fact in _facts_in(top):
                readers[fact].add((module, name))
    return readers


def test_each_domain_fact_has_one_orm_reader():
    """The current subscription, the unresolved alerts and a user's daily usage are each
    filtered in one selector of their domain; every page and job reads them through it."""
    # Migrations are left out: they install the SQL functions (the database's own rules) and
    # never change once shipped.
    sources = {
        name: path.read_text()
        for name, path in _project_modules().items()
        if ".migrations." not in f".{name}."
    }
    expected = {fact: ONE_READER[fact] | OTHER_PURPOSES[fact] for fact in ONE_READER}
    assert _fact_readers(sources) == expected


def test_the_fact_rule_finds_a_second_reader():
    sources = {
        "billing.views": (
            "from billing.models import CURRENT_STATUSES, UserSubscription\n"
            "def page(user_id):\n"
            "    return UserSubscription.objects.filter(\n"
            "        user_id=user_id, status__in=CURRENT_STATUSES).first()\n"
        ),
        "usage.views": (
            "def alerts(user_id):\n"
            "    return UsageAlert.objects.filter(user_id=user_id, resolved_at__isnull=True)\n"
            "def days(user_id, since):\n"
            "    return AIUsageDaily.objects.filter(user=user_id, usage_date__gte=since)\n"
            "def every_day(since):\n"
            "    return AIUsageDaily.objects.filter(usage_date__gte=since)\n"
        ),
        "accounts.views": (
            "SQL = \"SELECT 1 FROM user_subscriptions WHERE status IN ('trialing', 'active',"
            " 'past_due')\"\n"
            "PLAN = Q(status__in=('past_due', 'trialing', 'active'))\n"
        ),
    }
    assert _fact_readers(sources) == {
        "current subscription": {
            ("billing.views", "page"),
            ("accounts.views", "SQL"),
            ("accounts.views", "PLAN"),
        },
        "unresolved alerts": {("usage.views", "alerts")},
        "daily usage of a user": {("usage.views", "days")},
    }
