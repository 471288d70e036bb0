"""Dispatch service: suggest units for an order, dispatch automatically when confident, keep the queue.

An order's decision combines
- the category: set at intake (trusted), else the classifier's prediction (``settings.dispatch_model_path``);
- the place: the order's street/community, else resolved from its address (or text) by the gazetteer;
- the routing rules (:mod:`cityhub.dispatch.rules`), ranked community → street → department.

It is dispatched automatically when the category's probability reaches the per-category threshold, the classifier
knows enough of the text (``settings.dispatch_min_evidence``) and one unit ranks first (without a classifier: when a
rule of priority ≥ ``settings.dispatch_rule_auto_priority`` ranks first on its own); otherwise it waits in the
dispatcher's queue with the top three suggestions and the reason.
Automatic dispatch is an ordinary DISPATCH through :func:`cityhub.workorders.service.act` by the actor
``auto-dispatch``, with ``{auto, probability, rule_id, model_version}`` in the audit payload.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityhub import auditlog, refdata
from cityhub.config import get_settings
from cityhub.db import MAX_ID, in_batches, utcnow
from cityhub.dispatch import rules as rulebook
from cityhub.dispatch.models import DispatchRule, DispatchSuggestion, DispatchThreshold
from cityhub.dispatch.schemas import RuleBase, RuleCreate, RuleUpdate
from cityhub.errors import (
    CityhubError,
    Conflict,
    InvalidTransition,
    NotFound,
    ParameterProblem,
    PermissionDenied,
    ValidationFailed,
    refuse_nulls,
)
from cityhub.nlp.similar import says_otherwise
from cityhub.nlp.text import order_text
from cityhub.notify import notices
from cityhub.org.aliases import AliasCandidate, AliasOutcome, AliasWish, add_from_order, unknown_places
from cityhub.org.models import Unit, UnitTier
from cityhub.org.places import PLACE_TIERS, Place, PlaceSource, locate_appeal, place_of_unit, unit_gazetteer
from cityhub.org.service import unit_directory
from cityhub.workorders import service as orders
from cityhub.workorders.categories import CategoryRef, category_chain, find_categories, find_category, taxonomy
from cityhub.workorders.lifecycle import (
    AWAITING_DISPATCH,
    BACK_TO_RETURNER,
    OPEN_STATES,
    SUGGEST_UNIT,
    Action,
    State,
)
from cityhub.workorders.models import Category, Order, OrderEvent, SlaStatus, Urgency

log = logging.getLogger(__name__)

AUTO_ACTOR = orders.Actor(name=orders.AUTO_DISPATCHER)
QUEUE_STATES = AWAITING_DISPATCH  # the dispatcher's queue


# --- decisions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    unit_id: int
    unit_code: str | None
    unit_name: str | None
    tier: rulebook.RuleTier
    score: float | None
    rule_id: int
    reasons: list[str]
    category: str | None = None  # the category reading under which a rule leads here (``Candidate.reading``)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "unit_code": self.unit_code,
            "unit_name": self.unit_name,
            "tier": self.tier.value,
            "score": self.score,
            "rule_id": self.rule_id,
            "reasons": self.reasons,
            "category": self.category,
        }


# A unit whose score is below this is led to by no reading of the category: no suggestion for a person.
SHOWN_MIN_SCORE = 0.01


@dataclass
class DispatchDecision:
    order_id: int
    candidates: list[Suggestion]
    prediction: dict[str, Any] | None
    category_id: int | None
    category_source: str | None  # intake | model
    place: Place
    auto: bool
    reason: str
    threshold: float | None = None
    model_version: str | None = None
    dispatched: bool = False
    decided_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shown(self) -> list[Suggestion]:
        """The suggestions a person is offered (the queue, the order page, the bulk dispatch's first choice): the top
        three, without those no reading of the category leads to."""
        return [c for c in self.candidates[:3] if c.score is None or c.score >= SHOWN_MIN_SCORE]

    @property
    def probability(self) -> float | None:
        if self.category_source == "intake":
            return 1.0
        return float(self.prediction["probability"]) if self.prediction else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "auto": self.auto,
            "dispatched": self.dispatched,
            "reason": self.reason,
            "candidates": [c.as_dict() for c in self.candidates],
            "prediction": self.prediction,
            "category_id": self.category_id,
            "category_source": self.category_source,
            "threshold": self.threshold,
            "place": {
                "street_id": self.place.street_id,
                "community_id": self.place.community_id,
                "source": self.place.source,
            },
            "model_version": self.model_version,
            "decided_at": self.decided_at,
        }


# --- classifier and gazetteer (process-wide caches of read-only artefacts) --------------------------------------

_lock = threading.Lock()
_models: dict[tuple[str, float], tuple[Any, str]] = {}
# A retrained artefact loads in a thread beside the model in memory, which keeps deciding meanwhile:
_loading: set[tuple[str, float]] = set()  # artefacts being loaded so
_failed: dict[tuple[str, float], float] = {}  # artefacts whose load failed → when (monotonic), tried again later
_unreadable: dict[tuple[str, float], str] = {}  # artefacts that failed a first load (no model to fall back on) → why
RELOAD_RETRY_S = 60.0


def _model_key() -> tuple[str, float] | None:
    """(artefact directory, mtime of its metadata) of the configured classifier; None when none is configured."""
    path = get_settings().dispatch_model_path
    if not path:
        return None
    from cityhub.nlp import classifier

    meta = Path(path) / classifier.META_FILE
    if not meta.is_file():
        raise ValidationFailed(f"dispatch model {path} not found (CITYHUB_DISPATCH_MODEL_PATH)")
    return (str(Path(path).resolve()), meta.stat().st_mtime)


def model_status() -> str:
    """This process's dispatch classifier, for /healthz: "off" (none configured), "missing" (configured, not
    there), "unreadable" (there, but its load failed: decisions go without it, it is tried again a minute later),
    "loaded", "not loaded" (`cityhub serve` loads it in the background at start, else the first decision does),
    "reloading" (the artefact was retrained: the previous model decides while the new one loads) or "reload failed"
    (the previous model still decides; the new artefact is tried again a minute later). Asking starts the load of a
    retrained artefact, as a decision would."""
    try:
        key = _model_key()
    except ValidationFailed:
        return "missing"
    if key is None:
        return "off"
    if key in _models:
        return "loaded"
    if not any(directory == key[0] for directory, _ in list(_models)):
        if key not in _unreadable:
            return "not loaded"
        try:  # tried again once its minute is up, as a decision would, so a mended artefact shows as such
            load_model()
        except ValidationFailed:
            return "unreadable"
        return "loaded"
    # Retrained: the new artefact starts loading now, in a thread, not only at this process's next decision — so a
    # process that decides rarely does not report "reloading" for hours.
    try:
        load_model()
    except ValidationFailed:
        return "missing"
    with _lock:
        if key in _models:
            return "loaded"
        return "reload failed" if key in _failed and key not in _loading else "reloading"


_unavailable_warned: dict[str, float] = {}  # problem → when it was last logged (monotonic)


def _warn_unavailable(problem: str) -> None:
    """Log a classifier that cannot be read once a minute, not at each decision (a queue page makes fifty)."""
    now = time.monotonic()
    if now - _unavailable_warned.get(problem, -RELOAD_RETRY_S) >= RELOAD_RETRY_S:
        _unavailable_warned[problem] = now
        log.warning("dispatch decisions go without the classifier, nothing automatically: %s", problem)


def warm_up() -> None:
    """Load the configured classifier and the gazetteer of the database's units now (`cityhub serve` runs this in
    the background at start): otherwise the first decision of each server process waits for them, the classifier
    taking seconds to load."""
    from cityhub.db import session_scope

    try:
        load_model()
    except ValidationFailed as exc:
        log.warning("dispatch classifier not loaded: %s", exc.message)
    with session_scope() as session:
        unit_gazetteer(session)


def load_model() -> tuple[Any, str] | None:
    """The configured classifier and its version string, or None when no model is configured.

    The first call loads the artefact (seconds). When the artefact changes (retrained into the same directory), the
    model in memory keeps answering while the new one loads in a thread, so no decision and no intake form waits for
    a retrain; the new model answers from the call after it is loaded. Decisions record the version that made them.
    """
    key = _model_key()
    if key is None:
        return None
    path = str(get_settings().dispatch_model_path)
    with _lock:
        if key in _models:
            return _models[key]
        # The model of the same directory, before it was retrained (another directory is another configuration).
        previous = next((loaded for (directory, _), loaded in _models.items() if directory == key[0]), None)
        failed_at = _failed.get(key)
        if previous is None:  # nothing to answer with meanwhile: load now, or say why it cannot be
            if failed_at is not None and time.monotonic() - failed_at < RELOAD_RETRY_S:
                # Not re-read at every decision: once a minute.
                raise ValidationFailed(_unreadable.get(key, f"dispatch model {path} cannot be read"))
            try:
                return _install(key, _read_model(path))
            except Exception as exc:
                _failed[key] = time.monotonic()
                why = exc.message if isinstance(exc, CityhubError) else f"{type(exc).__name__}: {exc}"
                _unreadable[key] = f"dispatch model {path} cannot be read ({why})"
                raise ValidationFailed(_unreadable[key]) from exc
        if key not in _loading and (failed_at is None or time.monotonic() - failed_at >= RELOAD_RETRY_S):
            _loading.add(key)
            threading.Thread(target=_load_beside, args=(key, path), name="cityhub-model-reload", daemon=True).start()
        return previous


def _read_model(path: str) -> tuple[Any, str]:
    from cityhub.nlp import classifier

    model = classifier.load(path)
    return model, f"{Path(path).name}@{model.meta.get('created_at', 'unknown')}"


def _install(key: tuple[str, float], loaded: tuple[Any, str]) -> tuple[Any, str]:
    """Make ``loaded`` the process's model (under ``_lock``): one model in memory, a retrained one replaces it."""
    _models.clear()
    _models[key] = loaded
    _failed.clear()
    _unreadable.clear()
    return loaded


def _load_beside(key: tuple[str, float], path: str) -> None:
    try:
        loaded = _read_model(path)
    except Exception as exc:  # a broken artefact must not stop the model that works
        log.error("retrained dispatch classifier %s not loaded; the previous model keeps deciding: %s", path, exc)
        with _lock:
            _loading.discard(key)
            _failed[key] = time.monotonic()
        return
    with _lock:
        _loading.discard(key)
        _install(key, loaded)
    log.info("dispatch classifier reloaded: %s", loaded[1])


def resolve_place(session: Session, *, order: Order) -> Place:
    """The order's street and community: as recorded (with where they came from), else from its coordinates, its
    address or its text — the units may have changed since intake looked."""
    if order.community_id is not None or order.street_id is not None:
        street_id = order.street_id
        if street_id is None and order.community is not None:
            street_id = order.community.parent_id
        return Place(street_id=street_id, community_id=order.community_id, source=order.place_source or "order")
    return locate_appeal(session, order) or Place()


def _unit_chain(session: Session, unit_id: int | None) -> tuple[int, ...]:
    """The unit and its ancestors, nearest first (from the process's directory of units)."""
    units = unit_directory(session)
    chain: list[int] = []
    current = units.get(unit_id) if unit_id is not None else None
    while current is not None and current.id not in chain:
        chain.append(current.id)
        current = units.get(current.parent_id) if current.parent_id is not None else None
    return tuple(chain)


def returned_units(session: Session, *, order_id: int) -> set[int]:
    """Units that held the order and returned it (退单), from the audit trail."""
    holder: int | None = None
    returned: set[int] = set()
    for event in orders.history(session, order_id=order_id):
        if event.action in (Action.DISPATCH, Action.TRANSFER, Action.ASSIGN, Action.REOPEN) and event.unit_id:
            holder = event.unit_id
        elif event.action == Action.RETURN and holder is not None:
            returned.add(holder)
            holder = None
    return returned


def last_returns(session: Session, order_ids: Sequence[int]) -> dict[int, OrderEvent]:
    """The latest return (退单) of each of ``order_ids`` that has one, from the audit trail: which unit sent it back
    (the event's ``unit_id``), who, when and why — what the dispatcher decides the next unit by."""
    latest: dict[int, OrderEvent] = {}
    if order_ids:
        stmt = (
            select(OrderEvent)
            .where(OrderEvent.order_id.in_(list(order_ids)), OrderEvent.action == Action.RETURN.value)
            .order_by(OrderEvent.at, OrderEvent.id)
        )
        for event in session.scalars(stmt):
            latest[event.order_id] = event
    return latest


def returner_suggestions(session: Session, returns: Mapping[int, OrderEvent]) -> dict[int, int]:
    """What the units that returned orders suggested instead (退单's 建议改派至, the event's ``suggest_unit_id``):
    order id → unit id for each of ``returns`` (as :func:`last_returns` gives them) naming a unit still active and
    not the one that returned it — offered to the dispatcher above the rules' and classifier's suggestions, as the
    returning unit's word, not a score."""
    units = unit_directory(session)
    offered: dict[int, int] = {}
    for order_id, event in returns.items():
        unit_id = (event.payload or {}).get(SUGGEST_UNIT)
        unit = units.get(unit_id) if isinstance(unit_id, int) else None
        if unit is not None and unit.active and unit_id != event.unit_id:
            offered[order_id] = unit.id
    return offered


def threshold_for(session: Session, *, category_id: int | None) -> float:
    """The auto-dispatch threshold of a category: its own, else its nearest ancestor's, else the default."""
    if category_id is not None:
        rows = refdata.cached(session, "dispatch.thresholds", ("dispatch_thresholds",), _read_thresholds)
        for cid in category_chain(session, category_id=category_id):
            if cid in rows:
                return rows[cid]
    return get_settings().dispatch_threshold


def _read_thresholds(session: Session) -> dict[int, float]:
    return {row.category_id: row.threshold for row in session.scalars(select(DispatchThreshold))}


def to_rule(row: DispatchRule) -> rulebook.Rule:
    return rulebook.Rule(
        id=row.id,
        name=row.name,
        tier=row.tier,
        target_kind=row.target_kind,
        target_unit_id=row.target_unit_id,
        priority=row.priority,
        category_id=row.category_id,
        place_unit_id=row.place_unit_id,
        keywords=tuple(row.keywords or ()),
        exclude_keywords=tuple(row.exclude_keywords or ()),
        active=row.active,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def _active_rules(session: Session) -> list[rulebook.Rule]:
    """The active routing rules, as plain values, from the process's cache while the table is unchanged
    (:mod:`cityhub.refdata`): an edit made in any process counts from the next decision, while the decisions in
    between skip loading and converting every rule (~2 ms an order with 40 rules)."""
    return list(refdata.cached(session, "dispatch.rules", ("dispatch_rules",), _read_active_rules))


def _read_active_rules(session: Session) -> tuple[rulebook.Rule, ...]:
    return tuple(to_rule(r) for r in session.scalars(select(DispatchRule).where(DispatchRule.active.is_(True))))


def _rules_changed_at(session: Session) -> datetime | None:
    """When a routing rule or a threshold was last created, changed or deleted (a deletion leaves its configuration
    log entry), from the process's cache while the tables are unchanged."""
    return refdata.cached(
        session, "dispatch.changed_at", ("dispatch_rules", "dispatch_thresholds"), _read_rules_changed_at
    )


def _read_rules_changed_at(session: Session) -> datetime | None:
    times = (
        session.scalar(select(func.max(DispatchRule.updated_at))),
        session.scalar(select(func.max(DispatchThreshold.updated_at))),
        session.scalar(
            select(func.max(auditlog.LogEntry.at)).where(
                auditlog.LogEntry.area.in_(("dispatch_rule", "dispatch_threshold"))
            )
        ),
    )
    return max((t for t in times if t is not None), default=None)


def decision_is_current(
    session: Session, *, order: Order, decision: DispatchDecision | DispatchSuggestion, now: datetime | None = None
) -> bool:
    """Whether a stored decision still says what deciding now would: made after the order's last change, the rules'
    and thresholds' last edit and any rule's start or end since, by the classifier in use. Otherwise the dispatcher
    would be shown — and a bulk dispatch would send the order to — a unit that a deactivated rule named."""
    decided_at = decision.decided_at
    if decided_at is None or decided_at < order.updated_at:
        return False
    changed = _rules_changed_at(session)
    if changed is not None and decided_at < changed:
        return False
    now = now or utcnow()
    for rule in _active_rules(session):
        for edge in (rule.valid_from, rule.valid_until):
            if edge is not None and decided_at < edge <= now:
                return False
    try:
        loaded = load_model()
    except CityhubError:
        loaded = None
    return decision.model_version == (loaded[1] if loaded else None)


def suggest(
    session: Session,
    *,
    order: Order,
    now: datetime | None = None,
    store: bool = True,
    prediction: Any = None,
) -> DispatchDecision:
    """Rank units for ``order`` and decide whether it may go automatically; stored for the queue unless not ``store``.

    ``prediction`` (a classifier ``Prediction``) may be passed by callers that classify many orders at once.
    """
    now = now or utcnow()
    settings = get_settings()
    try:
        loaded, unavailable = load_model(), False
    except CityhubError as exc:  # configured, not readable: the rules still suggest, a dispatcher decides
        _warn_unavailable(exc.message)
        loaded, unavailable = None, True
    model_version = loaded[1] if loaded else None
    if loaded is not None and prediction is None:
        from cityhub.nlp.text import order_text

        prediction = loaded[0].predict([order_text(order.title, order.content)])[0]

    place = resolve_place(session, order=order)
    place_chain = _unit_chain(session, place.community_id) or _unit_chain(session, place.street_id)
    base = rulebook.OrderFacts(
        text=f"{order.title}\n{order.content}",
        now=now,
        place_chain=place_chain,
        community_id=place.community_id,
        street_id=place.street_id,
        # Only creation leads into "received": such an order was never dispatched, so no unit returned it.
        excluded_unit_ids=frozenset()
        if order.state == State.RECEIVED
        else frozenset(returned_units(session, order_id=order.id)),
    )
    active = _active_rules(session)

    def under(category: CategoryRef | None, label: str | None, probability: float | None) -> rulebook.Hypothesis:
        chain = tuple(category_chain(session, category_id=category.id)) if category is not None else ()
        facts = replace(base, category_chain=chain, category_label=category.path if category else label)
        return rulebook.Hypothesis(label=label, probability=probability, candidates=rulebook.match(active, facts))

    hypotheses: list[rulebook.Hypothesis] = []
    category_id: int | None = None
    category_source: str | None = None
    label: str | None = None
    if order.category_id is not None:
        category = taxonomy(session).by_id.get(order.category_id)
        category_id, category_source, label = order.category_id, "intake", category.path if category else None
        hypotheses.append(under(category, label, 1.0 if loaded else None))
    elif prediction is not None:
        found = find_categories(session, names=[name for name, _ in prediction.top3])
        for i, (name, p) in enumerate(prediction.top3):
            category = found[name]
            if i == 0:
                label = name
                if category is not None:
                    category_id, category_source = category.id, "model"
            hypotheses.append(under(category, name, p))
    else:
        hypotheses.append(under(None, None, None))

    primary = hypotheses[0].candidates
    threshold = threshold_for(session, category_id=category_id)
    verdict = rulebook.decide(
        candidates=primary,
        probability=1.0 if category_source == "intake" else (prediction.probability if category_id else None),
        threshold=threshold,
        category_label=label,
        category_from_intake=category_source == "intake",
        has_model=loaded is not None,
        rule_auto_priority=settings.dispatch_rule_auto_priority,
        returned=order.state == State.RETURNED or bool(base.excluded_unit_ids),
        evidence=prediction.evidence if category_source == "model" else None,
        min_evidence=settings.dispatch_min_evidence,
        model_unavailable=unavailable,
    )
    merged = rulebook.combine(hypotheses)
    units = unit_directory(session)
    decision = DispatchDecision(
        order_id=order.id,
        candidates=[
            Suggestion(
                unit_id=c.unit_id,
                unit_code=units[c.unit_id].code if c.unit_id in units else None,
                unit_name=units[c.unit_id].name if c.unit_id in units else None,
                tier=c.tier,
                score=c.score,
                rule_id=c.rule_id,
                reasons=list(c.reasons),
                category=c.reading,
            )
            for c in merged
        ],
        prediction=prediction.as_dict() if prediction is not None else None,
        category_id=category_id,
        category_source=category_source,
        place=place,
        auto=verdict.auto and order.state == State.RECEIVED,
        reason=verdict.reason,
        threshold=threshold,
        model_version=model_version,
        decided_at=now,
    )
    if store:
        _store(session, decision, session.get(DispatchSuggestion, decision.order_id))
    return decision


def _store(session: Session, decision: DispatchDecision, row: DispatchSuggestion | None) -> None:
    """Keep the decision as the order's latest (one row per order): ``row``, the order's earlier one, or a new
    one."""
    if row is None:
        row = DispatchSuggestion(order_id=decision.order_id)
        session.add(row)
    data = decision.as_dict()
    row.decided_at = decision.decided_at or utcnow()
    row.auto = decision.auto
    row.dispatched = decision.dispatched
    row.reason = decision.reason
    row.candidates = data["candidates"]
    row.prediction = decision.prediction
    row.place = {
        **data["place"],
        "category_id": decision.category_id,
        "category_source": decision.category_source,
        "threshold": decision.threshold,
    }
    row.model_version = decision.model_version
    session.flush()


def _from_record(row: DispatchSuggestion) -> DispatchDecision:
    place = dict(row.place or {})
    return DispatchDecision(
        order_id=row.order_id,
        candidates=[
            Suggestion(
                unit_id=c["unit_id"],
                unit_code=c.get("unit_code"),
                unit_name=c.get("unit_name"),
                tier=rulebook.RuleTier(c["tier"]),
                score=c.get("score"),
                rule_id=c["rule_id"],
                reasons=list(c.get("reasons") or []),
                category=c["category"] if "category" in c else _first_reading(row, c.get("reasons")),
            )
            for c in row.candidates or []
        ],
        prediction=row.prediction,
        category_id=place.get("category_id"),
        category_source=place.get("category_source"),
        place=Place(place.get("street_id"), place.get("community_id"), place.get("source")),
        auto=row.auto,
        reason=row.reason,
        threshold=place.get("threshold"),
        model_version=row.model_version,
        dispatched=row.dispatched,
        decided_at=row.decided_at,
    )


def _first_reading(row: DispatchSuggestion, reasons: Sequence[str] | None) -> str | None:
    """The category reading of a suggestion stored before suggestions named theirs: the classifier's first reading
    unless its reasons say it came from another (``if the category is …``, :func:`rules.combine`)."""
    if any(r.startswith("if the category is ") for r in reasons or ()):
        return None
    if (row.place or {}).get("category_source") == "model" and row.prediction:
        label = row.prediction.get("label")
        return label if isinstance(label, str) else None
    return None


def latest_decision(session: Session, *, order_id: int) -> DispatchDecision | None:
    """The stored decision of an order, or None."""
    row = session.get(DispatchSuggestion, order_id)
    return _from_record(row) if row is not None else None


# --- acting ----------------------------------------------------------------------------------------------------


def hand_dispatch_reading(
    session: Session, *, order: Order, unit_id: Any = None
) -> tuple[dict[str, Any], CategoryRef | None]:
    """What the classifier said of an order a person dispatches (by hand from the queue or the order page, in bulk,
    over the API or the command line) to ``unit_id``, and the category that dispatch confirms.

    The first is for the dispatch event's payload: ``prediction`` (label, probability, top 3), ``model_version`` and
    ``suggested_unit_id`` (the first suggestion shown), kept so that the training export can tell the person's
    correction of the classifier from a confirmation (:func:`training_rows`). It is the order's stored decision — what
    its queue entry and page showed — when that holds a prediction, else the configured classifier's reading now;
    nothing without a classifier (or one that cannot be read).

    The second is the category a person's dispatch of an uncategorised order confirms: the classifier's reading under
    which the decision suggested the unit chosen (one of the suggestions shown). Choosing a suggestion made under a
    reading takes that reading for the order, as automatic dispatch takes it — so the time limit, the statistics and
    the unit's list know the order's category whether a person or the engine dispatched it. A unit the decision did
    not suggest confirms nothing (the person may send it for another reason): it stays uncategorised, for 设定分类.
    The training export counts such an order as the classifier confirmed, not as a label to learn from. Without a
    stored decision (the background dispatcher off) it is made afresh from the same reading, as the queue made the one
    it showed: the classifier reads the order once."""
    row = session.get(DispatchSuggestion, order.id)
    decision = _from_record(row) if row is not None else None
    if row is not None and row.prediction:
        facts: dict[str, Any] = {"prediction": row.prediction, "model_version": row.model_version}
        shown = decision.shown if decision is not None else []
        if shown:
            facts["suggested_unit_id"] = shown[0].unit_id
        return facts, _confirmed(session, order, decision, unit_id)
    try:
        loaded = load_model()
    except CityhubError as exc:
        _warn_unavailable(exc.message)
        return {}, None
    if loaded is None:
        return {}, None
    from cityhub.nlp.text import order_text

    prediction = loaded[0].predict([order_text(order.title, order.content)])[0]
    if decision is None and order.category_id is None:
        # None kept (the background dispatcher off): the queue showed a decision made afresh, as this one is.
        decision = suggest(session, order=order, store=False, prediction=prediction)
    return {"prediction": prediction.as_dict(), "model_version": loaded[1]}, _confirmed(
        session, order, decision, unit_id
    )


def _confirmed(session: Session, order: Order, decision: DispatchDecision | None, unit_id: Any) -> CategoryRef | None:
    """The reading under which ``decision`` suggested ``unit_id`` for the uncategorised ``order``, if it did."""
    if order.category_id is not None or decision is None or decision.category_source != "model":
        return None
    chosen = next((c for c in decision.shown if c.unit_id == unit_id), None)
    if chosen is None or not chosen.category:
        return None
    return find_categories(session, names=[chosen.category])[chosen.category]


def _waiting_order(session: Session, order_id: int, expected_version: int | None, what: str) -> Order:
    """The order, at the version the caller saw, while it waits for dispatch (received or returned): what a
    dispatcher's correction of its ``what`` (category, place) needs."""
    order = orders.require_order(session, order_id=order_id)
    if expected_version is not None and order.version != expected_version:
        from cityhub.errors import Conflict

        raise Conflict(f"order {order.number} was changed by someone else", details={"version": order.version})
    if order.state not in QUEUE_STATES:
        raise ValidationFailed(
            f"the {what} of order {order.number} can change only before dispatch (it is {order.state.value})",
            details={"state": order.state.value},
        )
    return order


def set_category(
    session: Session,
    *,
    order_id: int,
    category_id: int,
    actor: orders.Actor,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Order:
    """Correct an order's category before it is dispatched (received or returned); audited as a comment."""
    order = _waiting_order(session, order_id, expected_version, "category")
    category = session.get(Category, category_id)
    if category is None or not category.active:
        raise ValidationFailed(f"unknown or inactive category {category_id}", details={"field": "category_id"})
    if order.category_id == category_id:
        return order
    return orders.amend(
        session,
        order=order,
        changes={"category_id": category_id},
        actor=actor,
        text=f"category set to {category.path}",
        reason=reason,
    )


def set_place(
    session: Session,
    *,
    order_id: int,
    unit_id: int,
    actor: orders.Actor,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Order:
    """Set or correct where an order is — a street, or a community (its street follows) — before it is dispatched
    (received or returned); audited as a comment. Dispatch's suggestions then start from this place."""
    return _set_place(
        session, order_id=order_id, unit_id=unit_id, actor=actor, reason=reason, expected_version=expected_version
    )[0]


def _set_place(
    session: Session,
    *,
    order_id: int,
    unit_id: int,
    actor: orders.Actor,
    reason: str | None,
    expected_version: int | None,
) -> tuple[Order, bool]:
    """:func:`set_place`, and whether it changed the order's place (else the order has it already)."""
    order = _waiting_order(session, order_id, expected_version, "place")
    unit = unit_directory(session).get(unit_id)
    place = place_of_unit(unit) if unit is not None and unit.active else None
    if unit is None or place is None:
        raise ValidationFailed(f"unit {unit_id} is not an active street or community", details={"field": "unit_id"})
    changes: dict[str, int | str | None] = {"street_id": place.street_id, "community_id": place.community_id}
    if all(getattr(order, name) == value for name, value in changes.items()):
        return order, False
    changes["place_source"] = PlaceSource.DISPATCHER.value
    text = f"place set to {_place_words(unit)}"
    return orders.amend(session, order=order, changes=changes, actor=actor, text=text, reason=reason), True


def _place_words(unit: Any) -> str:
    """A street or community as the place's machine-written texts name it (``web.machine_text``)."""
    return unit.name + (" (street only)" if unit.tier == UnitTier.STREET else "")


def alias_candidates(session: Session, order: Order) -> list[AliasCandidate]:
    """The places ``order``'s address and text name that the gazetteer does not know (``aliases.unknown_places``):
    what its place correction offers to keep as aliases of the unit chosen."""
    return unknown_places(session, (order.address, order.title, order.content))


def teaches_aliases(role: Any) -> bool:
    """Whether a role may add place aliases while correcting a place, to some unit at least (``units:manage`` to
    any, ``aliases:add_from_order`` to those it routes: :func:`check_alias_teaching`)."""
    from cityhub.auth import permissions

    return role is not None and any(
        permissions.allows(role, p) for p in (permissions.UNITS_MANAGE, permissions.ALIASES_FROM_ORDER)
    )


def check_alias_teaching(session: Session, *, unit_id: int, actor: orders.Actor) -> None:
    """PermissionDenied unless ``actor`` may add place aliases to ``unit_id`` in a place correction: an
    administrator (``units:manage``) to any unit; a role holding ``aliases:add_from_order`` (dispatchers) to a unit
    its own unit routes (:func:`cityhub.auth.scope.routed_by`: a street's dispatcher its street and communities, the
    district's any)."""
    from cityhub.auth import permissions
    from cityhub.auth.scope import routed_by
    from cityhub.org.models import Role

    role = Role(actor.role) if actor.role else None
    if role is not None and permissions.allows(role, permissions.UNITS_MANAGE):
        return
    if not teaches_aliases(role):
        raise PermissionDenied(
            "only dispatchers and administrators add place aliases while correcting a place",
            details={"permission": permissions.ALIASES_FROM_ORDER},
        )
    unit = unit_directory(session).get(unit_id)
    if unit is None:
        return  # no such unit: the correction itself refuses it
    routed = routed_by(session, actor.unit_id) if actor.unit_id is not None else frozenset()
    if routed is not None and unit_id not in routed:
        name = f"{unit.name} ({unit.code})"
        raise PermissionDenied(
            f"{name} is not among the units you route: place aliases may be added to those only",
            details={"field": "unit_id", "reason": "scope", "unit_id": unit_id, "unit": name},
        )


@dataclass(frozen=True)
class PlaceCorrection:
    """What a place correction did (:func:`correct_place`): the order; ``moved``, whether its place changed — else
    the dispatcher confirmed the place it had, and nothing of the order changed —; per alias asked, what became of
    it."""

    order: Order
    moved: bool
    aliases: list[AliasOutcome]


def correct_place(
    session: Session,
    *,
    order_id: int,
    unit_id: int,
    actor: orders.Actor,
    aliases: Sequence[AliasWish] = (),
    reason: str | None = None,
    expected_version: int | None = None,
) -> PlaceCorrection:
    """A dispatcher's place correction (:func:`set_place`) that may teach the address library in the same step:
    ``aliases`` (``aliases.AliasWish``), each added to the unit chosen — a community, else the street —, its log entry
    naming the order. Who may add them to that unit is checked first (:func:`check_alias_teaching`: PermissionDenied,
    nothing changed); then the place is set, and each alias added or refused on its own
    (``aliases.add_from_order``), the correction kept whatever becomes of them."""
    if aliases:
        check_alias_teaching(session, unit_id=unit_id, actor=actor)
    order, moved = _set_place(
        session, order_id=order_id, unit_id=unit_id, actor=actor, reason=reason, expected_version=expected_version
    )
    if not aliases:
        return PlaceCorrection(order, moved, [])
    outcomes = add_from_order(session, order_number=order.number, unit_id=unit_id, wishes=aliases, actor=actor)
    taught = [o.alias for o in outcomes if o.added]
    if taught:
        _note_taught(
            session, order=order, unit_id=unit_id, taught=taught, confirmed=not moved, actor=actor, reason=reason
        )
    return PlaceCorrection(order, moved, outcomes)


def _note_taught(
    session: Session,
    *,
    order: Order,
    unit_id: int,
    taught: list[str],
    confirmed: bool,
    actor: orders.Actor,
    reason: str | None,
) -> None:
    """The order's trail says which place aliases its place correction taught the address library (their log entries
    name the order; the order's trail names them), and — when the order had that place already — that the dispatcher
    confirmed it. An internal comment written beside the order (``orders.note_beside``): nothing of the order changed
    (a correction that moved it has its own event), so its version and state stay."""
    unit = unit_directory(session)[unit_id]
    said = [f"place confirmed as {_place_words(unit)}"] if confirmed else []
    said.append(f"place aliases of {unit.name} taught: {', '.join(taught)}")
    orders.note_beside(
        session,
        order=order,
        action=Action.COMMENT.value,
        actor=actor,
        at=utcnow(),
        payload={"text": "; ".join(said), "aliases": taught},
        from_state=order.state.value,
        reason=reason if confirmed else None,
    )


def _fill_note(session: Session, fills: dict[str, int | str], source: str | None) -> str:
    """The audit note of what automatic dispatch wrote into the order, by name (the ids are in its payload)."""
    parts = []
    if "category_id" in fills:
        category = taxonomy(session).by_id.get(int(fills["category_id"]))
        parts.append(f"category set by the classifier: {category.path if category else fills['category_id']}")
    units = unit_directory(session)
    where = " / ".join(
        units[int(fills[k])].name if int(fills[k]) in units else str(fills[k])
        for k in ("street_id", "community_id")
        if k in fills
    )
    if where:
        parts.append(f"place found from the {source or 'text'}: {where}")
    return "; ".join(parts)


def _open_duplicate(session: Session, order: Order, duplicates: Sequence[Any] | None) -> Any:
    """The best earlier open order this one duplicates at an agreeing place (``intake.dedupe``), if any: what intake
    suggests merging, or would have merged automatically with that switched on — not a short report replacing the
    other's words with others (``nlp.similar.says_otherwise``: another problem at the same corner is dispatched).
    ``duplicates``: the ones the caller's check found (intake's, made before the order was created), else they are
    looked for now."""
    from cityhub.intake import dedupe

    if duplicates is None:
        duplicates = dedupe.check(session, order=order, similar=False, earlier_only=True).duplicates
    said = order_text(order.title, order.content)
    found = [
        d
        for d in duplicates
        if d.order.id != order.id
        and d.order.state in OPEN_STATES
        and d.place in dedupe.AGREEING
        and not says_otherwise(said, order_text(d.order.title, d.order.content))  # another problem at the place
    ]
    if not found:
        return None
    kin = {k.id for k in orders.split_family(session, order)}  # 拆单: its appeal's other orders are no duplicates
    return next((d for d in found if d.order.id not in kin), None)


def auto_dispatch(
    session: Session,
    *,
    order: Order,
    now: datetime | None = None,
    new: bool = False,
    held: bool = False,
    prediction: Any = None,
    duplicates: Sequence[Any] | None = None,
    send: bool = True,
) -> DispatchDecision:
    """Decide for a received order and, when the decision allows, dispatch it as ``auto-dispatch``; ``send`` False
    (automatic dispatch off): the decision is only kept, for the dispatcher's queue to show.

    A decision that would dispatch waits all the same when an earlier open order at an agreeing place is its
    duplicate: a person merges it (or dispatches it, when it is not the same matter after all). ``duplicates``: those
    the caller's duplicate check found (intake's), so the check is not made twice; without them it is made here.

    A category predicted by the classifier and a place resolved from the address are written to the order first
    (one audited comment), so the time limit and later statistics use them. ``new``: this transaction created the
    order (intake): it has no earlier decision and needs no lock (see ``orders.act``'s ``new_order``). ``held``:
    the caller has read the order as ``orders.act`` would (locked on PostgreSQL, with its assists), so the actions
    need not read it again. ``prediction``: the classifier's, made for many orders at once by the caller (see
    ``suggest``).
    """
    decision = suggest(session, order=order, now=now, store=False, prediction=prediction)
    if decision.auto and (twin := _open_duplicate(session, order, duplicates)) is not None:
        decision.auto = False
        decision.reason = f"{rulebook.possible_duplicate(twin.order.number, twin.score)}; {decision.reason}"
    # Read before the first write (an order created in this transaction has no earlier decision).
    earlier = None if new else session.get(DispatchSuggestion, order.id)
    new_order = order if new or held else None
    if send and decision.auto and order.state == State.RECEIVED and decision.candidates:
        top = decision.candidates[0]
        fills: dict[str, int | str] = {}
        if order.category_id is None and decision.category_id is not None:
            fills["category_id"] = decision.category_id
        if order.community_id is None and order.street_id is None and decision.place.placed:
            # Intake found no place (or the units were imported since): the decision's, with where it came from.
            if decision.place.street_id is not None:
                fills["street_id"] = decision.place.street_id
            if decision.place.community_id is not None:
                fills["community_id"] = decision.place.community_id
            if decision.place.source:
                fills["place_source"] = decision.place.source
        if fills:
            orders.amend(
                session,
                order=order,
                changes=fills,
                actor=AUTO_ACTOR,
                text=_fill_note(session, fills, decision.place.source),
                reason=None,
                new_order=new_order,
            )
        orders.act(
            session,
            order_id=order.id,
            action=Action.DISPATCH,
            actor=AUTO_ACTOR,
            now=now,
            params={
                "unit_id": top.unit_id,
                "auto": True,
                "probability": decision.probability,
                "rule_id": top.rule_id,
                "model_version": decision.model_version,
                "reason": decision.reason,
            },
            new_order=new_order,
        )
        decision.dispatched = True
    _store(session, decision, earlier)
    return decision


def pending_order_ids(session: Session, *, limit: int | None = None) -> list[int]:
    """Received (never dispatched) orders, oldest first: what ``dispatch run`` works through."""
    stmt = select(Order.id).where(Order.state == State.RECEIVED).order_by(Order.created_at, Order.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def queue(
    session: Session,
    *,
    limit: int = 50,
    offset: int = 0,
    scope: Any = None,
    now: datetime | None = None,
    states: Sequence[State] = QUEUE_STATES,
) -> tuple[list[tuple[Order, DispatchDecision]], bool]:
    """Orders waiting for a dispatcher (received or returned; ``states``: those of them only), the most urgent first
    (特急, 紧急 — on page 2 of an oldest-first queue a 特急 order waited behind a page of ordinary ones), then oldest
    first, each with its suggestions.

    A stored decision is reused while it is current (:func:`decision_is_current`); otherwise it is computed afresh
    (not stored: reading the queue writes nothing).
    """
    stmt = select(Order).where(Order.state.in_([state for state in states if state in QUEUE_STATES]))
    if scope is not None:
        stmt = stmt.where(scope)
    urgent_first = case((Order.urgency == Urgency.CRITICAL, 0), (Order.urgency == Urgency.URGENT, 1), else_=2)
    rows = list(
        session.scalars(stmt.order_by(urgent_first, Order.created_at, Order.id).limit(limit + 1).offset(offset))
    )
    page = rows[:limit]
    decisions = shown_decisions(session, page, now=now)
    return [(order, decisions[order.id]) for order in page], len(rows) > limit


def shown_decisions(
    session: Session, waiting: Sequence[Order], *, now: datetime | None = None
) -> dict[int, DispatchDecision]:
    """The decision the queue shows for each of the ``waiting`` orders, by id: its stored one while it is current
    (:func:`decision_is_current`), else one computed afresh (not stored: reading the queue writes nothing). What a
    dispatch from the queue reads its suggestion's reason from, so that the page need not post it back."""
    stored = {
        r.order_id: r
        for r in session.scalars(
            select(DispatchSuggestion).where(DispatchSuggestion.order_id.in_([o.id for o in waiting]))
        )
    }
    out: dict[int, DispatchDecision] = {}
    for order in waiting:
        record = stored.get(order.id)
        if (
            record is not None
            and not record.dispatched
            and decision_is_current(session, order=order, decision=record, now=now)
        ):
            out[order.id] = _from_record(record)
    fresh = [order for order in waiting if order.id not in out]
    predicted = _predict_all(fresh)
    for order in fresh:
        out[order.id] = suggest(session, order=order, now=now, store=False, prediction=predicted.get(order.id))
    return {order.id: out[order.id] for order in waiting}


def _predict_all(waiting: Sequence[Order]) -> dict[int, Any]:
    """The classifier's predictions for ``waiting`` (by order id), made in one call: a queue page's fresh decisions
    cost the classifier a third of what one at a time did. None without a classifier, or one that cannot be read
    (each decision meets the problem then and reports it)."""
    if len(waiting) < 2:
        return {}
    try:
        loaded = load_model()
    except CityhubError:
        return {}
    if loaded is None:
        return {}
    predicted = loaded[0].predict([order_text(o.title, o.content) for o in waiting])
    return {order.id: prediction for order, prediction in zip(waiting, predicted, strict=True)}


def decided_category(session: Session, category_id: int) -> Any:
    """The waiting orders of a category or below it as the queue shows their category (a clause): the one set on the
    order, else — none set — the one its stored, undispatched decision read (the classifier's prediction, written to
    the order only when it is dispatched automatically). A dispatcher narrowing the queue to 物业服务 missed every
    order only the classifier had read so. An order with neither (no decision stored for it yet: the background
    dispatcher has not come to it, or does not run) is of no category here."""
    ids = orders._category_subtree(session, category_id) if 0 < category_id <= MAX_ID else []
    read_so = select(DispatchSuggestion.order_id).where(
        DispatchSuggestion.dispatched.is_(False), DispatchSuggestion.place["category_id"].as_integer().in_(ids)
    )
    return or_(Order.category_id.in_(ids), and_(Order.category_id.is_(None), Order.id.in_(read_so)))


def queue_categories(session: Session, *, scope: Any = None) -> dict[int, int]:
    """How many waiting orders (within ``scope``) are of each category, as :func:`decided_category` reads it."""
    decided = DispatchSuggestion.place["category_id"].as_integer()
    shown = func.coalesce(Order.category_id, decided)
    stmt = (
        select(shown, func.count())
        .select_from(Order)
        .outerjoin(
            DispatchSuggestion,
            and_(DispatchSuggestion.order_id == Order.id, DispatchSuggestion.dispatched.is_(False)),
        )
        .where(Order.state.in_(QUEUE_STATES), shown.is_not(None))
        .group_by(shown)
    )
    if scope is not None:
        stmt = stmt.where(scope)
    return {category_id: n for category_id, n in session.execute(stmt)}


@dataclass(frozen=True)
class UnitLoad:
    """What a unit holds now: the open orders it leads (dispatched to it, not yet closed) and how many of them are
    past their time limit — beside a suggestion, what a dispatcher weighs between two units that could take it."""

    open: int
    overdue: int


# The states of an order a unit holds (led, open, no longer waiting for a dispatcher).
HELD_STATES = tuple(sorted(OPEN_STATES - set(QUEUE_STATES)))


def unit_loads(session: Session, unit_ids: Iterable[int]) -> dict[int, UnitLoad]:
    """:class:`UnitLoad` of each of ``unit_ids`` (one grouped query; a unit holding nothing: 0 and 0)."""
    ids = sorted(set(unit_ids))
    if not ids:
        return {}
    overdue = func.sum(case((Order.sla_status == SlaStatus.OVERDUE, 1), else_=0))
    stmt = (
        select(Order.lead_unit_id, func.count(), overdue)
        .where(Order.lead_unit_id.in_(ids), Order.state.in_(HELD_STATES))
        .group_by(Order.lead_unit_id)
    )
    loads = {unit_id: UnitLoad(0, 0) for unit_id in ids}
    loads.update({unit_id: UnitLoad(n, int(late or 0)) for unit_id, n, late in session.execute(stmt)})
    return loads


def queue_counts(session: Session, *, scope: Any = None) -> dict[State, int]:
    """How many orders wait in the queue (within ``scope``), by state: received and returned (退单)."""
    stmt = select(Order.state, func.count()).where(Order.state.in_(QUEUE_STATES)).group_by(Order.state)
    if scope is not None:
        stmt = stmt.where(scope)
    counts = {state: 0 for state in QUEUE_STATES}
    counts.update({State(state): n for state, n in session.execute(stmt)})
    return counts


# Orders one bulk dispatch takes at most (a queue page holds 50).
BULK_MAX = 200


@dataclass(frozen=True)
class Pick:
    """One order of a bulk dispatch: the unit the dispatcher chose (a suggestion they saw), the order's version when
    they saw it (a changed order is not dispatched blind), and the reason recorded."""

    order_id: int
    unit_id: int
    version: int | None = None
    reason: str | None = None


class Refusal(StrEnum):
    """Why an order of a bulk dispatch was not dispatched, as a page says it in its reader's language."""

    GONE = "gone"  # no such order, or not in the caller's data scope
    CHANGED = "changed"  # changed since the dispatcher read it (its version): taken by another, a file added, …
    STATE = "state"  # its state takes no dispatch (no longer waiting)
    UNIT = "unit"  # the unit chosen is unknown or inactive
    ROUTING = "routing"  # held by a unit outside the dispatcher's: the district's dispatchers route it
    NO_UNIT = "no_unit"  # no unit chosen for it (the queue page: no suggestion, and no unit chosen for all)
    BACK = "back"  # to the unit that returned it (退单), with no reason said (workorders.service._back_to_returner)
    OTHER = "other"


@dataclass(frozen=True)
class PickOutcome:
    order_id: int
    number: str | None
    dispatched: bool
    error: str | None = None  # why not: the order changed, was taken meanwhile, is not the caller's, …
    unit_id: int | None = None  # where it went (or was to go)
    refusal: Refusal | None = None  # ``error``'s kind
    back: bool = False  # dispatched back to the unit that returned it (退单), the reason given recorded


def _refusal(exc: Exception) -> Refusal:
    if isinstance(exc, StaleDataError | Conflict):
        return Refusal.CHANGED
    if isinstance(exc, InvalidTransition) and not isinstance(exc, ParameterProblem):
        return Refusal.STATE
    if isinstance(exc, NotFound):
        return Refusal.GONE
    if isinstance(exc, PermissionDenied) and exc.details.get("routing"):
        return Refusal.ROUTING
    if isinstance(exc, ValidationFailed) and exc.details.get("field") == "unit_id":
        return Refusal.UNIT
    if isinstance(exc, ValidationFailed) and exc.details.get(BACK_TO_RETURNER):
        return Refusal.BACK
    return Refusal.OTHER


def dispatch_picked(
    session: Session, picks: Sequence[Pick], *, actor: orders.Actor, scope: Any = None
) -> list[PickOutcome]:
    """Dispatch several waiting orders, each to its chosen unit (批量派单), each in a savepoint of the caller's
    transaction: one refused — taken or changed since the dispatcher read the queue, out of the caller's ``scope``
    (a clause as for :func:`queue`), not a unit that can take it — is reported with the reason and leaves the others
    dispatched. Each dispatch is the audited action a single dispatch is, by ``actor``."""
    if len(picks) > BULK_MAX:
        raise ValidationFailed(f"at most {BULK_MAX} orders at once (got {len(picks)})", details={"field": "items"})
    seen: set[int] = set()
    out: list[PickOutcome] = []
    # Which went back to the unit that returned it: said on the result, as the trail says it (one query).
    returned = last_returns(session, [p.order_id for p in picks])
    for pick in picks:
        if pick.order_id in seen:
            raise ValidationFailed(f"order {pick.order_id} is listed twice", details={"field": "items"})
        seen.add(pick.order_id)
        query = select(Order.number).where(Order.id == pick.order_id)
        number = session.scalar(query if scope is None else query.where(scope))
        if number is None:
            message = f"order {pick.order_id} not found"
            out.append(PickOutcome(pick.order_id, None, False, message, pick.unit_id, Refusal.GONE))
            continue
        params: dict[str, Any] = {"unit_id": pick.unit_id}
        if pick.reason:
            params["reason"] = pick.reason
        try:
            with session.begin_nested():
                orders.act(
                    session,
                    order_id=pick.order_id,
                    action=Action.DISPATCH,
                    actor=actor,
                    params=params,
                    expected_version=pick.version,
                    tell_staff=False,  # each unit told once, below
                )
        except (CityhubError, StaleDataError) as exc:
            message = exc.message if isinstance(exc, CityhubError) else "the order changed meanwhile"
            out.append(PickOutcome(pick.order_id, number, False, message, pick.unit_id, _refusal(exc)))
            continue
        back = pick.order_id in returned and returned[pick.order_id].unit_id == pick.unit_id
        out.append(PickOutcome(pick.order_id, number, True, unit_id=pick.unit_id, back=back))
    reasons = {p.order_id: p.reason for p in picks}
    notices.on_bulk_dispatch(
        session,
        dispatched=[(o.order_id, o.unit_id, reasons.get(o.order_id)) for o in out if o.dispatched],
        actor_id=actor.user_id,
        actor=actor.name,
    )
    return out


# --- rules and thresholds --------------------------------------------------------------------------------------

_TIER_OF_UNIT = {
    UnitTier.COMMUNITY: rulebook.RuleTier.COMMUNITY,
    UnitTier.STREET: rulebook.RuleTier.STREET,
    UnitTier.DISTRICT: rulebook.RuleTier.DISTRICT,
    UnitTier.CITY: rulebook.RuleTier.DISTRICT,
    UnitTier.DEPARTMENT: rulebook.RuleTier.DEPARTMENT,
    UnitTier.SUBCENTRE: rulebook.RuleTier.DEPARTMENT,
}


def _check_rule(
    session: Session, rule: DispatchRule, *, tier_given: bool, tier_asked: rulebook.RuleTier | None
) -> None:
    """Refuse what a rule cannot be, and set its tier where it follows from the target (``tier_given``: keep the
    rule's tier for a unit target; ``tier_asked``: the tier this request names, if any)."""
    _check_category(session, rule.category_id)
    _check_place(session, rule.place_unit_id)
    _check_target(session, rule, tier_given=tier_given, tier_asked=tier_asked)
    if rule.valid_from and rule.valid_until and rule.valid_from >= rule.valid_until:
        raise ValidationFailed("valid_from must be before valid_until", details={"field": "valid_until"})


def _check_category(session: Session, category_id: int | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise ValidationFailed(f"unknown category {category_id}", details={"field": "category_id"})


def _check_place(session: Session, place_unit_id: int | None) -> None:
    if place_unit_id is not None:
        place = session.get(Unit, place_unit_id)
        if place is None or place.tier not in PLACE_TIERS:
            raise ValidationFailed(
                f"place {place_unit_id} must be a district, street or community", details={"field": "place_unit_id"}
            )


def _check_target(
    session: Session, rule: DispatchRule, *, tier_given: bool, tier_asked: rulebook.RuleTier | None
) -> None:
    """A rule's target unit, or none for its order's own community or street, at the tier it sets."""
    if rule.target_kind == rulebook.TargetKind.UNIT:
        target = session.get(Unit, rule.target_unit_id) if rule.target_unit_id is not None else None
        if target is None:
            raise ValidationFailed(
                "a rule with target 'unit' needs an existing target_unit_id", details={"field": "target_unit_id"}
            )
        if not tier_given:
            rule.tier = _TIER_OF_UNIT[target.tier]
    else:
        if rule.target_unit_id is not None:
            raise ValidationFailed(
                f"target {rule.target_kind.value} names no unit: leave target_unit_id empty",
                details={"field": "target_unit_id"},
            )
        # The order's own community is at the community tier, its own street at the street tier: always.
        local = rule.target_kind == rulebook.TargetKind.LOCAL_COMMUNITY
        own_tier = rulebook.RuleTier.COMMUNITY if local else rulebook.RuleTier.STREET
        if tier_asked is not None and tier_asked != own_tier:
            raise ValidationFailed(
                f"target {rule.target_kind.value} is at tier {own_tier.value}, not {tier_asked.value}",
                details={"field": "tier"},
            )
        rule.tier = own_tier


def list_rules(session: Session, *, include_inactive: bool = True) -> list[DispatchRule]:
    """Rules in ranking order: tier, then priority (highest first), then id."""
    return list(session.scalars(rules_query(include_inactive=include_inactive)))


def rule_counts(session: Session) -> tuple[int, int]:
    """How many rules are active (启用) and how many there are in all: the rules page's filter says both."""
    active, total = session.execute(
        select(func.count().filter(DispatchRule.active.is_(True)), func.count()).select_from(DispatchRule)
    ).one()
    return int(active or 0), int(total or 0)


def rules_query(*, include_inactive: bool = True) -> Select[DispatchRule]:
    """The query of :func:`list_rules`, ranked in SQL (``rulebook.TIER_ORDER``), for a caller that pages it."""
    tier = case(rulebook.TIER_ORDER, value=DispatchRule.tier)
    stmt = select(DispatchRule).order_by(tier, DispatchRule.priority.desc(), DispatchRule.id)
    if not include_inactive:
        stmt = stmt.where(DispatchRule.active.is_(True))
    return stmt


def get_rule(session: Session, *, rule_id: int) -> DispatchRule:
    rule = session.get(DispatchRule, rule_id)
    if rule is None:
        raise NotFound(f"dispatch rule {rule_id} not found")
    return rule


# What the configuration log (cityhub.auditlog) keeps of a routing rule, before and after a change: what can be set.
_RULE_FACTS = tuple(RuleBase.model_fields)


def _rule_facts(rule: DispatchRule) -> dict[str, Any]:
    return auditlog.snapshot(rule, _RULE_FACTS)


def _log_rule(
    session: Session, rule: DispatchRule, action: str, actor: orders.Actor, before: dict[str, Any] | None = None
) -> None:
    after = None if action == "delete" else _rule_facts(rule)
    auditlog.record(
        session, actor=actor, area="dispatch_rule", target=str(rule.id), action=action, before=before, after=after
    )


def new_rule_checks(session: Session, *, data: RuleCreate) -> list[Callable[[], None]]:
    """What :func:`create_rule` checks of ``data`` — its category, its place, its target unit (one that is not there
    or not such) — each a check of its own, writing nothing: for a form to say all of them at once with its other
    problems, a new rule's or an edited rule's whose form gives every field (what :func:`update_rule` checks of the
    rule it would make is then the same)."""
    values = data.model_dump()
    tier_given = values["tier"] is not None
    values["tier"] = values["tier"] or rulebook.RuleTier.DEPARTMENT
    rule = DispatchRule(**values)  # not added to the session: nothing to write

    def target() -> None:
        with session.no_autoflush:
            _check_target(session, rule, tier_given=tier_given, tier_asked=data.tier)

    return [
        lambda: _check_category(session, data.category_id),
        lambda: _check_place(session, data.place_unit_id),
        target,
    ]


def create_rule(
    session: Session, *, data: RuleCreate, seed_key: str | None = None, actor: orders.Actor = orders.SYSTEM
) -> DispatchRule:
    """Create a routing rule; the tier follows from the target when not given."""
    values = data.model_dump()
    tier_given = values["tier"] is not None
    values["tier"] = values["tier"] or rulebook.RuleTier.DEPARTMENT
    rule = DispatchRule(**values, seed_key=seed_key)
    _check_rule(session, rule, tier_given=tier_given, tier_asked=data.tier)
    session.add(rule)
    session.flush()
    _log_rule(session, rule, "create", actor)
    return rule


def update_rule(
    session: Session, *, rule_id: int, data: RuleUpdate, actor: orders.Actor = orders.SYSTEM
) -> DispatchRule:
    """Change the fields set in ``data``; ``tier`` set to null derives it from the target again."""
    rule = get_rule(session, rule_id=rule_id)
    changes = data.model_dump(exclude_unset=True)
    refuse_nulls(changes, ("name", "priority", "active", "target_kind"))
    derive_tier = "tier" in changes and changes.pop("tier") is None
    before = _rule_facts(rule)
    if "tier" in data.model_fields_set and not derive_tier:
        rule.tier = data.tier  # type: ignore[assignment]
    with session.no_autoflush:  # checked before anything is written: an unknown id is a 422, not a foreign-key error
        for name, value in changes.items():
            setattr(rule, name, [] if name.endswith("keywords") and value is None else value)
        asked = data.tier if "tier" in data.model_fields_set else None
        _check_rule(session, rule, tier_given=not derive_tier, tier_asked=asked)
    session.flush()
    _log_rule(session, rule, "update", actor, before)
    return rule


def delete_rule(session: Session, *, rule_id: int, actor: orders.Actor = orders.SYSTEM) -> None:
    """Remove a rule (to keep it for later, set ``active`` false instead)."""
    rule = get_rule(session, rule_id=rule_id)
    _log_rule(session, rule, "delete", actor, _rule_facts(rule))
    session.delete(rule)
    session.flush()


def list_thresholds(session: Session) -> list[tuple[DispatchThreshold, Category]]:
    return [(t, c) for t, c in session.execute(thresholds_query())]


def thresholds_query() -> Select[DispatchThreshold, Category]:
    """Each threshold with its category, by the category's code (unique, one threshold each)."""
    stmt = select(DispatchThreshold, Category).join(Category, Category.id == DispatchThreshold.category_id)
    return stmt.order_by(Category.code)


@dataclass(frozen=True)
class ThresholdEffect:
    """What a category's automatic-dispatch threshold does, by the classifier's own grouped cross-validation: of the
    held-out messages it predicted to be of the category (``n``), the share whose confidence reaches the threshold
    (dispatched automatically, as far as the classifier decides: the routing rules must still name one unit) and the
    precision among them. ``at`` is the threshold of the evaluation's grid the figures are read at: the category's
    own, or the grid's next one above it (0.01 apart: never more dispatched automatically than the threshold gives)."""

    label: str
    category: CategoryRef | None
    threshold: float
    at: float
    n: int
    share: float
    precision: float | None
    # The lowest threshold of the grid at which the precision is at least 0.95 / 0.97 (None: at none).
    lowest_for: dict[str, float | None] = field(default_factory=dict)


# The precisions the guide names the lowest threshold for (two of the evaluation's coverage-at-precision levels).
GUIDE_PRECISIONS = ("0.95", "0.97")


def _lowest_threshold(
    grid: list[float], share: list[float], precision: list[float | None], level: float
) -> float | None:
    """The lowest threshold of ``grid`` whose automatic dispatches (every message at or above it) are at least
    ``level`` correct: the most dispatched automatically at that precision, as ``coverage_at_precision`` counts it."""
    return next(
        (t for t, s, p in zip(grid, share, precision, strict=True) if s and p is not None and p >= level - 1e-12), None
    )


@dataclass(frozen=True)
class ThresholdGuide:
    """The classifier's cross-validated effect of the thresholds in force, per category it knows and overall."""

    model: str
    created_at: str | None
    method: str
    view: str  # "raw_text" (messages as citizens typed them) or "all"
    rows: list[ThresholdEffect]
    share: float
    precision: float | None
    # The same evaluation's calibration (``classifier.calibration``: ece, brier, log_loss, bins); None for an
    # artefact trained before it was recorded.
    calibration: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The guide as JSON: the model, then per category its label, taxonomy path, threshold in force, the grid's
        threshold the figures are read at, messages predicted, share reaching the threshold and their precision;
        and how well the confidences match how often they are right (``calibration``)."""
        return {
            "model": self.model,
            "created_at": self.created_at,
            "method": self.method,
            "view": self.view,
            "share": self.share,
            "precision": self.precision,
            "calibration": self.calibration,
            "categories": [
                {
                    "label": r.label,
                    "category_id": r.category.id if r.category else None,
                    "category_path": r.category.path if r.category else None,
                    "threshold": r.threshold,
                    "read_at": r.at,
                    "n": r.n,
                    "share": r.share,
                    "precision": r.precision,
                    "lowest_threshold_for_precision": r.lowest_for,
                }
                for r in self.rows
            ],
        }


# The configured classifier's metadata as last read, with the key (directory, modification time) it was read under.
_guide_meta: tuple[tuple[str, float], dict[str, Any] | None] | None = None


def _model_meta() -> dict[str, Any] | None:
    """The configured classifier's metadata (its JSON only, not the model), read again when it is retrained."""
    global _guide_meta
    try:
        key = _model_key()
    except ValidationFailed:
        return None
    if key is None:
        return None
    cached = _guide_meta
    if cached is not None and cached[0] == key:
        return cached[1]
    from cityhub.nlp import classifier

    meta: dict[str, Any] | None
    try:
        meta = classifier.read_meta(key[0])
    except (OSError, ValidationFailed):
        meta = None
    _guide_meta = (key, meta)
    return meta


def threshold_guide(session: Session) -> ThresholdGuide | None:
    """What the thresholds in force do, by the configured classifier's evaluation (None without a classifier, or
    for an artefact trained before its evaluation recorded the thresholds' effect: retrain it to see)."""
    meta = _model_meta()
    evaluation = (meta or {}).get("evaluation") or {}
    view = "raw_text" if "raw_text" in evaluation else "all"
    report = evaluation.get(view) or {}
    curves = report.get("at_threshold")
    if not curves:
        return None
    grid = [float(t) for t in curves["thresholds"]]
    labels = list(curves["per_class"])
    found = find_categories(session, names=labels)
    rows: list[ThresholdEffect] = []
    for label in labels:
        curve = curves["per_class"][label]
        category = found.get(label)
        threshold = threshold_for(session, category_id=category.id if category else None)
        i = next((k for k, t in enumerate(grid) if t >= threshold - 1e-9), len(grid) - 1)
        rows.append(
            ThresholdEffect(
                label=label,
                category=category,
                threshold=threshold,
                at=grid[i],
                n=int(curve["n"]),
                share=float(curve["share"][i]),
                precision=curve["precision"][i],
                lowest_for={
                    level: _lowest_threshold(grid, curve["share"], curve["precision"], float(level))
                    for level in GUIDE_PRECISIONS
                },
            )
        )
    total = sum(r.n for r in rows)
    taken = sum(r.n * r.share for r in rows)
    right = sum(r.n * r.share * r.precision for r in rows if r.precision is not None)
    return ThresholdGuide(
        model=Path(str(get_settings().dispatch_model_path)).name,
        created_at=(meta or {}).get("created_at"),
        method=str(evaluation.get("method", "")),
        view=view,
        rows=rows,
        share=taken / total if total else 0.0,
        precision=right / taken if taken else None,
        calibration=report.get("calibration"),
    )


def set_threshold(
    session: Session, *, category_id: int, threshold: float, actor: orders.Actor = orders.SYSTEM
) -> DispatchThreshold:
    """Set the auto-dispatch threshold of a category (and, unless they have their own, its descendants)."""
    if not 0 < threshold <= 1:
        raise ValidationFailed("threshold must be in (0, 1]", details={"field": "threshold"})
    if session.get(Category, category_id) is None:
        raise NotFound(f"category {category_id} not found")
    row = session.get(DispatchThreshold, category_id)
    before = None if row is None else {"threshold": row.threshold}
    if row is None:
        row = DispatchThreshold(category_id=category_id, threshold=threshold)
        session.add(row)
    row.threshold = threshold
    session.flush()
    auditlog.record(
        session,
        actor=actor,
        area="dispatch_threshold",
        target=str(category_id),
        action="create" if before is None else "update",
        before=before,
        after={"threshold": threshold},
    )
    return row


def delete_threshold(session: Session, *, category_id: int, actor: orders.Actor = orders.SYSTEM) -> None:
    row = session.get(DispatchThreshold, category_id)
    if row is None:
        raise NotFound(f"no threshold for category {category_id}")
    auditlog.record(
        session,
        actor=actor,
        area="dispatch_threshold",
        target=str(category_id),
        action="delete",
        before={"threshold": row.threshold},
    )
    session.delete(row)
    session.flush()


# --- the default rule set of the Baiyun demo ----------------------------------------------------------------

# First-level categories of the bundled taxonomy → the department that handles most of them.
CATEGORY_DEPARTMENTS = {
    "城乡建设": "440111-D01",
    "环境保护": "440111-D03",
    "交通运输": "440111-D05",
    "教育文体": "440111-D06",
    "卫生计生": "440111-D07",
    "劳动和社会保障": "440111-D08",
    "商贸旅游": "440111-D09",
    "政法": "440111-D10",
    "民政": "440111-D12",
    "国土资源": "440111-D13",
    "农村农业": "440111-D16",
    "科技与信息产业": "440111-D20",
    "经济管理": "440111-D20",
}

# Local matters that the community (村社) or street (镇街) settles itself; they apply only where the order's
# community or street is known, and then rank before any department.
LOCAL_RULES: tuple[tuple[str, str, rulebook.TargetKind, str, str], ...] = (
    (
        "local:neighbours",
        "邻里纠纷 → 本社区",
        rulebook.TargetKind.LOCAL_COMMUNITY,
        "邻里纠纷、邻居纠纷、邻里矛盾、楼道堆放、楼道杂物、高空抛物",
        "",
    ),
    (
        "local:noise",
        "生活噪音 → 本社区",
        rulebook.TargetKind.LOCAL_COMMUNITY,
        "噪音扰民、噪声扰民、广场舞、装修噪音、楼上噪音",
        "施工、工地、工厂、工业、夜间施工、机场、高速",
    ),
    (
        "local:garbage",
        "垃圾堆放 → 本社区",
        rulebook.TargetKind.LOCAL_COMMUNITY,
        "垃圾堆放、垃圾清运、垃圾没人清、乱扔垃圾、垃圾桶",
        "建筑垃圾、垃圾处理厂、垃圾焚烧、渣土、填埋场",
    ),
    (
        "local:property",
        "物业纠纷 → 本社区",
        rulebook.TargetKind.LOCAL_COMMUNITY,
        "物业服务、物业公司、物业管理、物业费、物业不作为、物业推诿、业委会、业主委员会、业主大会",
        "维修资金、维修基金、物业税、不动产登记、房产证",
    ),
    (
        "local:street-vending",
        "占道经营 → 本街道",
        rulebook.TargetKind.LOCAL_STREET,
        "占道经营、流动摊贩、乱摆卖、占道摆卖、占道",
        "占道施工",
    ),
)
DUTY_PRIORITY = 50
CATEGORY_PRIORITY = 40
LOCAL_PRIORITY = 50


def seed_default_rules(session: Session) -> dict[str, int]:
    """Create the Baiyun demo rule set (departments' duties, first-level categories, local matters); idempotent.

    Seeded rules are recognised by their ``seed_key``: an administrator's edits to them are kept, and a seeded
    rule that was deleted is created again only if seeding is asked for again.
    """
    existing = set(session.scalars(select(DispatchRule.seed_key).where(DispatchRule.seed_key.is_not(None))))
    created = 0
    departments = list(
        session.scalars(select(Unit).where(Unit.tier == UnitTier.DEPARTMENT, Unit.active.is_(True)).order_by(Unit.code))
    )
    for unit in departments:
        key = f"duties:{unit.code}"
        keywords = rulebook.split_keywords(unit.duties)
        if key in existing or not keywords:
            continue
        create_rule(
            session,
            data=RuleCreate(
                name=f"职责 {unit.short_name or unit.name}",
                priority=DUTY_PRIORITY,
                keywords=list(keywords),
                target_unit_id=unit.id,
                tier=rulebook.RuleTier.DEPARTMENT,
            ),
            seed_key=key,
        )
        created += 1
    by_code = {u.code: u for u in departments}
    for name, code in CATEGORY_DEPARTMENTS.items():
        key = f"category:{name}"
        category = find_category(session, name_or_path=name)
        dept = by_code.get(code)
        if key in existing or category is None or category.level != 1 or dept is None:
            continue
        create_rule(
            session,
            data=RuleCreate(
                name=f"{name} → {dept.short_name or dept.name}",
                priority=CATEGORY_PRIORITY,
                category_id=category.id,
                target_unit_id=dept.id,
                tier=rulebook.RuleTier.DEPARTMENT,
            ),
            seed_key=key,
        )
        created += 1
    for key, name, kind, wanted, excluded in LOCAL_RULES:
        if key in existing:
            continue
        create_rule(
            session,
            data=RuleCreate(
                name=name,
                priority=LOCAL_PRIORITY,
                keywords=list(rulebook.split_keywords(wanted)),
                exclude_keywords=list(rulebook.split_keywords(excluded)),
                target_kind=kind,
            ),
            seed_key=key,
        )
        created += 1
    total = session.scalar(select(func.count()).select_from(DispatchRule)) or 0
    return {"created": created, "total": int(total)}


# --- training data from dispatchers' corrections --------------------------------------------------------------

TRAINING_COLUMNS = (
    "id",
    "title",
    "content",
    "created_at",
    "category",
    "category_path",
    "unit_code",
    "unit_name",
    "corrected",
    # The classifier's reading when a person dispatched the order (empty: none recorded).
    "predicted_category",
    "predicted_probability",
)


@dataclass(frozen=True)
class Correction:
    order_id: int
    unit: bool  # returned and re-dispatched elsewhere, or transferred
    category: bool  # a person changed a category that had been set
    # The category was last set by the classifier (automatic dispatch), no person set it since: its own guess.
    model_category: bool = False
    # The classifier's reading ({label, probability, top3}) at the last dispatch by a person, if one was recorded.
    prediction: dict[str, Any] | None = None


def corrections(session: Session) -> Iterator[Correction]:
    """Orders whose lead unit or category a person corrected, and orders a person dispatched with the classifier's
    reading recorded (whose category may correct it: :func:`training_rows` compares them), from the audit trail."""
    actions = (Action.DISPATCH, Action.TRANSFER, Action.ASSIGN, Action.RETURN, Action.COMMENT)
    stmt = (
        select(OrderEvent.order_id, OrderEvent.action, OrderEvent.unit_id, OrderEvent.actor_name, OrderEvent.payload)
        .where(OrderEvent.action.in_([a.value for a in actions]))
        .order_by(OrderEvent.order_id, OrderEvent.id)
    )
    current: int | None = None
    holder: int | None = None
    returned: set[int] = set()
    unit_fixed = category_fixed = by_model = False
    reading: dict[str, Any] | None = None

    def flush() -> Iterator[Correction]:
        if current is not None and (unit_fixed or category_fixed or reading):
            yield Correction(current, unit_fixed, category_fixed, by_model, reading)

    for order_id, action, unit_id, actor_name, payload in session.execute(stmt.execution_options(yield_per=2000)):
        if order_id != current:
            yield from flush()
            current, holder, returned, unit_fixed, category_fixed, by_model = order_id, None, set(), False, False, False
            reading = None
        if action == Action.RETURN:
            if holder is not None:
                returned.add(holder)
            holder = None
        elif action in (Action.DISPATCH, Action.ASSIGN) and unit_id is not None:
            if returned and unit_id not in returned:
                unit_fixed = True
            holder = unit_id
            if action == Action.DISPATCH and payload and not payload.get("auto") and payload.get("prediction"):
                reading = payload["prediction"]
        elif action == Action.TRANSFER and unit_id is not None:
            unit_fixed = unit_fixed or (holder is not None and unit_id != holder)
            holder = unit_id
        elif action == Action.COMMENT and payload and "category_id" in payload:
            previous = payload.get("previous_category_id")
            by_model = actor_name == AUTO_ACTOR.name
            if previous is not None and previous != payload["category_id"] and not by_model:
                category_fixed = True
    yield from flush()


def _first_level(session: Session, label: Any) -> str | None:
    """The first-level category a classifier's label stands for (a name or path of the taxonomy, else its first
    segment, as the training export writes categories)."""
    if not isinstance(label, str) or not label:
        return None
    found = find_categories(session, names=[label])[label]
    return (found.path if found is not None else label).split("/")[0]


def training_rows(session: Session) -> tuple[list[list[str]], dict[str, int]]:
    """The corrected orders as rows of ``TRAINING_COLUMNS`` (category = first level), and how many were corrected,
    written, skipped (no category, merged or cancelled), left out as ``model_category`` — a category only the
    classifier gave (automatic dispatch set it and no person since) is its own guess, not a label to learn from —
    and ``confirmed``: dispatched by a person with the classifier's reading recorded, the order's category the one
    it predicted (not written: nothing to correct). A person's dispatch whose order's category is another than the
    classifier predicted then is a category correction."""
    found = list(corrections(session))
    rows: list[list[str]] = []
    corrected = skipped = guessed = confirmed = 0
    by_order = {c.order_id: c for c in found}
    for chunk in in_batches(list(by_order)):
        for order in session.scalars(select(Order).where(Order.id.in_(chunk)).order_by(Order.id)):
            c = by_order[order.id]
            predicted = _first_level(session, (c.prediction or {}).get("label"))
            category = order.category.path.split("/")[0] if order.category is not None else None
            if predicted is not None and category is not None and predicted != category:
                c = replace(c, category=True)
            if not (c.unit or c.category):
                confirmed += predicted is not None and predicted == category
                continue
            corrected += 1
            if order.category is None or order.state in (State.MERGED, State.CANCELLED):
                skipped += 1
                continue
            if c.model_category:
                guessed += 1
                continue
            unit = order.lead_unit
            rows.append(
                [
                    order.number,
                    order.title,
                    order.content,
                    order.created_at.isoformat(timespec="seconds"),
                    order.category.path.split("/")[0],
                    order.category.path,
                    unit.code if unit else "",
                    unit.name if unit else "",
                    ";".join(k for k, v in (("unit", c.unit), ("category", c.category)) if v),
                    predicted or "",
                    "" if c.prediction is None else str(c.prediction.get("probability", "")),
                ]
            )
    counts = {"corrected": corrected, "written": len(rows), "skipped": skipped, "model_category": guessed}
    return rows, {**counts, "confirmed": confirmed}


def export_training(session: Session, *, out: Path) -> dict[str, int]:
    """Write corrected orders as a labelled CSV that ``cityhub nlp train`` reads (category = first level); private
    (mode 0600: citizens' own words), complete or not at all (:func:`cityhub.outfiles.private_files`)."""
    from cityhub.outfiles import private_files

    with private_files([out], "training export") as (part,):
        rows, counts = training_rows(session)
        with part.open("w", encoding="utf-8", newline="") as fh:
            # Read back by `nlp train` and `dispatch retrain`: the texts as they are, not outfiles.SpreadsheetCsv's
            # (a ' before a message beginning "-" or "=" would be learned as part of it).
            writer = csv.writer(fh)
            writer.writerow(TRAINING_COLUMNS)
            writer.writerows(rows)
    return counts


def training_records(session: Session) -> list[Any]:
    """The corrected orders as labelled training messages (``classifier.LabelledOrder``, source "corrections")."""
    from cityhub.nlp.classifier import LabelledOrder

    rows, _ = training_rows(session)
    return [
        LabelledOrder(id=row[0], title=row[1], content=row[2], category=row[4], source="corrections") for row in rows
    ]
