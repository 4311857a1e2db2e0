"""What demo people say: names, session titles, prompts, answers, tool calls and feedback.

Plain data and a few functions that pick from it with the run's ``random.Random``, so a seed
always gives the same words. Nothing here is a real person, company or secret: companies are
invented, addresses use the documentation ranges of RFC 5737 / RFC 3849.
"""

from __future__ import annotations

import json
import random
import string

FIRST_NAMES = (
    "Ada", "Aiko", "Alejandro", "Amara", "Anders", "Ananya", "Ben", "Bianca", "Carlos", "Chen",
    "Chiara", "Dmitri", "Elena", "Emeka", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines",
    "Ivan", "Jamal", "Jana", "Javier", "Jonas", "Kai", "Keiko", "Lars", "Leila", "Liam", "Lucia",
    "Mateo", "Maya", "Mei", "Mohammed", "Nadia", "Nils", "Noah", "Olga", "Omar", "Priya", "Rafael",
    "Rosa", "Sami", "Sara", "Sofia", "Tariq", "Thomas", "Uma", "Valentina", "Wei", "Yara", "Yusuf",
    "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adeyemi", "Andersson", "Baker", "Bianchi", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia",
    "Gupta", "Hansen", "Hernandez", "Ito", "Jensen", "Kaur", "Kim", "Kowalski", "Larsen", "Li",
    "Lopez", "Martin", "Meyer", "Moreau", "Nakamura", "Novak", "Okafor", "Olsen", "Patel",
    "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Sato", "Tanaka", "Torres",
    "Virtanen", "Wagner", "Wang", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip
COMPANIES = (
    "Acme Analytics", "Bluefjord Labs", "Copperleaf Studio", "Driftwood Health", "Emberline",
    "Foxglove Logistics", "Granite Peak Software", "Harborview Legal", "Ironbark Robotics",
    "Juniper Learning", "Kestrel Finance", "Lumen Grove", "Meridian Foods", "Northwind Media",
    "Oakridge Energy", "Pinecrest Design", "Quartzline Security", "Riverstone Bio",
    "Saltmarsh Games", "Tidewater Insurance",
)  # fmt: skip

# IANA zone, locale, weight (how many demo people live there).
ZONES = (
    ("America/New_York", "en", 18),
    ("America/Los_Angeles", "en", 12),
    ("America/Sao_Paulo", "pt-br", 5),
    ("Europe/London", "en-gb", 9),
    ("Europe/Berlin", "de", 12),
    ("Europe/Paris", "fr", 7),
    ("Asia/Kolkata", "hi", 9),
    ("Asia/Tokyo", "ja", 6),
    ("Australia/Sydney", "en-au", 4),
    ("UTC", "en", 6),
)

CLIENTS = (
    ("witchcraft-desktop", "2.4.1"),
    ("witchcraft-desktop", "2.5.0"),
    ("witchcraft-cli", "1.9.3"),
    ("witchcraft-vscode", "0.14.2"),
    ("witchcraft-web", "2025.11"),
)
USER_AGENTS = (
    "Witchcraft/2.5.0 (Macintosh; macOS 15.1)",
    "Witchcraft/2.4.1 (Windows NT 10.0; Win64; x64)",
    "Witchcraft/2.5.0 (X11; Linux x86_64)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Version/18.1 Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "witchcraft-cli/1.9.3 python-httpx/0.28",
)
TOKEN_NAMES = ("CLI", "Laptop", "Work desktop", "CI pipeline", "VS Code", "Raycast", "Notebook")
# Scopes of the vocabulary (accounts/scopes.py): the client app's default set most often.
TOKEN_SCOPES = (
    ("account", "agents", "tokens.manage", "usage.read"),
    ("account", "agents", "tokens.manage", "usage.read"),
    ("usage.read",),
    ("agents", "usage.read"),
    ("agents",),
)
AGENT_NAMES = ("assistant", "assistant", "assistant", "coder", "researcher", "analyst")

# Each topic: session titles, user prompts, assistant answers, the tools its agent uses.
TOPICS = (
    {
        "titles": ("Refactor the {module} module", "Fix the failing {module} tests",
                   "Speed up {module}", "Review my {lang} pull request"),
        "prompts": (
            "Can you refactor {module} so that the {thing} logic lives in one place?",
            "The {module} tests fail with a KeyError since yesterday. What changed?",
            "Write unit tests for the {thing} function in {module}.",
            "Is there a simpler way to express this {lang} loop?\n\n    for item in items:\n"
            "        if item.ok:\n            out.append(item.value)",
            "Why does {module} allocate so much memory on large inputs?",
        ),
        "answers": (
            "I moved the {thing} logic into a single helper and updated both call sites. The "
            "behaviour is unchanged; the tests still pass.",
            "The failure comes from a renamed key in the {module} configuration. Renaming "
            "`{thing}_id` back, or reading both keys for one release, fixes it.",
            "Here are five focused tests for {thing}: the happy path, an empty input, a "
            "duplicate, a boundary value and the error case.",
            "A comprehension says the same in one line:\n\n    out = [i.value for i in items "
            "if i.ok]\n\nIt is also a little faster.",
            "{module} keeps every intermediate result in a list. Streaming them with a "
            "generator keeps memory flat whatever the input size.",
        ),
        "tools": ("read_file", "run_tests", "search_code"),
    },
    {
        "titles": ("Draft the {month} newsletter", "Reply to a customer about {thing}",
                   "Polish the launch announcement", "Blog post on {thing}"),
        "prompts": (
            "Draft a friendly reply to a customer asking about {thing}. Keep it short.",
            "Make this paragraph clearer and less formal.",
            "Give me three subject lines for the {month} newsletter.",
            "Summarise our {thing} changes for a non-technical audience.",
        ),
        "answers": (
            "Hi! Thanks for asking about {thing}. It is available on every plan from today; "
            "you will find it under Settings. Let me know if anything is unclear.",
            "Here is a lighter version that keeps your point and drops the jargon.",
            "1. What's new in {month}\n2. Small changes, big wins\n3. {thing}, finally",
            "In short: {thing} is now faster and easier to set up, and nothing changes for "
            "people who already use it.",
        ),
        "tools": ("web_search", "fetch_url"),
    },
    {
        "titles": ("Analyse {month} sales", "SQL for the churn report", "Clean up the CSV export",
                   "Forecast {thing} demand"),
        "prompts": (
            "Write a SQL query that returns monthly active users for the last {n} months.",
            "This CSV has duplicated rows. How do I remove them but keep the newest?",
            "Which customers grew their {thing} usage the most in {month}?",
            "Plot weekly revenue and tell me if the dip in week {n} is unusual.",
        ),
        "answers": (
            "Group by the month of the event and count distinct users:\n\n    SELECT "
            "date_trunc('month', created_at) AS month, count(DISTINCT user_id)\n      FROM "
            "events GROUP BY 1 ORDER BY 1;",
            "Sort by the timestamp descending and keep the first row per key; in pandas that "
            "is `df.sort_values('ts').drop_duplicates('id', keep='last')`.",
            "The top five accounts grew between 40 % and 120 %; three of them are on the team "
            "plan. The full table is attached.",
            "The dip in week {n} is within the usual range (about 1.3 standard deviations); "
            "it matches a public holiday in two large markets.",
        ),
        "tools": ("run_sql", "run_python", "read_file"),
    },
    {
        "titles": ("Research {thing}", "Summarise the {thing} paper", "Compare {thing} vendors",
                   "Notes for the {month} board meeting"),
        "prompts": (
            "Summarise the key findings of the attached paper on {thing}.",
            "Compare the three main {thing} vendors on price and support.",
            "What are the open questions about {thing} right now?",
            "Turn these notes into an agenda for the {month} meeting.",
        ),
        "answers": (
            "Three findings stand out: the effect is real but smaller than reported, it holds "
            "across datasets, and it disappears with careful tuning of the baseline.",
            "On price the second vendor is cheapest at our volume; on support the first is the "
            "only one with a 24/7 phone line. The third sits in between.",
            "The main open questions are cost at scale, evaluation, and how {thing} behaves on "
            "data unlike its training set.",
            "Agenda: 1. Results of {month} 2. Hiring 3. {thing} roadmap 4. Any other business.",
        ),
        "tools": ("web_search", "fetch_url", "read_file"),
    },
    {
        "titles": ("Plan the team offsite", "Trip to {city}", "Weekly planning",
                   "Prepare the {month} review"),
        "prompts": (
            "Plan a two-day offsite in {city} for {n} people with a modest budget.",
            "What should I see in {city} with one free afternoon?",
            "Turn this list into a plan for the week, most urgent first.",
            "Which of my meetings next week could be an email instead?",
        ),
        "answers": (
            "Day one: arrive by noon, a workshop in the afternoon, dinner near the old town. "
            "Day two: a walk, a retrospective, and departures after lunch.",
            "With one afternoon in {city}, pick the old town and the river walk; both are "
            "close to each other and free.",
            "Monday: the two deadlines. Tuesday and Wednesday: the review. Thursday: the "
            "smaller tasks. Friday: buffer.",
            "The status update and the weekly sync could be emails; keep the design review.",
        ),
        "tools": ("calendar_lookup", "web_search"),
    },
)  # fmt: skip

FILL = {
    "module": ("billing", "auth", "parser", "scheduler", "exporter", "search", "payments"),
    "thing": ("rate limiting", "single sign-on", "caching", "retries", "pricing", "onboarding",
              "dark mode", "webhooks", "vector search", "data export"),
    "lang": ("Python", "TypeScript", "Go", "Rust", "SQL"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"),
    "city": ("Lisbon", "Kyoto", "Berlin", "Montreal", "Cape Town", "Edinburgh", "Oaxaca"),
    "n": ("3", "6", "8", "12", "15"),
}  # fmt: skip
SYSTEM_PROMPT = (
    "You are Witchcraft, a careful assistant. Answer briefly, say when you are unsure, and use "
    "the tools you are given when they help."
)
TOOL_NOTES = {
    "read_file": "Read {path} ({n} lines).",
    "run_tests": "{n} passed, 0 failed.",
    "search_code": "{n} matches for `{thing}`.",
    "web_search": "{n} results for “{thing}”.",
    "fetch_url": "Fetched the page (HTTP 200).",
    "run_sql": "{n} rows.",
    "run_python": "Ran without errors.",
    "calendar_lookup": "{n} events next week.",
}
TOOL_ERRORS = (
    "timed out after 30 s",
    "permission denied",
    "HTTP 503 from the upstream service",
    "file not found",
)
FEEDBACK_COMMENTS = {
    5: ("Exactly what I needed.", "Great, thanks!", "Saved me an hour.", ""),
    4: ("Good, a little long.", "Helpful.", ""),
    3: ("Partly right.", "OK but generic.", ""),
    2: ("Missed the point of my question.", "Too vague.", ""),
    1: ("Wrong answer.", "It made up a function that does not exist.", "Not helpful.", ""),
}
FEEDBACK_CATEGORIES = {
    5: ("", "helpful"),
    4: ("", "helpful"),
    3: ("", "too_long", "incomplete"),
    2: ("incomplete", "unhelpful"),
    1: ("inaccurate", "unhelpful", "too_slow"),
}


_FIELDS: dict[str, tuple[str, ...]] = {}


def _fill(rng: random.Random, template: str) -> str:
    """``template`` with each of its fields drawn from FILL."""
    fields = _FIELDS.get(template)
    if fields is None:
        fields = _FIELDS[template] = tuple(
            {name: None for _, name, _, _ in string.Formatter().parse(template) if name}
        )
    if not fields:
        return template
    return template.format(**{name: rng.choice(FILL[name]) for name in fields})


def session_title(rng: random.Random, topic: int) -> str:
    return _fill(rng, rng.choice(TOPICS[topic]["titles"]))


def user_prompt(rng: random.Random, topic: int) -> str:
    return _fill(rng, rng.choice(TOPICS[topic]["prompts"]))


def assistant_answer(rng: random.Random, topic: int) -> str:
    return _fill(rng, rng.choice(TOPICS[topic]["answers"]))


def tool_request(rng: random.Random, tools: tuple[str, ...]) -> str:
    names = " and ".join(f"`{name}`" for name in tools)
    return rng.choice(
        (
            f"Let me check with {names} first.",
            f"I'll use {names} to look that up.",
            f"One moment: running {names}.",
        )
    )


def tool_arguments(rng: random.Random, tool: str) -> dict:
    """The JSON arguments of a call of ``tool``."""
    thing = rng.choice(FILL["thing"])
    if tool == "read_file":
        return {"path": f"src/{rng.choice(FILL['module'])}/{rng.choice(('core', 'api'))}.py"}
    if tool == "run_tests":
        return {"path": f"tests/test_{rng.choice(FILL['module'])}.py", "verbose": False}
    if tool == "search_code":
        return {"query": thing, "max_results": 20}
    if tool == "web_search":
        return {"query": f"{thing} best practices", "max_results": 5}
    if tool == "fetch_url":
        return {"url": f"https://docs.example.org/{thing.replace(' ', '-')}"}
    if tool == "run_sql":
        return {
            "query": "SELECT date_trunc('week', created_at), sum(amount) FROM orders GROUP BY 1"
        }
    if tool == "run_python":
        return {"code": "df.groupby('week')['revenue'].sum().describe()"}
    return {"range": "next_week", "calendar": "work"}


def tool_result(rng: random.Random, tool: str) -> tuple[dict, str]:
    """The JSON result of a successful call of ``tool`` and the tool message that reports it."""
    n = rng.randint(1, 40)
    note = TOOL_NOTES.get(tool, "Done.").format(
        n=n, thing=rng.choice(FILL["thing"]), path="src/app.py"
    )
    return {"ok": True, "items": n, "summary": note}, note


def json_text(value) -> str:
    """Compact JSON (what jsonb stores, give or take key order)."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
