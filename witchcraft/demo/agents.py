"""Agent sessions: messages, tool calls, feedback, and the usage of every assistant message.

A session is a generator of its own timeline (:meth:`SessionWriter.timeline`): it yields the
moment of its next step and, when resumed at that moment, writes what happens then. The
driver (:mod:`witchcraft.demo.activity`) resumes the steps of all of a person's sessions and
requests in time order, so the quota refuses exactly what it would have refused: a session
whose answer comes after the quota was used up stops there, as the real flow would.

As in the real flow (agents.services.message_add), an assistant message and its usage row are
written together: the usage row names the session and the message, its key row names the
message, and both carry the message's time. The session's counters and totals are left at
their defaults here and computed from these rows afterwards (:mod:`witchcraft.demo.rollups`).
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass

from witchcraft.demo import bulk, phrases
from witchcraft.demo.bulk import NULL, esc, ts
from witchcraft.demo.plan import Person, Window, lognormal
from witchcraft.demo.usage import Quota, UsageWriter

SESSION_COLUMNS = (
    "id", "user_id", "title", "agent_name", "model_id", "is_active", "started_at",
    "last_activity_at", "ended_at", "metadata",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "session_id", "user_id", "role", "content", "position", "input_tokens",
    "output_tokens", "model_id", "latency_ms", "created_at", "metadata",
)  # fmt: skip
TOOL_CALL_COLUMNS = (
    "session_id", "message_id", "user_id", "tool_name", "arguments", "result", "status", "error",
    "started_at", "completed_at", "duration_ms",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "session_id",
    "message_id",
    "user_id",
    "rating",
    "comment",
    "category",
    "created_at",
)

SECOND = bulk.US_PER_SECOND
IDLE_END = 24 * 3600 * SECOND  # daily_maintenance ends sessions idle this long
MEAN_EXTRA_TURNS = 3.5
ABANDONED_SHARE = 0.03
SYSTEM_MESSAGE_SHARE = 0.4
TOOL_TURN_SHARE = 0.3
ENDED_BY_USER_SHARE = 0.55
MESSAGE_FEEDBACK_SHARE = 0.12
SESSION_FEEDBACK_SHARE = 0.06
TOOL_DURATION_MS = {
    "read_file": 40, "run_tests": 4_000, "search_code": 200, "web_search": 1_200,
    "fetch_url": 900, "run_sql": 300, "run_python": 1_500, "calendar_lookup": 250,
}  # fmt: skip
EMPTY_OBJECT = "{}"
TOOL_MESSAGE_DELAY = 20_000  # microseconds from a tool's result to its message


@dataclass(slots=True)
class Session:
    id: int
    person: Person
    started: int
    last: int  # the latest message (the start while there is none)
    position: int = 0
    outcome: str = "live"  # live (cut by now), finished, refused (quota)


class SessionWriter:
    def __init__(
        self,
        loader: bulk.Loader,
        session_ids: bulk.Ids,
        message_ids: bulk.Ids,
        usage: UsageWriter,
        window: Window,
        rng: random.Random,
    ):
        self.sessions = loader.table("agent_sessions", SESSION_COLUMNS)
        self.messages = loader.table("agent_messages", MESSAGE_COLUMNS)
        self.tool_calls = loader.table("agent_tool_calls", TOOL_CALL_COLUMNS)
        self.feedback = loader.table("agent_feedback", FEEDBACK_COLUMNS)
        self.session_ids = session_ids
        self.message_ids = message_ids
        self.usage = usage
        self.now = window.now
        self.rng = rng
        self._session_metadata: dict[tuple[str, str], str] = {}

    def timeline(self, person: Person, quota: Quota, start: int) -> Generator[int, None, None]:
        """The session started by ``person`` at ``start``, step by step (see the module): run
        from ``start``, it yields the moment of each next step; closing it early (the next step
        would be after now) still writes the session row."""
        rng = self.rng
        session = Session(self.session_ids.next(), person, start, start)
        topic = rng.randrange(len(phrases.TOPICS))
        title = phrases.session_title(rng, topic)
        agent_name = rng.choice(phrases.AGENT_NAMES)
        model = person.agent_model
        # A few sessions are opened and left without a word.
        abandoned = rng.random() < ABANDONED_SHARE
        turns = 0 if abandoned else 1 + int(rng.expovariate(1 / MEAN_EXTRA_TURNS))
        try:
            at = start
            # The agent's instructions and tools, in proportion to how the person writes.
            context = int(person.input_tokens * (1 + 2 * rng.random()))
            if rng.random() < SYSTEM_MESSAGE_SHARE:
                at += int(rng.uniform(0.05, 0.5) * SECOND)
                self._message(session, "system", phrases.SYSTEM_PROMPT, at)
                context += 60
            for turn in range(turns):
                think = rng.uniform(3, 40) if turn == 0 else lognormal(rng, 4.0, 0.8)
                at += int(think * SECOND)
                yield at
                self._message(session, "user", phrases.user_prompt(rng, topic), at)
                # Token sizes follow how much the person writes (their usual request).
                context += int(person.input_tokens * lognormal(rng, -0.7, 0.7)) + 10
                tools = ()
                if rng.random() < TOOL_TURN_SHARE:
                    options = phrases.TOPICS[topic]["tools"]
                    tools = tuple(rng.sample(options, min(len(options), rng.choice((1, 1, 2)))))
                    draw = self.usage.draw(
                        model, context, rng.randint(30, 120), at=at, may_fail=False
                    )
                    at += (draw.latency_ms or 0) * 1000
                    yield at
                    if quota.refusal(at) is not None:
                        session.outcome = "refused"
                        return
                    text = phrases.tool_request(rng, tools)
                    asked_by = self._answer(session, quota, at, draw, text)
                    at = self._run_tools(session, asked_by, tools, at)
                    context += draw.output_tokens + 120 * len(tools)
                answer = int(person.input_tokens * lognormal(rng, -1.0, 0.6)) + 40
                draw = self.usage.draw(model, context, answer, at=at, may_fail=False)
                at += (draw.latency_ms or 0) * 1000
                yield at
                if quota.refusal(at) is not None:
                    session.outcome = "refused"
                    return
                message_id = self._answer(
                    session, quota, at, draw, phrases.assistant_answer(rng, topic)
                )
                if rng.random() < MESSAGE_FEEDBACK_SHARE:
                    self._feedback(session, message_id, at)
                context += draw.output_tokens
            session.outcome = "finished"
        finally:
            self._close(session, title, agent_name, model.id)

    # --- rows ----------------------------------------------------------------------------------
    def _message(
        self,
        session: Session,
        role: str,
        content: str,
        at: int,
        *,
        tokens: tuple[int, int] = (0, 0),
        model_id: int | None = None,
        latency_ms: int | None = None,
    ) -> int:
        message_id = self.message_ids.next()
        session.position += 1
        session.last = at
        self.messages.add(
            f"{message_id}\t{session.id}\t{session.person.id}\t{role}\t{esc(content)}\t"
            f"{session.position}\t{tokens[0]}\t{tokens[1]}\t"
            f"{NULL if model_id is None else model_id}\t"
            f"{NULL if latency_ms is None else latency_ms}\t{ts(at)}\t{EMPTY_OBJECT}"
        )
        return message_id

    def _answer(self, session: Session, quota: Quota, at: int, draw, text: str) -> int:
        """An assistant message and its usage row (same time, linked both ways)."""
        message_id = self._message(
            session,
            "assistant",
            text,
            at,
            tokens=(draw.input_tokens, draw.output_tokens),
            model_id=draw.model.id,
            latency_ms=draw.latency_ms,
        )
        self.usage.write(
            session.person,
            quota,
            at,
            draw,
            request_id=self.usage.agent_request_id(session.person),
            session_id=session.id,
            message_id=message_id,
        )
        return message_id

    def _run_tools(self, session: Session, asked_by: int, tools: tuple[str, ...], at: int) -> int:
        """The calls of ``tools`` made by the assistant message ``asked_by``, and a tool
        message with each result; return when the last result came in. A call still running
        at ``now`` has neither result nor message yet (and the session goes no further)."""
        rng = self.rng
        end = at
        for tool in tools:
            started = min(at + int(rng.uniform(0.02, 0.3) * SECOND), self.now)
            duration = max(1, int(TOOL_DURATION_MS.get(tool, 500) * lognormal(rng, 0, 0.6)))
            completed = started + duration * 1000
            arguments = esc(phrases.json_text(phrases.tool_arguments(rng, tool)))
            roll = rng.random()
            # Results are reported in order: a call's message follows the previous ones.
            message_at = max(end, completed + TOOL_MESSAGE_DELAY)
            if message_at > self.now:
                status, error, result_text, note = "running", "", NULL, None
            elif roll < 0.92:
                result, note = phrases.tool_result(rng, tool)
                status, error, result_text = "success", "", esc(phrases.json_text(result))
            elif roll < 0.98:
                status, error, result_text = "error", rng.choice(phrases.TOOL_ERRORS), NULL
                note = f"Error: {error}"
            else:
                status, error, result_text = "cancelled", "cancelled by the agent", NULL
                note = "The call was cancelled."
            finished = note is not None
            self.tool_calls.add(
                f"{session.id}\t{asked_by}\t{session.person.id}\t{tool}\t{arguments}\t"
                f"{result_text}\t{status}\t{error}\t{ts(started)}\t"
                f"{ts(completed) if finished else NULL}\t{duration if finished else NULL}"
            )
            end = message_at
            if finished:
                self._message(session, "tool", note, end)
        return end

    def _feedback(self, session: Session, message_id: int | None, after: int) -> None:
        rng = self.rng
        at = after + int(rng.uniform(5, 600) * SECOND)
        if at > self.now:
            return
        rating = rng.choices((5, 4, 3, 2, 1), weights=(62, 8, 6, 6, 18))[0]
        comment = rng.choice(phrases.FEEDBACK_COMMENTS[rating]) if rng.random() < 0.3 else ""
        category = rng.choice(phrases.FEEDBACK_CATEGORIES[rating])
        self.feedback.add(
            f"{session.id}\t{NULL if message_id is None else message_id}\t{session.person.id}\t"
            f"{rating}\t{esc(comment)}\t{category}\t{ts(at)}"
        )

    def _close(self, session: Session, title: str, agent_name: str, model_id: int) -> None:
        """Write the session row with how it ended (counters and totals come later)."""
        rng = self.rng
        ended = None
        if session.outcome == "finished" and rng.random() < ENDED_BY_USER_SHARE:
            candidate = session.last + int(rng.uniform(3, 600) * SECOND)
            if candidate <= self.now:
                ended = candidate
        if ended is None and self.now - session.last >= IDLE_END:
            ended = session.last  # daily_maintenance: ended at the last activity
        if (
            ended is not None
            and session.outcome == "finished"
            and (rng.random() < SESSION_FEEDBACK_SHARE)
        ):
            self._feedback(session, None, ended)
        person = session.person
        metadata = self._session_metadata.get(person.client)
        if metadata is None:
            metadata = self._session_metadata[person.client] = esc(
                phrases.json_text({"client": person.client[0]})
            )
        self.sessions.add(
            f"{session.id}\t{person.id}\t{esc(title)}\t{agent_name}\t{model_id}\t"
            f"{bulk.boolean(ended is None)}\t{ts(session.started)}\t{ts(session.started)}\t"
            f"{bulk.opt_ts(ended)}\t{metadata}"
        )
