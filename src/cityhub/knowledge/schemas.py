"""Pydantic schemas of the knowledge base, instant answers and reply-quality checks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityhub.timerange import RequestTime
from cityhub.workorders.schemas import OrderCreate, OrderRead

KB_TEXT_MAX_CHARS = 20000  # a question, an answer, an appeal looked up

_KEYWORD_SPLIT = re.compile(r"[,，;；、|\s]+")


def split_keywords(value: str | list[str] | None) -> list[str]:
    """Keywords from a list or a string separated by commas, 、, semicolons or spaces; duplicates dropped."""
    if value is None:
        return []
    if not isinstance(value, str | list | tuple):
        raise ValueError("keywords are a list of strings or one string separated by commas")
    items = _KEYWORD_SPLIT.split(value) if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(k.strip() for k in items if k and k.strip()))


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return value


class EntryBase(BaseModel):
    question: str = Field(..., min_length=1, max_length=KB_TEXT_MAX_CHARS)
    answer: str = Field(..., min_length=1, max_length=KB_TEXT_MAX_CHARS)
    category_id: int | None = None
    keywords: list[str] = Field(default_factory=list, max_length=50)
    valid_from: RequestTime | None = None
    valid_until: RequestTime | None = None
    public: bool = Field(False, description="shown to citizens typing an appeal (向市民公开); false: staff only")

    @field_validator("question", "answer")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> list[str]:
        return split_keywords(value)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)

    @model_validator(mode="after")
    def _period(self) -> EntryBase:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class EntryCreate(EntryBase):
    source: str | None = Field(None, max_length=200, description="origin, e.g. import:f4:<message id>")

    @field_validator("source")
    @classmethod
    def _no_empty_source(cls, value: str | None) -> str | None:
        # "" is no origin: the duplicate check skips it, so storing it would clash with the next one.
        return value or None


class EntryUpdate(BaseModel):
    """Fields to change; ``version`` guards against overwriting someone else's edit."""

    question: str | None = Field(None, min_length=1, max_length=KB_TEXT_MAX_CHARS)
    answer: str | None = Field(None, min_length=1, max_length=KB_TEXT_MAX_CHARS)
    category_id: int | None = None
    keywords: list[str] | None = None
    valid_from: RequestTime | None = None
    valid_until: RequestTime | None = None
    active: bool | None = None
    public: bool | None = None
    version: int | None = Field(None, ge=1)

    @field_validator("keywords", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> list[str] | None:
        return None if value is None else split_keywords(value)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class EntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    question: str
    answer: str
    category_id: int | None
    keywords: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    public: bool = False
    self_served: int = Field(0, description="times a citizen said this answer solved their problem (市民自助)")
    source: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class EntryPage(BaseModel):
    items: list[EntryRead]
    limit: int
    offset: int
    has_more: bool


class SuggestRequest(BaseModel):
    text: str = Field(..., min_length=1, max_length=KB_TEXT_MAX_CHARS)
    category_id: int | None = None
    limit: int = Field(5, ge=1, le=50)


class SuggestionRead(BaseModel):
    entry: EntryRead
    score: float = Field(..., description="fused rank score in (0, 1]; 1 = first in both rankings")
    why: str


class InstantAnswerRequest(BaseModel):
    """Receive a consultation and answer it on the spot from a knowledge entry (秒回)."""

    order: OrderCreate
    entry_id: int
    answer: str | None = Field(
        None, max_length=KB_TEXT_MAX_CHARS, description="the answer as said; default: the entry's"
    )


class InstantAnswerResult(BaseModel):
    order: OrderRead
    entry_id: int


class ReplyQualityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: int
    checked_at: datetime
    relevance: float
    completeness: float
    basis: float
    timeliness: float | None
    overall: float
    weak: bool
    reasons: list[str]
    details: dict[str, Any] | None = None


class WeakReplyRead(BaseModel):
    order_id: int
    number: str
    title: str
    state: str
    replied_at: datetime | None
    lead_unit_id: int | None
    quality: ReplyQualityRead


class WeakReplyPage(BaseModel):
    """A page of the supervisor's review list, worst first."""

    items: list[WeakReplyRead]
    limit: int
    offset: int
    has_more: bool


class ImportResult(BaseModel):
    """Outcome of a knowledge-base import or seed run."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    rejected: list[dict[str, Any]] = Field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def reject(self, row: int, field: str, reason: str) -> None:
        self.rejected.append({"row": row, "field": field, "reason": reason})
