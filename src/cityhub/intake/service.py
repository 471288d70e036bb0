"""Intake: the one entry point for every channel. Validates, de-duplicates by (channel, external id), creates
the order and, for a consultation answered on the spot (秒回), closes it as answered instantly."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.dispatch import background
from cityhub.errors import CityhubError, Conflict, ValidationFailed
from cityhub.intake import dedupe
from cityhub.org.models import Unit, UnitTier
from cityhub.org.places import Place, locate_point
from cityhub.org.schemas import phone_number
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import OPEN_STATES, Action, State
from cityhub.workorders.models import AppealType, Channel, Order, Urgency
from cityhub.workorders.schemas import EXTERNAL_ID_MAX_CHARS, OrderCreate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    order: Order
    created: bool  # False: the same (channel, external_id) had been received before
    # Duplicates of the same problem at the same place and similar past cases (see intake.dedupe).
    duplicates: list[dedupe.Duplicate] = field(default_factory=list)
    similar: list[dedupe.SimilarCase] = field(default_factory=list)
    dedupe_action: dedupe.DedupeAction = dedupe.DedupeAction.NONE


def parse(payload: dict[str, Any]) -> OrderCreate:
    """Validate a raw appeal; ValidationFailed names every bad field."""
    try:
        return OrderCreate.model_validate(payload)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(order)", "message": err["msg"]} for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise ValidationFailed(f"invalid order: {summary}", details={"errors": problems}) from None


def _auto_dispatch(session: Session, order: Order, found: dedupe.DedupeResult) -> None:
    from cityhub.dispatch.service import auto_dispatch

    try:
        auto_dispatch(session, order=order, new=True, duplicates=found.duplicates)
    except CityhubError as exc:
        # The appeal is received whatever happens to dispatch: it waits in the dispatcher's queue.
        log.warning("auto-dispatch of order %s failed: %s", order.number, exc.message)


# 涉及人身财产安全: words of a caller's account that make an appeal urgent whatever its matter — a gas leak, a fire,
# someone trapped or hurt, a live wire, a collapse. The intake desk points them out while the urgency is still 一般
# (a gas leak was registered 一般 unless the operator remembered the field at the form's end); it is a suggestion, the
# operator judges. A word the caller denies (没有煤气味, 不是着火: :data:`_DENIED`) or says is over
# (煤气味没有了, 着火了，火已经灭了: :data:`_GONE`) is not pointed out.
SAFETY_WORDS = (
    "燃气泄漏",
    "煤气泄漏",
    "漏气",
    "煤气味",
    "燃气味",
    "天然气味",
    "着火",
    "起火",
    "失火",
    "火灾",
    "爆炸",
    "触电",
    "漏电",
    "电线掉落",
    "坍塌",
    "倒塌",
    "塌陷",
    "被困",
    "困在电梯",
    "溺水",
    "落水",
    "井盖缺失",
    "危险化学品",
    "有人受伤",
    "晕倒",
)


# A danger word denied: a negation right before it (没有煤气味, 不是着火, 未发生漏电), perhaps through a word of seeing
# or of someone (没闻到煤气味, 没有人被困) — not a question (是不是着火, 有没有煤气味: the caller does not know, it
# may be one), nor a negation farther off (不知道 着火了没有 says nothing of the fire).
_NEGATION = "并没有|并不是|并非|并无|没有|不是|没|无|未|不"
_BETWEEN = "闻到|闻见|看到|看见|见到|听到|发现|发生|出现|存在|有人|人员|再|是|有|人|见"
_DENIED = re.compile(rf"(?<![是有会能])(?:{_NEGATION})(?:{_BETWEEN}){{0,2}}$")
_DENIAL_REACH = 10  # characters before a word looked at: a negation and two words between

# A danger word said to be over right after it (煤气味没有了, 煤气味已经散了, 着火了，火已经灭了, 漏电已经修好了,
# 被困的人已经救出来了): the word, perhaps 了 and a comma, perhaps a time (现在), perhaps the thing named again
# (火, 明火, 味道 …, or the word itself: a title 煤气味 and the content 煤气味已经散了), perhaps 已经 / 都 / 早就,
# then a word of its end in the past (没有了, 没了, 灭了, 扑灭, 消失了, 散了, 好了, 修好了 …) — not a danger still
# there (煤气味越来越大, 着火了, 火还没灭, 煤气味还没散: 还 is no word this reads), nor a question (灭了吗), nor an
# end undone (散了又来了).
_SINCE = "现在|目前|后来|这会儿|刚刚|刚才|今天|今早|早上"
_AGAIN = "明火|火势|火苗|火|味道|气味|味儿|味|人员|的人|人|电线|电"
_QUITE = "已经|已|都|早就|早已|也|基本上|基本|全|全部|完全|总算|终于"
_OVER = (
    "没有了|没了|不见了|没事了|"
    "(?:被)?(?:扑|熄)?灭了|(?:被)?(?:扑|熄)灭|"
    "(?:消失|消散|散掉|散去|散|消)了|"
    "(?:修|弄|处理)?好了|(?:修复|处理|排除|解除)了|止住了|"
    "(?:被)?(?:救)?出来了|获救了|脱困了"
)
_GONE = {
    word: re.compile(
        rf"了?[，,、\s]*(?:{_SINCE})?[，,\s]*(?:{re.escape(word)}|{_AGAIN})?(?:{_SINCE})?(?:{_QUITE}){{0,2}}(?:{_OVER})"
        r"(?![吗么没？?]|[，,\s]*又)"
    )
    for word in SAFETY_WORDS
}


def safety_words(*texts: str | None) -> list[str]:
    """The :data:`SAFETY_WORDS` the appeal's texts hold, in the list's order: what makes it look urgent — each said
    at least once without a negation right before it (:data:`_DENIED`) nor its end right after it (:data:`_GONE`)."""
    said = " ".join(text for text in texts if text)

    def asserted(word: str) -> bool:
        return any(
            not _DENIED.search(said[max(0, at.start() - _DENIAL_REACH) : at.start()])
            and not _GONE[word].match(said, at.end())
            for at in re.finditer(re.escape(word), said)
        )

    return [word for word in SAFETY_WORDS if asserted(word)]


# The channels a citizen (or an enterprise's staff: 企业呼) files through themselves (the hotline, grid, sensors … are
# staff's and machines').
CITIZEN_CHANNELS = frozenset({Channel.WEB, Channel.APP, Channel.MAILBOX, Channel.ENTERPRISE})


def filed_by_citizen(session: Session, data: OrderCreate, user_id: int) -> OrderCreate:
    """A citizen's own appeal (API or web form): theirs to follow and rate, received now, and their external ids in
    their own namespace, so that a guessed id can never return someone else's order. The channel is one a citizen
    uses and the urgency is for the hotline's staff to judge (refused, not changed: the caller said otherwise).
    Under their account's name and phone unless they gave others: the unit calls them back on it, the progress
    lookup (/track) asks for it, and masking hides what it knows of them."""
    from cityhub.org.models import User

    if data.channel not in CITIZEN_CHANNELS:
        raise ValidationFailed(
            f"a citizen files through {', '.join(sorted(c.value for c in CITIZEN_CHANNELS))}, not {data.channel.value}",
            details={"field": "channel"},
        )
    if data.urgency != Urgency.NORMAL:
        raise ValidationFailed("urgency is judged by the hotline's staff", details={"field": "urgency"})
    update: dict[str, Any] = {
        "citizen_user_id": user_id,
        "created_at": None,
        "external_id": _citizens_id(user_id, data.external_id) if data.external_id else None,
    }
    account = session.get(User, user_id)
    if account is not None and not data.citizen_name:
        update["citizen_name"] = account.full_name[:80] or None
    if account is not None and not data.citizen_phone and account.phone:
        with contextlib.suppress(ValueError):  # an account's number stored before it was checked: none then
            update["citizen_phone"] = phone_number(account.phone)
    return data.model_copy(update=update)


def _citizens_id(user_id: int, external_id: str) -> str:
    """``external_id`` in the citizen's own namespace, within the column's 128 characters: an id too long for the
    prefix is kept as its digest (cutting it would make two ids that differ at the end one appeal)."""
    namespaced = f"u{user_id}:{external_id}"
    if len(namespaced) <= EXTERNAL_ID_MAX_CHARS:
        return namespaced
    return f"u{user_id}:sha1:{hashlib.sha1(external_id.encode('utf-8')).hexdigest()}"


# What a grid inspector's report is unless it says otherwise: a problem found on patrol, for a unit to deal with.
INSPECTOR_APPEAL = AppealType.HELP


def filed_by_inspector(session: Session, data: OrderCreate, unit_id: int | None) -> OrderCreate:
    """A 网格员's report from patrol (API or web form): channel grid whatever was sent; placed where they patrol —
    their community or street — unless the report itself says where (an address, a street or community code, or
    coordinates inside a unit's boundary: a phone's position where no boundaries are drawn places nothing, so the
    report stays in their grid at that point). A report that does not say what kind of appeal it is is a
    problem to be dealt with (:data:`INSPECTOR_APPEAL`), not a question."""
    update: dict[str, Any] = {"channel": Channel.GRID}
    if "appeal_type" not in data.model_fields_set:
        update["appeal_type"] = INSPECTOR_APPEAL
    unit = session.get(Unit, unit_id) if unit_id is not None else None
    says_where = bool(data.address or data.street_code or data.community_code)
    if not says_where and data.lat is not None and data.lng is not None:
        at = locate_point(session, data.lat, data.lng)
        says_where = at is not None and (at.street_id is not None or at.community_id is not None)
    if unit is not None and not says_where:
        if unit.tier == UnitTier.COMMUNITY:
            update["community_code"] = unit.code
        elif unit.tier == UnitTier.STREET:
            update["street_code"] = unit.code
    return data.model_copy(update=update)


def linked_citizen(session: Session, data: OrderCreate) -> None:
    """Staff filing an appeal for a registered citizen (``citizen_user_id``): the account must be a citizen's and
    bear the appeal's phone number, so that no one can place an order (a message, a "verification" call) in the
    list of a citizen who never made it."""
    from cityhub.org.models import Role, User

    user = session.get(User, data.citizen_user_id)
    if user is None or user.role != Role.CITIZEN:
        raise ValidationFailed(f"unknown citizen_user_id {data.citizen_user_id}", details={"field": "citizen_user_id"})

    def digits(phone: str | None) -> str:
        return "".join(c for c in phone or "" if c.isdigit())[-11:]

    if not digits(user.phone) or digits(user.phone) != digits(data.citizen_phone):
        raise ValidationFailed(
            f"citizen account {user.id} is not the caller's: its phone number is not the appeal's citizen_phone",
            details={"field": "citizen_user_id"},
        )


def submit(
    session: Session,
    *,
    data: OrderCreate | dict[str, Any],
    actor: orders.Actor = orders.SYSTEM,
    instant_answer: str | None = None,
    instant_answer_entry_id: int | None = None,
    similar: bool = True,
    defer_duplicates: bool = False,
    same_message: bool = False,
    merge_into: int | None = None,
) -> IntakeResult:
    """Receive one appeal from any channel and return the (new or already known) order.

    ``merge_into``: the open order the appeal repeats, as whoever records it judged (受理并并入, the caller ringing
    again about the same problem): the new order is merged into it at once, audited as theirs
    (:func:`intake_merge_params`) — not sent anywhere, nor merged where the duplicate check would have; the master
    is checked as any merge's (missing or closed: refused, nothing kept). Not with an instant answer.

    ``instant_answer_entry_id`` names the knowledge-base entry the answer came from; it is kept in the audit event.
    ``similar=False``: the caller will not show similar past cases, so only duplicates are searched for (see
    :func:`cityhub.intake.dedupe.check`); the result's ``similar`` stays empty.
    ``defer_duplicates``: the caller shows no duplicates either (the API's and Open311's creation answer the order
    alone): with ``CITYHUB_DEDUPE_IN_BACKGROUND`` (and automatic merges) on, the background dispatcher looks for an
    earlier duplicate to merge the order into (before its decision, with automatic dispatch on; see
    :mod:`cityhub.dispatch.background`), and the request only creates the order.
    ``same_message``: an appeal re-sent under a known (channel, external_id) must say the same (title and content,
    whitespace aside) — one saying something else is refused (409 naming the order holding the id), as a bulk
    import refuses such a row, instead of being answered with the earlier order while its words are lost. (Alarms
    and findings, whose texts change as they are re-sent, keep the earlier order.)

    The search for duplicates and similar cases only reads, so it runs on the appeal as submitted, *before* the
    order is created: the writes (number, order, audit events, an automatic merge) then follow one another
    closely, and the write transaction — which on SQLite holds the database's single write lock, on PostgreSQL the
    day's number counter row — lasts only as long as they do.
    """
    if isinstance(data, dict):
        data = parse(data)
    if instant_answer and data.appeal_type != AppealType.CONSULTATION:
        raise ValidationFailed("only consultations are answered instantly", details={"field": "appeal_type"})
    if instant_answer and merge_into is not None:
        raise ValidationFailed("an appeal answered on the spot is not merged", details={"field": "merge_into"})
    known = orders.find_existing(session, data=data)
    if known is not None:
        return _received_before(known, data, same_message=same_message)
    deferred = defer_duplicates and not instant_answer and background.checks_duplicates()
    # Where the appeal is, looked for once: the duplicate search compares it and the order records it.
    place = orders.appeal_place(session, data)
    found = dedupe.DedupeResult() if deferred else dedupe.check(session, data=data, similar=similar, placed=place)
    order, created = _create(session, data, actor, place)
    if not created:
        return _received_before(order, data, same_message=same_message)
    if instant_answer:
        orders.act(
            session,
            order_id=order.id,
            action=Action.INSTANT_ANSWER,
            actor=actor,
            params={"answer": instant_answer, "kb_entry_id": instant_answer_entry_id},
            new_order=order,
        )
    if merge_into is not None:
        master = session.get(Order, merge_into)
        orders.act(
            session,
            order_id=order.id,
            action=Action.MERGE,
            actor=actor,
            params=intake_merge_params(merge_into, master.number if master is not None else str(merge_into)),
            new_order=order,
        )
    else:
        found = merge_if_duplicate(session, order, found, actor)
    route_received(session, order, found, check_duplicates=deferred)
    return IntakeResult(
        order=order, created=created, duplicates=found.duplicates, similar=found.similar, dedupe_action=found.action
    )


def intake_merge_params(master_id: int, number: str) -> dict[str, Any]:
    """The MERGE action's parameters when whoever records an appeal joins it to the open order it repeats (受理并并入):
    the reason in the form the pages translate (``web.machine_text``)."""
    return {"master_id": master_id, "reason": f"repeat taken at intake: the same problem as {number}"}


def _received_before(known: Order, data: OrderCreate, *, same_message: bool) -> IntakeResult:
    """The answer to an appeal re-sent under the (channel, external_id) of ``known`` (see :func:`submit`)."""
    if same_message and _says_otherwise(known, data):
        raise Conflict(
            f"external_id {data.external_id} already holds another message (order {known.number})",
            details={"field": "external_id", "order_id": known.id},
        )
    return IntakeResult(order=known, created=False)


def _create(session: Session, data: OrderCreate, actor: orders.Actor, place: Place | None) -> tuple[Order, bool]:
    """Create the order: (order, True). An appeal with an external id may be sent twice at once (an integrator
    re-sending a request that timed out): the other intake, which found nothing either, may commit the same
    (channel, external_id) first. Its order is then the answer, (order, False), as if this one had come a moment
    later — not the unique constraint's error, a 500 — so the insert runs in a savepoint (only for an appeal with
    an id)."""
    if not data.external_id:
        return orders.create_order(session, data=data, actor=actor, known_new=True, place=place)
    try:
        with session.begin_nested():
            return orders.create_order(session, data=data, actor=actor, known_new=True, place=place)
    except IntegrityError:
        known = orders.find_existing(session, data=data)
        if known is None:
            raise
        return known, False


def _says_otherwise(known: Order, data: OrderCreate) -> bool:
    """Whether ``data`` is another message than the order ``known`` (its title compared only when it gives one)."""
    from cityhub.intake.bulk import message_key

    return message_key(known.title if data.title else "", known.content) != message_key(data.title, data.content)


def route_received(
    session: Session, order: Order, found: dedupe.DedupeResult | None = None, *, check_duplicates: bool = False
) -> None:
    """What happens to a new order still waiting to be sent out (received; not answered or merged at intake): with
    the background dispatcher deciding — dispatching it, or keeping its suggestion for the queue — (or
    ``check_duplicates``, the duplicate check left to it) it is queued for it once this commits; else, with
    automatic dispatch on, dispatched now when the classifier is sure enough (``found``: the duplicates intake
    found, which the decision considers); else it waits for a dispatcher."""
    if order.state != State.RECEIVED:
        return
    if check_duplicates or background.takes_new_orders():
        background.enqueue(session, order, check_duplicates=check_duplicates)
    elif get_settings().dispatch_auto:
        _auto_dispatch(session, order, found or dedupe.DedupeResult())


def merge_if_duplicate(
    session: Session, order: Order, found: dedupe.DedupeResult, actor: orders.Actor
) -> dedupe.DedupeResult:
    """Merge the order into its master when the check said so and the order is still open (an instant answer
    has closed it); otherwise the duplicates stay a suggestion for the operator. The order is the caller's: created
    in this transaction, or read for update (the background dispatcher)."""
    if found.action != dedupe.DedupeAction.AUTO_MERGE or found.master is None:
        return found
    master = found.master
    suggestion = dedupe.DedupeResult(
        duplicates=found.duplicates,
        similar=found.similar,
        action=dedupe.DedupeAction.SUGGEST_MERGE,
        master=found.duplicates[0].order,
    )
    if order.state not in OPEN_STATES:
        return suggestion
    score = next(d.score for d in found.duplicates if d.order.id == master.id)
    try:
        orders.act(
            session,
            order_id=order.id,
            action=Action.MERGE,
            actor=actor,
            params=dedupe.auto_merge_params(master, score),
            new_order=order,
        )
    except CityhubError as exc:
        # The master changed meanwhile (closed, merged): the appeal is received all the same, as a suggestion.
        log.warning("auto-merge of order %s into %s skipped: %s", order.number, master.number, exc.message)
        return suggestion
    return found
