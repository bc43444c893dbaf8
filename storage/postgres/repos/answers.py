"""Self-service answers (PostgreSQL): the questions the router saw and what became of them."""

from __future__ import annotations

import time

from storage.postgres.db import PostgresDatabase
from storage.repos.answers import (
    ANSWERED,
    UNMATCHED,
    AnswerRecord,
    AnswerStats,
    ArticleStats,
    _record,
)


class AnswerRepository:
    """Questions and their outcomes; every change is checked against the asking user."""

    def __init__(self, db: PostgresDatabase) -> None:
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
        return int(
            await self._db.fetchval(
                "INSERT INTO answers (user_id, language, question, outcome, article, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                (user_id, language, question, outcome, article, now),
            )
        )

    async def get(self, answer_id: int) -> AnswerRecord | None:
        """Return a recorded question."""
        row = await self._db.fetchone("SELECT * FROM answers WHERE id = $1", (answer_id,))
        return _record(row) if row else None

    async def choose(self, answer_id: int, user_id: int, article: str) -> bool:
        """Record the article a user picked among candidates (a later pick replaces it);
        False if the question is not this user's."""
        return (
            await self._db.execute(
                "UPDATE answers SET article = $1, outcome = $2, updated_at = $3 "
                "WHERE id = $4 AND user_id = $5 AND outcome != $6",
                (article, ANSWERED, time.time(), answer_id, user_id, UNMATCHED),
            )
            > 0
        )

    async def feedback(self, answer_id: int, user_id: int, helpful: bool) -> bool:
        """Record "did this solve it?" once (the first press counts); False otherwise."""
        return (
            await self._db.execute(
                "UPDATE answers SET helpful = $1, updated_at = $2 WHERE id = $3 AND user_id = $4 "
                "AND article IS NOT NULL AND helpful IS NULL",
                (bool(helpful), time.time(), answer_id, user_id),
            )
            > 0
        )

    async def escalated(self, answer_id: int, user_id: int, ticket_id: int) -> bool:
        """Record the ticket a question was handed to a human with (once)."""
        return (
            await self._db.execute(
                "UPDATE answers SET ticket_id = $1, updated_at = $2 WHERE id = $3 "
                "AND user_id = $4 AND ticket_id IS NULL",
                (ticket_id, time.time(), answer_id, user_id),
            )
            > 0
        )

    async def stats(self, since: float | None = None) -> AnswerStats:
        """Return the counts of questions since ``since`` (all time by default)."""
        since = 0.0 if since is None else since
        total = await self._db.fetchone(
            "SELECT COUNT(*) AS questions, "
            "COUNT(*) FILTER (WHERE outcome = 'answered') AS answered, "
            "COUNT(*) FILTER (WHERE outcome = 'candidates') AS candidates, "
            "COUNT(*) FILTER (WHERE outcome = 'unmatched') AS unmatched, "
            "COUNT(*) FILTER (WHERE helpful) AS helpful, "
            "COUNT(*) FILTER (WHERE NOT helpful) AS not_helpful, "
            "COUNT(ticket_id) AS escalated "
            "FROM answers WHERE created_at >= $1",
            (since,),
        )
        rows = await self._db.fetchall(
            "SELECT article, COUNT(*) AS answered, COUNT(*) FILTER (WHERE helpful) AS helpful, "
            "COUNT(*) FILTER (WHERE NOT helpful) AS not_helpful, "
            "COUNT(ticket_id) AS escalated "
            "FROM answers WHERE created_at >= $1 AND article IS NOT NULL "
            'GROUP BY article ORDER BY answered DESC, article COLLATE "C"',
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
        return await self._db.execute(
            "UPDATE answers SET question = '' WHERE created_at < $1 AND question != ''",
            (before,),
        )
