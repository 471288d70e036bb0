"""What a district leader (领导) and a supervisor reading the same pages meet in the web UI, over the real app on both
backends: the instruction (批示) of a leader's assignment under the order's heading, the unit assessment's way to
the unit's orders and to the orders that lowered a rate, the dashboard's ranking offering a longer period when the
chosen one ranks nobody, and the hot topics' places in the reader's language (the small world of ``web_helpers``:
``lead`` the district's leader, ``sup`` its supervisor, ``disp`` its dispatcher, ``hand_a`` 景泰街道's handler)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.analytics import kpi
from cityhub.config import get_settings
from cityhub.db import session_scope, utcnow
from cityhub.intake.service import submit
from cityhub.org.models import User
from cityhub.workorders import service as orders
from cityhub.workorders.models import Order
from web_helpers import World, act_on, actor_of, login, small_world


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    return small_world(tmp_path, monkeypatch)


def _dispatched(world: World, title: str = "路灯不亮") -> dict[str, Any]:
    """An appeal on 景泰街道 dispatched to the street and accepted by its handler."""
    with session_scope() as s:
        order = submit(s, data={"channel": "hotline", "title": title, "content": "小区门口路灯不亮已经一周"}).order
        orders.act(
            s, order_id=order.id, action="dispatch", actor=actor_of(s, "disp"), params={"unit_id": world.street_a}
        )
        orders.act(s, order_id=order.id, action="accept", actor=actor_of(s, "hand_a"))
        return {"id": order.id, "number": order.number}


def _box(html: str, testid: str) -> str | None:
    found = re.search(rf'<p class="notice" data-testid="{testid}">(.*?)</p>', html, flags=re.S)
    return found.group(1) if found else None


def test_a_leaders_instruction_stands_under_the_orders_heading_while_it_is_open(world: World) -> None:
    """领导交办 with an instruction (批示): the unit doing it and the leader following it read what was asked, by whom,
    when and to which unit first thing on the order's page — it stood only in the trail, under the actions; gone
    once the order is answered, as an urge's is."""
    order = _dispatched(world)
    lead, hand = login("lead"), login("hand_a")
    assert _box(hand.get(f"/orders/{order['id']}").text, "assigned") is None
    assert act_on(lead, order["id"], "assign", reason="请街道主要负责人牵头，三天内办结").status_code == 303
    for client in (hand, lead):
        box = _box(client.get(f"/orders/{order['id']}").text, "assigned")
        assert box is not None
        assert "领导交办" in box and "请街道主要负责人牵头，三天内办结" in box and "刘领导" in box
        assert "交办至" not in box  # no unit named: the unit holding it does it
    # A second assignment to another unit names it.
    moved = act_on(lead, order["id"], "assign", unit_id=str(world.street_b), reason="改由京溪街道办理")
    assert moved.status_code == 303
    box = _box(lead.get(f"/orders/{order['id']}").text, "assigned")
    assert box is not None and "改由京溪街道办理" in box and "交办至 京溪街道" in box
    english = login("lead")
    english.cookies.set("cityhub_lang", "en")
    assert "Assigned by a leader" in (_box(english.get(f"/orders/{order['id']}").text, "assigned") or "")
    # Answered: the box goes (the reply is what the page shows then).
    with session_scope() as s:
        hand_b = s.scalars(select(User).where(User.username == "hand_b")).one()
        actor = orders.Actor(name=hand_b.full_name, user_id=hand_b.id, unit_id=hand_b.unit_id, role="handler")
        orders.act(s, order_id=order["id"], action="accept", actor=actor)
        reply = {"text": "已修复路灯，经现场核实恢复照明。"}
        orders.act(s, order_id=order["id"], action="reply", actor=actor, params=reply)
    assert _box(lead.get(f"/orders/{order['id']}").text, "assigned") is None


def test_a_units_drill_down_lists_what_counts_against_it_first_with_each_orders_title(world: World) -> None:
    """单位考核's drill-down listed a figure's orders by number alone, in the order counted: a leader looking for the
    5 unsatisfied callbacks among 59 read them all. The orders that count against the unit come first, marked 扣分
    — a miss where higher is better, a hit where lower is better (a 退单) — each with its title."""
    kept, returned = _dispatched(world, "路灯不亮"), _dispatched(world, "井盖缺失")
    with session_scope() as s:
        orders.act(
            s, order_id=returned["id"], action="return", actor=actor_of(s, "hand_a"), params={"reason": "非本街道"}
        )
    lead = login("lead")
    page = lead.get(f"/assessment/{world.street_a}", params={"kpi": "return_rate"}).text
    rows = re.findall(r'<tr data-order="(\d+)" data-hit="(\d)" data-against="(\d)">(.*?)</tr>', page, flags=re.S)
    assert [(int(o), hit, against) for o, hit, against, _ in rows] == [
        (returned["id"], "1", "1"),  # returned: the return rate's hit, against the unit — first
        (kept["id"], "0", "0"),
    ]
    assert "扣分" in rows[0][3] and "井盖缺失" in rows[0][3]
    assert "扣分" not in rows[1][3] and "路灯不亮" in rows[1][3]
    assert "扣分的 1 项排在前面" in page
    accepted = lead.get(f"/assessment/{world.street_a}", params={"kpi": "on_time_accept"}).text
    assert "没有扣分的工单" in accepted  # both signed for in time: a higher-is-better rate's hits are no loss


def test_a_units_assessment_leads_to_its_orders_and_back_to_the_ranking(world: World) -> None:
    """From a ranking to the unit's orders: 单位考核 links the period's orders and those open now — a street's where
    they are (its figures count its communities' too), as the order list's 镇街 criterion reads them — and, for an
    overseer, back to the dashboard's ranking of the same period; a unit's own staff have no ranking to go back to."""
    order = _dispatched(world, "路灯不亮")
    for username in ("lead", "sup"):
        page = login(username).get(f"/assessment/{world.street_a}", params={"period": "2026-Q4"}).text
        links = dict(re.findall(r'<a href="([^"]+)" data-testid="(unit-orders[-a-z]*|to-ranking)"', page))
        by_name = {name: href.replace("&amp;", "&") for href, name in links.items()}
        assert by_name["unit-orders"] == (
            f"/orders?street_id={world.street_a}&created_from=2026-10-01&created_to=2026-12-31"
        )
        assert by_name["unit-orders-open"] == f"/orders?street_id={world.street_a}&state=open"
        assert by_name["to-ranking"] == "/dashboard?period=2026-Q4#ranking"
    listed = login("lead").get(f"/orders?street_id={world.street_a}&state=open").text
    assert order["number"] in listed
    own = login("hand_a").get(f"/assessment/{world.street_a}").text
    assert 'data-testid="unit-orders-open"' in own and 'data-testid="to-ranking"' not in own


def test_an_empty_ranking_offers_the_quarter_and_the_year_in_one_click(world: World) -> None:
    """The dashboard's default period (the recent 30 days) ranks nobody on a district of a few thousand orders a
    year: the message named a quarter and a year as examples to type. It links the quarter and the year holding the
    period's end instead, at the ranking; a year's empty ranking offers no shorter period."""
    _dispatched(world)
    lead = login("lead")
    page = lead.get("/dashboard", params={"period": "2026-11"}).text
    longer = re.findall(r'<a href="([^"]+)" data-testid="ranking-longer">([^<]+)</a>', page)
    assert [(href, label) for href, label in longer][:2] == [
        ("/dashboard?period=2026-Q4#ranking", "2026-Q4"),
        ("/dashboard?period=2026#ranking", "2026"),
    ]
    assert "暂无排名，可改看更长的统计周期：<a" in page
    quarter = lead.get("/dashboard", params={"period": "2026-Q4"}).text
    assert re.findall(r'data-testid="ranking-longer">([^<]+)<', quarter)[:1] == ["2026"]
    year = lead.get("/dashboard", params={"period": "2026"}).text
    assert 'data-testid="ranking-longer"' not in year and 'data-testid="ranking-none"' in year


def test_a_leaders_instruction_is_written_in_a_box_of_several_lines(world: World) -> None:
    """领导交办's 交办意见 is the leader's instruction (批示), sentences: it was a one-line field, which showed a phone
    some fifteen characters of what was typed. A box of several lines; other actions' reasons stay one line."""
    order = _dispatched(world)
    page = login("lead").get(f"/orders/{order['id']}").text
    form = page.split('data-testid="action-assign"')[1].split("</details>")[0]
    assert re.search(r'<textarea id="[^"]*" name="reason" rows="4"', form)
    urge = page.split('data-testid="action-urge"')[1].split("</details>")[0]
    assert re.search(r'<input id="[^"]*" name="reason"', urge)


def _today() -> date:
    return utcnow().astimezone(get_settings().tz).date()


def test_a_leader_gives_a_deadline_with_an_assignment_shown_to_the_unit_and_flagged_once_passed(world: World) -> None:
    """领导交办's 限期办结: a day chosen in the 交办 form (a date field from today on) stands under the order's heading
    for the unit and the leader and as a badge in 领导交办; once the day is over with the order open, both say 逾期."""
    order = _dispatched(world)
    lead, hand = login("lead"), login("hand_a")
    form = lead.get(f"/orders/{order['id']}").text.split('data-testid="action-assign"')[1].split("</details>")[0]
    assert re.search(rf'<input id="[^"]*" name="deadline" type="date" value="" min="{_today().isoformat()}"', form)
    too_early = act_on(lead, order["id"], "assign", reason="限期办结", deadline=str(_today() - timedelta(days=1)))
    assert too_early.status_code == 422 and 'aria-invalid="true"' in too_early.text.split('name="deadline"')[1][:200]
    no_day = act_on(lead, order["id"], "assign", reason="限期办结", deadline="下周")  # a browser without a date picker
    assert (
        no_day.status_code == 422 and 'data-testid="field-error-deadline">请输入有效日期（年-月-日）。<' in no_day.text
    )
    day = _today() + timedelta(days=2)
    assert act_on(lead, order["id"], "assign", reason="请两天内办结", deadline=day.isoformat()).status_code == 303
    for client in (hand, lead):
        box = _box(client.get(f"/orders/{order['id']}").text, "assigned")
        assert box is not None and f"限期办结：{day.isoformat()}" in box and 'data-testid="assign-overdue"' not in box
    listed = lead.get("/orders", params={"state": "open", "leader_assigned": "1", "sort": "due"}).text
    assert re.search(rf'<span class="badge" data-testid="assign-deadline">限期 {day.isoformat()}</span>', listed)
    trail = lead.get(f"/orders/{order['id']}").text  # the trail keeps the day given with the 交办
    assert f'<div data-testid="event-deadline">限期办结：{day.isoformat()}</div>' in trail
    with session_scope() as s:  # the day is over
        s.get(Order, order["id"]).assign_deadline = _today() - timedelta(days=1)  # type: ignore[union-attr]
    box = _box(hand.get(f"/orders/{order['id']}").text, "assigned")
    assert box is not None and '<span class="badge sla-overdue" data-testid="assign-overdue">逾期</span>' in box
    listed = lead.get("/orders", params={"state": "open", "leader_assigned": "1", "sort": "due"}).text
    assert re.search(r'<span class="badge sla-overdue" data-testid="assign-deadline">限期 [-0-9]+、逾期</span>', listed)
    english = login("lead")
    english.cookies.set("cityhub_lang", "en")
    assert "Overdue" in (_box(english.get(f"/orders/{order['id']}").text, "assigned") or "")


def test_a_leader_finds_the_orders_they_assigned_once_answered_in_a_tab_of_their_own(world: World) -> None:
    """An answered order leaves 领导交办 (open orders): 交办已答复 lists the assigned orders answered or closed, the
    last answered first, so the leader checks the outcome."""
    order = _dispatched(world)
    lead = login("lead")
    assert act_on(lead, order["id"], "assign", reason="请尽快办结").status_code == 303
    page = lead.get("/orders", params={"state": "open", "leader_assigned": "1", "sort": "due"}).text
    tab = re.search(r'<a href="([^"]+)"[^>]*>交办已答复', page)
    assert tab is not None and tab.group(1).replace("&amp;", "&") == (
        "/orders?state=answered&leader_assigned=1&assigned_mine=1&sort=answered"
    )
    with session_scope() as s:
        orders.act(s, order_id=order["id"], action="reply", actor=actor_of(s, "hand_a"), params={"text": "已修复路灯"})
    done = lead.get(tab.group(1).replace("&amp;", "&")).text
    assert order["number"] in done
    still_open = lead.get("/orders", params={"state": "open", "leader_assigned": "1", "sort": "due"}).text
    assert order["number"] not in still_open
    # The leaders' own tab: the centre (supervisors, administrators) follows 交办 open under 领导交办, and an eleventh
    # tab wrapped an administrator's bar at 1440 px.
    for who in ("sup", "adm"):
        centre = login(who).get("/orders").text
        assert "领导交办" in centre and "交办已答复" not in centre, who


def test_answered_assignments_are_the_leaders_own_first_with_every_leaders_one_click_away(world: World) -> None:
    """交办已答复 listed every leader's 交办: a leader wants their own first. Its tab lists what the reader assigned,
    says so above the list, and leads to every leader's (and back); the centre's lists have no such line."""
    from cityhub.auth import service as auth
    from cityhub.org.models import Role
    from cityhub.org.schemas import UserCreate
    from web_helpers import PASSWORD

    with session_scope() as s:
        auth.create_account(
            s,
            data=UserCreate(username="lead2", full_name="孙领导", role=Role.LEADER, unit_id=world.district),
            password=PASSWORD,
        )
    mine, theirs = _dispatched(world, "路灯不亮"), _dispatched(world, "井盖缺失")
    lead, other = login("lead"), login("lead2")
    assert act_on(lead, mine["id"], "assign", reason="请尽快办结").status_code == 303
    assert act_on(other, theirs["id"], "assign", reason="请三天内办结").status_code == 303
    with session_scope() as s:
        for order in (mine, theirs):
            orders.act(s, order_id=order["id"], action="reply", actor=actor_of(s, "hand_a"), params={"text": "已修复"})

    def tab_of(page: str) -> str:
        found = re.search(r'<a href="([^"]+)"[^>]*>交办已答复', page)
        assert found is not None
        return found.group(1).replace("&amp;", "&")

    own = lead.get(tab_of(lead.get("/orders").text)).text
    assert mine["number"] in own and theirs["number"] not in own
    line = re.search(r'<p class="filter-chip" data-testid="assigned-scope">(.*?)</p>', own, re.S)
    assert line is not None and "只列出我交办的" in line.group(1), own
    every = re.search(r'<a href="([^"]+)" data-testid="assigned-other">查看全部领导的交办</a>', line.group(1))
    assert every is not None
    everything = lead.get(every.group(1).replace("&amp;", "&")).text
    assert mine["number"] in everything and theirs["number"] in everything
    back = re.search(r'<a href="([^"]+)" data-testid="assigned-other">只看我交办的</a>', everything)
    assert back is not None and "列出全部领导的交办" in everything
    assert theirs["number"] not in lead.get(back.group(1).replace("&amp;", "&")).text
    # The API's list takes the same criterion.
    answered = [("state", s) for s in ("replied", "called_back", "closed_resolved", "closed_unresolved")]
    listed = lead.get("/api/v1/orders", params=[("assigned_mine", "true"), *answered, ("sort", "answered")])
    assert listed.status_code == 200, listed.text
    assert [o["number"] for o in listed.json()["items"]] == [mine["number"]]
    # The other leader's tab is theirs.
    others = other.get(tab_of(other.get("/orders").text)).text
    assert theirs["number"] in others and mine["number"] not in others
    # 领导交办 (open) stays every leader's, without the line; the centre's lists have none.
    assert 'data-testid="assigned-scope"' not in lead.get("/orders?state=open&leader_assigned=1&sort=due").text
    supervised = login("sup").get("/orders?state=answered&leader_assigned=1&sort=answered").text
    assert 'data-testid="assigned-scope"' not in supervised
    assert mine["number"] in supervised and theirs["number"] in supervised


def test_the_ranking_shows_the_rates_the_score_is_made_of_and_the_costliest_in_bold(world: World) -> None:
    """考核排名 showed 承办量 and the score: beside them each component rate (hover: numerator/denominator and the
    points it costs), the one costing the unit most in bold, so a leader sees why a unit ranks low."""
    with session_scope() as s:
        for i in range(31):
            order = submit(
                s, data={"channel": "hotline", "title": f"路灯不亮{i}", "content": "小区门口路灯不亮已经一周"}
            ).order
            orders.act(
                s, order_id=order.id, action="dispatch", actor=actor_of(s, "disp"), params={"unit_id": world.street_a}
            )
            if i % 3:
                orders.act(s, order_id=order.id, action="accept", actor=actor_of(s, "hand_a"))
            else:
                orders.act(
                    s, order_id=order.id, action="return", actor=actor_of(s, "hand_a"), params={"reason": "非本单位"}
                )
    period = _today().strftime("%Y-%m")
    page = login("lead").get("/dashboard", params={"period": period}).text
    streets = page.split('data-testid="ranking-street"')[1].split("</table>")[0]
    heads = re.findall(r'<th data-kpi="([a-z_]+)"[^>]*>([^<]+)</th>', streets)
    assert [name for name, _ in heads] == [k.name for k in kpi.KPIS]
    assert ("return_rate", "退单率") in heads and ("satisfaction", "满意率") in heads
    row = streets.split('data-testid="ranking-row"')[1]
    returned = re.search(r'<td class="num" data-kpi="return_rate" title="([^"]+)">(.*?)</td>', row)
    assert returned is not None and returned.group(1).startswith("11/31，扣 ")
    assert '<strong class="drag" data-testid="drag">' in returned.group(2)  # the rate costing it most
    assert re.search(r'<td class="num" data-kpi="satisfaction">—</td>', row)  # no callback yet: nothing to count
    assert 'class="table-wrap"' in page.split('data-testid="ranking-street"')[1][:200]
