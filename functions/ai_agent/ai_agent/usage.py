"""The org's AI usage between two dates: the AI API's requests and the AI tutor's interactions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from verriflo.auth import OrgContext
from verriflo.errors import ValidationFailed
from verriflo.ledger import from_milli
from verriflo.pricing import ai_tokens

from ai_agent import store
from ai_agent.models import AgentBreakdown, Breakdown, TutorBreakdown, UsageSummary, UsageTotals


def _day(value: str | None, default: date, name: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be a date like 2026-01-31.") from exc


def usage_summary(org: OrgContext, start_date: str | None, end_date: str | None) -> UsageSummary:
    """AI usage of the org between two dates (inclusive; default the last 30 days)."""
    today = datetime.now(UTC).date()
    end = _day(end_date, today, "endDate")
    start = _day(start_date, end - timedelta(days=29), "startDate")
    if start > end:
        raise ValidationFailed("startDate must not be after endDate.")
    if (end - start).days > 366:
        raise ValidationFailed("The period is limited to 366 days.")
    lower = datetime(start.year, start.month, start.day, tzinfo=UTC)
    upper = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    agent = store.agent_totals(org.org_id, lower, upper)
    tutor = store.tutor_totals(org.org_id, lower, upper)
    agent_cost = from_milli(agent.credits_milli)
    tutor_cost = float(ai_tokens(tutor.input_tokens, tutor.output_tokens))
    return UsageSummary(
        summary=UsageTotals(
            total_sessions=agent.sessions + tutor.interactions,
            total_token_cost=round(agent_cost + tutor_cost, 3),
            total_input_tokens=agent.input_tokens + tutor.input_tokens,
            total_output_tokens=agent.output_tokens + tutor.output_tokens,
        ),
        breakdown=Breakdown(
            ai_agent=AgentBreakdown(
                sessions=agent.sessions,
                requests=agent.requests,
                failed_requests=agent.failed,
                input_tokens=agent.input_tokens,
                output_tokens=agent.output_tokens,
                cost=round(agent_cost, 3),
            ),
            ai_tutor=TutorBreakdown(
                interactions=tutor.interactions,
                students=tutor.students,
                rooms=tutor.rooms,
                failed_interactions=tutor.failed,
                input_tokens=tutor.input_tokens,
                output_tokens=tutor.output_tokens,
                cost=round(tutor_cost, 3),
            ),
        ),
        start_date=start,
        end_date=end,
    )
