"""消息 in the web UI, over the real app on both backends: the bell in the header counts the reader's unread notices
(99+ past the cap), the 消息 page lists them newest first, opening one marks it read and leads to its order,
全部标为已读 marks the rest — without a script (the small world of ``web_helpers``: hand_a is 景泰街道's handler,
disp the district's dispatcher, sup its supervisor)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.notify import notices
from cityhub.notify.models import NoticeKind, UserNotice
from cityhub.org.models import User
from cityhub.workorders import service as orders
from web_helpers import actor_of, login, small_world


@pytest.fixture
def urged(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """An appeal on 景泰街道 dispatched to the street by the dispatcher, accepted, then urged by the supervisor."""
    world = small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        order = submit(s, data={"channel": "hotline", "title": "路灯不亮", "content": "小区门口路灯不亮已经一周"}).order
        orders.act(
            s, order_id=order.id, action="dispatch", actor=actor_of(s, "disp"), params={"unit_id": world.street_a}
        )
        orders.act(s, order_id=order.id, action="accept", actor=actor_of(s, "hand_a"))
        orders.act(s, order_id=order.id, action="urge", actor=actor_of(s, "sup"), params={"reason": "市民再次来电"})
        return {"id": order.id, "number": order.number}


def _bell(html: str) -> str:
    found = re.search(r'<a href="/notices" class="bell".*?</a>', html, flags=re.S)
    assert found is not None, "no bell in the header"
    return found.group(0)


def test_the_bell_counts_the_page_lists_and_opening_marks_read(urged: dict[str, Any]) -> None:
    hand = login("hand_a")
    home = hand.get("/orders")
    bell = _bell(home.text)
    assert 'data-testid="bell-count" aria-hidden="true">2<' in bell and "2 条未读消息" in bell

    page = hand.get("/notices")
    assert page.status_code == 200
    items = re.findall(r'data-testid="notice" data-kind="(\w+)" data-read="(\w+)"', page.text)
    assert items == [("urged", "false"), ("dispatched", "false")]  # newest first, both unread
    number = urged["number"]
    assert (
        f"工单 {number}「路灯不亮」被催办" in page.text
        and f"工单 {number}「路灯不亮」已派至本单位，请签收" in page.text
    )
    assert "理由：市民再次来电" in page.text and "陈督办" in page.text

    with session_scope() as s:
        first = s.scalars(select(UserNotice).where(UserNotice.kind == "urged")).one()
    opened = hand.get(f"/notices/{first.id}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/orders/{urged['id']}"
    after = hand.get("/notices?show=unread").text
    assert re.findall(r'data-kind="(\w+)" data-read="false"', after) == ["dispatched"]
    assert 'aria-hidden="true">1<' in _bell(after)

    # Another's notice is no page of theirs.
    other = login("hand_b")
    assert other.get(f"/notices/{first.id}", follow_redirects=False).status_code == 404
    assert 'data-testid="bell-count"' not in _bell(other.get("/notices").text)  # nothing for them: no count

    done = hand.post(
        "/notices/read-all",
        data={"csrf_token": hand.cookies["cityhub_csrf"], "next": "/notices"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/notices"
    page = hand.get("/notices").text
    assert "已将 1 条消息标为已读" in page and 'data-read="false"' not in page
    assert 'data-testid="bell-count"' not in _bell(page) and 'data-testid="read-all"' not in page
    assert hand.post("/notices/read-all", data={"next": "/notices"}, follow_redirects=False).status_code == 403
    # A citizen's pages have no bell: notices are the staff's.
    assert 'data-testid="bell"' not in login("cit").get("/orders").text


def test_the_bell_says_99_plus_past_the_cap(urged: dict[str, Any]) -> None:
    with session_scope() as s:
        hand = actor_of(s, "hand_a")
        for _ in range(120):
            notices.notify(
                s, kind=NoticeKind.URGED, recipients=User.id == hand.user_id, actor_id=None, order_id=urged["id"]
            )
    client = login("hand_a")
    bell = _bell(client.get("/notices").text)
    assert 'aria-hidden="true">99+<' in bell and "99 条以上未读消息" in bell
    english = client.get("/lang/en?next=/notices", follow_redirects=True).text
    assert "more than 99 unread notices" in _bell(english)
    assert f'Order {urged["number"]} "路灯不亮" was urged' in unescape(english)


def test_a_get_of_read_all_leads_to_the_notices_page(urged: dict[str, Any]) -> None:
    """全部标为已读 is a form's POST; its address asked for by GET (a bookmark) is the notices page, not an error
    about a notice id — as another POST-only address of the pages answers (/rules/thresholds)."""
    hand = login("hand_a")
    got = hand.get("/notices/read-all", follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == "/notices"
    assert 'data-read="false"' in hand.get("/notices").text  # nothing marked read by it


def test_a_notice_of_an_order_moved_to_another_unit_says_so_instead_of_a_404(
    app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An order on 京溪街道 sent to 景泰街道 by mistake, urged there, then passed on to 京溪街道: 景泰街道's handler
    no longer reads it, and opening its notice says so (中文 first) rather than the order page's bare 404."""
    small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        data = {"channel": "hotline", "title": "路灯不亮", "content": "小区门口路灯不亮已经一周", "street_code": "W-JX"}
        order = submit(s, data=data).order
        urged = {"id": order.id, "number": order.number}
        disp, street_a = actor_of(s, "disp"), small_world_street(s, "W-JT")
        orders.act(s, order_id=order.id, action="dispatch", actor=disp, params={"unit_id": street_a})
        orders.act(s, order_id=order.id, action="urge", actor=actor_of(s, "sup"), params={"reason": "市民再次来电"})
        orders.act(
            s,
            order_id=order.id,
            action="transfer",
            actor=disp,
            params={"unit_id": small_world_street(s, "W-JX"), "reason": "属京溪街道辖区"},
        )
        first = s.scalars(select(UserNotice).where(UserNotice.kind == "urged")).one()
    hand = login("hand_a")
    listed = hand.get("/notices").text
    assert listed.count('data-testid="notice-moved-badge"') == 2  # both its notices: no longer theirs to open
    opened = hand.get(f"/notices/{first.id}", follow_redirects=False)
    assert opened.status_code == 403, opened.text
    assert "该工单已转由其他单位办理，您已无权查看" in opened.text and 'href="/notices"' in opened.text
    assert f"工单 {urged['number']}「路灯不亮」被催办" in opened.text  # which notice it was
    assert hand.get(f"/orders/{urged['id']}").status_code == 404  # the order itself stays out of their scope
    assert 'data-kind="urged" data-read="true"' in hand.get("/notices").text  # opened: read
    # The unit it went to opens its own notice of it.
    other = login("hand_b")
    with session_scope() as s:
        theirs = s.scalars(select(UserNotice).where(UserNotice.kind == "transferred")).one()
    assert other.get(f"/notices/{theirs.id}", follow_redirects=False).headers["location"] == f"/orders/{urged['id']}"


def small_world_street(s: Any, code: str) -> int:
    from cityhub.org.models import Unit

    return s.scalar(select(Unit.id).where(Unit.code == code))


def test_a_bulk_urge_is_one_notice_per_reader_leading_to_the_units_urged_orders(urged: dict[str, Any]) -> None:
    """批量催办 of three orders of 景泰街道 and one of 京溪街道: 景泰街道's handler is told once, of three orders (not
    three times), and the notice leads to their unit's urged open orders; 京溪街道's of its one order, as a 催办."""
    with session_scope() as s:
        disp = actor_of(s, "disp")
        ids = []
        for code in ("W-JT", "W-JT", "W-JX"):
            order = submit(s, data={"channel": "hotline", "title": "井盖缺失", "content": "人行道井盖缺失很危险"}).order
            orders.act(
                s, order_id=order.id, action="dispatch", actor=disp, params={"unit_id": small_world_street(s, code)}
            )
            ids.append(order.id)
        s.execute(UserNotice.__table__.delete())  # the notices of the setup: only the urge's below
    sup = login("sup")
    picks = [urged["id"], *ids]
    done = sup.post(
        "/orders/urge",
        data={"csrf_token": sup.cookies["cityhub_csrf"], "pick": [str(i) for i in picks], "reason": "今天务必答复"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    with session_scope() as s:
        rows = s.scalars(select(UserNotice).order_by(UserNotice.id)).all()
        told = {(r.user_id, r.kind, r.order_id) for r in rows}
        hand_a, hand_b = actor_of(s, "hand_a").user_id, actor_of(s, "hand_b").user_id
        bulk = next(r for r in rows if r.kind == "urged_bulk")
    assert told == {(hand_a, "urged_bulk", None), (hand_b, "urged", ids[2])}, told
    assert bulk.params == {"actor": "陈督办", "reason": "今天务必答复", "count": 3, "order_ids": picks[:3]}

    hand = login("hand_a")
    page = hand.get("/notices").text
    assert "本单位 3 件工单被批量催办" in page and "理由：今天务必答复" in page
    opened = hand.get(f"/notices/{bulk.id}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == notices.URGED_LIST
    listed = hand.get(notices.URGED_LIST).text
    shown = set(map(int, re.findall(r'href="/orders/(\d+)"', listed)))
    assert set(picks[:3]) <= shown and ids[2] not in shown
    assert 'name="urged" value="1" checked' in listed  # the list says what it shows
    api = hand.get("/api/v1/notices").json()["items"][0]
    assert api["kind"] == "urged_bulk" and api["order"] is None and api["link"] == notices.URGED_LIST
    assert api["params"]["count"] == 3 and api["viewable"] is True


def test_the_administrators_menu_counts_pending_exemption_requests(urged: dict[str, Any]) -> None:
    """An administrator decides exemptions from 系统管理 (核减审核 is not in their menu): 系统管理 and its 核减审核
    card say how many wait, as the supervisors' 核减审核 does."""
    from cityhub.analytics import exemptions

    adm = login("adm")
    assert 'data-testid="nav-count"' not in adm.get("/admin").text
    with session_scope() as s:
        hand = actor_of(s, "hand_a")
        orders.act(s, order_id=urged["id"], action="reply", actor=hand, params={"text": "已修复路灯"})
        unit = hand.unit_id
        assert unit is not None
        measures = exemptions.open_by_unit(s, order_id=urged["id"], unit_ids={unit})[unit]
        exemptions.request(
            s,
            order_id=urged["id"],
            measures=measures[:1],
            reason_category="other",
            reason_text="市民不在家",
            actor=hand,
        )
    page = adm.get("/admin").text
    nav = page[page.index('<header class="topbar">') : page.index("</header>")]
    item = nav[nav.index('href="/admin"') :]
    item = item[: item.index("</a>")]
    assert '<span class="count" data-testid="nav-count" aria-hidden="true">1</span>' in item and "1 件待审核" in item
    card = page[page.index('href="/exemptions?state=pending"') :]
    assert 'data-testid="admin-count" aria-hidden="true">1<' in card[: card.index("</a>")]
