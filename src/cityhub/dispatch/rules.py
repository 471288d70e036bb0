"""Routing rules as pure data and functions: which unit should handle an order, and may it go automatically.

No database, no I/O. The service turns ``DispatchRule`` rows and an order into :class:`Rule` and
:class:`OrderFacts`, calls :func:`match` (ranked candidates with the reasons they matched) and :func:`decide`
(dispatch automatically or queue, and why).

Ranking follows 小事不出村, 中事不出镇, 大事不出区: among the matching rules a community-tier rule comes before a
street-tier rule, which comes before a department/district rule; within a tier the higher priority wins, then the
more specific rule (deeper category, a place scope, keywords), then the one with more keyword hits, then the
unit more rules lead to.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache

from cityhub.nlp.text import squeeze


class TargetKind(enum.StrEnum):
    UNIT = "unit"  # a fixed unit
    LOCAL_COMMUNITY = "local_community"  # the order's own community (村社)
    LOCAL_STREET = "local_street"  # the order's own street / town (镇街)


class RuleTier(enum.StrEnum):
    COMMUNITY = "community"
    STREET = "street"
    DEPARTMENT = "department"
    DISTRICT = "district"


TIER_ORDER = {RuleTier.COMMUNITY: 0, RuleTier.STREET: 1, RuleTier.DEPARTMENT: 2, RuleTier.DISTRICT: 2}
TIER_LABEL = {
    RuleTier.COMMUNITY: "community (小事不出村)",
    RuleTier.STREET: "street (中事不出镇)",
    RuleTier.DEPARTMENT: "department (大事不出区)",
    RuleTier.DISTRICT: "district (大事不出区)",
}
KEYWORD_SEPARATORS = re.compile(r"[、,，;；\s]+")


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    tier: RuleTier
    target_kind: TargetKind = TargetKind.UNIT
    target_unit_id: int | None = None
    priority: int = 50
    category_id: int | None = None
    place_unit_id: int | None = None
    keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    active: bool = True
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class OrderFacts:
    """What the rules look at. Chains list an id and its ancestors, the id itself first."""

    text: str
    now: datetime
    category_chain: tuple[int, ...] = ()
    category_label: str | None = None
    place_chain: tuple[int, ...] = ()  # community, street, district … (whatever is known)
    community_id: int | None = None
    street_id: int | None = None
    # Units that returned this order: never suggested again for it.
    excluded_unit_ids: frozenset[int] = frozenset()

    @property
    def normalised_text(self) -> str:
        return _normalised_text(self.text)


@dataclass(frozen=True)
class Candidate:
    unit_id: int
    rule_id: int
    rule_name: str
    tier: RuleTier
    priority: int
    specificity: int
    hits: int
    reasons: tuple[str, ...]
    score: float | None = None
    support: int = 1  # matching rules that lead to this unit
    # The category reading under which a rule first led here (:func:`combine`): the label of its hypothesis.
    reading: str | None = None

    @property
    def rank_key(self) -> tuple[int, int, int, int, int]:
        return (TIER_ORDER[self.tier], -self.priority, -self.specificity, -self.hits, -self.support)


@dataclass(frozen=True)
class Verdict:
    auto: bool
    reason: str


@dataclass(frozen=True)
class Hypothesis:
    """One reading of the order's category with its probability and the candidates the rules give under it."""

    label: str | None
    probability: float | None
    candidates: list[Candidate] = field(default_factory=list)


def normalise(text: str) -> str:
    """NFKC, lower case, no whitespace: keywords match across spacing and full-width forms."""
    return squeeze(text).lower()


@lru_cache(maxsize=32)
def _normalised_text(text: str) -> str:
    # An order's facts are copied for each category reading (``replace``), its text normalised once for all.
    return normalise(text)


@lru_cache(maxsize=4096)
def _normalised(keywords: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each keyword with its normalised form (blank ones dropped): a rule's keywords are normalised once, not for
    every order and category reading (40 rules with 373 keywords were ~5 % of a server's CPU at intake)."""
    return tuple((k, n) for k in keywords if (n := normalise(k)))


def _found(keywords: tuple[str, ...], text: str) -> list[str]:
    """The keywords that occur in the normalised ``text``."""
    return [k for k, n in _normalised(keywords) if n in text]


def split_keywords(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``噪音、垃圾, 占道`` (or a list) → ``("噪音", "垃圾", "占道")``, blanks and repeats dropped."""
    if text is None:
        return ()
    parts = KEYWORD_SEPARATORS.split(text) if isinstance(text, str) else [p.strip() for p in text]
    seen: dict[str, None] = {}
    for part in parts:
        if part and part.strip():
            seen.setdefault(part.strip(), None)
    return tuple(seen)


STREET_FOR_COMMUNITY = "the order's own street (its community not known)"


def _target(rule: Rule, facts: OrderFacts) -> tuple[int | None, str, RuleTier]:
    """The unit a rule sends the order to, how its reason names it, and the tier the candidate ranks at."""
    if rule.target_kind == TargetKind.LOCAL_COMMUNITY:
        if facts.community_id is None and facts.street_id is not None:
            # 小事不出村, the village unknown: its street (中事不出镇), which knows its villages, rather than nobody
            # (then a district department's rule took a neighbours' quarrel).
            return facts.street_id, STREET_FOR_COMMUNITY, RuleTier.STREET
        return facts.community_id, "the order's own community", rule.tier
    if rule.target_kind == TargetKind.LOCAL_STREET:
        return facts.street_id, "the order's own street", rule.tier
    return rule.target_unit_id, f"unit {rule.target_unit_id}", rule.tier


def explain(rule: Rule, facts: OrderFacts) -> tuple[Candidate | None, str]:
    """The candidate ``rule`` yields for ``facts``, or None and why it does not apply."""
    if not rule.active:
        return None, "inactive"
    if rule.valid_from is not None and facts.now < rule.valid_from:
        return None, f"valid from {rule.valid_from.isoformat()}"
    if rule.valid_until is not None and facts.now >= rule.valid_until:
        return None, f"expired {rule.valid_until.isoformat()}"
    reasons: list[str] = []
    specificity = 0
    if rule.category_id is not None:
        if rule.category_id not in facts.category_chain:
            return None, "category does not match"
        depth = len(facts.category_chain) - facts.category_chain.index(rule.category_id)
        specificity += 2 * depth
        reasons.append(f"category {facts.category_label or facts.category_chain[0]}")
    if rule.place_unit_id is not None:
        if rule.place_unit_id not in facts.place_chain:
            return None, "place outside the rule's scope"
        specificity += 2 + (len(facts.place_chain) - facts.place_chain.index(rule.place_unit_id))
        reasons.append(f"place within unit {rule.place_unit_id}")
    text = facts.normalised_text
    hits = _found(rule.keywords, text)
    if rule.keywords:
        if not hits:
            return None, "no keyword in the text"
        specificity += 1
        reasons.append("keywords " + "、".join(hits))
    blocked = _found(rule.exclude_keywords, text)
    if blocked:
        return None, "excluded by " + "、".join(blocked)
    unit_id, target_text, tier = _target(rule, facts)
    if unit_id is None:
        return None, f"{target_text} is not known"
    if unit_id in facts.excluded_unit_ids:
        return None, f"unit {unit_id} returned this order"
    reasons.insert(0, f"rule #{rule.id} {rule.name!r} → {target_text} [{TIER_LABEL[tier]}, priority {rule.priority}]")
    return (
        Candidate(
            unit_id=unit_id,
            rule_id=rule.id,
            rule_name=rule.name,
            tier=tier,
            priority=rule.priority,
            specificity=specificity,
            hits=len(hits),
            reasons=tuple(reasons),
        ),
        "matches",
    )


def match(rules: Iterable[Rule], facts: OrderFacts) -> list[Candidate]:
    """Units the rules send this order to, best first; one candidate per unit (its best-ranked rule).

    When several rules lead to the same unit (its duties' keywords and its category, say), the unit's candidate
    counts them as ``support``, which breaks ties between otherwise equal units.
    """
    found: dict[int, list[Candidate]] = {}
    for rule in rules:
        candidate, _ = explain(rule, facts)
        if candidate is not None:
            found.setdefault(candidate.unit_id, []).append(candidate)
    best: list[Candidate] = []
    for same_unit in found.values():
        same_unit.sort(key=lambda c: (c.rank_key, c.rule_id))
        top = same_unit[0]
        also = tuple(f"also rule #{c.rule_id} {c.rule_name!r}" for c in same_unit[1:])
        best.append(replace(top, support=len(same_unit), reasons=top.reasons + also))
    return sorted(best, key=lambda c: (c.rank_key, c.rule_id))


def unique_top(candidates: Sequence[Candidate]) -> bool:
    """True when the best candidate outranks the next one (ties between units are for a person to settle)."""
    if not candidates:
        return False
    return len(candidates) == 1 or candidates[0].rank_key < candidates[1].rank_key


def combine(hypotheses: Sequence[Hypothesis], *, limit: int = 3) -> list[Candidate]:
    """Merge candidates over category readings: the first reading's ranking first, then the others' new units.

    A unit's score is the summed probability of the readings under which some rule sends the order there.
    """
    scores: dict[int, float] = {}
    for h in hypotheses:
        for unit_id in {c.unit_id for c in h.candidates}:
            if h.probability is not None:
                scores[unit_id] = scores.get(unit_id, 0.0) + h.probability
    merged: dict[int, Candidate] = {}
    for h in hypotheses:
        for c in h.candidates:
            if c.unit_id in merged:
                continue
            reasons = c.reasons
            if h is not hypotheses[0] and h.label:
                p = f" (p={h.probability:.2f})" if h.probability is not None else ""
                reasons = (*reasons, f"if the category is {h.label}{p}")
            merged[c.unit_id] = replace(
                c,
                reasons=reasons,
                score=round(min(scores[c.unit_id], 1.0), 4) if c.unit_id in scores else None,
                reading=h.label,
            )
    return list(merged.values())[:limit]


def reads_too_little(evidence: int | None, min_evidence: int) -> bool:
    """Whether the classifier knows too few phrases of a text (``Model.evidence``) for its probability to mean
    anything; an unmeasured evidence (None) is not too little."""
    return evidence is not None and evidence < min_evidence


MODEL_UNAVAILABLE = "classifier unavailable: nothing is dispatched automatically"


def possible_duplicate(number: str, score: float) -> str:
    """Why a confident decision waits all the same: an earlier open order at the same place says the same."""
    return f"possible duplicate of open order {number} (score {score:.2f}): merge it, or dispatch by hand"


def decide(
    *,
    candidates: Sequence[Candidate],
    probability: float | None,
    threshold: float,
    category_label: str | None,
    category_from_intake: bool,
    has_model: bool,
    rule_auto_priority: int,
    returned: bool = False,
    evidence: int | None = None,
    min_evidence: int = 0,
    model_unavailable: bool = False,
) -> Verdict:
    """Dispatch automatically, or queue for a dispatcher; the reason is shown in the queue and kept in the audit.

    With a classifier: auto when the category's probability reaches the threshold (a category set at intake
    counts as certain) and one unit ranks first, unless the classifier knows fewer than ``min_evidence`` phrases
    of the text (``evidence``, see ``Model.evidence``): its probability then says nothing. Without one: auto only
    when a rule of priority ≥ ``rule_auto_priority`` ranks first on its own. A classifier that is configured but
    cannot be read (``model_unavailable``) lets nothing go automatically: the rules' suggestions wait for a
    dispatcher until it is back.
    """
    if not candidates and returned:  # the rules' units are left out: they returned it
        return Verdict(False, "returned order: no other unit the rules lead to, choose one by hand")
    if not candidates:
        return Verdict(False, "no routing rule matches: choose the unit by hand")
    top = candidates[0]
    if returned:
        return Verdict(False, f"returned order: a dispatcher re-dispatches it (suggested: rule #{top.rule_id})")
    if not unique_top(candidates):
        other = candidates[1]
        return Verdict(
            False,
            f"ambiguous: rules #{top.rule_id} and #{other.rule_id} rank equal "
            f"(units {top.unit_id} and {other.unit_id})",
        )
    if model_unavailable:
        return Verdict(False, f"{MODEL_UNAVAILABLE}; rule #{top.rule_id} → unit {top.unit_id}")
    if category_from_intake and has_model:
        return Verdict(True, f"category {category_label} set at intake; rule #{top.rule_id} → unit {top.unit_id}")
    if has_model and probability is not None:
        if reads_too_little(evidence, min_evidence):
            return Verdict(
                False,
                f"little known text: {evidence} known phrases < {min_evidence}; "
                f"category {category_label} p={probability:.2f}",
            )
        if probability >= threshold:
            return Verdict(
                True,
                f"category {category_label} p={probability:.2f} ≥ threshold {threshold:.2f}; "
                f"rule #{top.rule_id} → unit {top.unit_id}",
            )
        return Verdict(False, f"category {category_label} p={probability:.2f} < threshold {threshold:.2f}")
    prefix = "no classifier configured" if not has_model else "category unknown to the taxonomy"
    if top.priority >= rule_auto_priority:
        return Verdict(
            True,
            f"{prefix}; high-priority rule #{top.rule_id} (priority {top.priority} ≥ {rule_auto_priority}) "
            f"→ unit {top.unit_id}",
        )
    return Verdict(
        False,
        f"{prefix}; best rule #{top.rule_id} has priority {top.priority} < {rule_auto_priority} "
        "needed to dispatch on rules alone",
    )
