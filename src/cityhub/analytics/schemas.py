"""Response models of the city brain's API (热点诉求: hot topics)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cityhub.workorders.schemas import OrderRead


class TopicRead(BaseModel):
    """A stored hot topic as one reader sees it: every figure counted over the reader's data scope."""

    id: int = Field(description="the topic id the miner assigned; stable across incremental updates")
    label: str = Field(description="key phrases of the topic")
    topic: str = Field(description="its representative title")
    count: int = Field(description="orders of the topic created in the period, within the reader's scope")
    size: int = Field(description="all orders of the topic within the reader's scope")
    heat: float = Field(description="heat score of the miner (orders, recency, growth, reporters, likes)")
    status: str = Field(description="new, rising, active or dormant, as the miner marked it")
    new: bool = Field(description="the topic's first order lies in the period")
    places: list[str] = Field(description="places its orders name most (a scoped reader: those of the period)")
    period_places: list[str] = Field(description="places its orders of the period name most")
    groups: list[str] = Field(description="population groups its orders mention most (学生, 老人 …)")
    key_phrases: list[str]
    first_at: datetime | None = Field(description="first order of the topic (within the reader's scope)")
    last_at: datetime | None = Field(description="latest order of the topic (within the reader's scope)")
    period_first_at: datetime | None = Field(description="first order of the topic in the period")
    period_last_at: datetime | None = Field(description="latest order of the topic in the period")

    @classmethod
    def of(cls, row: dict[str, object]) -> TopicRead:
        """From a row of :func:`cityhub.analytics.topics_store.list_topics`."""
        span, period_span = row["time_span"], row["period_span"]
        assert isinstance(span, list) and isinstance(period_span, list)
        return cls.model_validate(
            {
                **row,
                "first_at": span[0],
                "last_at": span[1],
                "period_first_at": period_span[0],
                "period_last_at": period_span[1],
            }
        )


class TopicPage(BaseModel):
    period: str = Field(description="the period as read (default: the last 30 days)")
    start: datetime
    end: datetime = Field(description="exclusive")
    mined_at: datetime | None = Field(description="when topics were last mined (null: never)")
    total: int = Field(description="topics with orders in the period within the reader's scope")
    limit: int
    offset: int
    items: list[TopicRead]


class TopicDetail(TopicRead):
    orders: list[OrderRead] = Field(description="its orders of the period in the reader's scope, newest first")
    orders_offset: int
