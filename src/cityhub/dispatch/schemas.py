"""Pydantic schemas of dispatch: routing rules, thresholds, suggestions and the dispatcher's queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityhub.dispatch.rules import RuleTier, TargetKind, split_keywords
from cityhub.org.aliases import FROM_ORDER_MAX
from cityhub.timerange import RequestTime
from cityhub.workorders.lifecycle import State
from cityhub.workorders.schemas import REASON_MAX_CHARS


def _keyword_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
        words = list(split_keywords(value))
        given = value.strip() if isinstance(value, str) else value
        if not words and given:
            # ["", " "] or "、" is not "no condition" ([] or ""): it would make a rule match every order by mistake
            raise ValueError("keywords are all blank: give words, or an empty list for no keyword condition")
        return words
    raise ValueError("keywords are a list of strings or one string separated by 、 or commas")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return value


class RuleBase(BaseModel):
    name: str = Field(..., min_length=1, max_length=120)
    priority: int = Field(50, ge=0, le=1000, description="higher wins within a tier")
    active: bool = True
    category_id: int | None = Field(None, description="this category and its descendants; null: any")
    place_unit_id: int | None = Field(None, description="a district, street or community; null: anywhere")
    keywords: list[str] = Field(default_factory=list, description="any of these in the text (empty: no condition)")
    exclude_keywords: list[str] = Field(default_factory=list, description="none of these in the text")
    target_kind: TargetKind = TargetKind.UNIT
    target_unit_id: int | None = Field(None, description="the unit when target_kind is 'unit'")
    tier: RuleTier | None = Field(None, description="derived from the target when absent")
    valid_from: RequestTime | None = None
    valid_until: RequestTime | None = None

    @field_validator("keywords", "exclude_keywords", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> list[str]:
        return _keyword_list(value) or []

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


def window_problem(valid_from: datetime | None, valid_until: datetime | None) -> str | None:
    """What is wrong with a rule's validity (its start not before its end), or None."""
    if valid_from and valid_until and valid_from >= valid_until:
        return "valid_from must be before valid_until"
    return None


class RuleCreate(RuleBase):
    @model_validator(mode="after")
    def _window(self) -> RuleCreate:
        if problem := window_problem(self.valid_from, self.valid_until):
            raise ValueError(problem)
        return self


class RuleUpdate(BaseModel):
    """Fields to change; absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=120)
    priority: int | None = Field(None, ge=0, le=1000)
    active: bool | None = None
    category_id: int | None = None
    place_unit_id: int | None = None
    keywords: list[str] | None = None
    exclude_keywords: list[str] | None = None
    target_kind: TargetKind | None = None
    target_unit_id: int | None = None
    tier: RuleTier | None = None
    valid_from: RequestTime | None = None
    valid_until: RequestTime | None = None

    @field_validator("keywords", "exclude_keywords", mode="before")
    @classmethod
    def _keywords(cls, value: Any) -> list[str] | None:
        return _keyword_list(value)

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class RuleRead(RuleBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tier: RuleTier
    seed_key: str | None
    created_at: datetime
    updated_at: datetime


class ThresholdSet(BaseModel):
    threshold: float = Field(..., gt=0, le=1)


class ThresholdRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    category_id: int
    category_path: str | None = None
    threshold: float


class SuggestionRead(BaseModel):
    unit_id: int
    unit_code: str | None = None
    unit_name: str | None = None
    tier: RuleTier
    score: float | None = Field(None, description="probability of the category readings that lead to this unit")
    rule_id: int
    reasons: list[str]
    category: str | None = Field(
        None,
        description="the category reading under which a rule leads to this unit (the classifier's first reading, or "
        "one of its top 3 as the reasons say); a person dispatching an uncategorised order here confirms it",
    )


class PredictionRead(BaseModel):
    label: str
    probability: float
    top3: list[tuple[str, float]]


class PlaceRead(BaseModel):
    street_id: int | None = None
    community_id: int | None = None
    source: str | None = Field(None, description="order | coordinates | address | text: where the place came from")


class DecisionRead(BaseModel):
    order_id: int
    auto: bool
    dispatched: bool = False
    reason: str
    candidates: list[SuggestionRead]
    prediction: PredictionRead | None = None
    category_id: int | None = None
    category_source: str | None = Field(None, description="intake | model")
    threshold: float | None = None
    place: PlaceRead
    model_version: str | None = None
    decided_at: datetime | None = None


class QueueItem(BaseModel):
    order_id: int
    number: str
    title: str
    state: State
    created_at: datetime
    return_count: int
    decision: DecisionRead
    suggest_unit_id: int | None = Field(
        None,
        description="a returned order: the unit the unit that returned it suggested instead (退单's suggest_unit_id, "
        "建议改派至), while that unit is active and not the one that returned it; its word, not a score",
    )


class QueuePage(BaseModel):
    items: list[QueueItem]
    limit: int
    offset: int
    has_more: bool


class CategorySet(BaseModel):
    category_id: int
    reason: str | None = Field(None, max_length=REASON_MAX_CHARS)
    version: int | None = Field(None, ge=1)


class PlaceAliasWish(BaseModel):
    alias: str = Field(min_length=1, max_length=200, description="a road or landmark the order names (石井大道)")
    kind: str | None = Field(None, description="road | landmark | old_name | other (empty: other)")


class PlaceSet(BaseModel):
    unit_id: int = Field(description="a street, or a community (its street follows)")
    reason: str | None = Field(None, max_length=REASON_MAX_CHARS)
    version: int | None = Field(None, ge=1)
    aliases: list[PlaceAliasWish] = Field(
        default_factory=list,
        max_length=FROM_ORDER_MAX,
        description="place aliases (地名别名) to add to the unit chosen, each added or refused on its own",
    )


class PlaceAliasOutcomeRead(BaseModel):
    alias: str = Field(description="as stored when added, else as given")
    kind: str
    added: bool
    reason: str | None = Field(None, description="why refused: taken, own_name, ambiguous, short, long, number, kind")
    message: str | None = None
    units: list[str] = Field(default_factory=list, description="the units the name already names (ambiguous)")


class PlaceCorrectionRead(DecisionRead):
    moved: bool = Field(
        description="whether the order's place changed; false: the place given was the order's already (confirmed, "
        "nothing of the order changed)"
    )
    aliases: list[PlaceAliasOutcomeRead] = Field(
        default_factory=list, description="what became of each alias asked for, in the order given"
    )


class BulkItem(BaseModel):
    order_id: int
    unit_id: int = Field(description="the unit to send it to (e.g. the first of its suggestions in the queue)")
    version: int | None = Field(None, description="the order's version as read: a changed order is not dispatched")
    reason: str | None = Field(None, max_length=REASON_MAX_CHARS)


class BulkDispatch(BaseModel):
    # The limit is the service's (``service.BULK_MAX``); checked there with a message naming it.
    items: list[BulkItem] = Field(min_length=1)


class BulkOutcomeRead(BaseModel):
    order_id: int
    number: str | None
    dispatched: bool
    unit_id: int = Field(description="the unit it was sent to (dispatched) or was to go to (refused)")
    error: str | None = Field(description="why it was not dispatched")


class BulkRead(BaseModel):
    dispatched: int
    refused: int
    results: list[BulkOutcomeRead]
