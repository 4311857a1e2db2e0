"""The staff user directory (``/dashboard/users/``) and the dashboard's search box: access,
search (part of an email, part of a name, an id; one match goes to the 360° page), hostile
input, the figures against the data, sorting every column both ways, pagination, the query
count, row-level security, and every dashboard page's search box."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import AccessToken, User, UserSession
from billing.models import SubscriptionTier, UserQuota, UserSubscription
from usage import selectors as usage_selectors
from usage import services
from witchcraft.dashboard import directory
from witchcraft.platform import rls
from witchcraft.testing import factories

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:users")
NOW = datetime.now(UTC)
TODAY = NOW.date()


@pytest.fixture
def staff(db):
    return User.objects.create_superuser(email="boss@example.com", password="pw-1234567")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def record(user, *, when: datetime, cost: str) -> None:
    model = factories.catalog_model()
    with transaction.atomic(), rls.service_context():
        services.usage_record(
            user_id=user.pk,
            provider_id=model.provider_id,
            model_id=model.pk,
            input_tokens=100,
            output_tokens=50,
            cost=Decimal(cost),
            latency_ms=100,
            created_at=when,
        )


def row_ids(response) -> list[int]:
    assert response.status_code == 200
    return [int(n) for n in re.findall(r'data-user-id="(\d+)"', response.content.decode())]


def text(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


# --- Access and navigation -------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL, {"q": "x"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_signed_in_member_gets_a_404(client, user):
    client.force_login(user)
    assert client.get(URL).status_code == 404
    assert client.get(URL, {"q": user.email}).status_code == 404


def test_users_comes_right_after_the_overview_in_the_navigation(staff_client):
    page = text(staff_client.get(URL))
    nav = page[page.index('class="dashboard-nav"') :]
    labels = re.findall(r'<a href="[^"]*"(?: aria-current="page")?>([^<]+)</a>', nav)
    assert labels[:2] == ["Overview", "Users"]
    assert f'<a href="{URL}" aria-current="page">Users</a>' in page


@pytest.mark.parametrize(
    "name", ["overview", "usage", "reports", "quotas", "audit", "agents", "monitoring", "archive"]
)
def test_every_dashboard_page_has_the_search_box(staff_client, name):
    page = text(staff_client.get(reverse(f"dashboard:{name}")))
    assert f'<form method="get" action="{URL}" role="search" class="dashboard-search">' in page
    assert 'name="q" value=""' in page


def test_the_user_page_has_the_search_box(staff_client, user):
    page = text(staff_client.get(reverse("dashboard:user", args=[user.pk])))
    assert 'class="dashboard-search"' in page


# --- Search ----------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    return {
        "ada": factories.UserFactory(email="ada.lovelace@example.com", full_name="Ada Lovelace"),
        "grace": factories.UserFactory(email="grace@navy.example", full_name="Grace Hopper"),
        "alan": factories.UserFactory(email="alan@example.com", full_name="Alan Turing"),
        "under": factories.UserFactory(email="a_b@example.com", full_name="Under Score"),
        "axb": factories.UserFactory(email="axb@example.com", full_name="Zoë Ünal"),
    }


def test_part_of_an_email_that_one_user_has_goes_to_their_page(staff_client, people):
    response = staff_client.get(URL, {"q": "navy.exa"})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:user", args=[people["grace"].pk])


def test_part_of_a_name_in_any_case_goes_to_their_page(staff_client, people):
    response = staff_client.get(URL, {"q": "  tURiNG "})
    assert response["Location"] == reverse("dashboard:user", args=[people["alan"].pk])


def test_an_id_goes_to_their_page(staff_client, people):
    ada = people["ada"]
    for q in (f"#{ada.pk}", str(ada.pk)):
        response = staff_client.get(URL, {"q": q})
        assert response.status_code == 302, q
        assert response["Location"] == reverse("dashboard:user", args=[ada.pk])


def test_several_matches_list_them_with_the_box_filled(staff_client, people):
    response = staff_client.get(URL, {"q": "example.com"})
    ids = row_ids(response)
    expected = {people[k].pk for k in ("ada", "alan", "under", "axb")}
    assert set(ids) == expected | {u.pk for u in User.objects.filter(email__contains="example.com")}
    assert people["grace"].pk not in ids
    page = response.content.decode()
    assert 'name="q" value="example.com"' in page  # the navigation's box
    assert 'value="example.com"' in page[page.index('id="directory-search"') :]
    assert "found" in page


def test_percent_and_underscore_are_plain_characters(staff_client, people):
    response = staff_client.get(URL, {"q": "a_b"})
    assert response["Location"] == reverse("dashboard:user", args=[people["under"].pk])
    page = text(staff_client.get(URL, {"q": "%"}))
    assert 'id="no-users"' in page
    response = staff_client.get(URL, {"q": "_"})  # only a_b has one
    assert response["Location"] == reverse("dashboard:user", args=[people["under"].pk])


def test_unicode_is_searched(staff_client, people):
    response = staff_client.get(URL, {"q": "zoë ün"})
    assert response["Location"] == reverse("dashboard:user", args=[people["axb"].pk])
    page = text(staff_client.get(URL, {"q": "日本語 🙂"}))
    assert 'id="no-users"' in page
    assert "日本語 🙂" in page


def test_a_search_that_finds_no_one_says_so(staff_client, people):
    page = text(staff_client.get(URL, {"q": "nobody-here"}))
    assert "No user has an email or name containing" in page
    assert row_ids(staff_client.get(URL, {"q": "#999999999"})) == []


@pytest.mark.parametrize(
    ("q", "error"),
    [
        ("ada\x00lovelace", "Null characters are not allowed."),
        ("x" * 10_000, "Ensure this value has at most 200 characters"),
    ],
)
def test_hostile_input_gets_a_form_error(staff_client, people, q, error):
    page = text(staff_client.get(URL, {"q": q}))
    assert error in page
    assert 'id="search-errors"' in page
    assert row_ids(staff_client.get(URL, {"q": q})) == []


@pytest.mark.parametrize(
    "q",
    [
        "#" + "9" * 40,
        "9" * 40,
        "#-1",
        "#",
        "%%%",
        "\\",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "١٢٣",  # Arabic-Indic digits: text, not an id
        "\u202e\ufeff",
    ],
)
def test_odd_input_is_a_search_not_an_error(staff_client, people, q):
    response = staff_client.get(URL, {"q": q})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()


@pytest.mark.parametrize("sort", ["bogus", "-", "--email", "email;drop", "", "-pk", "password"])
def test_an_unknown_sort_falls_back_to_email(staff_client, people, sort):
    ids = row_ids(staff_client.get(URL, {"sort": sort}))
    emails = list(User.objects.order_by("email").values_list("pk", flat=True))
    assert ids == emails


@pytest.mark.parametrize("page_number", ["0", "-1", "abc", "99999999999999999999", "2"])
def test_an_odd_page_number_is_not_an_error(staff_client, people, page_number):
    assert staff_client.get(URL, {"page": page_number}).status_code == 200


# --- Figures and sorting ---------------------------------------------------------------------


def _previous_month_day(day: int):
    first = TODAY.replace(day=1) - timedelta(days=1)
    return first.replace(day=min(day, first.day))


@pytest.fixture
def made(db):
    """Four users with a different value in every column (searched as ``dir-``)."""
    tiers = {t.slug: t for t in SubscriptionTier.objects.all()}
    a = User.objects.create_user(email="dir-a@example.com", full_name="Delta")
    b = User.objects.create_user(email="dir-b@example.com", full_name="Charlie")
    c = User.objects.create_user(email="dir-c@example.com", full_name="Bravo")
    d = User.objects.create_user(email="dir-d@example.com", full_name="Alpha")
    verified = timezone.now()
    User.objects.filter(pk__in=[a.pk, c.pk, d.pk]).update(email_verified_at=verified)
    User.objects.filter(pk=b.pk).update(email_verified_at=None)
    User.objects.filter(pk=c.pk).update(is_active=False)
    User.objects.filter(pk=d.pk).update(is_staff=True)
    # Plans: a on Pro, d on Team, b and c on the free plan (their registration's).
    for user, slug in ((a, "pro"), (d, "team")):
        UserSubscription.objects.filter(user=user).update(tier=tiers[slug])
    UserSubscription.objects.filter(user=c).delete()  # no current subscription: Free too
    # Costs: this month (today) and the same days of last month (its 1st).
    first_before = datetime.combine(_previous_month_day(1), datetime.min.time(), tzinfo=UTC)
    for user, now_cost, before_cost in ((a, "5", "1"), (b, "1", "4"), (d, "3", None)):
        record(user, when=NOW - timedelta(minutes=1), cost=now_cost)
        if before_cost:
            record(user, when=first_before + timedelta(hours=1), cost=before_cost)
    # Quota use: a 90 %, b 10 % (of cost), d 50 % (of tokens); c has none.
    for user, tokens, cost in ((a, 0.9, 0), (b, 0, 0.1), (d, 0.5, 0.2)):
        quota = UserQuota.objects.get(user=user)
        UserQuota.objects.filter(user=user).update(
            tokens_used=int(quota.tokens_limit * tokens),
            cost_used=(quota.cost_limit * Decimal(str(cost))).quantize(Decimal("0.000001")),
        )
    UserQuota.objects.filter(user=c).delete()
    # Last active: a signed in a day ago, b's browser 2 hours ago, d's token 3 days ago.
    User.objects.filter(pk__in=[a.pk, b.pk, c.pk, d.pk]).update(last_login=None)
    User.objects.filter(pk=a.pk).update(last_login=NOW - timedelta(days=1))
    UserSession.objects.create(
        session_key="dir-b-session",
        session_data="",
        expire_date=NOW + timedelta(days=1),
        user=b,
        last_seen_at=NOW - timedelta(hours=2),
    )
    AccessToken.objects.create(
        user=d,
        name="cli",
        token_hash="0" * 64,
        prefix="wc_dirtest",
        expires_at=NOW + timedelta(days=30),
        last_used_at=NOW - timedelta(days=3),
    )
    return {"a": a, "b": b, "c": c, "d": d}


def test_the_figures_match_the_data(staff_client, made):
    page = text(staff_client.get(URL, {"q": "dir-", "sort": "email"}))
    rows = re.findall(r'<tr class="directory-row" data-user-id="(\d+)">(.*?)</tr>', page, re.S)
    cells = {int(pk): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)) for pk, body in rows}
    a, b, c, d = (cells[made[k].pk] for k in "abcd")
    assert "dir-a@example.com Delta Pro $5.00 vs $1.00 +$4.00 +400.0 % 90.0 %" in a
    assert "active" in a
    assert "Free $1.00 vs $4.00 -$3.00 -75.0 % 10.0 %" in b
    assert "unverified email" in b
    assert "Free $0.00 vs $0.00 $0.00 — never deactivated" in c
    assert "Team $3.00 vs $0.00 +$3.00 new 50.0 %" in d
    assert d.strip().endswith("staff")
    assert (NOW - timedelta(days=1)).strftime("%Y-%m-%d %H:%M") in a
    assert (NOW - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M") in b
    assert (NOW - timedelta(days=3)).strftime("%Y-%m-%d %H:%M") in d
    assert f'href="{reverse("dashboard:user", args=[made["a"].pk])}">dir-a@example.com</a>' in page


def test_last_month_after_the_same_days_is_not_compared(made):
    """Dec 1-7 against Nov 1-7: a cost on a later day of last month is left out."""
    costs = usage_selectors.directory_costs(today=TODAY)
    assert costs.before_start == _previous_month_day(1)
    assert costs.before_end == _previous_month_day(TODAY.day)
    later = costs.before_end + timedelta(days=1)
    if later.month == costs.before_start.month:
        when = datetime.combine(later, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
        record(made["a"], when=when, cost="7")
    rows = directory.DirectoryRows(
        search=directory.Search(text="dir-a"), key="email", descending=False, today=TODAY
    )[0:50]
    assert [(r["cost_now"], r["cost_before"]) for r in rows] == [(Decimal(5), Decimal(1))]


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        ("2026-12-07", "2026-11-01", "2026-11-07"),
        ("2026-03-31", "2026-02-01", "2026-02-28"),
        ("2026-01-15", "2025-12-01", "2025-12-15"),
        ("2026-05-01", "2026-04-01", "2026-04-01"),
    ],
)
def test_the_same_days_of_last_month(today, start, end):
    costs = usage_selectors.directory_costs(today=datetime.fromisoformat(today).date())
    assert (costs.before_start.isoformat(), costs.before_end.isoformat()) == (start, end)


# The expected order of the made users (a, b, c, d) for each sort, ascending; a figure a user
# lacks (c's quota, c's last activity) comes last both ways.
ASCENDING = {
    "email": "abcd",
    "name": "dcba",
    "plan": "bcap",  # Free (b, c by id), Pro (a), Team (d): p is replaced below
    "cost": "cbda",
    "change": "bcda",
    "quota": "bdac",
    "active": "dabc",
    "status": "abdc",  # active, unverified, staff, deactivated
}


@pytest.mark.parametrize("key", sorted(directory.SORTS))
@pytest.mark.parametrize("descending", [False, True])
def test_every_column_sorts_both_ways(staff_client, made, key, descending):
    order = ASCENDING[key].replace("p", "d")
    nulls = {"quota": "c", "active": "c"}.get(key, "")
    ranked = [k for k in order if k not in nulls]
    if descending:
        ranked.reverse()
        if key == "plan":  # Team, Pro, then Free's two by id descending
            ranked = ["d", "a", "c", "b"]
    expected = [made[k].pk for k in ranked + list(nulls)]
    sort = f"-{key}" if descending else key
    assert row_ids(staff_client.get(URL, {"q": "dir-", "sort": sort})) == expected


def test_the_header_links_toggle_the_direction_and_keep_the_search(staff_client, made):
    page = text(staff_client.get(URL, {"q": "dir-", "sort": "cost"}))
    assert 'aria-sort="ascending"><a href="?q=dir-&amp;sort=-cost" data-sort="cost"' in page
    assert 'href="?q=dir-&amp;sort=email" data-sort="email"' in page
    page = text(staff_client.get(URL, {"q": "dir-", "sort": "-cost"}))
    assert 'aria-sort="descending"><a href="?q=dir-&amp;sort=cost" data-sort="cost"' in page


# --- Pagination and query count --------------------------------------------------------------


def test_pages_of_fifty_keep_the_search_and_the_sort(staff_client):
    factories.UserFactory.create_batch(120, email=factory.Sequence(lambda n: f"pg{n:03d}@ex.org"))
    first = staff_client.get(URL, {"q": "@ex.org", "sort": "-email"})
    ids = row_ids(first)
    assert len(ids) == 50
    page = first.content.decode()
    assert "120 users found" in page
    assert 'href="?q=%40ex.org&amp;sort=-email&amp;page=2" rel="next"' in page
    third = row_ids(staff_client.get(URL, {"q": "@ex.org", "sort": "-email", "page": "3"}))
    assert len(third) == 20
    every = list(
        User.objects.filter(email__endswith="@ex.org")
        .order_by("-email")
        .values_list("pk", flat=True)
    )
    assert ids == every[:50] and third == every[100:]


def test_the_query_count_does_not_grow_with_the_page(
    staff_client, made, django_assert_max_num_queries
):
    factories.UserFactory.create_batch(5)
    with django_assert_max_num_queries(12) as small:
        row_ids(staff_client.get(URL, {"sort": "-cost"}))
    factories.UserFactory.create_batch(60)
    with django_assert_max_num_queries(len(small)) as large:
        assert len(row_ids(staff_client.get(URL, {"sort": "-cost"}))) == 50
    assert len(large) == len(small)
    reads = [q["sql"] for q in large.captured_queries if "ai_usage" in q["sql"]]
    assert len(reads) == 1  # every figure in the page's one query
    assert all("ai_usage_requests" not in q["sql"] for q in large.captured_queries)


# --- Row-level security ----------------------------------------------------------------------


def test_the_page_runs_as_the_runtime_role(staff_client, made, django_assert_max_num_queries):
    with django_assert_max_num_queries(20) as queries:
        row_ids(staff_client.get(URL, {"q": "dir-"}))
    sqls = [q["sql"] for q in queries.captured_queries]
    first_read = next(n for n, sql in enumerate(sqls) if "users_search" in sql)
    assert any("witchcraft_app" in sql for sql in sqls[:first_read])


def test_staff_under_the_runtime_role_see_every_user(staff, made):
    with transaction.atomic(), rls.user_context(staff):
        found = set(account_selectors.users_directory(text="dir-").values_list("pk", flat=True))
    assert found == {u.pk for u in made.values()}


def test_a_member_cannot_search_users(made):
    member = made["b"]
    with (
        pytest.raises(DatabaseError, match="staff only"),
        transaction.atomic(),
        rls.user_context(member),
    ):
        list(account_selectors.users_directory(text="dir-"))
    with transaction.atomic(), rls.user_context(member):
        # Without a search, row-level security leaves a member their own row only.
        assert list(account_selectors.users_directory().values_list("pk", flat=True)) == [member.pk]


# --- Emails on the other dashboard pages link to the 360° page --------------------------------


def test_the_quota_and_overview_emails_link_to_the_user_page(staff_client, made):
    link = f'href="{reverse("dashboard:user", args=[made["a"].pk])}"'
    assert link in text(staff_client.get(reverse("dashboard:quotas")))
    assert link in text(staff_client.get(reverse("dashboard:overview")))


def test_the_staff_pages_link_every_email_to_the_user_page(staff_client, staff, made):
    """Overview (alerts, security events with user and actor), audit (the acting staff
    member), agents' session page, archive (the subject), quotas (who acknowledged)."""
    from accounts import audit
    from accounts.models import AuditLog
    from agents.models import AgentSession
    from billing.models import UsageAlert

    member = made["a"]
    AuditLog.objects.create(
        user=member, actor=staff, event_type=audit.IMPERSONATED_ACTION, severity="warning"
    )
    UsageAlert.objects.create(
        user=member,
        alert_type="warning",
        metric="cost",
        threshold_percent=80,
        period_start=NOW - timedelta(days=1),
        value_at_trigger=Decimal(8),
        limit_at_trigger=Decimal(10),
        acknowledged_at=NOW,
        acknowledged_by=staff,
    )
    session = AgentSession.objects.create(user=member, title="Chat")

    def link(user) -> str:
        return f'<a href="{reverse("dashboard:user", args=[user.pk])}">{user.email}</a>'

    overview = text(staff_client.get(reverse("dashboard:overview")))
    assert link(member) in overview and link(staff) in overview
    assert "admin/accounts/user" not in overview
    assert f"by staff {link(staff)}" in text(staff_client.get(reverse("dashboard:audit")))
    session_page = text(staff_client.get(reverse("dashboard:agent_session", args=[session.pk])))
    user_page = reverse("dashboard:user", args=[member.pk])
    assert f'<a href="{user_page}" id="session-user">{member.email}</a>' in session_page
    archive = text(staff_client.get(reverse("dashboard:archive"), {"user": member.email}))
    assert f"Archived usage of {link(member)}" in archive
    quotas = text(staff_client.get(reverse("dashboard:quotas")))
    assert f"acknowledged by {link(staff)}" in quotas


# --- The search's indexes --------------------------------------------------------------------


def _pg_trgm_available() -> bool:
    from witchcraft.tests.schema.db import fetchall

    return bool(fetchall("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"))


def test_the_trigram_indexes_serve_the_search():
    """users_search() runs this statement as its owner (no row-level security in the way):
    with enough users, both trigram indexes serve it (a BitmapOr of the two). A server without
    pg_trgm (contrib; the embedded development server's build) has no such indexes, and the
    search finds the same users by a sequential scan. CI runs both: the embedded PostgreSQL 18
    has no contrib, the PostgreSQL 15 server has it."""
    from witchcraft.tests.schema.db import execute, fetchall
    from witchcraft.tests.schema.plans import analyze, assert_uses

    execute(
        "INSERT INTO users (email, password, full_name, is_active, is_staff, is_superuser,"
        " date_joined) SELECT 'seed' || g || '@example.com', '', 'Person ' || g, true, false,"
        " false, now() FROM generate_series(1, 5000) AS g"
    )
    indexes = ("users_email_trgm", "users_full_name_trgm")
    present = fetchall(
        "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(indexes)]
    )
    if _pg_trgm_available():
        assert sorted(row[0] for row in present) == sorted(indexes)
        for index in indexes:  # as autovacuum would
            execute("SELECT gin_clean_pending_list(%s::regclass)", [index])
        analyze("users")
        statement = "SELECT u.id FROM users u WHERE u.email LIKE %s OR lower(u.full_name) LIKE %s"
        for index in indexes:
            assert_uses(index, statement, ["%seed4321@%", "%person 4321%"])
    else:
        assert present == []
    with transaction.atomic(), rls.service_context():
        found = account_selectors.users_directory(text="SEED4321@").values_list("email", flat=True)
        assert list(found) == ["seed4321@example.com"]


@pytest.mark.parametrize("day", [1, 14, 16, 28, 31])
def test_the_same_days_read_from_either_roll_up_agree(made, day):
    """Early in a month the days are summed; late in it, last month's total less the days
    left out: the same figure either way (a cost on last month's 1st, and one on its 27th:
    inside the comparison from the 27th on)."""
    last = TODAY.replace(day=1) - timedelta(days=1)
    first = TODAY.replace(day=1)
    month_end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    today = min(first + timedelta(days=day - 1), month_end)
    when = datetime.combine(last.replace(day=27), datetime.min.time(), tzinfo=UTC)
    record(made["a"], when=when + timedelta(hours=1), cost="7")
    rows = directory.DirectoryRows(
        search=directory.Search(text="dir-a"), key="email", descending=False, today=today
    )[0:50]
    expected = Decimal(1) + (Decimal(7) if today.day >= 27 else 0)
    assert [r["cost_before"] for r in rows] == [expected]
