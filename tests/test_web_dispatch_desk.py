"""A dispatcher's (派单员) morning on the queue, over the real app on both backends: what a dispatch from a
suggestion records, the category filter down to the subcategory worked, and an order the gazetteer could not place.

The organisation and accounts are the small world of ``web_helpers`` (disp: the district's dispatcher; hand_b:
京溪街道's handler); no classifier: the rules suggest (环境保护 → the order's own street).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope, utcnow
from cityhub.dispatch.models import DispatchSuggestion
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Category, Order, OrderEvent
from web_helpers import act_on, hidden, login, small_world


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    world = small_world(tmp_path, monkeypatch)
    return {"street_a": world.street_a, "street_b": world.street_b, "cats": world.cats}


def _order(street: str | None = "W-JT", **extra: Any) -> Order:
    data = {"channel": "hotline", "content": "小区楼下餐馆油烟排放严重，噪音扰民", **extra}
    if street:
        data["street_code"] = street
    with session_scope() as s:
        order = submit(s, data=data).order
        s.flush()
        s.expunge(order)
        return order


def _dispatch_reason(order_id: int) -> str | None:
    with session_scope() as s:
        [event] = s.query(OrderEvent).filter_by(order_id=order_id, action=Action.DISPATCH.value).all()
        return event.reason


def _item(queue: str, number: str) -> str:
    found = re.search(rf'data-number="{number}".*?</article>', queue, flags=re.S)
    assert found is not None, number
    return found.group(0)


def _shown_reasons(item: str) -> list[str]:
    return [unescape(r) for r in re.findall(r'<small class="reasons">(.*?)</small>', item)]


def test_a_dispatch_from_a_suggestion_records_the_reason_the_queue_showed_which_the_page_no_longer_posts(
    org: dict[str, Any],
) -> None:
    """Each suggestion's reason rode in two hidden fields (its 派至 button's, 批量派单's), most of a queue page's
    weight: the page now says only that a suggestion was taken, and the dispatch records the reason read again as
    the page showed it — the rules' reasons for that unit, or the returning unit's word (退单单位建议)."""
    env = org["cats"]["环境保护"]
    one, ticked = _order(category_id=env), _order(category_id=env, content="工地夜间施工噪音扰民")
    back = _order("W-JX", category_id=env)
    disp = login("disp")
    assert act_on(disp, back.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    returned = act_on(login("hand_b"), back.id, "return", reason="非本辖区", suggest_unit_id=str(org["street_a"]))
    assert returned.status_code == 303
    queue = disp.get("/queue").text
    assert not re.search(r'<input type="hidden"( form="bulk-dispatch")? name="reason(_\d+_\d+)?"', queue)  # none posted
    shown = _shown_reasons(_item(queue, one.number))
    assert len(shown) == 1 and re.match(r"规则 #\d+「", shown[0]), shown

    form = re.search(rf'<form method="post" action="/orders/{one.id}/act/dispatch".*?</form>', queue, re.S)
    assert form is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["reason_of"] == "suggestion" and "reason" not in fields
    assert disp.post(f"/orders/{one.id}/act/dispatch", data=fields, follow_redirects=False).status_code == 303
    assert _dispatch_reason(one.id) == shown[0]

    offer = re.search(rf'<form [^>]*data-testid="returner-suggestion-{back.number}".*?</form>', queue, re.S)
    assert offer is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', offer.group(0)))
    assert disp.post(f"/orders/{back.id}/act/dispatch", data=fields, follow_redirects=False).status_code == 303
    with session_scope() as s:
        events = (
            s.query(OrderEvent).filter_by(order_id=back.id, action=Action.DISPATCH.value).order_by(OrderEvent.id).all()
        )  # in order: without it PostgreSQL may hand the first dispatch (no reason) last
        assert events[-1].reason == "退单单位建议：景泰街道"

    # 批量派单 to the suggestion chosen: the same reason, nothing posted but the choice.
    ticked_shown = _shown_reasons(_item(queue, ticked.number))
    pick = re.search(rf'name="pick" value="([^"]+)" data-testid="pick-{ticked.number}"', queue)
    assert pick is not None
    bulk = {"csrf_token": hidden(queue), "pick": [pick.group(1)], f"unit_{ticked.id}": org["street_a"]}
    assert "已派出 1 件工单" in disp.post("/queue/dispatch", data=bulk, follow_redirects=True).text
    assert _dispatch_reason(ticked.id) == ticked_shown[0]

    # Only a suggestion's reason is read again: one typed (a page of before, the manual dispatch) is recorded as
    # written, and a unit none of the suggestions names borrows none.
    typed, other = _order(category_id=env), _order(category_id=env)
    sent = act_on(disp, typed.id, "dispatch", unit_id=str(org["street_a"]), reason="核实在景泰", reason_of="suggestion")
    assert sent.status_code == 303 and _dispatch_reason(typed.id) == "核实在景泰"
    sent = act_on(disp, other.id, "dispatch", unit_id=str(org["street_b"]), reason_of="suggestion")
    assert sent.status_code == 303 and _dispatch_reason(other.id) is None


def test_a_wide_screen_gets_the_reasons_open_without_app_js(org: dict[str, Any]) -> None:
    """推荐理由和派单依据 were sent folded and opened by app.js on a wide screen: without it (blocked, failed to load) a
    dispatcher at 1440 × 900 read no reason without a click per order. Sent open; app.js folds them on a phone."""
    order = _order(category_id=org["cats"]["环境保护"])
    item = _item(login("disp").get("/queue").text, order.number)
    fold = re.search(r"<details [^>]*data-testid=\"why\"[^>]*>", item)
    assert fold is not None and " open" in fold.group(0) and "data-fold-narrow" in fold.group(0)


def test_the_queue_is_narrowed_to_a_subcategory_read_as_it_shows_each_orders_category(org: dict[str, Any]) -> None:
    """The filter offered the first level alone (环境保护, with everything under it): a dispatcher working 大气污染
    could not choose it. Under each first level the subcategories orders wait in are offered, with how many wait —
    counting, and matching, the category the queue shows: the order's, else the one its waiting decision read (the
    classifier's, not written to the order until it is dispatched)."""
    env = org["cats"]["环境保护"]
    with session_scope() as s:
        air = Category(code="W-AIR", name="大气污染", level=2, parent_id=env, path="环境保护/大气污染")
        water = Category(code="W-WATER", name="水污染", level=2, parent_id=env, path="环境保护/水污染")
        idle = Category(code="W-SOIL", name="土壤污染", level=2, parent_id=env, path="环境保护/土壤污染")
        s.add_all([air, water, idle])
        s.flush()
        ids = {"air": air.id, "water": water.id, "idle": idle.id}
    fumes = _order(category_id=ids["air"])
    river = _order(category_id=ids["water"], content="河道有污水直排")
    read = _order(content="楼下烧烤油烟熏人")  # no category set: its decision read it as 大气污染
    with session_scope() as s:
        s.add(
            DispatchSuggestion(
                order_id=read.id,
                decided_at=utcnow(),
                reason="category predicted",
                candidates=[],
                place={"category_id": ids["air"], "category_source": "model"},
            )
        )
    disp = login("disp")
    page = disp.get("/queue").text
    choices = re.search(r'<select id="queue-category".*?</select>', page, re.S)
    assert choices is not None
    offered = [unescape(o) for o in re.findall(r"<option value=\"\d+\"[^>]*>(.*?)</option>", choices.group(0))]
    assert "环境保护（3）" in offered and "环境保护/大气污染（2）" in offered and "环境保护/水污染（1）" in offered
    assert offered.index("环境保护（3）") < offered.index("环境保护/大气污染（2）")
    assert not any("土壤污染" in o for o in offered)  # none waits in it

    def numbers(**params: str) -> set[str]:
        found = disp.get("/queue", params=params)
        assert found.status_code == 200
        return set(re.findall(r'data-testid="queue-item" data-number="([^"]+)"', found.text))

    assert numbers(category_id=str(ids["air"])) == {fumes.number, read.number}
    assert numbers(category_id=str(ids["water"])) == {river.number}
    assert numbers(category_id=str(env)) == {fumes.number, river.number, read.number}
    chosen = disp.get("/queue", params={"category_id": str(ids["idle"])}).text  # chosen, none waits: still offered
    assert re.search(rf'<option value="{ids["idle"]}" selected>环境保护/土壤污染</option>', chosen)
    with session_scope() as s:  # dispatched: its decision no longer counts
        orders.act(s, order_id=fumes.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    assert numbers(category_id=str(ids["air"])) == {read.number}


def test_an_unplaced_order_says_the_address_it_could_not_place_and_leads_to_setting_the_place(
    org: dict[str, Any],
) -> None:
    """An imported 三元里大道88号 the gazetteer does not know: the queue said 地点：未识别 and nothing of the address.
    It says the address that was not placed, what that costs (no rule by place applies), and links to the order
    page's place correction, which offers to teach the address."""
    lost = _order(None, category_id=org["cats"]["环境保护"], address="三元里大道88号")
    bare = _order(None, category_id=org["cats"]["环境保护"])
    placed = _order(category_id=org["cats"]["环境保护"])
    queue = login("disp").get("/queue").text
    said = re.search(r'data-testid="decision-place"><small>(.*?)</small>', _item(queue, lost.number), re.S)
    assert said is not None
    assert "地点：未识别，所填地址「三元里大道88号」未能定位" in unescape(said.group(1)) and "按属地" in said.group(1)
    link = re.search(r'<a href="([^"]+)" data-testid="place-set-[^"]+">设定地点</a>', said.group(1))
    assert link is not None and link.group(1) == f"/orders/{lost.id}#place-form"
    assert "地点：未识别，工单未填地址" in _item(queue, bare.number)
    assert "设定地点" not in _item(queue, placed.number)
    page = login("disp").get(f"/orders/{lost.id}").text
    assert 'id="place-form"' in page and 'value="三元里大道"' in page  # the alias to teach offered there


def test_a_repeat_callers_other_appeals_are_in_sight_on_the_queue_and_the_orders_page(org: dict[str, Any]) -> None:
    """ "上周反映的油烟还没解决": whether the caller appealed before, and which unit had it, was shown to the operator
    at intake only. The queue marks a repeat caller (同一号码另有 N 件, however the number was written) and the
    order's page lists their other appeals with state and unit — for who reads citizens' numbers, not a handler."""
    env = org["cats"]["环境保护"]
    first = _order(category_id=env, citizen_phone="13912345678", content="楼下餐馆油烟直排")
    with session_scope() as s:
        orders.act(s, order_id=first.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    again = _order(category_id=env, citizen_phone="+8613912345678", content="上周反映的餐馆油烟还没解决")
    alone = _order(category_id=env, citizen_phone="13700000000")
    disp = login("disp")
    queue = disp.get("/queue").text
    badge = re.search(rf'data-testid="caller-again-{again.number}"[^>]*>(.*?)</a>', queue)
    assert badge is not None and badge.group(1) == "同一号码另有 1 件"
    assert f"caller-again-{alone.number}" not in queue
    page = disp.get(f"/orders/{again.id}").text
    history = re.search(r'data-testid="order-caller-history">(.*?)</div>', page, re.S)
    assert history is not None
    said = unescape(re.sub(r"<[^>]+>", "", history.group(1)))
    assert said.startswith("该号码的其他诉求（共 1 件）：")
    assert f"{first.number} 楼下餐馆油烟直排 · 已派单 · 景泰街道 · " in said
    assert again.number not in said  # not the order itself
    assert "该号码没有其他诉求。" in disp.get(f"/orders/{alone.id}").text
    assert 'data-testid="order-caller-history"' not in login("hand_a").get(f"/orders/{first.id}").text


def test_each_suggestion_says_what_its_unit_holds_now(org: dict[str, Any]) -> None:
    """Choosing between units, a dispatcher weighs how much each holds and how much of it is late: each suggestion
    says the open orders its unit leads and how many are overdue, on the queue and on the order's page."""
    from cityhub.workorders.models import SlaStatus

    env = org["cats"]["环境保护"]
    held = [_order(category_id=env) for _ in range(2)]
    with session_scope() as s:
        for order in held:
            orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
        late = s.get(Order, held[0].id)
        assert late is not None
        late.sla_status = SlaStatus.OVERDUE
    waiting = _order(category_id=env)
    other = _order("W-JX", category_id=env)
    disp = login("disp")
    queue = disp.get("/queue").text
    load = re.search(r'data-testid="unit-load">(.*?)</small>', _item(queue, waiting.number))
    assert load is not None and load.group(1) == "· 该单位在办 2 件，其中超期 1 件"
    load = re.search(r'data-testid="unit-load">(.*?)</small>', _item(queue, other.number))
    assert load is not None and load.group(1) == "· 该单位在办 0 件"  # 京溪街道 holds nothing
    page = disp.get(f"/orders/{waiting.id}").text
    assert 'data-testid="unit-load">· 该单位在办 2 件，其中超期 1 件</small>' in page


def test_a_duplicate_is_merged_from_its_line_without_copying_its_number(org: dict[str, Any]) -> None:
    """合并 asked for the master's number, typed or copied from the 可能重复 list above it: each open duplicate and
    similar case now has 合并到此单, which opens the merge form with its number in it — sent after reading it."""
    env = org["cats"]["环境保护"]
    first = _order(category_id=env, content="景泰街道云景路12号楼下餐馆油烟直排，熏得窗户都不能开")
    second = _order(category_id=env, content="景泰街道云景路12号楼下餐馆油烟直排，熏得窗户都不能开，请处理")
    disp = login("disp")
    page = disp.get(f"/orders/{second.id}").text
    link = re.search(rf'<a href="([^"]+)" data-testid="merge-into-{first.number}">合并到此单</a>', page)
    assert link is not None
    opened = disp.get(unescape(link.group(1))).text
    form = re.search(r'<details open data-testid="action-merge">.*?</form>', opened, re.S)
    assert form is not None and f'name="master_id" value="{first.number}"' in form.group(0)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    merged = disp.post(f"/orders/{second.id}/act/merge", data=fields, follow_redirects=False)
    assert merged.status_code == 303
    with session_scope() as s:
        assert s.get(Order, second.id).master_order_id == first.id  # type: ignore[union-attr]
    assert "merge-into-" not in login("hand_a").get(f"/orders/{first.id}").text  # a handler merges nothing


def test_an_urgent_order_is_marked_in_the_queue(org: dict[str, Any]) -> None:
    """紧急 and 特急 orders looked like any other among the oldest-first queue: each is marked (a normal one not)."""
    env = org["cats"]["环境保护"]
    urgent = _order(category_id=env, urgency="urgent", content="燃气管道泄漏，闻到很浓的煤气味")
    critical = _order(category_id=env, urgency="critical", content="小区井盖缺失，已有小孩掉下去")
    normal = _order(category_id=env)
    queue = login("disp").get("/queue").text
    assert re.search(rf'data-testid="urgency-{urgent.number}">紧急</span>', queue)
    assert re.search(rf'data-testid="urgency-{critical.number}">特急</span>', queue)
    assert f"urgency-{normal.number}" not in queue


def test_sending_an_order_back_to_the_unit_that_returned_it_is_warned_of_needs_a_reason_and_is_said(
    org: dict[str, Any],
) -> None:
    """批量派单's unit for all (and the order page's 派单) sent a returned order straight back to the unit that had just
    returned it, without a word: the queue row warns of it, a dispatch back without a reason is refused and says why
    (the order stays in the queue), with one it goes, the result names it and the trail marks it 派回退单单位."""
    env = org["cats"]["环境保护"]
    first, second = _order("W-JX", category_id=env), _order("W-JX", category_id=env, content="工地夜间施工噪音扰民")
    disp, hand_b = login("disp"), login("hand_b")
    for order in (first, second):
        assert act_on(disp, order.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
        assert act_on(hand_b, order.id, "return", reason="非本辖区").status_code == 303
    queue = disp.get("/queue").text
    warning = re.search(r'data-testid="back-warning">([^<]*)<', _item(queue, first.number))
    assert warning is not None and "须说明理由" in warning.group(1), _item(queue, first.number)

    picks = [re.search(rf'name="pick" value="([^"]+)" data-testid="pick-{o.number}"', queue) for o in (first, second)]
    bulk: dict[str, Any] = {
        "csrf_token": hidden(queue),
        "pick": [p.group(1) for p in picks if p],
        "bulk_unit": str(org["street_b"]),
        "bulk_reason": "",
    }
    refused = disp.post("/queue/dispatch", data=bulk, follow_redirects=True).text
    assert "派回退回它的单位须说明理由" in refused and "已派出 0 件" in refused
    bulk["bulk_reason"] = "经核实属本街道辖区"
    done = disp.post("/queue/dispatch", data=bulk, follow_redirects=True).text
    said = re.search(r'data-testid="bulk-back">(.*?)</p>', done, re.S)
    assert said is not None and first.number in said.group(1) and second.number in said.group(1)

    third = _order("W-JX", category_id=env, content="路灯不亮")
    assert act_on(disp, third.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert act_on(hand_b, third.id, "return", reason="非本辖区").status_code == 303
    page = act_on(disp, third.id, "dispatch", unit_id=str(org["street_b"]))
    assert page.status_code == 422 and "派回须说明理由" in page.text
    assert act_on(disp, third.id, "dispatch", unit_id=str(org["street_b"]), reason="再核实").status_code == 303
    trail = hand_b.get(f"/orders/{third.id}").text
    assert 'data-testid="back-to-returner"' in trail and "再核实" in trail


def test_a_bulk_dispatch_is_one_notice_to_the_units_handler_naming_how_many(org: dict[str, Any]) -> None:
    """A bulk dispatch of 17 orders gave the handler 17 notices 已派至本单位: the unit's staff now read one, saying
    how many, leading to what they are to sign for."""
    env = org["cats"]["环境保护"]
    sent = [_order(category_id=env, content=f"小区楼下餐馆油烟排放严重，第{i}家") for i in range(3)]
    disp = login("disp")
    queue = disp.get("/queue").text
    picks = [re.search(rf'name="pick" value="([^"]+)" data-testid="pick-{o.number}"', queue) for o in sent]
    bulk = {"csrf_token": hidden(queue), "pick": [p.group(1) for p in picks if p], "bulk_unit": str(org["street_a"])}
    assert "已派出 3 件工单" in disp.post("/queue/dispatch", data=bulk, follow_redirects=True).text
    hand_a = login("hand_a")
    page = hand_a.get("/notices").text
    told = re.findall(r'<a href="(/notices/\d+)" data-testid="notice-link">([^<]*)</a>', page)
    assert [text for _, text in told] == ["3 件工单已批量派至本单位，请签收"], told
    assert hand_a.get(told[0][0], follow_redirects=False).headers["location"] == "/orders?to_accept=1&sort=due"
