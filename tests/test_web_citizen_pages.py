"""A citizen's own pages, walked through as a citizen does on a phone: what the page says after they file an appeal
(its number, what happens next, when to expect an answer) and after they rate the reply 不满意 (what comes of it), in
their words rather than the staff's.

The organisation and accounts are the small world of ``web_helpers`` (cit: a citizen, disp: the district's
dispatcher, hand_a: 景泰街道's handler).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityhub.db import session_scope
from cityhub.workorders.models import Order, SlaRule
from web_helpers import PASSWORD, act_on, hidden, intake_form, login, small_world


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    return {"street_a": small_world(tmp_path, monkeypatch).street_a}


def _appeal(client: TestClient) -> int:
    """The id of a street light's appeal the signed-in citizen of ``client`` files on the intake form."""
    response = client.post(
        "/intake",
        data=intake_form(client, title="路灯不亮", content="景泰街道云景路的路灯不亮三天了"),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def _replied(org: dict[str, Any], citizen: TestClient) -> int:
    """A citizen's appeal, dispatched to 景泰街道, signed for and answered."""
    order_id = _appeal(citizen)
    hand = login("hand_a")
    assert act_on(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert act_on(hand, order_id, "accept").status_code == 303
    assert act_on(hand, order_id, "reply", text="已更换线路，路灯恢复照明。").status_code == 303
    return order_id


def test_a_citizen_not_satisfied_on_their_page_is_told_what_comes_of_it(org: dict[str, Any]) -> None:
    """Rated 不满意 on their order page, the citizen read 是否满意 不满意 and nothing more; /track says what comes
    next (staff look into it, then redo it or close it with an explanation). Their page now says it too; a satisfied
    citizen and staff read no such line."""
    citizen = login("cit")
    order_id = _replied(org, citizen)
    assert act_on(citizen, order_id, "callback", satisfied="false", reason="路灯晚上还是不亮").status_code == 303
    page = citizen.get(f"/orders/{order_id}").text
    assert 'data-testid="unsatisfied-next"' in page
    assert "工作人员将核实您所说仍未解决的问题，决定重新办理或说明原因后办结" in page
    assert 'data-testid="unsatisfied-next"' not in login("sup").get(f"/orders/{order_id}").text
    other = _replied(org, citizen)
    assert act_on(citizen, other, "callback", satisfied="true").status_code == 303
    assert 'data-testid="unsatisfied-next"' not in citizen.get(f"/orders/{other}").text


def test_a_citizen_who_files_an_appeal_is_told_what_happens_next_and_when_to_expect_an_answer(
    org: dict[str, Any],
) -> None:
    """Filed, the citizen read 已受理：工单 BY… and nothing of what follows: not yet dispatched, their page shows no
    time limit. The page now says to note the number, that staff hand it to the department responsible, within how
    many working days of that an answer usually comes (the time-limit rules' term for such an appeal), and that its
    progress and answer show there; the hotline's operator reads the number alone, as before."""
    with session_scope() as s:
        s.add(SlaRule(category_id=None, urgency=None, accept_hours=4, finish_days=7))
    citizen = login("cit")
    order_id = _appeal(citizen)
    with session_scope() as s:
        number = s.get(Order, order_id).number  # type: ignore[union-attr]
    page = citizen.get(f"/orders/{order_id}").text
    flash = page.split('data-testid="flash">')[1].split("</p>")[0]
    assert f"已受理：诉求编号 {number}，请记下这个编号" in flash
    assert "交给负责的部门办理，一般在交办后 7 个工作日内答复" in flash
    assert "办理进度和答复都会在本页显示，答复后请您评价" in flash
    operator = login("op")
    response = operator.post(
        "/intake", data=intake_form(operator, content="云景路路灯不亮", citizen_phone="13800001111")
    )
    staff_flash = response.text.split('data-testid="flash">')[1].split("</p>")[0]
    assert "已受理：工单" in staff_flash and "个工作日内答复" not in staff_flash


def test_a_citizens_answered_appeal_asks_for_their_rating_in_their_words(org: dict[str, Any]) -> None:
    """Answered, the citizen's page folded 评价答复 shut under a heading in the staff's words (可执行操作,
    转到可执行操作), its 意见 a one-line field, and beside their street the units' note of how the place was found
    (按正文识别). The rating is now open where they read the answer, its 意见 a text area as on /track, the heading
    评价与补充材料, and the note gone; staff read their page as before."""
    citizen = login("cit")
    order_id = _replied(org, citizen)
    page = citizen.get(f"/orders/{order_id}").text
    assert '<details open data-testid="action-callback">' in page
    assert '<textarea id="callback-reason" name="reason"' in page
    assert "评价与补充材料</h2>" in page and "转到评价与补充材料 ↓" in page and "可执行操作" not in page
    assert 'data-testid="place-source"' not in page
    staff = login("sup").get(f"/orders/{order_id}").text
    assert "可执行操作</h2>" in staff and 'data-testid="place-source"' in staff
    assert '<details data-testid="action-callback">' in staff and '<input id="callback-reason"' in staff


def test_a_citizens_appeal_joined_to_another_at_intake_says_their_own_number(
    org: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An appeal the duplicate check joined to an earlier one told its citizen 该诉求与工单 BY… 重复，已自动合并
    with the other appeal's number — the staff's words, and not the number of their own appeal, the one their page and
    /track know. It now says their number first and that the problem is handled with the earlier appeal — and, that
    appeal their own, that they reported it before (it said 此前已有人反映, as if someone else had)."""
    from cityhub.intake.dedupe import get_dedupe_settings

    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "true")
    get_dedupe_settings.cache_clear()
    try:
        citizen = login("cit")
        first = _appeal(login("op"))  # a caller's, at the hotline
        again = _appeal(citizen)
        with session_scope() as s:
            master, joined = s.get(Order, first), s.get(Order, again)
            assert master is not None and joined is not None and joined.master_order_id == first
            numbers = (master.number, joined.number)
        page = citizen.get(f"/orders/{again}").text
        flash = page.split('data-testid="flash">')[1].split("</p>")[0]
        assert f"已受理：诉求编号 {numbers[1]}，请记下这个编号" in flash
        assert f"此前已有人反映（诉求 {numbers[0]}），您的诉求已并入该诉求一并办理" in flash
        assert "重复，已自动合并" not in flash
        # their progress says so in the same words, not the staff's 自动合并 and its similarity score
        assert f"与同一问题的诉求 {numbers[0]} 合并办理" in page and "相似度" not in page
        staff = login("sup").get(f"/orders/{again}").text
        assert f"自动合并：与工单 {numbers[0]} 重复（相似度" in staff
        # no 办理单位 — on theirs: the appeal it joined says its unit, under 合并办理进度
        assert 'data-testid="lead-unit"' not in page and 'data-testid="lead-unit">—' in staff
        # Their own earlier appeal sent again: told they reported it before, not that someone else did.
        sent = [
            citizen.post(
                "/intake",
                data=intake_form(citizen, title="井盖破损", content="景泰街道飞鹅新村路口井盖破损，晚上行人容易绊倒"),
                follow_redirects=False,
            ).headers["location"]
            for _ in range(2)
        ]
        with session_scope() as s:
            repeat = s.get(Order, int(sent[1].rsplit("/", 1)[1]))
            assert repeat is not None and repeat.master_order_id == int(sent[0].rsplit("/", 1)[1])
            mine = s.get(Order, repeat.master_order_id).number  # type: ignore[union-attr]
        flash = citizen.get(sent[1]).text.split('data-testid="flash">')[1].split("</p>")[0]
        assert f"这个问题您此前已经反映过（诉求 {mine}）" in flash and "此前已有人反映" not in flash
    finally:
        get_dedupe_settings.cache_clear()


def test_a_citizens_progress_after_a_units_return_does_not_name_the_return(org: dict[str, Any]) -> None:
    """A unit's return (退单) is not in the citizen's progress, and their appeal reads 已受理 while it waits again; but
    the next dispatch's row said 已退单 → 已派单 on their page, and its event's ``from_state`` was ``returned`` in the
    API's trail they read. Both now say it came from 已受理 (``received``); staff read the return as before."""
    citizen = login("cit")
    order_id = _appeal(citizen)
    disp = login("disp")
    assert act_on(disp, order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert act_on(login("hand_a"), order_id, "return", reason="不归我们管").status_code == 303
    back = act_on(disp, order_id, "dispatch", unit_id=str(org["street_a"]), reason="属本街道辖区")
    assert back.status_code == 303
    page = citizen.get(f"/orders/{order_id}").text
    assert "已退单" not in page and page.count("已受理 → 已转交办理") == 2
    events = citizen.get(f"/api/v1/orders/{order_id}/events").json()
    assert [(e["action"], e["from_state"], e["to_state"]) for e in events][1:] == [
        ("dispatch", "received", "dispatched"),
        ("dispatch", "received", "dispatched"),
    ]
    staff = login("sup").get(f"/api/v1/orders/{order_id}/events").json()
    assert ("dispatch", "returned", "dispatched") in [(e["action"], e["from_state"], e["to_state"]) for e in staff]
    assert "已退单 → 已派单" in login("sup").get(f"/orders/{order_id}").text


def test_a_citizen_reads_their_appeal_handed_on_and_taken_on_not_the_staffs_dispatch_and_sign_for(
    org: dict[str, Any],
) -> None:
    """Dispatched and signed for, the citizen's appeal read 已签收 on their list and page, and its progress 派单 and
    签收, 已派单 → 已签收 — the hotline centre's words — and 承办单位 above; /track the same. They now read 转交办理,
    接收办理, 已转交办理 → 已接收办理 and 办理单位; staff keep their words."""
    citizen = login("cit")
    order_id = _appeal(citizen)
    assert act_on(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert act_on(login("hand_a"), order_id, "accept").status_code == 303
    listed = citizen.get("/orders").text
    page = citizen.get(f"/orders/{order_id}").text
    for text in (listed, page):
        assert '<span class="badge state-accepted">已接收办理</span>' in text
        assert "签收" not in text and "派单" not in text and "承办" not in text
    assert '<option value="dispatched">已转交办理</option>' in listed
    assert "已转交办理 → 已接收办理" in page and "<th>办理单位</th>" in page
    trail = page.split('data-testid="trail-heading"')[1]
    assert "转交办理 → 景泰街道" in trail and "接收办理" in trail
    staff = login("sup").get(f"/orders/{order_id}").text
    assert "已派单 → 已签收" in staff and "<th>承办单位</th>" in staff


def test_a_citizen_reads_their_rated_appeal_as_rated_not_as_the_staffs_called_back(org: dict[str, Any]) -> None:
    """Rated, the citizen's appeal read 已回访 (the staff's "called back": nobody called them); their list, its state
    choices, their page and /track say 已评价, while staff keep 已回访. Their state choices offer no 有效工单 either
    (不含重复并单、作废: the centre's measure)."""
    citizen = login("cit")
    order_id = _replied(org, citizen)
    assert act_on(citizen, order_id, "callback", satisfied="true").status_code == 303
    listed = citizen.get("/orders").text
    assert '<span class="badge state-called_back">已评价</span>' in listed
    assert '<option value="called_back">已评价</option>' in listed and 'value="valid"' not in listed
    assert '<option value="suspended">暂缓办理</option>' in listed
    assert '<span class="badge state-called_back">已评价</span>' in citizen.get(f"/orders/{order_id}").text
    staff = login("sup").get("/orders").text
    assert '<span class="badge state-called_back">已回访</span>' in staff and 'value="valid"' in staff
    assert '<option value="called_back">已回访</option>' in staff


def _comment_steps(page: str) -> list[str]:
    """The step names of the comment rows (their third cell) of an order page's trail."""
    trail = page.split('data-testid="audit">')[1].split("</section>")[0]
    rows = re.findall(r'<tr data-action="comment">.*?<td>.*?<td>.*?<td>(.*?)</td>', trail, flags=re.S)
    return [re.split(r"<", cell)[0].strip() for cell in rows]


def test_files_sent_with_an_appeal_read_as_sent_with_it_not_as_a_later_addition(org: dict[str, Any]) -> None:
    """A photo chosen on the appeal form showed in the citizen's progress as a 补充说明 of theirs (上传附件 1 个), as if
    they had added material later; it reads 随诉求提交的材料, and what they add later keeps 补充说明."""
    import io

    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (16, 12), "brown").save(photo, "JPEG")
    citizen = login("cit")
    sent = citizen.post(
        "/intake",
        data=intake_form(citizen, title="路灯不亮", content="景泰街道云景路的路灯不亮三天了"),
        files=[("files", ("路灯.jpg", photo.getvalue(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    order_id = int(sent.headers["location"].rsplit("/", 1)[1])
    page = citizen.get(f"/orders/{order_id}").text
    assert _comment_steps(page) == ["随诉求提交的材料"]
    added = citizen.post(
        f"/orders/{order_id}/attachments",
        data={"csrf_token": hidden(page), "note": "补充一张夜间照片"},
        files=[("files", ("夜间.jpg", photo.getvalue(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    assert _comment_steps(citizen.get(f"/orders/{order_id}").text) == ["随诉求提交的材料", "补充说明"]


def test_a_citizens_page_speaks_to_them_not_in_the_staffs_labels(org: dict[str, Any]) -> None:
    """Their page headed their own name 市民姓名 and how they sent it 来源渠道 (the staff's labels), and an appeal not
    yet placed read 镇街 / 村社 "— / —"; it says 姓名, 反映渠道 and that staff will confirm the place. Staff read as
    before."""
    citizen = login("cit")
    sent = citizen.post(
        "/intake",
        data=intake_form(citizen, title="路灯不亮", content="楼下的路灯不亮三天了"),
        follow_redirects=False,
    )
    order_id = int(sent.headers["location"].rsplit("/", 1)[1])
    page = citizen.get(f"/orders/{order_id}").text
    assert "<th>姓名</th>" in page and "<th>反映渠道</th>" in page and "<th>市民姓名</th>" not in page
    assert '<td data-testid="place-units">待工作人员确认' in page
    staff = login("sup").get(f"/orders/{order_id}").text
    assert "<th>市民姓名</th>" in staff and "<th>来源渠道</th>" in staff
    assert '<td data-testid="place-units">— / —' in staff


def test_a_citizens_appeal_waiting_to_be_dispatched_says_when_to_expect_an_answer(org: dict[str, Any]) -> None:
    """Only the message right after filing said when an answer would come; the citizen's page says it until the
    appeal is dispatched (then its 办结时限 stands there), staff read no such line."""
    citizen = login("cit")
    order_id = _appeal(citizen)
    page = citizen.get(f"/orders/{order_id}").text
    assert re.search(r'data-testid="expected-answer">派至负责部门后一般 \d+ 个工作日内答复</td>', page)
    assert 'data-testid="expected-answer"' not in login("sup").get(f"/orders/{order_id}").text
    assert act_on(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert 'data-testid="expected-answer"' not in citizen.get(f"/orders/{order_id}").text


def test_the_login_page_says_what_to_do_about_a_forgotten_password(org: dict[str, Any]) -> None:
    """The login page had no way on from a forgotten password: a citizen told 用户名或密码错误 was left there. It now
    has 忘记密码？ — passwords are not recovered online, an administrator resets them (a citizen asks through 12345) and
    a progress lookup needs no login, linked —, folded on a fresh page and open once a login failed."""
    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    page = client.get("/login").text
    assert '<details data-testid="forgot-password">' in page and "<summary>忘记密码？</summary>" in page
    forgot = page.split('data-testid="forgot-password"')[1].split("</details>")[0]
    assert "请联系系统管理员为您重置" in forgot and "12345 热线" in forgot and '<a href="/track">' in forgot
    bad = client.post("/login", data={"csrf_token": hidden(page), "username": "cit", "password": "not-it"})
    assert bad.status_code == 401 and '<details data-testid="forgot-password" open>' in bad.text
    client.get("/lang/en")
    assert "<summary>Forgot your password?</summary>" in client.get("/login").text


def test_a_citizen_rates_an_answer_basically_satisfied_on_their_page_and_on_the_progress_lookup(
    org: dict[str, Any],
) -> None:
    """A text message offered 满意, 基本满意, 不满意, but their order page and /track only 满意 or 不满意. Both now
    offer 基本满意 too: recorded as the text message's 2 is — satisfied, its ``rating`` kept in the callback — and
    said back as 基本满意, on their page and on /track; staff read it so too."""
    citizen = login("cit")
    order_id = _replied(org, citizen)
    page = citizen.get(f"/orders/{order_id}").text
    assert '<option value="basically_satisfied">基本满意</option>' in page
    assert act_on(citizen, order_id, "callback", satisfied="basically_satisfied").status_code == 303
    with session_scope() as s:
        assert s.get(Order, order_id).satisfied is True  # type: ignore[union-attr]
    events = citizen.get(f"/api/v1/orders/{order_id}/events").json()
    assert next(e["payload"] for e in events if e["action"] == "callback")["rating"] == "basically_satisfied"
    for reader in (citizen, login("sup")):
        shown = reader.get(f"/orders/{order_id}").text
        assert '<td data-testid="satisfied">基本满意' in shown

    phone = "13800002222"
    filed = citizen.post(
        "/intake",
        data=intake_form(citizen, content="景泰街道云景路井盖松动", citizen_phone=phone),
        follow_redirects=False,
    )
    other = int(filed.headers["location"].rsplit("/", 1)[1])
    hand = login("hand_a")
    assert act_on(login("disp"), other, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert act_on(hand, other, "accept").status_code == 303
    assert act_on(hand, other, "reply", text="已加固井盖。").status_code == 303
    with session_scope() as s:
        number = s.get(Order, other).number  # type: ignore[union-attr]
    from app_helpers import shared_app

    visitor = TestClient(shared_app(), raise_server_exceptions=False)
    token = hidden(visitor.get("/track").text)
    found = visitor.post("/track", data={"number": number, "phone": phone, "csrf_token": token}).text
    assert '<input type="radio" name="satisfied" value="2"> 基本满意' in found
    rated = visitor.post(
        "/track/rate", data={"number": number, "phone": phone, "satisfied": "2", "csrf_token": hidden(found)}
    ).text
    assert '<p data-testid="track-satisfied">您的评价：基本满意</p>' in rated
    with session_scope() as s:
        assert s.get(Order, other).satisfied is True  # type: ignore[union-attr]
    assert visitor.post("/api/v1/track", json={"number": number, "phone": phone}).json()["rating"] == (
        "basically_satisfied"
    )


def test_a_citizens_form_asks_for_their_name_and_says_what_a_phone_number_brings(org: dict[str, Any]) -> None:
    """我要反映 asked a citizen for 市民姓名 — the operator's label for a caller — and for an optional 联系电话 without
    a word of what it is for: without it staff cannot reach them nor call back on the reply, and /track cannot find
    the appeal.
    Their form now asks 姓名 and says both under the phone, read with it by a screen reader; the operator's form is
    as before."""
    page = login("cit").get("/intake").text
    assert '<label for="f-citizen_name">姓名' in page and "市民姓名" not in page
    assert 'aria-describedby="f-citizen_phone-hint"' in page
    hint = page.split('data-testid="citizen-phone-hint">')[1].split("</small>")[0]
    assert "便于工作人员联系您" in hint and "查询办理进度" in hint
    staff = login("op").get("/intake").text
    assert '<label for="f-citizen_name">市民姓名' in staff and "citizen-phone-hint" not in staff


def _visible(page: str) -> str:
    """A page's words as read: its ``<main>`` without scripts and tags (attributes, such as the search box's title,
    left out)."""
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", main, flags=re.S))


def test_a_citizen_reads_their_appeal_where_staff_read_an_order(org: dict[str, Any]) -> None:
    """A citizen's pages said 工单 — the staff's word — for their own appeal: their page's heading 工单 BY…, the message
    after filing 已受理：工单 BY…, their list's 工单编号 (in English "Order BY…", "Order number", "3 orders"). They now
    read 诉求 (English "appeal") everywhere on them; staff read 工单 as before. An appeal without a time limit yet
    read 办结时限：— in their list's card on a phone; that line is left out."""
    citizen = login("cit")
    order_id = _appeal(citizen)
    with session_scope() as s:
        number = s.get(Order, order_id).number  # type: ignore[union-attr]
    page = citizen.get(f"/orders/{order_id}").text
    assert f"<title>诉求 {number}" in page and f'<h1>诉求 <span class="nowrap">{number}</span>' in page
    assert f"已受理：诉求编号 {number}，请记下这个编号" in page
    listed = citizen.get("/orders").text
    assert "<th>诉求编号</th>" in listed
    # no limit yet: its cell left out of a phone's card (办结时限：— said nothing)
    assert '<td data-testid="due" data-label="办结时限：" class="opt">' in listed
    for shown in (page, listed):
        assert "工单" not in _visible(shown)
    empty = citizen.get("/orders", params={"q": "没有这样的诉求"}).text
    assert "没有符合条件的诉求。" in empty
    citizen.cookies.set("cityhub_lang", "en")
    english = citizen.get(f"/orders/{order_id}").text
    assert f'<h1>Appeal <span class="nowrap">{number}</span>' in english
    listed = citizen.get("/orders").text
    assert "<th>Appeal number</th>" in listed and ">1 appeal<" in listed
    for shown in (english, listed):
        assert not re.search(r"\border", _visible(shown), flags=re.I), shown
    staff = login("sup")
    assert f'<h1>工单 <span class="nowrap">{number}</span>' in staff.get(f"/orders/{order_id}").text
    assert "<th>工单编号</th>" in staff.get("/orders").text


def test_the_progress_lookup_speaks_of_appeals(org: dict[str, Any]) -> None:
    """/track asked for the 工单编号 and, not found, said 未找到…工单 and offered 查询其他工单 (English "order"): it is
    the citizen's page and speaks of their 诉求 ("appeal")."""
    from app_helpers import shared_app

    citizen = login("cit")
    filed = citizen.post(
        "/intake",
        data=intake_form(citizen, content="景泰街道云景路井盖松动", citizen_phone="13800003333"),
        follow_redirects=False,
    )
    with session_scope() as s:
        number = s.get(Order, int(filed.headers["location"].rsplit("/", 1)[1])).number  # type: ignore[union-attr]
    visitor = TestClient(shared_app(), raise_server_exceptions=False)
    form = visitor.get("/track").text
    assert '<label for="track-number">诉求编号</label>' in form
    found = visitor.post("/track", data={"number": number, "phone": "13800003333", "csrf_token": hidden(form)}).text
    assert "查询其他诉求" in found
    assert (
        f'<h2 class="track-number"><span class="nowrap">{number}</span>' in found
    )  # the number to note, not broken at its hyphen
    wrong = visitor.post("/track", data={"number": number, "phone": "13800009999", "csrf_token": hidden(found)}).text
    assert "未找到与该编号和电话相符的诉求" in wrong
    for shown in (form, found, wrong):
        assert "工单" not in _visible(shown)
    visitor.cookies.set("cityhub_lang", "en")
    english = visitor.get("/track").text
    assert '<label for="track-number">Appeal number</label>' in english
    assert not re.search(r"\border", _visible(english), flags=re.I)


def test_a_citizens_page_says_where_their_appeal_is_by_its_street_and_community(
    org: dict[str, Any],
) -> None:
    """An appeal placed by the point the citizen's phone gave read 位置 23.1805, 113.2801 — two bare numbers — beside a
    row 镇街 / 村社. Their page now says the place by its street and community, the point a small detail under it;
    staff read the point and the street / community rows as before."""
    from sqlalchemy import update

    from cityhub.org.models import Unit, UnitTier
    from web_helpers import square

    with session_scope() as s:
        s.execute(update(Unit).where(Unit.id == org["street_a"]).values(boundary=square(113.26, 23.16, 113.30, 23.20)))
        feie = square(113.27, 23.17, 113.29, 23.19)
        s.add(Unit(code="W-JT-FE", name="飞鹅社区", tier=UnitTier.COMMUNITY, parent_id=org["street_a"], boundary=feie))
    citizen = login("cit")
    filed = citizen.post(
        "/intake",
        data=intake_form(citizen, content="路口井盖破损，晚上行人容易绊倒", lat="23.1805", lng="113.2801"),
        follow_redirects=False,
    )
    order_id = int(filed.headers["location"].rsplit("/", 1)[1])
    page = citizen.get(f"/orders/{order_id}").text
    place = page.split('<td data-testid="place-units">')[1].split("</td>")[0]
    assert place.startswith("景泰街道 · 飞鹅社区<br>") and "经纬度 23.1805, 113.2801" in place
    assert "<th>位置</th>" in page and "<th>镇街 / 村社</th>" not in page
    assert '<span data-testid="position">23.1805, 113.2801</span>' not in page
    staff = login("sup").get(f"/orders/{order_id}").text
    assert '<span data-testid="position">23.1805, 113.2801</span>' in staff
    assert '<td data-testid="place-units">景泰街道 / 飞鹅社区' in staff


def test_a_citizens_unclassified_appeal_says_it_is_still_to_be_classified(org: dict[str, Any]) -> None:
    """An appeal not yet classified read 分类 — on its citizen's page; it now says 待分类 (Not yet classified) while
    it is open. Staff read — as before."""
    citizen = login("cit")
    order_id = _appeal(citizen)
    with session_scope() as s:
        assert s.get(Order, order_id).category_id is None  # type: ignore[union-attr]  # no classifier here
    assert '<td data-testid="category">待分类</td>' in citizen.get(f"/orders/{order_id}").text
    citizen.cookies.set("cityhub_lang", "en")
    assert '<td data-testid="category">Not yet classified</td>' in citizen.get(f"/orders/{order_id}").text
    assert '<td data-testid="category">—</td>' in login("sup").get(f"/orders/{order_id}").text


def test_a_citizens_form_offers_the_common_answers_and_notes_their_position_in_their_words(
    org: dict[str, Any],
) -> None:
    """The citizen's form offered 查询建议, the hotline desk's button; it now offers 看看常见问题解答 — the answers it
    shows —, and the panel before them said 输入诉求内容后显示建议; it now speaks of those answers. 使用当前位置 told
    them 已定位：23.171200, 113.270500, two bare numbers; it now says their position is noted (the map's line names
    the place). The desk and the grid inspector keep theirs."""
    page = login("cit").get("/intake").text
    assert 'data-testid="intake-preview">看看常见问题解答</button>' in page
    assert "写下您的问题后，这里会列出可能有帮助的常见问题解答。" in page and "显示建议" not in page
    assert 'data-located="已定位，已记下您所在的位置"' in page
    assert 'data-testid="intake-preview">查询建议</button>' in login("op").get("/intake").text


def test_a_citizens_pick_map_without_outlines_asks_for_the_address_in_their_words(org: dict[str, Any]) -> None:
    """With no street or community outline entered (the demo's case), a citizen's tap on the map read 本区尚未录入镇街
    和村社的边界，无法按位置判断所属单位 — the staff's matter; they read that their position is noted and the address
    helps staff place it. The grid inspector keeps the staff's words."""
    import html
    import json
    import re

    from cityhub.web.map_pages import map_ready

    if not map_ready():
        pytest.skip("Leaflet's files are not installed (make install)")

    def unoutlined(user: str) -> str:
        found = re.search(r"data-place-map='([^']*)'", login(user).get("/intake").text)
        assert found is not None, user
        return str(json.loads(html.unescape(found.group(1)))["text"]["unoutlined"])

    assert unoutlined("cit").startswith("已记下您标注的位置") and "边界" not in unoutlined("cit")
    from sqlalchemy import select

    from cityhub.auth import service as auth
    from cityhub.org.models import Role, Unit
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        street = s.scalars(select(Unit).where(Unit.code == "W-JT")).one()
        auth.create_account(
            s,
            data=UserCreate(username="grid9", full_name="网格员", role=Role.INSPECTOR, unit_id=street.id),
            password=PASSWORD,
        )
    assert "尚未录入镇街和村社的边界" in unoutlined("grid9")


def test_an_appeal_not_theirs_is_headed_as_not_found_for_the_citizen(org: dict[str, Any]) -> None:
    """A citizen opening an appeal not theirs read 找不到页面 above 没有找到这条诉求: heading and message now agree,
    找不到这条诉求 (Appeal not found); staff's, 找不到该工单."""
    operator = login("op")
    sent = operator.post(
        "/intake", data=intake_form(operator, content="景泰街道云景路井盖松动"), follow_redirects=False
    )
    other = int(sent.headers["location"].rsplit("/", 1)[1])
    citizen = login("cit")
    for path in (f"/orders/{other}", "/orders/999999"):
        page = citizen.get(path)
        assert page.status_code == 404
        assert (
            '<h1 data-testid="error-heading">找不到这条诉求</h1>' in page.text and "<title>找不到这条诉求" in page.text
        )
        assert "没有找到这条诉求" in page.text
    citizen.cookies.set("cityhub_lang", "en")
    assert '<h1 data-testid="error-heading">Appeal not found</h1>' in citizen.get(f"/orders/{other}").text
    # Staff read the order's own heading over its message (找不到页面 stood above 没有找到该工单 too).
    staff = login("sup").get("/orders/999999")
    assert '<h1 data-testid="error-heading">找不到该工单</h1>' in staff.text and "没有找到该工单" in staff.text


def test_a_citizens_appeal_merged_into_another_of_theirs_is_folded_under_it_on_their_list(
    org: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """我的诉求 showed each appeal merged into another as a card of its own: a citizen who rang twice about one street
    light read two 路灯不亮 cards, one 已合并办理. Merged into another appeal of theirs on the page, it is now a line
    under that one (另 1 次反映已合并到此诉求, linking to it); merged into someone else's, its card names the appeal
    it joined. The count says how many of the list are merged; staff's list and the API are as they were."""
    from cityhub.intake.dedupe import get_dedupe_settings

    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "true")
    get_dedupe_settings.cache_clear()
    try:
        citizen, op = login("cit"), login("op")
        first, again = _appeal(citizen), _appeal(citizen)
        manhole = {"title": "井盖破损", "content": "景泰街道飞鹅新村路口井盖破损，晚上行人容易绊倒"}
        callers = _appeal_of(op.post("/intake", data=intake_form(op, **manhole), follow_redirects=False))
        joined = _appeal_of(citizen.post("/intake", data=intake_form(citizen, **manhole), follow_redirects=False))
        with session_scope() as s:
            rows = {i: s.get(Order, i) for i in (first, again, callers, joined)}
            assert rows[again].master_order_id == first  # type: ignore[union-attr]
            assert rows[joined].master_order_id == callers  # type: ignore[union-attr]
            number = {i: o.number for i, o in rows.items()}  # type: ignore[union-attr]
        page = citizen.get("/orders").text
        table = page.split('data-testid="order-table"')[1]
        # the second call is a line under the first, linking to it, not a card of its own
        assert table.count(f">{number[again]}</a>") == 1
        here = table.split(f'href="/orders/{first}"')[1].split("</tr>")[0]
        assert "另 1 次反映已合并到此诉求" in here and f'href="/orders/{again}" data-testid="merged-here-link"' in here
        # merged into someone else's appeal: a card of its own naming the appeal it joined
        card = table.split(f'href="/orders/{joined}"')[1].split("</tr>")[0]
        assert f"已合并到诉求 {number[callers]} 一并办理" in card
        # the count counts both merged appeals and says so
        assert "共 3 件，其中 2 件已与同一问题的诉求合并办理" in page
        # staff's list has the merged order as a row of its own, as before
        staff = login("sup").get("/orders").text
        assert 'data-testid="merged-here"' not in staff
        api = citizen.get("/api/v1/orders").json()
        assert again in {o["id"] for o in api["items"]}
    finally:
        get_dedupe_settings.cache_clear()


def _appeal_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


# --- 我的手机号 (auth.phone) ------------------------------------------------------------------------------------

CIT_PHONE = "13812345678"


def _relay() -> None:
    from cityhub.notify import service as notify

    with session_scope() as s:
        notify.add_subscription(s, target="http://127.0.0.1:9/relay", topics=["citizen"])


def _sent_code() -> str:
    from sqlalchemy import select

    from cityhub.notify.models import OutboxMessage, Topic

    with session_scope() as s:
        message = s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == Topic.CITIZEN).order_by(OutboxMessage.id.desc())
        ).first()
        assert message is not None and message.payload is not None and message.order_id is None
        found = re.search(r"验证码为(\d{6})", message.payload["text"])
        assert found
        return found.group(1)


def _post(client: TestClient, path: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": client.cookies["cityhub_csrf"], **data}, follow_redirects=False)


def _hotline_call(org: dict[str, Any], phone: str) -> int:
    """An appeal the hotline's operator registered from a call of ``phone``, dispatched to 景泰街道 and answered."""
    op = login("op")
    response = op.post(
        "/intake",
        data=intake_form(
            op, title="井盖缺失", content="景泰街道云景路口井盖丢了", citizen_name="张先生", citizen_phone=phone
        ),
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    order_id = int(response.headers["location"].rsplit("/", 1)[1])
    hand = login("hand_a")
    assert act_on(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert act_on(hand, order_id, "accept").status_code == 303
    assert act_on(hand, order_id, "reply", text="已补装井盖。").status_code == 303
    return order_id


def test_a_citizen_sets_and_verifies_their_phone_on_their_account(org: dict[str, Any]) -> None:
    """我的账户 had no phone. It now has one to set (checked as an appeal's phone, said at the field), a code sent
    by text message to verify it (the rules said on the page: valid 10 minutes, 5 wrong tries, resend after 60 s, 5
    an hour), the number shown masked with whether it is verified — and the intake form filled with it."""
    citizen = login("cit")
    page = citizen.get("/account").text
    assert 'data-testid="phone-form"' in page and 'name="phone"' in page
    bad = _post(citizen, "/account/phone", phone="138abc")
    assert bad.status_code == 422 and "请输入正确的电话号码" in bad.text
    # no relay subscribed: the number is kept, unverified, and the page says no code can go
    no_relay = _post(citizen, "/account/phone", phone="138 1234 5678")
    assert no_relay.status_code == 409 and "短信通道暂不可用" in no_relay.text
    page = citizen.get("/account").text
    assert "138****5678" in page and 'data-testid="phone-unverified"' in page and CIT_PHONE not in page
    assert "验证码 10 分钟内有效，最多可输错 5 次；重新发送需间隔 60 秒，每小时最多发送 5 次。" in page
    _relay()
    sent = _post(citizen, "/account/phone/code")
    assert sent.status_code == 303 and sent.headers["location"] == "/account#my-phone"
    page = citizen.get("/account").text
    assert "验证码已发送至 138****5678" in page and 'data-testid="code-pending"' in page
    code = _sent_code()
    again = _post(citizen, "/account/phone/code")  # too soon
    assert again.status_code == 429 and "发送过于频繁" in again.text
    wrong = _post(citizen, "/account/phone/verify", code="000000" if code != "000000" else "111111")
    assert wrong.status_code == 422 and "验证码不正确，还可尝试 4 次" in wrong.text
    done = _post(citizen, "/account/phone/verify", code=code)
    assert done.status_code == 303
    page = citizen.get("/account").text
    assert 'data-testid="phone-verified"' in page and 'data-testid="verify-form"' not in page
    assert re.search(rf'name="citizen_phone"[^>]* value="{CIT_PHONE}"', citizen.get("/intake").text)
    # a new number is unverified again
    assert _post(citizen, "/account/phone", phone="13900001111").status_code == 303
    assert 'data-testid="phone-unverified"' in citizen.get("/account").text


def test_my_appeals_lists_the_hotline_calls_of_the_verified_phone_with_their_channel(org: dict[str, Any]) -> None:
    """我的诉求 held only what the citizen filed on the site: their call to 12345 never showed. With their phone
    verified it shows, marked 12345热线, opens and is rated by them; with the phone only set, it does not."""
    citizen = login("cit")
    order_id = _hotline_call(org, "+86" + CIT_PHONE)
    _relay()
    assert _post(citizen, "/account/phone", phone=CIT_PHONE).status_code == 303  # set, code sent, not verified
    assert f'href="/orders/{order_id}"' not in citizen.get("/orders").text
    assert citizen.get(f"/orders/{order_id}").status_code == 404
    assert _post(citizen, "/account/phone/verify", code=_sent_code()).status_code == 303
    mine = citizen.get("/orders").text
    assert f'href="/orders/{order_id}"' in mine
    assert re.search(r'data-testid="by-phone">12345热线</span>', mine)
    page = citizen.get(f"/orders/{order_id}")
    assert page.status_code == 200 and "已补装井盖" in page.text
    assert act_on(citizen, order_id, "callback", satisfied="true").status_code == 303
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.satisfied is True


# --- 忘记密码: a reset by the verified phone (auth.phone.request_reset / reset_password) -------------------------

NEW_PASSWORD = "lantern-river-quartz"


def _verified_phone(citizen: TestClient) -> None:
    _relay()
    assert _post(citizen, "/account/phone", phone=CIT_PHONE).status_code == 303
    assert _post(citizen, "/account/phone/verify", code=_sent_code()).status_code == 303


def _messages() -> list[dict[str, Any]]:
    from sqlalchemy import select

    from cityhub.notify.models import OutboxMessage

    with session_scope() as s:
        return [dict(m.payload or {}) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def _ask_reset(client: TestClient, name: str) -> Any:
    page = client.get("/login/reset")
    assert page.status_code == 200 and 'data-testid="reset-ask-form"' in page.text
    return client.post("/login/reset", data={"csrf_token": hidden(page.text), "name": name}, follow_redirects=False)


def _confirm(
    client: TestClient, page: str, code: str, password: str = NEW_PASSWORD, again: str | None = None, name: str = ""
) -> Any:
    data = {
        "csrf_token": hidden(page),
        "name": name or hidden(page, "name"),
        "code": code,
        "new_password": password,
        "new_password_again": password if again is None else again,
    }
    return client.post("/login/reset/confirm", data=data, follow_redirects=False)


def _password_login(username: str, password: str) -> int:
    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    page = client.get("/login").text
    data = {"csrf_token": hidden(page), "username": username, "password": password}
    return client.post("/login", data=data, follow_redirects=False).status_code


def test_a_citizen_resets_a_forgotten_password_with_a_code_sent_to_their_verified_phone(org: dict[str, Any]) -> None:
    """忘记密码 only said whom to ask. A citizen with a verified phone now types their login name or that phone on
    /login/reset, gets a code by text message (its words say it resets the password), types it and a new password
    (the project's rules), and signs in with it: every earlier session of the account has ended, the old password
    no longer signs in, and the configuration log says 重置密码 (by the citizen, never the password)."""
    from sqlalchemy import select

    from app_helpers import shared_app
    from cityhub.auditlog import LogEntry

    citizen, elsewhere = login("cit"), login("cit")
    _verified_phone(citizen)
    visitor = TestClient(shared_app(), raise_server_exceptions=False)
    login_page = visitor.get("/login").text
    assert '<a href="/login/reset" data-testid="reset-link">忘记密码</a>' in login_page
    asked = _ask_reset(visitor, "138 1234 5678")  # the phone, spelled as a person types it
    assert asked.status_code == 200 and 'data-testid="reset-confirm-form"' in asked.text
    assert "如果该登录名或手机号属于已验证手机号的市民账号，验证码已发送至该手机" in asked.text
    sent = _messages()[-1]
    assert (
        sent["action"] == "reset_password"
        and sent["phone"] == CIT_PHONE
        and "重置您在12345平台账户的登录密码" in sent["text"]
    )
    code = _sent_code()
    wrong = _confirm(visitor, asked.text, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 422 and "验证码不正确或已失效" in wrong.text
    mismatch = _confirm(visitor, wrong.text, code, again="lantern-river-quart")
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.text
    weak = _confirm(visitor, mismatch.text, code, password="password123")  # the account page's rules
    assert weak.status_code == 422 and 'data-testid="field-error-new_password"' in weak.text
    assert f'name="code" value="{code}"' in weak.text  # the code was right: kept
    done = _confirm(visitor, weak.text, code)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert "密码已重置" in visitor.get("/login").text
    for old in (citizen, elsewhere):  # every earlier session has ended
        gone = old.get("/account", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert _password_login("cit", PASSWORD) == 401
    assert _password_login("cit", NEW_PASSWORD) == 303
    again = _confirm(visitor, visitor.get("/login/reset").text, code, name="cit")  # a code resets once
    assert again.status_code == 422
    with session_scope() as s:
        entry = s.scalars(select(LogEntry).where(LogEntry.action == "reset_password")).one()
        assert (entry.target, entry.actor) == ("cit", "张市民") and entry.changes["via"] == [None, "phone"]
        assert NEW_PASSWORD not in str(entry.changes) and code not in str(entry.changes)


def test_a_reset_asked_for_anyone_else_answers_alike_and_sends_nothing(org: dict[str, Any]) -> None:
    """The first step must not tell who has an account: an unknown name, a staff member's (whose phone is verified
    — their administrator resets them) and a citizen whose phone is not verified get the very page a citizen with a
    verified phone gets, and no text message goes; typing a code for them is refused as a wrong one."""
    from app_helpers import shared_app
    from cityhub.org.models import User

    citizen = login("cit")
    _relay()
    assert _post(citizen, "/account/phone", phone=CIT_PHONE).status_code == 303  # set, not verified
    with session_scope() as s:
        from sqlalchemy import select

        staff = s.scalars(select(User).where(User.username == "op")).one()
        staff.phone = staff.phone_verified = "13900002222"
    before = len(_messages())
    visitor = TestClient(shared_app(), raise_server_exceptions=False)

    def seen(response: Any) -> str:
        text = re.sub(r'name="(csrf_token|name)" value="[^"]*"', "", response.text)
        return f"{response.status_code} {text}"

    answers = {name: seen(_ask_reset(visitor, name)) for name in ("nobody", "op", "13900002222", "cit", CIT_PHONE)}
    assert len(set(answers.values())) == 1, answers
    assert answers["nobody"].startswith("200 ") and "如果该登录名或手机号属于" in answers["nobody"]
    assert len(_messages()) == before  # nothing sent to anyone
    page = _ask_reset(visitor, "op").text
    assert _confirm(visitor, page, "123456").status_code == 422
    assert _password_login("op", PASSWORD) == 303  # the staff password is untouched
