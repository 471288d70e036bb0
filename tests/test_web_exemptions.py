"""考核核减 in the web UI, over the real app on both backends: a street's handler asks on the order page that an
answered order not count against the street, the supervisor finds it under 核减审核 and decides, and the street's
assessment page says what was left out (the small world of ``web_helpers``: hand_a is 景泰街道's handler, sup the
district's supervisor)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.workorders import service as orders
from web_helpers import login, small_world


@pytest.fixture
def answered(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """An appeal on 景泰街道 dispatched to the street, accepted and answered."""
    world = small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        order = submit(
            s, data={"channel": "hotline", "content": "小区门口路灯不亮已经一周", "street_code": "W-JT"}
        ).order
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": world.street_a})
        for action in ("accept", "start"):
            orders.act(s, order_id=order.id, action=action)
        orders.act(s, order_id=order.id, action="reply", params={"text": "已派人更换灯泡，路灯恢复照明。"})
        return {"id": order.id, "number": order.number, "street": world.street_a}


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def _block(html: str, testid: str) -> str:
    """The text of the element ``testid`` up to the next one named."""
    start = html.index(f'data-testid="{testid}"')
    end = html.find("data-testid=", start + 1)
    return _text(html[start : end if end > 0 else None].split(">", 1)[1])


def _ask(client: Any, order_id: int, **data: Any) -> Any:
    body = {"csrf_token": client.cookies["cityhub_csrf"], **data}
    return client.post(f"/orders/{order_id}/exemption", data=body, follow_redirects=False)


def test_a_handler_asks_a_supervisor_decides_and_the_assessment_says_so(answered: dict[str, Any]) -> None:
    oid = answered["id"]
    hand = login("hand_a")
    page = hand.get(f"/orders/{oid}")
    assert page.status_code == 200
    form = page.text[page.text.index('data-testid="exemption-form"') :]
    assert "申请考核核减" in form and 'value="on_time_completion"' in form and 'value="satisfaction"' not in form
    # 其他 without a word: refused, the form open again with what was chosen and the reason in Chinese.
    refused = _ask(hand, oid, measures="on_time_completion", reason_category="other", reason_text="")
    assert refused.status_code == 422
    assert "选择“其他”时请填写情况说明" in refused.text
    assert re.search(r'<details open data-testid="exemption-form"', refused.text)
    assert re.search(r'value="on_time_completion" checked', refused.text)
    done = _ask(hand, oid, measures="on_time_completion", reason_category="unreachable", reason_text="三次致电无人接听")
    assert done.status_code == 303 and done.headers["location"].endswith("#exemption")
    page = hand.get(f"/orders/{oid}").text
    assert 'data-state="pending"' in page and "本单位的核减申请正在审核中" in page
    assert 'data-testid="exemption-form"' not in page  # one open request at a time
    assert "申请考核核减" in _text(page[page.index('data-testid="audit"') :])  # in the trail
    again = _ask(hand, oid, measures="on_time_completion", reason_category="unreachable")
    assert again.status_code == 409 and "正在审核中，请勿重复提交" in again.text
    assert 'href="/exemptions?state=pending"' not in page  # the menu's 核减审核 is the deciders'

    sup = login("sup")
    listed = sup.get("/exemptions?state=pending")
    assert listed.status_code == 200 and 'href="/exemptions?state=pending"' in listed.text  # in the menu
    # An administrator finds it on 系统管理, not in a menu that would wrap at 1440 px.
    adm = login("adm")
    assert 'href="/exemptions?state=pending"' not in _nav(adm.get("/orders").text)
    assert 'href="/exemptions?state=pending"' in adm.get("/admin").text
    row = listed.text[listed.text.index('data-testid="exemption-row"') :]
    assert answered["number"] in row and "市民无法联系" in row and "按时办结率" in row and "三次致电无人接听" in row
    rid = re.search(r'data-id="(\d+)"', row).group(1)
    token = sup.cookies["cityhub_csrf"]
    url = f"/exemptions/{rid}/decide"
    data = {"csrf_token": token, "decision": "reject", "reason": "", "next": "/exemptions"}
    no_reason = sup.post(url, data=data, follow_redirects=False)
    assert no_reason.status_code == 303
    assert "驳回时请填写理由" in sup.get(no_reason.headers["location"]).text  # the flash on the list
    data = {"csrf_token": token, "decision": "approve", "reason": "通话记录属实"}
    approved = sup.post(url, data=data, follow_redirects=False)
    assert approved.status_code == 303
    assert f"已批准工单 {answered['number']} 的核减申请" in sup.get(approved.headers["location"]).text
    assert 'data-testid="exemptions-empty"' in sup.get("/exemptions?state=pending").text
    assert answered["number"] in sup.get("/exemptions?state=approved").text

    order_page = hand.get(f"/orders/{oid}").text
    assert 'data-state="approved"' in order_page and "通话记录属实" in order_page
    assessment = sup.get(f"/assessment/{answered['street']}").text
    assert "本期已核减 1 单" in assessment
    assert f'href="/exemptions?state=approved&amp;unit={answered["street"]}"' in assessment
    assert 'data-testid="exempted-on_time_completion"' in assessment
    drill = sup.get(f"/assessment/{answered['street']}?kpi=on_time_completion").text
    exempted = drill[drill.index('data-testid="drill-exempted"') :]
    assert f'data-order="{oid}" data-exempted="1"' in exempted and "已核减" in exempted
    # The handler's own list of their unit's requests, linked from their assessment page.
    own = hand.get(f"/assessment/{answered['street']}").text
    assert 'data-testid="own-exemptions"' in own
    mine = hand.get("/exemptions?state=all").text
    assert "本单位核减申请" in mine and answered["number"] in mine and 'data-testid="approve-' not in mine


def test_the_pages_are_the_deciders_and_the_units(answered: dict[str, Any]) -> None:
    """Who neither asks nor decides has no list; a handler may not decide; another street's handler sees none of it."""
    assert login("op").get("/exemptions").status_code == 403
    hand = login("hand_a")
    assert _ask(hand, answered["id"], measures="on_time_completion", reason_category="unreachable").status_code == 303
    rid = re.search(r'data-testid="exemption-(\d+)"', hand.get(f"/orders/{answered['id']}").text).group(1)
    token = hand.cookies["cityhub_csrf"]
    decided = hand.post(f"/exemptions/{rid}/decide", data={"csrf_token": token, "decision": "approve"})
    assert decided.status_code == 403
    other = login("hand_b")
    assert answered["number"] not in other.get("/exemptions?state=all").text
    assert _ask(other, answered["id"], measures="on_time_completion", reason_category="other").status_code == 404


def _nav(html: str) -> str:
    return html[html.index('<header class="topbar">') : html.index("</header>")]


def test_the_menu_counts_pending_requests_and_a_supervisor_revokes_an_approval(answered: dict[str, Any]) -> None:
    """核减审核 in a decider's menu says how many requests of their scope wait (nothing when none); an approved one
    is revoked from the list with a reason (refused without), and the order page says who revoked it and why."""
    oid = answered["id"]
    sup = login("sup")
    assert 'data-testid="nav-count"' not in _nav(sup.get("/exemptions").text)  # none waits: no count
    hand = login("hand_a")
    assert _ask(hand, oid, measures="on_time_completion", reason_category="unreachable").status_code == 303
    nav = _nav(sup.get("/orders").text)
    item = nav[nav.index('href="/exemptions?state=pending"') :]
    item = item[: item.index("</a>")]
    assert '<span class="count" data-testid="nav-count" aria-hidden="true">1</span>' in item and "1 件待审核" in item
    assert 'data-testid="nav-count"' not in _nav(hand.get(f"/orders/{oid}").text)  # the handler does not decide
    rid = re.search(r'data-id="(\d+)"', sup.get("/exemptions?state=pending").text).group(1)
    token = sup.cookies["cityhub_csrf"]
    url = f"/exemptions/{rid}/decide"
    approved = sup.post(url, data={"csrf_token": token, "decision": "approve", "reason": "通话记录属实"})
    assert approved.status_code == 200
    listed = sup.get("/exemptions?state=approved").text
    assert 'data-testid="nav-count"' not in _nav(listed) and f'data-testid="revoke-{rid}"' in listed
    assert f'data-testid="revoke-{rid}"' not in hand.get(f"/orders/{oid}").text  # the handler may not revoke
    no_reason = sup.post(url, data={"csrf_token": token, "decision": "revoke", "reason": "", "next": "/exemptions"})
    assert "撤销核减时请填写理由" in no_reason.text
    revoked = sup.post(
        url,
        data={"csrf_token": token, "decision": "revoke", "reason": "复核发现已接通", "next": f"/orders/{oid}"},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    page = sup.get(revoked.headers["location"]).text
    assert f"已撤销工单 {answered['number']} 的考核核减" in page
    card = page[page.index(f'data-testid="exemption-{rid}"') :]
    assert 'data-state="revoked"' in card and "已撤销" in card and "复核发现已接通" in card and "撤销核减" in card
    # Both the approval and its revocation, who, when and why of each: on the order page and in the list.
    listed = sup.get("/exemptions?state=revoked").text
    assert answered["number"] in listed
    for shown in (card, listed):
        decision, revocation = _block(shown, "exemption-decision"), _block(shown, "exemption-revocation")
        assert "陈督办 于" in decision and "审核" in decision and "通话记录属实" in decision
        assert "复核发现已接通" not in decision
        assert "陈督办 于" in revocation and "撤销核减" in revocation and "复核发现已接通" in revocation
        assert "通话记录属实" not in revocation
    assert "撤销考核核减" in _text(page[page.index('data-testid="audit"') :])  # in the trail
    assert "本期已核减" not in sup.get(f"/assessment/{answered['street']}").text  # counted again


def test_a_streets_handler_asks_on_the_order_page_for_the_community_that_answered(
    app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """景泰街道's handler opens an order its community answered: the form asks for the community (the street's
    figures count the community's), and the request is the community's, listed in the street's own list."""
    from cityhub.org.models import Unit, UnitTier

    world = small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        community = Unit(code="W-JT-C1", name="景泰社区", tier=UnitTier.COMMUNITY, parent_id=world.street_a)
        s.add(community)
        s.flush()
        order = submit(s, data={"channel": "hotline", "content": "楼道灯坏了很久没人修", "street_code": "W-JT"}).order
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": community.id})
        for action in ("accept", "start"):
            orders.act(s, order_id=order.id, action=action)
        orders.act(s, order_id=order.id, action="reply", params={"text": "已联系物业更换。"})
        oid, cid = order.id, community.id
    hand = login("hand_a")
    page = hand.get(f"/orders/{oid}").text
    form = page[page.index('data-testid="exemption-form"') :]
    assert "为景泰社区申请考核核减" in form and f'name="unit_id" value="{cid}"' in form
    done = _ask(hand, oid, measures="on_time_completion", reason_category="unreachable", unit_id=str(cid))
    assert done.status_code == 303, done.text
    page = hand.get(f"/orders/{oid}").text
    assert 'data-state="pending"' in page and 'data-testid="exemption-form"' not in page
    mine = hand.get("/exemptions?state=pending").text
    assert "景泰社区" in mine and 'data-testid="exemption-row"' in mine
    other = login("hand_b")  # another street's handler: no such request to make for a community not theirs
    assert _ask(
        other, oid, measures="on_time_completion", reason_category="unreachable", unit_id=str(cid)
    ).status_code in (403, 404)


def test_a_request_made_at_the_same_moment_is_refused_as_one_already_waiting(
    answered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests of the street for one order at once: the other one's row lands between this one's check and its
    insert (PostgreSQL: neither saw the other's), which the partial unique index refuses — the page answers 409 with
    the message of a request already waiting, as when they come one after the other, never a 500."""
    from cityhub.analytics import exemptions
    from cityhub.analytics.models import AssessmentExemption

    oid = answered["id"]
    hand = login("hand_a")
    checked = exemptions.open_request

    def meanwhile(session: Any, *, order_id: int, unit_id: int) -> Any:
        """The check sees nothing yet; the other request's row is written right after it."""
        monkeypatch.setattr(exemptions, "open_request", checked)
        other = AssessmentExemption(
            order_id=order_id,
            unit_id=unit_id,
            measures=["on_time_completion"],
            reason_category="unreachable",
            state="pending",
            requested_by_name="另一位承办人",
        )
        session.add(other)
        session.flush()
        return None

    monkeypatch.setattr(exemptions, "open_request", meanwhile)
    racing = _ask(hand, oid, measures="on_time_completion", reason_category="unreachable")
    assert racing.status_code == 409, racing.text[:300]
    assert "本单位对该工单的核减申请正在审核中，请勿重复提交" in racing.text
    assert _ask(hand, oid, measures="on_time_completion", reason_category="unreachable").status_code == 303
    again = _ask(hand, oid, measures="on_time_completion", reason_category="unreachable")  # one after the other
    assert again.status_code == 409 and "本单位对该工单的核减申请正在审核中，请勿重复提交" in again.text
