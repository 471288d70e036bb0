"""The product's own machine-written explanations, in the user's language.

The dispatcher's decisions and suggestions (``dispatch.rules``), automatic merges, place corrections, the placing
job, an upload of files without a note, an import of knowledge entries and the monitoring's alarms (their comments on
their orders, their escalations, the notes of their trail) write their reasons in English, for the
API, logs and the audit trail, in a fixed form. A page shows them through :func:`explain`: each ``;``-separated part
that matches one of the forms below becomes its catalogue message (``why.*``), with unit ids as unit names; anything
else is shown as written (a person's own reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from cityhub.dispatch.rules import MODEL_UNAVAILABLE, STREET_FOR_COMMUNITY
from cityhub.formatting import significant
from cityhub.intake import enterprise
from cityhub.monitoring.rules import SILENCE_RULE_NAME
from cityhub.nlp.reply_quality import FINDING_FIGURES, WEAK_REPLY_NOTE
from cityhub.web.forms import field_message
from cityhub.web.i18n import Translator
from cityhub.workorders.sms import NO_REASON
from cityhub.workorders.tracking import CITIZEN_ACTOR, CITIZEN_SMS_ACTOR

if TYPE_CHECKING:
    from cityhub.analytics.risk import Finding

Names = Mapping[int, str]
_Params = Callable[[re.Match[str], Names, Translator], dict[str, str]]


def _reply_finding(t: Translator, before: str, code: str, said: str) -> dict[str, str]:
    """A reply check's finding in the reader's language (``why.reply.<code>``, its figures read back from what was
    stored); as stored when its figures cannot be read (a finding of an older scorer's wording). The note a weak
    reply's check leaves in the trail before its findings, translated too."""
    names, pattern = FINDING_FIGURES[code]
    if pattern is None:
        finding = t(f"why.reply.{code}")
    elif found := pattern.search(said):
        finding = t(f"why.reply.{code}", **dict(zip(names, found.groups(), strict=True)))
    else:
        finding = said
    return {"before": t("why.reply_weak_note") if before == WEAK_REPLY_NOTE else before, "finding": finding}


@dataclass(frozen=True)
class ReplyFinding:
    """One reply-check finding as the review list (答复审核) shows it: a plain sentence first
    (``reviews.finding.<code>``), the figures behind it after (``reviews.figures.<code>``; None for a finding with
    none)."""

    code: str | None
    sentence: str
    figures: str | None = None


def reply_findings(t: Translator, reasons: Sequence[str]) -> list[ReplyFinding]:
    """A reply check's stored findings (``code: explanation``, written by ``nlp.reply_quality``) as sentences a
    supervisor reads, the figures read back from what was stored beside each; the overall score's finding last (it
    sums up the others). A finding of an unknown code or an older wording is shown as stored. The stored findings stay
    as they are (the API's ``reasons``)."""
    out: list[ReplyFinding] = []
    for reason in reasons:
        code, _, said = reason.partition(": ")
        if code not in FINDING_FIGURES or not said:
            out.append(ReplyFinding(None, reason))
            continue
        names, pattern = FINDING_FIGURES[code]
        found = pattern.search(said) if pattern is not None else None
        figures = t(f"reviews.figures.{code}", **dict(zip(names, found.groups(), strict=True))) if found else None
        out.append(ReplyFinding(code, t(f"reviews.finding.{code}"), figures))
    return sorted(out, key=lambda f: f.code == "low_overall")


def return_reason(t: Translator, reasons: Sequence[str], most: int) -> str:
    """退回答复's reason offered from a weak reply's findings (:func:`reply_findings`' sentences, the overall score's
    left out when others say what is wrong), asking for a better reply — for the supervisor to send or edit, at most
    ``most`` characters. Empty without findings."""
    findings = reply_findings(t, reasons)
    said = [f.sentence for f in findings if f.code != "low_overall"] or [f.sentence for f in findings]
    if not said:
        return ""
    text = t("reviews.return_prefill", findings=t("reviews.return_sep").join(said))
    return text if len(text) <= most else text[: most - 1] + "…"


def _unit(names: Names, raw: str) -> str:
    return names.get(int(raw), f"#{raw}") if raw.isdigit() else raw


def _target(names: Names, t: Translator, raw: str) -> str:
    if raw == "the order's own street":
        return t("why.own_street")
    if raw == "the order's own community":
        return t("why.own_community")
    if raw == STREET_FOR_COMMUNITY:
        return t("why.own_street_for_community")
    return _unit(names, raw.removeprefix("unit "))


_TIERS = {
    "community": "tier.community",
    "street": "tier.street",
    "department": "tier.department",
    "district": "tier.district",
}

_PREFIXES = {
    "no classifier configured": "why.no_model",
    "category unknown to the taxonomy": "why.unknown_category",
    MODEL_UNAVAILABLE: "why.model_unavailable",
}

# A local time as the monitoring's texts write it (``monitoring.service._local``).
_AT = r"\d{4}-\d\d-\d\d \d\d:\d\d"

# The alarm and reading an alarm joining an open order names: ``(alarm #N) at …: METRIC VALUE OP limit LIMIT``.
_ALARM_READING = rf"\(alarm #(\d+)\) at ({_AT}): (\S+) (.+?) (>=|<=|>|<) limit (.+)"


def _alarm_reading(m: re.Match[str], n: Names, t: Translator) -> dict[str, str]:
    return {
        "sensor": m[1],
        "id": m[2],
        "at": m[3],
        "metric": t.label("metric", m[4]),
        "value": m[5],
        "comparison": t.label("compare_word", m[6]),
        "limit": m[7],
    }


_FORMS: list[tuple[re.Pattern[str], str, _Params]] = [
    (
        re.compile(r"rule #(\d+) '(.*)' → (.+) \[(\w+) \((.+)\), priority (-?\d+)\]"),
        "why.rule",
        lambda m, n, t: {
            "id": m[1],
            "name": m[2],
            "target": _target(n, t, m[3]),
            "tier": t(_TIERS.get(m[4], m[4]), m[4]),
            "motto": m[5],
            "priority": m[6],
        },
    ),
    (re.compile(r"also rule #(\d+) '(.*)'"), "why.also_rule", lambda m, n, t: {"id": m[1], "name": m[2]}),
    (re.compile(r"keywords (.+)"), "why.keywords", lambda m, n, t: {"words": t.listed(m[1])}),
    (re.compile(r"place within unit (\d+)"), "why.place", lambda m, n, t: {"unit": _unit(n, m[1])}),
    (
        re.compile(r"if the category is (.+?)(?: \(p=([\d.]+)\))?"),
        "why.if_category",
        lambda m, n, t: {"category": m[1], "p": m[2] or "—"},
    ),
    (re.compile(r"no routing rule matches: choose the unit by hand"), "why.no_rule", lambda m, n, t: {}),
    (
        re.compile(r"returned order: no other unit the rules lead to, choose one by hand"),
        "why.returned_no_other",
        lambda m, n, t: {},
    ),
    (
        re.compile(r"possible duplicate of open order (\S+) \(score ([\d.]+)\): merge it, or dispatch by hand"),
        "why.possible_duplicate",
        lambda m, n, t: {"number": m[1], "score": m[2]},
    ),
    (
        re.compile(r"returned order: a dispatcher re-dispatches it \(suggested: rule #(\d+)\)"),
        "why.returned",
        lambda m, n, t: {"id": m[1]},
    ),
    (
        re.compile(r"ambiguous: rules #(\d+) and #(\d+) rank equal \(units (\d+) and (\d+)\)"),
        "why.tie",
        lambda m, n, t: {"a": m[1], "b": m[2], "unit_a": _unit(n, m[3]), "unit_b": _unit(n, m[4])},
    ),
    (re.compile(r"category set by the classifier: (.+)"), "why.category_filled", lambda m, n, t: {"category": m[1]}),
    (
        re.compile(r"category set at dispatch: (.+) \(the classifier's reading of the suggestion chosen\)"),
        "why.category_confirmed",
        lambda m, n, t: {"category": m[1]},
    ),
    (re.compile(r"category set to (.+)"), "why.category_set", lambda m, n, t: {"category": m[1]}),
    (
        re.compile(r"category (.+) set at intake"),
        "why.intake_category",
        lambda m, n, t: {"category": m[1]},
    ),
    (
        re.compile(r"category (.+) p=([\d.]+) ([≥<]) threshold ([\d.]+)"),
        "why.confidence",
        lambda m, n, t: {"category": m[1], "p": m[2], "cmp": m[3], "threshold": m[4]},
    ),
    (
        re.compile(r"rule #(\d+) → unit (\d+)"),
        "why.rule_to",
        lambda m, n, t: {"id": m[1], "unit": _unit(n, m[2])},
    ),
    (
        re.compile(r"high-priority rule #(\d+) \(priority (-?\d+) ≥ (\d+)\) → unit (\d+)"),
        "why.rules_only",
        lambda m, n, t: {"id": m[1], "priority": m[2], "needed": m[3], "unit": _unit(n, m[4])},
    ),
    (
        re.compile(r"best rule #(\d+) has priority (-?\d+) < (\d+) needed to dispatch on rules alone"),
        "why.rules_too_weak",
        lambda m, n, t: {"id": m[1], "priority": m[2], "needed": m[3]},
    ),
    (
        re.compile(r"little known text: (\d+) known phrases < (\d+)"),
        "why.little_evidence",
        lambda m, n, t: {"known": m[1], "needed": m[2]},
    ),
    (
        re.compile(r"category (.+) p=([\d.]+)"),
        "why.category_p",
        lambda m, n, t: {"category": m[1], "p": m[2]},
    ),
    (re.compile(r"category (.+)"), "why.category", lambda m, n, t: {"category": m[1]}),
    # What an alarm writes on its order and in its own trail (``monitoring.service``: ``_tell_order`` and the notes
    # of its events); a person's note as written, a note the system wrote in its own form.
    (
        re.compile(rf"alarm #(\d+) acknowledged by (.+) at ({_AT})"),
        "why.alarm_acknowledged",
        lambda m, n, t: {"id": m[1], "actor": t.label("actor", m[2]), "at": m[3]},
    ),
    (
        re.compile(rf"alarm #(\d+) cleared by (.+) at ({_AT})"),
        "why.alarm_cleared",
        lambda m, n, t: {"id": m[1], "actor": t.label("actor", m[2]), "at": m[3]},
    ),
    (
        re.compile(rf"alarm #(\d+) cleared at ({_AT}): readings back within the limit, now (\S+)"),
        "why.alarm_recovered",
        lambda m, n, t: {"id": m[1], "at": m[2], "value": m[3]},
    ),
    (re.compile(r"note: (.*)", re.S), "why.alarm_note", lambda m, n, t: {"note": _one(t, m[1], n) or m[1]}),
    # A sensor's alarm joining an open order: its own sensor's again, or (the same form without "again") a sensor's
    # standing near (``monitoring.service._join_open_order``).
    (re.compile(rf'sensor "(.+)" alarmed again {_ALARM_READING}'), "why.alarm_again", _alarm_reading),
    (re.compile(rf'sensor "(.+)" alarmed {_ALARM_READING}'), "why.alarm_near_raised", _alarm_reading),
    (
        re.compile(r'(\d+) m from sensor "(.+)", whose alarm this order is handling'),
        "why.alarm_near",
        lambda m, n, t: {"metres": m[1], "sensor": m[2]},
    ),
    (re.compile(r"this order is still being handled: no new order"), "why.alarm_order_open", lambda m, n, t: {}),
    (re.compile(r"alarms on this order: (\d+)"), "why.alarm_count", lambda m, n, t: {"n": m[1]}),
    (
        re.compile(rf"alarm #(\d+) crossed the limit again at ({_AT}): (\S+) (.+?), (\d+) min after it cleared"),
        "why.alarm_reopened",
        lambda m, n, t: {"id": m[1], "at": m[2], "metric": t.label("metric", m[3]), "value": m[4], "minutes": m[5]},
    ),
    (re.compile(r"reopened, no new alarm"), "why.alarm_reopened_not_new", lambda m, n, t: {}),
    # The alarms an order held when it was closed (``monitoring.service.resolve_ended``): on the order, in their trail.
    (
        re.compile(
            rf"alarms? ((?:#\d+, )*#\d+) cleared at ({_AT}): the order was closed while (?:it was|they were) open"
        ),
        "why.alarm_order_closed",
        lambda m, n, t: {"ids": m[1], "at": m[2]},
    ),
    (re.compile(r"a crossing from now on opens a new order"), "why.alarm_new_order_next", lambda m, n, t: {}),
    (
        re.compile(r"order (\S+) closed while the alarm was open"),
        "why.alarm_order_closed_note",
        lambda m, n, t: {"number": m[1]},
    ),
    # The alarms an order held when it was cancelled (作废, a false detection) or merged (合并: moved to the master).
    (
        re.compile(
            rf"alarms? ((?:#\d+, )*#\d+) cleared at ({_AT}): the order was cancelled while (?:it was|they were) open"
        ),
        "why.alarm_order_cancelled",
        lambda m, n, t: {"ids": m[1], "at": m[2]},
    ),
    (
        re.compile(r"a crossing once the readings are back within the limit opens a new order"),
        "why.alarm_new_order_after_recovery",
        lambda m, n, t: {},
    ),
    (
        re.compile(r"order (\S+) cancelled while the alarm was open"),
        "why.alarm_order_cancelled_note",
        lambda m, n, t: {"number": m[1]},
    ),
    (
        re.compile(
            rf"alarms? ((?:#\d+, )*#\d+) moved to order (\S+) at ({_AT}): "
            r"this order was merged into it while (?:it was|they were) open"
        ),
        "why.alarm_moved_to_master",
        lambda m, n, t: {"ids": m[1], "number": m[2], "at": m[3]},
    ),
    (
        re.compile(rf"alarms? ((?:#\d+, )*#\d+) moved here at ({_AT}) from order (\S+), merged into this order"),
        "why.alarm_moved_here",
        lambda m, n, t: {"ids": m[1], "at": m[2], "number": m[3]},
    ),
    # An alarm joining an order from across a community boundary (``monitoring.service._join_open_order``).
    (
        re.compile(r'sensor "(.+)" stands in (.+), this order in (.+): not moved'),
        "why.alarm_other_community",
        lambda m, n, t: {"sensor": m[1], "theirs": m[2], "ours": m[3]},
    ),
    (re.compile(r"further crossings are counted on the alarm"), "why.alarm_further_counted", lambda m, n, t: {}),
    (re.compile(r"snapshot: (\S+)"), "why.alarm_snapshot", lambda m, n, t: {"url": m[1]}),
    (
        re.compile(r'alarm #(\d+) \(sensor "(.+)"\) not acknowledged within (\d+) min: escalated automatically'),
        "why.alarm_escalated",
        lambda m, n, t: {"id": m[1], "sensor": m[2], "minutes": m[3]},
    ),
    (
        re.compile(r"not acknowledged within (\d+) min: escalated"),
        "why.alarm_escalated_note",
        lambda m, n, t: {"minutes": m[1]},
    ),
    (re.compile(r"sensor retired"), "why.sensor_retired", lambda m, n, t: {}),
    (re.compile(r"sensor retired: (.+)", re.S), "why.sensor_retired_because", lambda m, n, t: {"reason": m[1]}),
    (re.compile(r"alarm rule deactivated: (.+)"), "why.rule_deactivated", lambda m, n, t: {"name": m[1]}),
    (re.compile(r"readings back within the limit"), "why.readings_back", lambda m, n, t: {}),
    (re.compile(rf"readings resumed, the latest at ({_AT})"), "why.readings_resumed", lambda m, n, t: {"at": m[1]}),
    (re.compile(r"silence time lengthened"), "why.silence_lengthened", lambda m, n, t: {}),
    (
        re.compile(rf"sensor silent: no reading for over (\d+) min, the last at ({_AT})"),
        "why.silent_after_reading",
        lambda m, n, t: {"minutes": m[1], "at": m[2]},
    ),
    (
        re.compile(rf"sensor silent: no reading within (\d+) min of its return to service at ({_AT})"),
        "why.silent_after_return",
        lambda m, n, t: {"minutes": m[1], "at": m[2]},
    ),
    (
        re.compile(r"sensor silent: no reading within (\d+) min of its registration"),
        "why.silent_never",
        lambda m, n, t: {"minutes": m[1]},
    ),
    (
        # The reply check's findings: a code, then its explanation (written in Chinese by ``nlp.reply_quality``).
        re.compile(rf"(.*?)\b({'|'.join(FINDING_FIGURES)}): (.+)"),
        "why.reply_check",
        lambda m, n, t: _reply_finding(t, m[1], m[2], m[3]),
    ),
    (
        re.compile(r"monitoring: responsible unit of sensor (\S+)"),
        "why.monitoring_dispatch",
        lambda m, n, t: {"sensor": m[1]},
    ),
    (
        re.compile(r"repeat taken at intake: the same problem as (\S+)"),
        "why.intake_merge",
        lambda m, n, t: {"number": m[1]},
    ),
    (
        re.compile(r"auto-merge: duplicate of (\S+), score ([\d.]+)"),
        "why.auto_merge",
        lambda m, n, t: {"number": m[1], "score": m[2]},
    ),
    (
        re.compile(r"place set to (.+?)( \(street only\))?"),
        "why.place_set",
        lambda m, n, t: {"place": m[1] + (t("why.street_only") if m[2] else "")},
    ),
    (
        re.compile(r"place confirmed as (.+?)( \(street only\))?"),
        "why.place_confirmed",
        lambda m, n, t: {"place": m[1] + (t("why.street_only") if m[2] else "")},
    ),
    # The place aliases a place correction taught (``dispatch.service.correct_place``), named as stored.
    (
        re.compile(r"place aliases of (.+?) taught: (.+)"),
        "why.aliases_taught",
        lambda m, n, t: {"unit": m[1], "aliases": t.sep.join(m[2].split(", "))},
    ),
    (re.compile(r"removed attachment (\d+)"), "why.removed_attachment", lambda m, n, t: {"id": m[1]}),
    # A photo published for Open311 (公开) and withdrawn (撤回公开): ``workorders.files.publish`` / ``withdraw``.
    (re.compile(r"published attachment (\d+)"), "why.published_attachment", lambda m, n, t: {"id": m[1]}),
    (
        re.compile(r"withdrew publication of attachment (\d+)"),
        "why.withdrew_attachment",
        lambda m, n, t: {"id": m[1]},
    ),
    (re.compile(r"files of merged appeal (\S+)"), "why.merged_files", lambda m, n, t: {"number": m[1]}),
    # A knowledge entry an import created or changed (``knowledge.service.IMPORTED_FROM``, the configuration log).
    (re.compile(r"imported from (.+)"), "why.imported_from", lambda m, n, t: {"name": m[1]}),
    # A citizen's 不满意 by text message without a word of why (短信回访, ``workorders.sms``).
    (re.compile(re.escape(NO_REASON)), "why.sms_no_reason", lambda m, n, t: {}),
    (
        re.compile(r"attached (\d+) file\(s\)"),
        "why.attached",
        lambda m, n, t: {"count": m[1]},
    ),
    (
        re.compile(r"place found from the (\w+): (.+)"),
        "why.place_found",
        lambda m, n, t: {"source": t(f"place_source.{m[1]}", m[1]), "place": m[2]},
    ),
]

_SEPARATOR = re.compile(r"\s*[;；]\s*")


class _ShownNames(Mapping[int, str]):
    """Units' names by id as ``t``'s reader reads them (``Translator.unit_name``: English ones on an English page),
    each looked up as a text names it — the directory of every unit is not copied for one line."""

    def __init__(self, t: Translator, names: Names) -> None:
        self._t, self._names = t, names

    def __getitem__(self, unit_id: int) -> str:
        return str(self._t.unit_name(self._names[unit_id]))

    def __iter__(self) -> Iterator[int]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def explain(t: Translator, text: str | None, names: Names | None = None, citizen: bool = False) -> str:
    """``text`` with every part the product wrote in one of its fixed forms in the user's language — to the
    appealing citizen (``citizen``) in their words where the catalogue has them (``Translator.theirs``:
    与同一问题的诉求 … 合并办理, not the staff's 自动合并 and its similarity score)."""
    if not text:
        return ""
    names = _ShownNames(t, names or {})
    parts = [_one(t, part, names, citizen) for part in _SEPARATOR.split(text.strip())]
    if all(known is None for known in parts):
        return text  # a person's own words, punctuation and all
    return t("why.separator").join(
        known or part for known, part in zip(parts, _SEPARATOR.split(text.strip()), strict=True)
    )


# A decision's grounds name the rule it chose (``rule #24 → unit 431``), which the suggestion of that rule says already,
# at length (``rule #24 '城乡建设 → 区住建局' → … [department (…), priority 40]``).
_RULE_TO = re.compile(r"rule #(\d+) → unit \d+")
_RULE_SAID = re.compile(r"rule #(\d+) ")


def grounds_unsaid(reason: str | None, said: Sequence[str]) -> str:
    """A dispatch decision's grounds (``reason``, machine text) without what the reasons of its first suggestion
    (``said``) say already: its ``rule #N → unit`` part when they are rule #N's (the queue said it twice a card)."""
    if not reason:
        return ""
    rules = {m[1] for r in said if (m := _RULE_SAID.match(r))}
    parts = _SEPARATOR.split(reason.strip())
    return "; ".join(p for p in parts if not ((m := _RULE_TO.fullmatch(p)) and m[1] in rules))


def _one(t: Translator, part: str, names: Names, citizen: bool = False) -> str | None:
    for prefix, key in _PREFIXES.items():
        if part == prefix:
            return t.theirs(key, citizen)
    for pattern, key, params in _FORMS:
        if m := pattern.fullmatch(part):
            return t.theirs(key, citizen, **params(m, names, t))
    return None


# The bulk import's messages (``cityhub.intake.importer``: a file refused, a row rejected or warned), by form.
_IMPORT_FORMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?P<name>.+): not a CSV or Excel file \(allowed: (?P<allowed>.+)\)"), "import.msg.not_table"),
    (re.compile(r"(?P<name>.+): the file is empty"), "import.msg.empty_file"),
    (re.compile(r"(?P<name>.+): larger than (?P<mb>\d+) MB .*"), "import.msg.too_large"),
    (re.compile(r"(?P<name>.+) is empty \(no header row\)"), "import.msg.no_header"),
    (re.compile(r"(?P<name>.+): no sheet named '(?P<sheet>.*)' \(sheets: (?P<sheets>.*)\)"), "import.msg.no_sheet"),
    (re.compile(r"no title or content column found .*; header was: (?P<header>.*)"), "import.msg.no_text_column"),
    (
        re.compile(
            r"column '(?P<column>.*)' chosen for (?P<field>\w+) is not in the header \(header was: (?P<header>.*)\)"
        ),
        "import.msg.column_missing",
    ),
    (re.compile(r"implausible date '(?P<value>.*)'"), "import.msg.bad_datetime"),
    (re.compile(r"(?:invalid|unrecognised) date/time '(?P<value>.*?)'(?:: .*)?"), "import.msg.bad_datetime"),
    (re.compile(r"not a number: '(?P<value>.*)'"), "import.msg.not_number"),
    (re.compile(r"not a non-negative whole number: '(?P<value>.*)'"), "import.msg.not_count"),
    (re.compile(r"out of range \(±(?P<limit>[\d.]+)\): '(?P<value>.*)'"), "import.msg.out_of_range"),
    (re.compile(r"invalid value '(?P<value>.*)' \(allowed: (?P<allowed>.*)\)"), "import.msg.bad_choice"),
    (re.compile(r"longer than (?P<n>\d+) characters(?: \(\d+\))?"), "import.msg.too_long"),
    (re.compile(r"row has (?P<cells>\d+) cells, the header has (?P<width>\d+)"), "import.msg.cells"),
    (re.compile(r"empty: a title or content is required"), "import.msg.no_text"),
    (re.compile(r"given without a reply \(the reply column is empty\)"), "import.msg.replied_without_reply"),
    (re.compile(r"missing in a row with a reply: .*"), "import.msg.created_for_reply"),
    (re.compile(r"before created_at \((?P<replied>.*) < (?P<created>.*)\)"), "import.msg.reply_before_created"),
    (re.compile(r"missing: an order imported as history needs .*"), "import.msg.created_for_history"),
    (re.compile(r"missing: set to the import time"), "import.msg.created_now"),
    (re.compile(r"lat and lng must be given together"), "import.msg.lat_lng"),
    (re.compile(r"missing for a reply: set to created_at"), "import.msg.replied_at_created"),
    (re.compile(r"in the future \((?P<at>.*)\)"), "import.msg.future"),
    (re.compile(r"unknown place '(?P<place>.*)' \(.*\): kept in attributes, placed later"), "import.msg.unknown_place"),
    (re.compile(r"unknown category '(?P<category>.*)': imported without a category"), "import.msg.unknown_category"),
    (re.compile(r"not a phone number '(?P<value>.*)': kept in attributes, no phone set"), "import.msg.bad_phone"),
    (
        re.compile(r"id (?P<id>.*) already holds a different message \((?P<kind>row|order) (?P<holder>.*)\)"),
        "import.msg.id_conflict",
    ),
    (re.compile(r"bytes that are not (?P<encoding>\S+) \((?P<bytes>.*)\)"), "import.msg.bad_bytes"),
    (
        re.compile(r"a quoted field opened on line (?P<line>\d+) is not closed before the end of the file"),
        "import.msg.quote_open",
    ),
]


def import_issue(t: Translator, message: str, field: str | None = None) -> str:
    """A message of the bulk import in the user's language (as written when it is none of the import's forms);
    ``field``, the row's field the message is about, lets a refused value's allowed ones be said as the pages
    name them (一般、紧急、特急 rather than the codes, which the importer accepts too)."""
    from cityhub.intake.importer import CHOICE_KINDS, allowed_codes

    for pattern, key in _IMPORT_FORMS:
        if m := pattern.fullmatch(message):
            params = m.groupdict()
            if "allowed" in params and field in CHOICE_KINDS:  # importer.refused_choice's names and codes
                params["allowed"] = t.sep.join(
                    t.label(CHOICE_KINDS[field], c) for c in allowed_codes(params["allowed"])
                )
            if "kind" in params:
                params["kind"] = t(f"import.holder.{params.pop('kind')}", holder=params["holder"])
            if "field" in params:
                params["field"] = t(f"field.{params['field']}", params["field"])
            return t(key, **params)
    if field in enterprise.KEYS:  # intake.enterprise's refusal, as the intake form says it
        return field_message(t, message)
    return message


def finding_words(t: Translator, finding: Finding) -> dict[str, str]:
    """A risk finding in the reader's language — what (its category, else all appeals), where (its place, else the
    district), when (its span) and its count against what was expected — for the 风险预警 pages and the map's
    popups alike (``risk.Finding.summary`` is the Chinese line of the proactive order it opens)."""
    last = finding.window_end - timedelta(days=1)
    ratio = finding.ratio
    return {
        "what": t.category_name(finding.category_leaf) or t("brain.total_volume"),
        "where": t.unit_name(finding.place) or t("brain.district"),
        "span": t("brain.span_day", day=finding.window_start)
        if finding.kind == "anomaly"
        else t("brain.span", first=finding.window_start, last=last),
        # Against an expectation of nothing there is no ratio (it read "about 0.0 (inf×)"): the text says none.
        "count_text": t(
            f"brain.count.{finding.kind}",
            count=finding.count,
            expected=significant(finding.expected),
            ratio=f"{ratio:.1f}",
        )
        if ratio is not None
        else t(f"brain.count.{finding.kind}_none", count=finding.count),
    }


def rule_name(t: Translator, name: str) -> str:
    """An alarm rule's name as a page shows it: the silence rule's as the product made it (监测点离线) in the reader's
    language, any other — an administrator's — as written."""
    return t("mon.rule.silence_name") if name == SILENCE_RULE_NAME else name


def _tail_pattern(form: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(form).replace(re.escape("{tail}"), r"(\d*)") + "$")


_CITIZEN_ACTOR = _tail_pattern(CITIZEN_ACTOR)
_CITIZEN_SMS_ACTOR = _tail_pattern(CITIZEN_SMS_ACTOR)


def actor_name(t: Translator, name: str) -> str:
    """Who acted, as a page names them: the product's own actors (``actor.*``: system, automatic dispatch …) and the
    citizen who rated a reply on the tracking page (市民（尾号1234）) or by text message (市民（尾号1234，短信）) in the
    reader's language, a person as named."""
    if found := _CITIZEN_ACTOR.match(name):
        return t("actor.citizen_tail", tail=found.group(1))
    if found := _CITIZEN_SMS_ACTOR.match(name):
        return t("actor.citizen_sms_tail", tail=found.group(1))
    return t.label("actor", name)
