"""Duplicates and similar past cases at intake (重复工单 / 相似案例).

A **duplicate** is the same problem at the same place, reported recently: text score ≥ ``suggest_threshold``
(see :mod:`cityhub.nlp.similar`), created within ``window_days`` of each other, and places that do not
disagree. Places agree when coordinates lie within ``radius_m`` metres, or the communities are equal, or the
streets are equal while a community is unknown on one side, or one normalised address contains the other;
they disagree when any of these is known on both sides and differs. An order whose text and place match
that closely (score ≥ ``auto_merge_threshold`` and places agreeing, not just "unknown") is merged
automatically into the open master with the life cycle's MERGE action, audited like any other action;
otherwise duplicates are suggested to the operator. The best ``duplicate_count`` are listed (and considered for
the merge).

**Similar past cases** are the ``similar_count`` most similar earlier orders (any place, within the index's
``index_days``), each with how it was handled: number, state, lead unit, reply excerpt, closed time and
satisfaction. Orders merged into another one are represented by their master.

Candidates come from the LSH index (texts sharing much of the appeal's), from the database (the most recent orders
of the same community or street) and, for the similar cases, from the full-text index (the orders holding most of
the appeal's telling character pairs: the same matter in other words — :func:`_telling_word_candidates`), so an
intake never scans the table. Settings come from the environment, prefix
``CITYHUB_DEDUPE_`` (e.g. ``CITYHUB_DEDUPE_AUTO_MERGE=false``).
"""

from __future__ import annotations

import enum
import gc
import math
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import ColumnElement, Integer, bindparam, select
from sqlalchemy.orm import Session, selectinload

from cityhub.auth.principal import Principal
from cityhub.auth.scope import shown_text
from cityhub.db import utcnow
from cityhub.nlp import similar as sim
from cityhub.org import places
from cityhub.org.places import unit_gazetteer
from cityhub.workorders import search
from cityhub.workorders.lifecycle import OPEN_STATES, State
from cityhub.workorders.lifecycle import Action as LifecycleAction
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderCreate


class DedupeSettings(BaseSettings):
    """Duplicates (重复工单) and similar past cases (相似案例) found at intake."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_DEDUPE_", env_file=".env", extra="ignore")

    enabled: bool = Field(True, description="Look for duplicates and similar past cases at intake.")
    window_days: float = Field(
        30.0, gt=0, description="A duplicate must have been created within this many days of the new order."
    )
    index_days: float = Field(
        180.0,
        gt=0,
        description="History kept in the in-process similarity index, for similar past cases (and the upper bound "
        "of the duplicate window).",
    )
    suggest_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Text score from which a recent order at a place that does not disagree is a duplicate "
        "(suggested to the operator).",
    )
    auto_merge_threshold: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Text score from which a duplicate whose place agrees is merged automatically "
        "(when auto_merge is on), unless the two are short texts replacing words of one with others (积水 → "
        "占道经营, 12号 → 14号): another problem at the same place, suggested only.",
    )
    auto_merge: bool = Field(
        True, description="Merge close duplicates automatically; false: duplicates are only suggested."
    )
    radius_m: float = Field(200.0, gt=0, description="Places whose coordinates lie within this many metres agree.")
    similar_count: int = Field(5, ge=0, le=50, description="Similar past cases listed at intake.")
    # The most recent orders of the street are always scored (prefilter_limit): without a floor, orders sharing a
    # word or two of the text (score 0.00–0.02) were listed as the "most similar" cases, their replies beside them.
    similar_min_score: float = Field(
        0.03,
        ge=0,
        le=1,
        description="Text score a past order needs to be listed among the similar cases (0: any, however unrelated).",
    )
    # 受理并并入 on a similar case is the operator's judgement, but a case listed at 0.05 for a shared word or two is
    # another problem: offering to merge the call into it only invites a slip that cannot be undone.
    merge_offer_min_score: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Text score from which a similar past case still being handled is offered to the hotline "
        "operator for 受理并并入 (registering the call straight into it); a duplicate, or a case of the same caller, "
        "is offered whatever its score.",
    )
    # A complaint re-posted by hundreds (a burst about one outage) would otherwise have every intake read and list all
    # the earlier copies.
    duplicate_count: int = Field(10, ge=1, le=200, description="Duplicates listed at most, best first.")
    max_candidates: int = Field(200, ge=1, description="Candidates taken from the similarity index per query, at most.")
    prefilter_limit: int = Field(
        100,
        ge=0,
        description="Most recent orders of the same community/street always considered, whatever the index says.",
    )
    bucket_cap: int = Field(
        200, ge=1, description="Newest orders read from one bucket (band key) of the similarity index."
    )
    # Of the candidates, those the index holds are screened by their estimated Jaccard before any is read.
    rerank_count: int = Field(
        40, ge=1, description="This many best candidates by estimated Jaccard similarity are always scored exactly."
    )
    screen_jaccard: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Beyond the best rerank_count, a candidate is scored exactly only if its estimated Jaccard "
        "similarity is at least this.",
    )
    in_background: bool = Field(
        True,
        description="With CITYHUB_DISPATCH_IN_BACKGROUND and auto_merge on: an order created over the API or "
        "Open311, whose answer shows no duplicates, is checked for an earlier duplicate (and merged into it) by the "
        "background dispatcher (before its decision, with CITYHUB_DISPATCH_AUTO on) instead of inside the creating "
        "request. false: inside the request. Operators' intake always checks at once (it shows what it finds).",
    )
    # Orders this process commits enter the index at once, and a duplicate at the same place is found by the
    # prefilter's direct query whatever this is.
    refresh_seconds: float = Field(
        0.5,
        ge=0,
        description="Seconds between reads of new orders into the index: bounds how late an order received by "
        "another server process shows among the similar cases.",
    )


@lru_cache
def get_dedupe_settings() -> DedupeSettings:
    return DedupeSettings()


class DedupeAction(enum.StrEnum):
    NONE = "none"
    SUGGEST_MERGE = "suggest_merge"
    AUTO_MERGE = "auto_merge"


def auto_merge_params(master: Order, score: float) -> dict[str, Any]:
    """The MERGE action's parameters when the duplicate check merges an appeal into ``master`` on its own: the
    reason in the form the pages translate (``web.machine_text``: 自动合并), marked ``auto`` — in the merged order's
    event and the master's (:data:`cityhub.workorders.models.MERGED_IN`)."""
    return {
        "master_id": master.id,
        "reason": f"auto-merge: duplicate of {master.number}, score {score:.2f}",
        "auto": True,
    }


class PlaceMatch(enum.StrEnum):
    SAME = "same"  # same community, coordinates within the radius, or one address contains the other
    SAME_STREET = "same_street"  # same street, community unknown on one side
    UNKNOWN = "unknown"  # nothing comparable on both sides
    DIFFERENT = "different"


AGREEING = frozenset({PlaceMatch.SAME, PlaceMatch.SAME_STREET})


@dataclass(frozen=True, slots=True)
class Place:
    street_id: int | None = None
    community_id: int | None = None
    lat: float | None = None
    lng: float | None = None
    address: str | None = None  # normalised (letters and digits only)

    @classmethod
    def of(cls, order: Order) -> Place:
        return cls(order.street_id, order.community_id, order.lat, order.lng, _norm_address(order.address))


def _norm_address(text: str | None) -> str | None:
    return _normalised_address(text) if text else None


@lru_cache(maxsize=4096)
def _normalised_address(text: str) -> str | None:
    """An address as compared (remembered: intake compares the candidates' addresses, the same few again and
    again; an address is at most 300 characters)."""
    return sim.normalize(text) or None


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))


def place_match(a: Place, b: Place, *, radius_m: float) -> PlaceMatch:
    """Compare two places, most precise evidence first; any level known on both sides and different disagrees."""
    if a.lat is not None and a.lng is not None and b.lat is not None and b.lng is not None:
        near = distance_m(a.lat, a.lng, b.lat, b.lng) <= radius_m
        return PlaceMatch.SAME if near else PlaceMatch.DIFFERENT
    if a.community_id is not None and b.community_id is not None:
        return PlaceMatch.SAME if a.community_id == b.community_id else PlaceMatch.DIFFERENT
    if a.street_id is not None and b.street_id is not None and a.street_id != b.street_id:
        return PlaceMatch.DIFFERENT
    # Four characters is about the shortest address that names one place (门牌/小区), not a whole area.
    if (
        a.address
        and b.address
        and min(len(a.address), len(b.address)) >= 4
        and (a.address in b.address or b.address in a.address)
    ):
        return PlaceMatch.SAME
    if a.street_id is not None and a.street_id == b.street_id:
        return PlaceMatch.SAME_STREET
    return PlaceMatch.UNKNOWN


class HowHandled(BaseModel):
    """How a past order was handled (办理情况)."""

    model_config = ConfigDict(frozen=True)

    order_id: int
    number: str
    title: str
    state: State
    created_at: datetime
    lead_unit: str | None
    reply_excerpt: str | None
    closed_at: datetime | None
    satisfied: bool | None

    @classmethod
    def of(cls, order: Order, *, excerpt_chars: int = 120) -> HowHandled:
        reply = (order.reply_text or "").strip()
        return cls(
            order_id=order.id,
            number=order.number,
            title=order.title,
            state=order.state,
            created_at=order.created_at,
            lead_unit=order.lead_unit.name if order.lead_unit is not None else None,
            reply_excerpt=(reply[:excerpt_chars] + ("…" if len(reply) > excerpt_chars else "")) or None,
            closed_at=order.closed_at,
            satisfied=order.satisfied,
        )


class Duplicate(NamedTuple):
    order: Order  # the open master when the matched order was merged into one
    score: float
    place: PlaceMatch


class SimilarCase(NamedTuple):
    order: Order
    score: float
    how_handled: HowHandled


@dataclass(frozen=True)
class DedupeResult:
    duplicates: list[Duplicate] = field(default_factory=list)  # best first
    similar: list[SimilarCase] = field(default_factory=list)  # best first
    action: DedupeAction = DedupeAction.NONE
    master: Order | None = None  # the order merged into (auto_merge) or suggested (suggest_merge)


@dataclass(frozen=True, slots=True)
class _Probe:
    order_id: int | None
    text: str
    created_at: datetime
    place: Place


def _probe_from_data(
    session: Session, data: OrderCreate | dict[str, Any], placed: places.Place | None = None
) -> _Probe:
    """The appeal as intake will record it, placed where intake places it (``placed``, when the caller has asked
    already: :func:`cityhub.workorders.service.appeal_place`)."""
    from cityhub.workorders.service import appeal_place

    if isinstance(data, dict):
        data = OrderCreate.model_validate(data)
    found = placed if placed is not None else appeal_place(session, data)
    street_id, community_id = (found.street_id, found.community_id) if found is not None else (None, None)
    return _Probe(
        order_id=None,
        text=sim.order_text(data.title, data.content),
        created_at=data.created_at or utcnow(),
        place=Place(street_id, community_id, data.lat, data.lng, _norm_address(data.address)),
    )


def _probe_from_order(session: Session, order: Order) -> _Probe:
    """The order's recorded place; one never looked for (imported, not yet reached by the ``place-orders`` job) is
    placed as intake would have placed it."""
    text = sim.order_text(order.title, order.content)
    place = Place.of(order)
    if place.street_id is None and place.community_id is None and order.place_source is None:
        found = places.locate_appeal(session, order)
        if found is not None:
            place = replace(place, street_id=found.street_id, community_id=found.community_id)
    return _Probe(order.id, text, order.created_at, place)


def _epoch(value: datetime) -> float:
    return sim._epoch(value)


def check(
    session: Session,
    *,
    data: OrderCreate | dict[str, Any] | None = None,
    order: Order | None = None,
    settings: DedupeSettings | None = None,
    similar: bool = True,
    earlier_only: bool = False,
    placed: places.Place | None = None,
    shown_to: ColumnElement[bool] | None = None,
) -> DedupeResult:
    """Find duplicates and similar past cases of a new appeal (``data``) or an existing ``order``; read-only.

    ``shown_to``: the similar cases only of the orders this clause holds (a reader's ``auth.scope.reading_clause``),
    chosen among them — a unit's handler reads the best ``similar_count`` it may open, not what is left of the best
    of all once the others are taken out (often none) — and gathered among them: the index's candidates drawn
    :data:`SCOPED_WIDEN` times wider, every telling-word holder ranked, the reader's own newest orders added
    (:func:`_readers_newest`), and those it may open screened and scored on their own. Duplicates are not limited by
    it (the callers check them as what they may merge into or read); without it nothing changes.

    ``earlier_only`` (with ``order``): only orders received before it (smaller ids) count — what a check at its
    intake would have seen, so that of two copies checked after both arrived, the later merges into the earlier.

    ``similar=False``: only the duplicates (for an automatic merge or a suggestion), not the similar past cases —
    for callers that do not show them (the API's and Open311's creation answer the order alone; the cases are one
    ``GET /orders/{id}/similar`` away). The search then stays within the duplicate window, and only possible
    duplicates are read from the database: the same duplicates, for about half the work.

    ``placed`` (with ``data``): where intake has placed the appeal (:func:`cityhub.workorders.service.appeal_place`),
    so that it is not looked for twice; without it the check places the appeal the same way.
    """
    cfg = settings or get_dedupe_settings()
    if (data is None) == (order is None):
        raise ValueError("check() needs exactly one of data= or order=")
    if not cfg.enabled:
        return DedupeResult()
    if order is not None:
        probe = _probe_from_order(session, order)
    else:
        assert data is not None
        probe = _probe_from_data(session, data, placed)
    place = probe.place

    index = sim.index_for(
        session, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap, refresh_seconds=cfg.refresh_seconds
    )
    t = _epoch(probe.created_at)
    window = cfg.window_days * 86400
    ids: dict[int, None] = {}
    sketch = sim.sketch_of(probe.text)
    sim.remember_features(probe.text, sketch)  # the next intakes at this place will likely score it
    # A scoped reader's similar cases are gathered within their scope (:data:`SCOPED_WIDEN`): more of the index's and
    # the telling words' candidates are drawn, and those the reader may open are screened on their own.
    scoped = similar and shown_to is not None
    wider: dict[int, None] = {}
    if index.ensure(session):  # while a large first build runs in the background, the prefilter alone answers
        # The wider scheme also finds duplicates whose words are weighted alike but whose Jaccard is low; without
        # similar cases it need not look further back than the duplicate window.
        since = None if similar else t - window
        ids.update(
            dict.fromkeys(
                index.query_ids(
                    sketch,
                    scheme=sim.DUP_SCHEME,
                    since=t - window,
                    until=t + window,
                    limit=cfg.max_candidates,
                    exclude=probe.order_id,
                )
            )
        )
        found = index.query_ids(
            sketch,
            scheme=sim.SIM_SCHEME,
            since=since,
            until=t,
            limit=cfg.max_candidates * (SCOPED_WIDEN if scoped else 1),
            exclude=probe.order_id,
        )
        ids.update(dict.fromkeys(found[: cfg.max_candidates]))
        wider.update(dict.fromkeys(found[cfg.max_candidates :]))
    ids.update(dict.fromkeys(_prefiltered(session, probe, place, cfg)))
    # Scored whatever their estimated Jaccard (a new wording's is low, and at low values the estimate is noise).
    telling_ranked: list[int] = []
    if similar and index.built:
        words = {"limit": None} if scoped else {}
        telling_ranked = _telling_word_candidates(session, index, probe.text, **words)
    telling = telling_ranked[:TELLING_PAIR_CANDIDATES]
    ids.update(dict.fromkeys(telling))
    if scoped:
        assert shown_to is not None
        wider.update(dict.fromkeys(telling_ranked[TELLING_PAIR_CANDIDATES:]))
        # and the reader's own newest orders, as the place's are (the prefilter): its unit's matters, in its words
        wider.update(dict.fromkeys(_readers_newest(session, shown_to, probe, index, cfg)))
    for pool in (ids, wider):
        pool.pop(probe.order_id, None)  # type: ignore[arg-type]
    if earlier_only and probe.order_id is not None:
        ids = {i: None for i in ids if i < probe.order_id}
        wider = {i: None for i in wider if i < probe.order_id}
    if not ids and not wider:
        return DedupeResult()

    screened = _screened(index, sketch, list(ids), cfg, similar=similar)
    kept = set(screened)
    screened += [i for i in telling if i in ids and i not in kept]
    within: set[int] | None = None  # the candidates the reader may open (None: any)
    if scoped:
        assert shown_to is not None
        # In one query, before anything is screened: the reader's candidates compete among themselves for the
        # exact scoring (and the list), not with the whole district's — of which a unit's scope holds few.
        within = _within(session, shown_to, list({**ids, **wider}))
        theirs = [i for i in {**ids, **wider} if i in within]
        kept = set(screened)
        screened += [i for i in _screened(index, sketch, theirs, cfg) if i not in kept]
        kept = set(screened)
        in_telling = [i for i in telling_ranked if i in within][:TELLING_PAIR_CANDIDATES]
        screened += [i for i in in_telling if i not in kept]
    scored = _score(session, index, probe, place, screened, cfg)
    # Only what can be shown is read as orders: the best possible duplicates and the best few similar cases.
    best_duplicates = set([s.order_id for s in scored if s.duplicate][: cfg.duplicate_count])
    wanted = set(best_duplicates)
    listable: set[int] | None = None  # the similar cases the reader may open (None: any)
    if similar:
        eligible = [s.order_id for s in scored if s.score >= cfg.similar_min_score]
        if within is not None:  # chosen among the reader's, before the best few are
            eligible = [i for i in eligible if i in within]
        chosen = eligible[: 3 * cfg.similar_count + 5]
        wanted |= set(chosen)
        listable = set(chosen) if shown_to is not None else None
    if not wanted:
        return DedupeResult()
    # The lead unit is shown only with similar cases (how they were handled): not read for duplicates alone.
    by_id = {o.id: o for o in session.scalars(_wanted_orders(similar), {"ids": list(wanted)})}
    masters = _masters(session, list(by_id.values()))
    if listable is not None and shown_to is not None:  # a merged case is shown as its master: that one is read
        ends = {m.id for i, m in masters.items() if i in listable and m.id != i}
        listable -= {i for i, m in masters.items() if m.id in ends - _within(session, shown_to, list(ends))}
    duplicates: dict[int, Duplicate] = {}
    cases_by_id: dict[int, SimilarCase] = {}
    for s in scored:
        row = by_id.get(s.order_id)
        if row is None:
            continue
        shown = masters.get(row.id, row) if row.state == State.MERGED else row
        if shown.id == probe.order_id or shown.state == State.CANCELLED:
            continue
        score, match = s.score, s.place
        if s.order_id in best_duplicates:
            best = duplicates.get(shown.id)
            if best is None or score > best.score:
                duplicates[shown.id] = Duplicate(shown, score, match)
        listed = listable is None or s.order_id in listable
        if similar and listed and shown.created_at <= probe.created_at and s.score >= cfg.similar_min_score:
            prior = cases_by_id.get(shown.id)
            if prior is None or score > prior.score:
                cases_by_id[shown.id] = SimilarCase(shown, score, HowHandled.of(shown))

    dups = sorted(duplicates.values(), key=lambda d: (-d.score, d.order.created_at))
    cases = _distinct(sorted(cases_by_id.values(), key=lambda c: (-c.score, -_epoch(c.order.created_at))))
    cases = cases[: cfg.similar_count]
    action, master = DedupeAction.NONE, None
    if dups:
        action, master = DedupeAction.SUGGEST_MERGE, dups[0].order
        probe_open = order is None or order.state in OPEN_STATES
        for dup in dups:
            if (
                cfg.auto_merge
                and probe_open
                and dup.score >= cfg.auto_merge_threshold
                and dup.place in AGREEING
                and dup.order.state in OPEN_STATES
                and not sim.says_otherwise(probe.text, sim.order_text(dup.order.title, dup.order.content))
            ):
                action, master = DedupeAction.AUTO_MERGE, dup.order
                break
    return DedupeResult(duplicates=dups, similar=cases, action=action, master=master)


def repeated_by_caller(
    session: Session,
    *,
    data: OrderCreate,
    placed: places.Place | None,
    phones: set[str],
    cases: dict[int, float],
    settings: DedupeSettings | None = None,
) -> list[Duplicate]:
    """Of the similar past cases (``cases``: order id → text score), those the same caller made (their phone one of
    ``phones``) still open, within the duplicate window: the caller ringing again about what they reported, in other
    words (油烟很大 … 熏得窗户不敢开) — a duplicate to merge into, though its text scores below ``suggest_threshold``.
    Its place must agree (:data:`AGREEING`), or the appeal name none yet. Best first. Suggested only (the automatic
    merge still needs its threshold)."""
    cfg = settings or get_dedupe_settings()
    if not phones or not cases:
        return []
    probe = _probe_from_data(session, data, placed)
    since = probe.created_at - timedelta(days=cfg.window_days)
    rows = session.scalars(
        select(Order).where(
            Order.id.in_(sorted(cases)),
            Order.citizen_phone.in_(sorted(phones)),
            Order.state.in_(sorted(OPEN_STATES)),
            Order.created_at >= since,
        )
    ).all()
    found = [Duplicate(o, cases[o.id], place_match(probe.place, Place.of(o), radius_m=cfg.radius_m)) for o in rows]
    # Its text says less than a duplicate's: the place must agree — or be unsaid yet (the address not typed).
    unsaid = probe.place == Place()
    found = [d for d in found if d.place in AGREEING or (unsaid and d.place == PlaceMatch.UNKNOWN)]
    return sorted(found, key=lambda d: (-d.score, d.order.created_at))


def _distinct(cases: list[SimilarCase]) -> list[SimilarCase]:
    """The cases, best first, one of each text: a complaint posted again word for word (four 有人焚烧垃圾 with one
    reply) is one case to the operator, not the whole list."""
    seen: set[str] = set()
    kept = []
    for case in cases:
        said = sim.normalize(sim.order_text(case.order.title, case.order.content))
        if said not in seen:
            seen.add(said)
            kept.append(case)
    return kept


class _Scored(NamedTuple):
    order_id: int
    score: float
    place: PlaceMatch
    duplicate: bool  # similar enough, recent enough and at a place that does not disagree


def _screened(
    index: sim.OrderIndex, sketch: sim.Sketch, ids: list[int], cfg: DedupeSettings, *, similar: bool = True
) -> list[int]:
    """The candidates worth reading and scoring exactly.

    Every candidate the index holds has its shingle Jaccard estimated from its stored MinHash signature: the
    ``rerank_count`` best are kept, and any other whose estimate reaches ``screen_jaccard`` (a possible duplicate:
    one whose words are weighted alike can score 0.5 with a Jaccard of 0.2). Candidates the index does not hold
    (too new for it, or from the place prefilter) are always kept.

    Duplicates alone (``similar=False``): the ``2 × duplicate_count`` best estimated, enough to find the
    ``duplicate_count`` best scored. A complaint posted again by many (a burst about one outage) otherwise had every
    intake read and score every earlier copy.
    """
    estimates = index.estimate_jaccard(sketch, ids)
    ranked = sorted(estimates, key=lambda i: (-estimates[i], i))  # ties (copies): the earliest first
    keep = [i for i in ids if i not in estimates]
    if not similar:
        return keep + ranked[: 2 * cfg.duplicate_count]
    keep += ranked[: cfg.rerank_count]
    keep += [i for i in ranked[cfg.rerank_count :] if estimates[i] >= cfg.screen_jaccard]
    return keep


def _score(
    session: Session, index: sim.OrderIndex, probe: _Probe, place: Place, ids: list[int], cfg: DedupeSettings
) -> list[_Scored]:
    """Exact scores of the candidates (read as plain rows, scored all at once), best first; cancelled ones left out."""
    if not ids:
        return []
    rows = session.connection().execute(_candidate_rows(), {"ids": ids}).all()
    sims = index.similarities(sim.sketch_of(probe.text).profile, [sim.order_text(r.title, r.content) for r in rows])
    t, window = _epoch(probe.created_at), cfg.window_days * 86400
    out: list[_Scored] = []
    for r, similarity in zip(rows, sims, strict=True):
        row_place = Place(r.street_id, r.community_id, r.lat, r.lng, _norm_address(r.address))
        match = place_match(place, row_place, radius_m=cfg.radius_m)
        recent = abs(_epoch(r.created_at) - t) <= window
        score = similarity.score
        duplicate = score >= cfg.suggest_threshold and recent and match != PlaceMatch.DIFFERENT
        out.append(_Scored(r.id, score, match, duplicate))
    out.sort(key=lambda s: (-s.score, s.order_id))  # ties (copies): the earliest first, whatever the rows' order
    return out


@lru_cache(maxsize=1)
def _candidate_rows() -> Any:
    """What scoring reads of the candidates, as one prepared Core statement (built once; an ORM query built per
    intake cost twice the CPU of the read itself)."""
    return select(
        Order.id,
        Order.title,
        Order.content,
        Order.created_at,
        Order.state,
        Order.street_id,
        Order.community_id,
        Order.lat,
        Order.lng,
        Order.address,
    ).where(Order.id.in_(bindparam("ids", expanding=True)), Order.state != State.CANCELLED)


@lru_cache(maxsize=2)
def _wanted_orders(with_lead_unit: bool) -> Any:
    """The orders shown (duplicates and similar cases, by id), as a statement built once; with their lead unit for
    similar cases."""
    query = select(Order).where(Order.id.in_(bindparam("ids", expanding=True)))
    return query.options(selectinload(Order.lead_unit)) if with_lead_unit else query


# Similar cases worded otherwise. The MinHash index finds the texts sharing much of the appeal's, the prefilter the
# orders at its place; an appeal in new words about a common matter, its place unknown, matched neither, and its
# "most similar cases" were chance collisions (餐馆油烟…噪音扰民 beside 有人焚烧垃圾 at 0.07). Its telling character
# pairs, looked up in the full-text index, find the orders about the same matter: those holding most of them, the
# rarer weighing more — the part of the score's TF-IDF product that the telling pairs make. The rarest pairs alone
# (an earlier choice) are mostly word boundaries and typing slips no other order holds (对砍, 编与); the pairs the
# appeal repeats and few orders hold are its matter. The weak end of the list (scores 0.03–0.08) is where 50
# candidates fell short of an exhaustive search: 200 are scored exactly (cheap: the rows read by id, their shingles
# cached), from the 200 newest holders of each pair — more pairs would cost a full-text lookup each
# (bench/results/similar_cases.md).
TELLING_PAIRS = 16
# A pair more of the indexed orders hold than this (投诉, 小区, 噪音) says little of the matter.
TELLING_PAIR_SHARE = 0.02
TELLING_PAIR_HOLDERS = 200  # the newest orders read for each pair
TELLING_PAIR_CEILING = 0.1  # a pair this share of the indexed orders hold never tells, however few they are
TELLING_PAIR_CANDIDATES = 200
# A scoped reader's similar cases (a unit's handler, ``check(shown_to=)``): the index is asked for this many times
# ``max_candidates``, every telling-word holder is ranked and the reader's own newest orders are added
# (:func:`_readers_newest`); of those the reader may open (one query) the best are screened and scored as the whole
# district's are — a unit's scope holds a small share of the district's orders, and the best of all, then
# filtered, left a handler's open orders 1.81 cases on average on the 3,000-order demo (2.64 now: every case the
# index's window holds).
SCOPED_WIDEN = 5


def _telling_word_candidates(
    session: Session, index: sim.OrderIndex, text: str, *, limit: int | None = TELLING_PAIR_CANDIDATES
) -> list[int]:
    """The ``limit`` orders (None: every one read, for a scoped reader's :func:`check` to take the best of those it
    may open) holding the most of the appeal's telling character pairs, best first.

    The appeal's pairs held by at least one and at most :data:`TELLING_PAIR_SHARE` of the indexed orders (or
    :data:`TELLING_PAIR_HOLDERS`, when more, below :data:`TELLING_PAIR_CEILING`) are ranked by how often the appeal
    uses them times their inverse document frequency (``log(n / df)``); for each of the best :data:`TELLING_PAIRS`,
    the newest :data:`TELLING_PAIR_HOLDERS` orders holding it count ``(1 + log uses) · idf²`` (the pair's part of the
    score's TF-IDF product, as the appeal weighs it), and the orders are taken by their sums (ties: the newest)."""
    used = Counter(t for t in search.terms(text) if len(t) == 2)
    counts, indexed = index.pair_counts(used)
    # As many holders as are read are never too many (a small district's 油烟, held by 27 of 1,200 orders) — unless
    # a tenth of the orders hold it (噪音 in a new district's first hundred).
    most = max(2.0, min(max(float(TELLING_PAIR_HOLDERS), TELLING_PAIR_SHARE * indexed), TELLING_PAIR_CEILING * indexed))
    idf = {pair: math.log((indexed + 1) / n) for pair, n in counts.items() if 1 <= n <= most}
    telling = sorted(idf, key=lambda pair: (-used[pair] * idf[pair], pair))[:TELLING_PAIRS]
    if not telling:
        return []
    if session.autoflush:
        session.flush()  # as an ORM query would: pending orders of this session count
    weight: dict[int, float] = {}
    # Within the index's window: PostgreSQL reads every holder of a pair before it knows the newest, years of them.
    since = index.lowest_id() or 0
    held = search.newest_holders(session.connection(), telling, limit=TELLING_PAIR_HOLDERS, since_id=since)
    for pair, holders in held.items():
        counted = (1.0 + math.log(used[pair])) * idf[pair] ** 2
        for order_id in holders:
            weight[order_id] = weight.get(order_id, 0.0) + counted
    return sorted(weight, key=lambda i: (-weight[i], -i))[:limit]


def _prefiltered(session: Session, probe: _Probe, place: Place, cfg: DedupeSettings) -> list[int]:
    """Ids of the most recent orders of the same community (or street) in the window: a bounded, indexed query."""
    if cfg.prefilter_limit == 0:
        return []
    if place.community_id is not None:
        by_community, unit_id = True, place.community_id
    elif place.street_id is not None:
        by_community, unit_id = False, place.street_id
    else:
        return []
    since = probe.created_at - timedelta(days=cfg.window_days)
    until = probe.created_at + timedelta(days=cfg.window_days)
    if session.autoflush:
        session.flush()  # as an ORM query would: pending orders of this session count
    return list(
        session.connection()
        .execute(
            _prefilter_ids(by_community),
            {"unit": unit_id, "since": since, "until": until, "limit": cfg.prefilter_limit},
        )
        .scalars()
    )


@lru_cache(maxsize=2)
def _prefilter_ids(by_community: bool) -> Any:
    """The prefilter's query as a prepared Core statement (built once, like :func:`_candidate_rows`)."""
    unit = Order.community_id if by_community else Order.street_id
    return (
        select(Order.id)
        .where(
            unit == bindparam("unit"),
            Order.created_at >= bindparam("since"),
            Order.created_at <= bindparam("until"),
        )
        .order_by(Order.created_at.desc())
        .limit(bindparam("limit", type_=Integer))
    )


def _readers_newest(
    session: Session, shown_to: ColumnElement[bool], probe: _Probe, index: sim.OrderIndex, cfg: DedupeSettings
) -> list[int]:
    """Ids of the ``prefilter_limit`` newest orders a scoped reader may open (``shown_to``) received before the probe,
    within the index's window (the similar cases' reach): a bounded query, the scope in it."""
    if cfg.prefilter_limit == 0:
        return []
    if session.autoflush:
        session.flush()  # as an ORM query would: pending orders of this session count
    query = (
        select(Order.id)
        .where(shown_to, Order.id >= (index.lowest_id() or 0), Order.created_at <= probe.created_at)
        .order_by(Order.id.desc())
        .limit(cfg.prefilter_limit)
    )
    return list(session.scalars(query))


def _within(session: Session, clause: ColumnElement[bool], ids: list[int]) -> set[int]:
    """Those of ``ids`` the clause over ``Order`` holds (one query)."""
    return set(session.scalars(select(Order.id).where(Order.id.in_(ids), clause))) if ids else set()


def _masters(session: Session, rows: list[Order]) -> dict[int, Order]:
    """For merged orders: the end of their merge chain (chains are short; bounded to 5 hops)."""
    out: dict[int, Order] = {}
    for row in rows:
        current = row
        for _ in range(5):
            if current.state != State.MERGED or current.master_order_id is None:
                break
            nxt = session.get(Order, current.master_order_id, options=[selectinload(Order.lead_unit)])
            if nxt is None:
                break
            current = nxt
        out[row.id] = current
    return out


def process(
    session: Session,
    *,
    order: Order,
    actor: Any = None,
    settings: DedupeSettings | None = None,
) -> DedupeResult:
    """Check a just-received order and, when the result says so, merge it into its master (audited)."""
    from cityhub.workorders import service as orders

    result = check(session, order=order, settings=settings)
    if result.action == DedupeAction.AUTO_MERGE and result.master is not None:
        score = next(d.score for d in result.duplicates if d.order.id == result.master.id)
        orders.act(
            session,
            order_id=order.id,
            action=LifecycleAction.MERGE,
            actor=actor or orders.SYSTEM,
            params=auto_merge_params(result.master, score),
        )
    return result


# ------------------------------------------------------------------------------------------------ read models


class DuplicateRead(BaseModel):
    order_id: int
    number: str
    title: str
    state: State
    created_at: datetime
    score: float
    place: PlaceMatch


class SimilarRead(HowHandled):
    score: float


class DedupeRead(BaseModel):
    """What intake, the API and the CLI report about an order's duplicates and similar past cases."""

    action: DedupeAction
    master_id: int | None = None
    master_number: str | None = None
    duplicates: list[DuplicateRead] = Field(default_factory=list)
    similar: list[SimilarRead] = Field(default_factory=list)

    @classmethod
    def of(cls, result: DedupeResult, *, reader: Principal | None = None) -> DedupeRead:
        """``reader``: who will see it — another order's title and reply excerpt go through the scrubber, as that
        order's own page would show them to the reader, unless the reader sees its citizen's personal data (the
        CLI, without a reader, is the operator's own tool and shows them whole)."""

        def shown(order: Order, text: str | None) -> str | None:
            return text if reader is None else shown_text(reader, order, text)

        return cls(
            action=result.action,
            master_id=result.master.id if result.master is not None else None,
            master_number=result.master.number if result.master is not None else None,
            duplicates=[
                DuplicateRead(
                    order_id=d.order.id,
                    number=d.order.number,
                    title=shown(d.order, d.order.title) or "",
                    state=d.order.state,
                    created_at=d.order.created_at,
                    score=round(d.score, 4),
                    place=d.place,
                )
                for d in result.duplicates
            ],
            similar=[
                SimilarRead(
                    **c.how_handled.model_copy(
                        update={
                            "title": shown(c.order, c.how_handled.title) or "",
                            "reply_excerpt": shown(c.order, c.how_handled.reply_excerpt),
                        }
                    ).model_dump(),
                    score=round(c.score, 4),
                )
                for c in result.similar
            ],
        )


def index_status(session: Session) -> dict[str, Any]:
    """This process's similar-orders index, for /healthz: its state and how many orders it holds."""
    if not get_dedupe_settings().enabled:
        return {"state": "off"}
    index = sim.existing_index(session)
    if index is None:
        return {"state": "not built", "orders": 0}
    return {"state": index.state, "orders": len(index.index)}


def catch_up(session: Session) -> None:
    """Bring this process's similar-orders index up to date with every committed order now (not in the background,
    as intake's queries do): the background dispatcher checks orders received by other processes, and an earlier
    duplicate committed a moment before must be among the candidates. Builds the index on first use (in the
    background when large; the place prefilter answers meanwhile)."""
    cfg = get_dedupe_settings()
    if not cfg.enabled:
        return
    index = sim.index_for(
        session, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap, refresh_seconds=cfg.refresh_seconds
    )
    if index.built:
        index.refresh(session)
    else:
        index.ensure(session)


def warm_up() -> bool:
    """Start loading the gazetteer of the units and building the similar-orders index of the configured database, in the
    background (``cityhub serve`` calls this at start: otherwise each server process's first intakes wait for them,
    seconds at a million orders). When both are loaded, everything the process holds so far is moved out of the
    garbage collector's sight (``gc.freeze``): a full collection walked the gazetteer, the index and the application's
    own objects, tens of milliseconds each time, inside whichever request triggered it. Returns False when
    duplicate search is off."""
    from cityhub.db import session_scope

    cfg = get_dedupe_settings()
    if not cfg.enabled:
        return False
    with session_scope() as session:
        index = sim.index_for(
            session, index_days=cfg.index_days, bucket_cap=cfg.bucket_cap, refresh_seconds=cfg.refresh_seconds
        )
        build = index.warm(session)

    def load() -> None:
        with session_scope() as session:
            unit_gazetteer(session)
        if build is not None:
            build.join()
        gc.freeze()

    threading.Thread(target=load, name="cityhub-intake-warm-up", daemon=True).start()
    return True
