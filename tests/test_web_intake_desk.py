"""A 12345 hotline operator's intake desk (受理), over the real app on both backends: what the suggestions beside the
form tell the operator while a call is taken.

The organisation and accounts are the small world of ``web_helpers`` (op: the hotline's operator).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.dedupe import get_dedupe_settings
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from cityhub.org.models import User
from cityhub.web.i18n import LANGUAGE_COOKIE
from web_helpers import build_world, intake_form, login, use_world_env


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        world = build_world(s)
        return {"streets": world.streets}


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def _leaving_entry(session: Any) -> int:
    """The knowledge entry about taking one's housing fund out after leaving a job (公积金, 离职): its id."""
    data = EntryCreate(
        question="离职了公积金能取出来吗？", answer="离职后满足条件可销户提取。", keywords=["公积金", "离职", "销户"]
    )
    return kb.create_entry(session, data=data).id


def test_each_instant_answer_says_which_of_the_callers_words_it_matched(org: dict[str, Any]) -> None:
    """秒回 closes the order with one click: each answer offered says the caller's words naming its matter (its
    keywords found in the question, one inside another said once), so the operator sees why it is offered — and
    which of two alike answers the one about 离职 — before answering with it."""
    with session_scope() as s:
        general = kb.create_entry(
            s,
            data=EntryCreate(
                question="住房公积金怎么提取？",
                answer="购房、租房等情形可申请提取住房公积金。",
                keywords=["公积金", "提取", "住房公积金", "材料"],
            ),
        ).id
        leaving = _leaving_entry(s)
    client = login("op")
    form = intake_form(client, appeal_type="consultation", content="请问离职后住房公积金怎么提取，需要什么材料")
    panel = client.post("/intake/assist", data=form)
    assert panel.status_code == 200
    why = {
        entry: _text(m.group(1))
        for entry in (general, leaving)
        if (m := re.search(rf'data-testid="kb-why-{entry}">(.*?)</small>', panel.text))
    }
    # 提取 is what is done with the matter (knowledge.service.ACTION_WORDS), not the matter
    assert why == {general: "匹配词：住房公积金", leaving: "匹配词：公积金、离职"}
    english = login("op")
    english.cookies.set(LANGUAGE_COOKIE, "en")
    asked = intake_form(english, appeal_type="consultation", content=form["content"])
    panel = english.post("/intake/assist", data=asked)
    assert f'data-testid="kb-why-{leaving}">Matched words: 公积金, 离职</small>' in panel.text


FUMES_AT = "嘉禾街望岗社区岗贝路8号"


def _fumes_reported() -> tuple[str, int]:
    """A caller's complaint about a restaurant's fumes at :data:`FUMES_AT`, open: its number and id."""
    with session_scope() as s:
        first = submit(
            s,
            data={
                "channel": "hotline",
                "appeal_type": "complaint",
                "content": "楼下餐馆油烟很大，每天晚上排放油烟熏到楼上住户，窗户都不敢开",
                "citizen_phone": "13911113333",
                "address": FUMES_AT,
                "street_code": "W-JT",
            },
        ).order
        return first.number, first.id


def test_a_caller_ringing_again_about_their_open_case_is_warned_of_as_a_duplicate(org: dict[str, Any]) -> None:
    """A caller rings again about the fumes they reported, in other words (their text scores below the duplicate
    threshold): their open case at the same address is listed among the duplicates, marked 同一来电号码 (and not again
    among the similar cases), so the operator does not register the same problem twice. Another caller with such a
    text, or the caller at another address, is not warned of."""
    number, first_id = _fumes_reported()
    client = login("op")
    again = intake_form(
        client,
        content="楼下餐馆油烟很大，晚上排油烟，熏得窗户不敢开",
        citizen_phone="+86 139-1111-3333",
        address=FUMES_AT,
    )
    panel = client.post("/intake/assist", data=again).text
    duplicates = re.search(r'data-testid="duplicates">(.*?)</section>', panel, re.S)
    assert duplicates is not None and number in duplicates.group(1)
    assert f'data-testid="same-caller-{first_id}">同一来电号码<' in duplicates.group(1)
    similar = re.search(r'data-testid="similar">(.*?)</section>', panel, re.S)
    assert similar is not None and number not in similar.group(1)
    for other in ({"citizen_phone": "13700001111"}, {"address": "京溪街南方医院门口"}):
        panel = client.post("/intake/assist", data={**again, **other}).text
        assert 'data-testid="duplicates"' not in panel, other


def test_a_repeat_call_is_registered_into_the_open_order_it_repeats(org: dict[str, Any]) -> None:
    """受理并并入: an open duplicate (or similar case) listed to the operator offers to register the call straight into
    it — one order merged into the open one, audited as the operator's with why, sent to no unit. Not for a citizen
    (no such permission: refused if posted), nor on a closed duplicate; a master gone meanwhile refuses the form,
    nothing kept."""
    from sqlalchemy import func, select

    from cityhub.workorders.lifecycle import State
    from cityhub.workorders.models import Order, OrderEvent

    number, first_id = _fumes_reported()
    client = login("op")
    again = intake_form(
        client, content="楼下餐馆油烟很大，晚上排油烟，熏得窗户不敢开", citizen_phone="13911113333", address=FUMES_AT
    )
    panel = client.post("/intake/assist", data=again).text
    assert f'name="merge_into" value="{first_id}"' in panel and "受理并并入此单" in panel
    assert f"将本次来电受理并并入工单 {number} 办理" in panel  # asked first: a merge is not undone
    # Another caller in other words: only a similar case — the operator judges it the same, the button is there too.
    other = client.post("/intake/assist", data={**again, "citizen_phone": "13700001111"}).text
    similar = re.search(r'data-testid="similar">(.*?)</section>', other, re.S)
    assert 'data-testid="duplicates"' not in other and similar is not None
    assert f'name="merge_into" value="{first_id}"' in similar.group(1)
    with session_scope() as s:
        before = s.scalar(select(func.count()).select_from(Order))
    citizen = login("cit")
    refused = citizen.post(
        "/intake", data={**again, "csrf_token": citizen.cookies["cityhub_csrf"], "merge_into": str(first_id)}
    )
    assert refused.status_code == 403
    done = client.post("/intake", data={**again, "merge_into": str(first_id)})
    assert done.status_code == 200 and f"已受理并并入工单 {number} 办理" in done.text and "自动合并" not in done.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == before + 1  # one order, the repeat's
        repeat = s.scalars(select(Order).order_by(Order.id.desc())).first()
        assert repeat is not None and repeat.state == State.MERGED and repeat.master_order_id == first_id
        assert repeat.lead_unit_id is None  # sent nowhere
        merge = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == repeat.id, OrderEvent.action == "merge")
        ).one()
        assert merge.actor_name != "system" and number in (merge.reason or "")
        repeat_id = repeat.id
    page = client.get(f"/orders/{repeat_id}").text
    assert f"受理时确认与工单 {number} 为同一问题，并入办理" in page
    # The master closed meanwhile: the form comes back saying so, and nothing is kept.
    with session_scope() as s:
        s.get(Order, first_id).state = State.CANCELLED  # type: ignore[union-attr]
    gone = client.post("/intake", data={**again, "merge_into": str(first_id)})
    assert gone.status_code == 422 and "楼下餐馆油烟很大，晚上排油烟" in gone.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == before + 1
    panel = client.post("/intake/assist", data=again).text
    assert f'name="merge_into" value="{first_id}"' not in panel


def test_the_trail_of_a_call_answered_on_the_spot_names_the_question_answered(org: dict[str, Any]) -> None:
    """秒回 closes the order as answered at once, and its trail says from which knowledge entry: by its question, not
    only by a number (知识条目 #5 told a reader of the trail nothing of what was answered)."""
    with session_scope() as s:
        entry = kb.create_entry(
            s,
            data=EntryCreate(
                question="离职了公积金能取出来吗？", answer="离职后满足条件可销户提取。", keywords=["公积金"]
            ),
        ).id
    client = login("op")
    form = intake_form(client, appeal_type="consultation", content="离职了公积金怎么取", instant_entry_id=str(entry))
    answered = client.post("/intake", data=form, follow_redirects=False)
    assert answered.status_code == 303, answered.text
    page = client.get(answered.headers["location"]).text
    assert "办结-已解决" in page
    said = re.search(r'data-testid="event-kb-entry">(.*?)</small>', page)
    assert said is not None and _text(said.group(1)) == f"知识条目 #{entry}：离职了公积金能取出来吗？"


def test_a_consultation_answered_later_from_its_page_says_why_each_answer_is_offered(org: dict[str, Any]) -> None:
    """A consultation registered first and answered from its page (秒回 there too) offered its answers without the
    words that made them match, as intake's panel says them."""
    with session_scope() as s:
        entry = _leaving_entry(s)
        order_id = submit(
            s, data={"channel": "hotline", "appeal_type": "consultation", "content": "离职后公积金怎么取出来"}
        ).order.id
    page = login("op").get(f"/orders/{order_id}").text
    assert f'data-testid="kb-why-{entry}">匹配词：公积金、离职</small>' in page


def test_a_similar_case_sharing_a_word_or_two_is_listed_but_not_offered_for_merging(org: dict[str, Any]) -> None:
    """受理并并入 is offered on a similar case only from ``merge_offer_min_score``: another problem at the same address,
    listed for sharing a few words (路灯 and 油烟 both 楼下…晚上), gets no button — a slip would merge a call into an
    unrelated order for good. The same case is offered when it is the same caller's (they may be calling about it)."""
    number, first_id = _fumes_reported()
    client = login("op")
    lamp = intake_form(client, content="楼下路口的路灯坏了，每天晚上一片漆黑，老人出门很不方便", address=FUMES_AT)
    panel = client.post("/intake/assist", data={**lamp, "citizen_phone": "13700001111"}).text
    similar = re.search(r'data-testid="similar">(.*?)</section>', panel, re.S)
    assert similar is not None and number in similar.group(1)  # listed: the operator sees it
    score = float(re.search(rf"{number}.*?相似度 ([0-9.]+)", similar.group(1), re.S).group(1))  # type: ignore[union-attr]
    assert 0 < score < get_dedupe_settings().merge_offer_min_score
    assert f'name="merge_into" value="{first_id}"' not in panel
    same_caller = client.post("/intake/assist", data={**lamp, "citizen_phone": "13911113333"}).text
    assert f'name="merge_into" value="{first_id}"' in same_caller


def test_a_callers_earlier_appeals_say_which_unit_has_them_and_by_when(org: dict[str, Any]) -> None:
    """A caller asking after their case (进度查询) is told at once who has it and by when it is due: 来电历史 beside
    the intake form names each earlier appeal's lead unit and, while a unit holds it, the time limit it runs on, marked
    超期 once it is over — the operator opened each order in a new tab to read them while the caller waited. One not
    dispatched yet runs on no limit and says none; the order page's list says the same, and the time each came in is
    labelled, not a second bare time beside the limit."""
    from datetime import UTC, datetime, timedelta

    from cityhub.workorders import service as orders
    from cityhub.workorders.lifecycle import Action
    from cityhub.workorders.models import Order, SlaStatus

    phone = "13911117777"
    with session_scope() as s:

        def appeal(text: str) -> int:
            data = {"channel": "hotline", "appeal_type": "complaint", "content": text, "citizen_phone": phone}
            return submit(s, data=data).order.id

        waiting = appeal("小区门口路灯不亮")
        held = appeal("楼下餐馆油烟很大")
        late = appeal("河道有污水排放")
        for order_id in (held, late):
            orders.act(s, order_id=order_id, action=Action.DISPATCH, params={"unit_id": org["streets"]["W-JT"]})
        overdue = s.get(Order, late)
        assert overdue is not None
        overdue.due_at, overdue.sla_status = datetime.now(UTC) - timedelta(hours=2), SlaStatus.OVERDUE
        s.flush()
        numbers = {i: s.get(Order, i).number for i in (waiting, held, late)}  # type: ignore[union-attr]
    client = login("op")
    history = client.post("/intake/caller", data=intake_form(client, citizen_phone=phone)).text
    items = {
        number: _text(item)
        for item in re.findall(r'<li data-testid="caller-earlier">(.*?)</li>', history, flags=re.S)
        for number in numbers.values()
        if number in item
    }
    assert set(items) == set(numbers.values()), history
    limit = re.compile(r"· 景泰街道 · 办结时限 \d{4}-\d\d-\d\d \d\d:\d\d")
    assert limit.search(items[numbers[held]]) and "超期" not in items[numbers[held]], items
    assert limit.search(items[numbers[late]]) and "超期" in items[numbers[late]], items
    assert "办结时限" not in items[numbers[waiting]] and "景泰街道" not in items[numbers[waiting]], items
    # beside the limit, the time each came in says what it is: two bare times side by side read alike
    assert all(re.search(r"· 受理于 \d{4}-\d\d-\d\d \d\d:\d\d$", item.strip()) for item in items.values()), items
    # The order page's 来电历史 lists them alike.
    page = client.get(f"/orders/{waiting}").text
    lines = [_text(li) for li in re.findall(r'<li data-testid="order-caller-earlier">(.*?)</li>', page, flags=re.S)]
    assert any(numbers[late] in line and limit.search(line) and "超期" in line for line in lines), lines


def test_a_safety_matter_is_pointed_out_with_the_urgency_to_take_it_at(org: dict[str, Any]) -> None:
    """A caller smelling gas on their stairs: the desk points out the words that make it a danger to people or
    property under the caller's words, with 特急 one button away, while the urgency is still 一般 — such calls were
    registered 一般 unless the operator remembered the urgency field at the form's end. Chosen, or for an ordinary
    complaint, nothing is said; a citizen, who chooses no urgency, is told nothing of it either."""
    gas = {"appeal_type": "help", "content": "楼道里很大煤气味，怀疑燃气泄漏，老人在家", "address": "景泰街道云景路1号"}
    client = login("op")
    panel = client.post("/intake/assist", data=intake_form(client, **gas)).text
    note = re.search(r'<div id="intake-safety" hx-swap-oob="innerHTML">(.*?)</div>', panel, flags=re.S)
    assert note is not None and "燃气泄漏、煤气味" in _text(note.group(1)), panel
    assert 'data-pick-urgency="critical"' in note.group(1) and "紧急程度设为特急" in note.group(1)
    for calm in ({**gas, "urgency": "critical"}, {**gas, "content": "小区门口的路灯坏了一个多月了"}):
        quiet = client.post("/intake/assist", data=intake_form(client, **calm)).text
        assert re.search(r'<div id="intake-safety" hx-swap-oob="innerHTML">\s*</div>', quiet), calm
    # A form posted back (查询建议) says it under the caller's words too.
    page = client.post("/intake", data=intake_form(client, preview="1", **gas)).text
    assert 'data-testid="safety"' in page and page.index('id="intake-safety"') < page.index('id="f-address"')
    citizen = login("cit")
    theirs = citizen.post("/intake/assist", data=intake_form(citizen, **gas)).text
    assert 'data-testid="safety"' not in theirs and "intake-safety" not in theirs


def test_a_danger_the_caller_denies_is_not_pointed_out(org: dict[str, Any]) -> None:
    """没有煤气味 and 不是着火 prompted 特急 as a gas leak and a fire did: a danger word right after a negation (through
    a word of seeing, or of someone: 没闻到, 没有人) is not pointed out. A question still is (是不是, 有没有: the caller
    does not know), and a danger said elsewhere in the call whatever was denied before it."""
    from cityhub.intake.service import safety_words

    denied = (
        "楼道里没有煤气味，就是楼上漏水渗到我家天花板",
        "不是着火，是隔壁烧烤店的油烟飘过来",
        "我没闻到煤气味，是下水道返臭",
        "电梯停在两层中间，里面没有人被困，请尽快派人维修",
        "家里并没有发现漏电，只是跳闸",
    )
    for text in denied:
        assert safety_words(text) == [], text
    said = {
        "闻到煤气味，不知道是不是泄漏": ["煤气味"],
        "不知道是不是着火了，楼上一直冒烟": ["着火"],
        "有没有煤气味我说不清，老人在家": ["煤气味"],
        "没闻到煤气味，但是厨房着火了": ["着火"],
        "电梯里有人被困，已经半个小时了": ["被困"],
    }
    for text, words in said.items():
        assert safety_words(text) == words, text
    client = login("op")
    panel = client.post("/intake/assist", data=intake_form(client, appeal_type="help", content=denied[0])).text
    assert re.search(r'<div id="intake-safety" hx-swap-oob="innerHTML">\s*</div>', panel), panel


def test_a_caller_asking_after_their_case_by_its_number_is_told_where_it_stands(org: dict[str, Any]) -> None:
    """A caller who reads out their order's number (BY…) asking how it stands: typed in the phone field, as the
    caller says it (lower case, spaces), the desk shows that order beside the form as 来电历史 lists one — its state,
    the unit that has it, its time limit — and the operator no longer leaves the form for 工单 → search. Within the
    operator's data scope: a street's operator is told of no order of another street's, as of a number none has."""
    from cityhub.workorders import service as orders
    from cityhub.workorders.lifecycle import Action

    number, first_id = _fumes_reported()
    with session_scope() as s:
        orders.act(s, order_id=first_id, action=Action.DISPATCH, params={"unit_id": org["streets"]["W-JT"]})
        from cityhub.auth import service as auth
        from cityhub.org.models import Role
        from cityhub.org.schemas import UserCreate
        from web_helpers import PASSWORD

        auth.create_account(
            s,
            data=UserCreate(username="op_jx", full_name="京溪话务", role=Role.OPERATOR, unit_id=org["streets"]["W-JX"]),
            password=PASSWORD,
        )
    client = login("op")
    typed = f"{number[:2].lower()} {number[2:]}"
    found = client.post("/intake/caller", data=intake_form(client, citizen_phone=typed)).text
    line = re.search(r'<li data-testid="order-asked-line">(.*?)</li>', found, flags=re.S)
    assert line is not None, found
    text = _text(line.group(1))
    assert number in text and f'href="/orders/{first_id}"' in line.group(1)
    assert re.search(r"· 已派单 · 景泰街道 · 办结时限 \d{4}-\d\d-\d\d \d\d:\d\d", text), text
    assert f"已找到工单 {number}" in found  # said once to a screen reader
    none = client.post("/intake/caller", data=intake_form(client, citizen_phone="BY20000101-999999")).text
    assert "没有找到工单 BY20000101-999999" in none and "order-asked-line" not in none
    other_street = login("op_jx")
    refused = other_street.post("/intake/caller", data=intake_form(other_street, citizen_phone=number)).text
    assert f"没有找到工单 {number}" in refused and "油烟" not in refused
    # a phone number is still a phone number
    history = client.post("/intake/caller", data=intake_form(client, citizen_phone="13911113333")).text
    assert 'data-testid="caller-earlier"' in history and "order-asked" not in history


def test_a_merged_appeal_in_the_callers_history_names_the_order_it_joined(org: dict[str, Any]) -> None:
    """来电历史 said 已合并 of a repeat call merged into the open order, not which order: the caller asking after it
    waited while the operator searched. It says 已并入 BY…, linked (a new tab from the form, the page's own link on
    the order's page)."""
    number, first_id = _fumes_reported()
    client = login("op")
    again = intake_form(
        client, content="楼下餐馆油烟很大，晚上排油烟，熏得窗户不敢开", citizen_phone="13911113333", address=FUMES_AT
    )
    assert client.post("/intake", data={**again, "merge_into": str(first_id)}).status_code == 200
    history = client.post("/intake/caller", data=intake_form(client, citizen_phone="13911113333")).text
    merged = re.search(r'<span data-testid="caller-merged-into">(.*?)</span>\s*·', history, flags=re.S)
    assert merged is not None, history
    assert f'href="/orders/{first_id}" target="_blank"' in merged.group(1) and f"已并入 {number}" in _text(
        merged.group(1)
    )
    page = client.get(f"/orders/{first_id}").text
    assert f'已并入 <a href="/orders/{first_id}">{number}</a>' in page


def test_an_order_number_left_in_the_phone_field_is_named_as_such_when_the_form_is_refused(org: dict[str, Any]) -> None:
    """The caller read out their order's number (looked up beside the form), then reported something new, and the
    operator sent the form with the number still in the phone field: the refusal said the phone must be digits only.
    It says the field holds order number BY… (linked, if the operator may open it) and asks for the caller's phone;
    nothing typed is lost. To an operator who may not open that order, the number is named and nothing linked."""
    number, first_id = _fumes_reported()
    with session_scope() as s:
        from cityhub.auth import service as auth
        from cityhub.org.models import Role
        from cityhub.org.schemas import UserCreate
        from web_helpers import PASSWORD

        auth.create_account(
            s,
            data=UserCreate(username="op_jx", full_name="京溪话务", role=Role.OPERATOR, unit_id=org["streets"]["W-JX"]),
            password=PASSWORD,
        )
    client = login("op")
    typed = f" {number[:2].lower()} {number[2:]}"
    form = intake_form(client, citizen_phone=typed, citizen_name="王先生", content="小区门口路灯坏了一个星期了")
    page = client.post("/intake", data=form)
    assert page.status_code == 422, page.status_code
    said = re.search(r'data-testid="field-error-citizen_phone">(.*?)</small>', page.text, flags=re.S)
    assert said is not None, page.text
    assert f"电话栏里填的是工单号 {number}" in _text(said.group(1)) and "来电人的电话" in _text(said.group(1))
    assert "digits" not in said.group(1) and "数字" not in said.group(1)
    link = re.search(r'<small data-testid="phone-order">(.*?)</small>', page.text, flags=re.S)
    assert link is not None and f'href="/orders/{first_id}" target="_blank"' in link.group(1)
    assert f"打开工单 {number}" in _text(link.group(1))
    for kept in ("王先生", "小区门口路灯坏了一个星期了", f'value="{typed}"'):
        assert kept in page.text, kept
    other_street = login("op_jx")
    theirs = other_street.post("/intake", data=intake_form(other_street, citizen_phone=number, content="路灯坏了"))
    said = re.search(r'data-testid="field-error-citizen_phone">(.*?)</small>', theirs.text, flags=re.S)
    assert said is not None and f"工单号 {number}" in _text(said.group(1))
    assert 'data-testid="phone-order"' not in theirs.text and f"/orders/{first_id}" not in theirs.text
    # a malformed phone number is still refused as one
    wrong = client.post("/intake", data=intake_form(client, citizen_phone="139-abc", content="路灯坏了")).text
    said = re.search(r'data-testid="field-error-citizen_phone">(.*?)</small>', wrong, flags=re.S)
    assert said is not None and "工单号" not in said.group(1)


def test_a_danger_the_caller_says_is_over_is_not_pointed_out(org: dict[str, Any]) -> None:
    """煤气味没有了 and 着火了，火已经灭了 prompted 特急 as a leak and a fire still burning did: a danger said to be
    over right after its word is not pointed out; one still there (火还没灭, 煤气味还没散) is."""
    client = login("op")
    for over in ("楼道里的煤气味没有了，想让燃气公司来查一下", "楼下饭店着火了，火已经灭了，消防通道一直被堵"):
        panel = client.post("/intake/assist", data=intake_form(client, appeal_type="help", content=over)).text
        assert re.search(r'<div id="intake-safety" hx-swap-oob="innerHTML">\s*</div>', panel), over
    for still in ("楼下饭店着火了，火还没灭", "煤气味还没散，老人在家"):
        panel = client.post("/intake/assist", data=intake_form(client, appeal_type="help", content=still)).text
        note = re.search(r'<div id="intake-safety" hx-swap-oob="innerHTML">(.*?)</div>', panel, flags=re.S)
        assert note is not None and 'data-pick-urgency="critical"' in note.group(1), still


def test_an_invalid_call_is_recorded_in_one_button_and_counted_on_the_dashboard(org: dict[str, Any]) -> None:
    """A caller who hung up, a prank, a wrong number: 清空，接下一个来电 discarded the form and nothing counted the
    call. One button of the kind (挂断, 无声, 骚扰, 打错, 转接其他热线, 其他) under the form records it — the phone if
    typed, the operator, the time — and opens the next call's form; the supervisor's dashboard counts the period's
    invalid calls per kind and per operator. No order is made; a citizen has no such button and may not post one."""
    from sqlalchemy import func, select

    from cityhub.intake.models import InvalidCall
    from cityhub.workorders.models import Order

    client = login("op")
    form = client.get("/intake").text
    buttons = re.search(r'data-testid="invalid-call">(.*?)</div>', form, flags=re.S)
    assert buttons is not None, form
    assert 'formaction="/intake/invalid" name="invalid_kind" value="hang_up"' in buttons.group(1)
    assert all(word in _text(buttons.group(1)) for word in ("无效来电", "挂断", "无声", "骚扰", "打错", "转接其他热线"))
    done = client.post(
        "/intake/invalid",
        data=intake_form(client, citizen_phone="139 1111 2222", content="喂？", invalid_kind="hang_up"),
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/intake"
    assert "已记录无效来电（挂断）" in client.get("/intake").text
    client.post("/intake/invalid", data=intake_form(client, invalid_kind="harassment"))
    client.post("/intake/invalid", data=intake_form(client, invalid_kind="hang_up", citizen_phone="BY20000101-000001"))
    refused = client.post("/intake/invalid", data=intake_form(client, invalid_kind="moon"), follow_redirects=False)
    assert refused.status_code == 422 and "请选择无效来电的类型" in refused.text
    citizen = login("cit")
    assert 'data-testid="invalid-call"' not in citizen.get("/intake").text
    theirs = citizen.post("/intake/invalid", data=intake_form(citizen, invalid_kind="hang_up"), follow_redirects=False)
    assert theirs.status_code == 403
    with session_scope() as s:
        calls = s.scalars(select(InvalidCall).order_by(InvalidCall.id)).all()
        assert [(c.kind, c.citizen_phone) for c in calls] == [
            ("hang_up", "13911112222"),
            ("harassment", None),
            ("hang_up", None),  # an order's number is no caller's phone
        ]
        assert {c.user_id for c in calls} == {s.scalar(select(User.id).where(User.username == "op"))}
        assert s.scalar(select(func.count(Order.id))) == 0
    board = login("sup").get("/dashboard").text
    section = re.search(r'<section data-testid="invalid-calls">(.*?)</section>', board, flags=re.S)
    assert section is not None, board
    assert "共 3 个" in _text(section.group(1))
    by_kind = re.search(r'data-testid="invalid-calls-by-kind">(.*?)</tr>', section.group(1), flags=re.S)
    assert by_kind is not None
    assert re.search(r'data-kind="hang_up"[^>]*>2<', by_kind.group(1)) and re.search(
        r'data-kind="harassment"[^>]*>1<', by_kind.group(1)
    )
    operator = re.search(r'data-testid="invalid-calls-operator"[^>]*>(.*?)</tr>', section.group(1), flags=re.S)
    assert (
        operator is not None
        and "王话务" in operator.group(1)
        and re.search(r'data-kind="hang_up"[^>]*>2<', operator.group(1))
    )
