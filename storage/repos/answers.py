"""Self-service answers: the questions the free-text router saw and what became of them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.db import Database

#: Outcomes of a question.
ANSWERED = "answered"
CANDIDATES = "candidates"
UNMATCHED = "unmatched"


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """One question typed by a user and what the router did with it."""

    id: int
    user_id: int
    language: str
    question: str
    outcome: str
    article: str | None
    helpful: bool | None
    ticket_id: int | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ArticleStats:
    """Counts for one article: shown, found helpful / not helpful, escalated to a human."""

    article: str
    answered: int
    helpful: int
    not_helpful: int
    escalated: int


@dataclass(frozen=True, slots=True)
class AnswerStats:
    """Totals for the admin stats, and the same per article (most answered first)."""

    questions: int
    answered: int
    candidates: int
    unmatched: int
    helpful: int
    not_helpful: int
    escalated: int
    articles: list[ArticleStats]


class AnswerRepository:
    """Questions and their outcomes; every change is checked against the asking user."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        user_id: int,
        language: str,
        question: str,
        outcome: str,
        article: str | None = None,
        now: float | None = None,
    ) -> int:
        """Store a question and what was shown; return its id.

        Args:
            user_id: Telegram id of the asking user.
            language: the language the answer was shown in.
            question: the text as typed (already cleared by the sensitive-data guard).
            outcome: ``answered`` (one article), ``candidates`` or ``unmatched``.
            article: the article shown for ``answered``.
            now: time of the question; defaults to the current time.
        """
        now = time.time() if now is None else now
        rows = await self._db.write(
            "INSERT INTO answers (user_id, language, question, outcome, article, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (user_id, language, question, outcome, article, now, now),
        )
        return int(rows[0][0])

    async def get(self, answer_id: int) -> AnswerRecord | None:
        """Return a recorded question."""
        row = await self._db.fetchone("SELECT * FROM answers WHERE id = ?", (answer_id,))
        return _record(row) if row else None

    async def choose(self, answer_id: int, user_id: int, article: str) -> bool:
        """Record the article a user picked among candidates (a later pick replaces it);
        False if the question is not this user's."""
        rows = await self._db.write(
            "UPDATE answers SET article = ?, outcome = ?, updated_at = ? "
            "WHERE id = ? AND user_id = ? AND outcome != ? RETURNING id",
            (article, ANSWERED, time.time(), answer_id, user_id, UNMATCHED),
        )
        return bool(rows)

    async def feedback(self, answer_id: int, user_id: int, helpful: bool) -> bool:
        """Record "did this solve it?" once (the first press counts); False otherwise."""
        rows = await self._db.write(
            "UPDATE answers SET helpful = ?, updated_at = ? WHERE id = ? AND user_id = ? "
            "AND article IS NOT NULL AND helpful IS NULL RETURNING id",
            (int(helpful), time.time(), answer_id, user_id),
        )
        return bool(rows)

    async def escalated(self, answer_id: int, user_id: int, ticket_id: int) -> bool:
        """Record the ticket a question was handed to a human with (once)."""
        rows = await self._db.write(
            "UPDATE answers SET ticket_id = ?, updated_at = ? WHERE id = ? AND user_id = ? "
            "AND ticket_id IS NULL RETURNING id",
            (ticket_id, time.time(), answer_id, user_id),
        )
        return bool(rows)

    async def stats(self, since: float | None = None) -> AnswerStats:
        """Return the counts of questions since ``since`` (all time by default)."""
        since = 0.0 if since is None else since
        total = await self._db.fetchone(
            "SELECT COUNT(*) AS questions, "
            "COALESCE(SUM(outcome = 'answered'), 0) AS answered, "
            "COALESCE(SUM(outcome = 'candidates'), 0) AS candidates, "
            "COALESCE(SUM(outcome = 'unmatched'), 0) AS unmatched, "
            "COALESCE(SUM(helpful = 1), 0) AS helpful, "
            "COALESCE(SUM(helpful = 0), 0) AS not_helpful, "
            "COALESCE(SUM(ticket_id IS NOT NULL), 0) AS escalated "
            "FROM answers WHERE created_at >= ?",
            (since,),
        )
        rows = await self._db.fetchall(
            "SELECT article, COUNT(*) AS answered, COALESCE(SUM(helpful = 1), 0) AS helpful, "
            "COALESCE(SUM(helpful = 0), 0) AS not_helpful, "
            "COALESCE(SUM(ticket_id IS NOT NULL), 0) AS escalated "
            "FROM answers WHERE created_at >= ? AND article IS NOT NULL "
            "GROUP BY article ORDER BY answered DESC, article",
            (since,),
        )
        assert total is not None
        return AnswerStats(
            questions=total["questions"],
            answered=total["answered"],
            candidates=total["candidates"],
            unmatched=total["unmatched"],
            helpful=total["helpful"],
            not_helpful=total["not_helpful"],
            escalated=total["escalated"],
            articles=[
                ArticleStats(
                    r["article"], r["answered"], r["helpful"], r["not_helpful"], r["escalated"]
                )
                for r in rows
            ],
        )

    async def forget_questions(self, before: float) -> int:
        """Blank the text of questions asked before ``before`` (counts stay); return how many."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE answers SET question = '' WHERE created_at < ? AND question != ''",
                (before,),
            )
            return cursor.rowcount


def _record(row) -> AnswerRecord:
    return AnswerRecord(
        id=row["id"],
        user_id=row["user_id"],
        language=row["language"],
        question=row["question"],
        outcome=row["outcome"],
        article=row["article"],
        helpful=None if row["helpful"] is None else bool(row["helpful"]),
        ticket_id=row["ticket_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
