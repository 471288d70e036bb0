"""The web UI over the real app on both backends: login, CSRF, intake with its suggestions, the order list and
detail with data scope and masking, every life-cycle form, the dispatcher's queue, the dashboard, i18n and the
degraded page without vendor assets.

The organisation, accounts and routing rule are the shared small world of ``web_helpers``; its category
classifier is a real (tiny) model trained on synthetic messages, written as an artefact and configured through
``CITYHUB_DISPATCH_MODEL_PATH`` like in production.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app_helpers import shared_app
from cityhub.auth.models import AuthSession
from cityhub.config import get_settings
from cityhub.db import reset_engine, session_scope, utcnow
from cityhub.dispatch import background
from cityhub.dispatch import service as dispatch
from cityhub.dispatch.models import DispatchRule
from cityhub.dispatch.rules import TargetKind
from cityhub.intake.dedupe import auto_merge_params, get_dedupe_settings
from cityhub.intake.service import submit
from cityhub.knowledge import service as kb
from cityhub.knowledge.models import ReplyCheck
from cityhub.knowledge.schemas import EntryCreate, EntryUpdate
from cityhub.main import create_app
from cityhub.org.models import Role, Unit, User
from cityhub.web import i18n, import_pages, vendor
from cityhub.web import routes as web_routes
from cityhub.workorders import calendar as workcal
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import Category, Channel, Order, OrderEvent, SlaRule, SlaStatus
from web_helpers import PASSWORD, TOPICS, build_world, hidden, intake_form, login, train_classifier, world_env


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_classifier(tmp_path_factory.mktemp("model"))


@pytest.fixture
def org(
    app_db: str, monkeypatch: pytest.MonkeyPatch, model_dir: Path, request: pytest.FixtureRequest
) -> dict[str, Any]:
    for key, value in world_env(model_dir).items():
        monkeypatch.setenv(key, value)
    get_dedupe_settings.cache_clear()
    request.addfinalizer(get_dedupe_settings.cache_clear)
    reset_engine()
    with session_scope() as s:
        world = build_world(s)
        entry = kb.create_entry(
            s,
            data=EntryCreate.model_validate(
                {
                    "question": "离职后住房公积金怎么提取",
                    "answer": "账户封存满6个月后凭身份证到公积金中心办理。",
                    "keywords": "公积金,提取",
                }
            ),
        )
        return {
            "street_a": world.street_a,
            "street_b": world.street_b,
            "district": world.district,
            "cats": world.cats,
            "entry": entry.id,
        }


def _client() -> TestClient:
    return TestClient(shared_app(), raise_server_exceptions=False)


def csrf(client: TestClient) -> str:
    return client.cookies["cityhub_csrf"]


def _order(street: str = "W-JT", **extra: Any) -> Order:
    data = {"channel": "hotline", "content": "小区楼下餐馆油烟排放严重，噪音扰民", "street_code": street, **extra}
    with session_scope() as s:
        order = submit(s, data=data).order
        s.flush()
        s.expunge(order)
        return order


def _state(order_id: int) -> State:
    with session_scope() as s:
        return s.get(Order, order_id).state  # type: ignore[union-attr]


def _events(order_id: int) -> list[OrderEvent]:
    with session_scope() as s:
        rows = list(orders.history(s, order_id=order_id))
        s.expunge_all()
        return rows


def _act(client: TestClient, order_id: int, action: str, **data: Any) -> Any:
    version = _version(order_id)
    return client.post(
        f"/orders/{order_id}/act/{action}",
        data={"csrf_token": csrf(client), "version": str(version), **data},
        follow_redirects=False,
    )


def _version(order_id: int) -> int:
    with session_scope() as s:
        return s.get(Order, order_id).version  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- login and menus


def test_anonymous_users_see_the_status_page_and_are_sent_to_login(org) -> None:
    client = _client()
    home = client.get("/")
    assert home.status_code == 200 and "cityhub 城市运行一网统管" in home.text and 'href="/login"' in home.text
    assert "镇街" in home.text  # unit tiers labelled through the zh-CN catalogue (the old main.LABELS)
    from cityhub.jobs import run_job

    run_job("sla-sweep")
    assert '<td title="sla-sweep">时限巡检（预警、超期）</td>' in client.get("/").text  # job runs by their names
    for path in ("/orders", "/intake", "/queue", "/dashboard", f"/orders/{_order().id}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=%2F"), path
    # The assistance fragment does not navigate away from the appeal being typed: it says so in place, with a
    # sign-in link (new tab) back to the page the operator is on.
    fragment = client.post(
        "/intake/assist",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/intake?x=1"},
        data={},
        follow_redirects=False,
    )
    assert fragment.status_code == 200 and "HX-Redirect" not in fragment.headers
    assert 'data-testid="session-expired"' in fragment.text and 'href="/login?next=%2Fintake%3Fx%3D1"' in fragment.text
    # A form posted without a session returns, after login, to the page it was posted from (not a POST-only path).
    posted = client.post(
        "/orders/1/act/accept", headers={"Referer": "http://testserver/orders/1"}, data={}, follow_redirects=False
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/login?next=%2Forders%2F1"


def test_a_reply_posted_after_the_session_ended_is_shown_back_not_thrown_away(org) -> None:
    """A handler's reply typed on a phone, sent after the session ended, was lost to the redirect to the login form:
    the page says nothing was sent and shows the text to copy, with a sign-in in another tab and the way back."""
    order = _order()
    assert _act(login("disp"), order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    hand = login("hand_a")
    token = csrf(hand)
    hand.cookies.delete("cityhub_session")  # expired, or signed out in another tab
    text = "已到现场核查，<路灯>已更换，恢复照明。"
    posted = hand.post(
        f"/orders/{order.id}/act/reply",
        headers={"Referer": f"http://testserver/orders/{order.id}"},
        data={"csrf_token": token, "version": "1", "text": text, "unit_id": "7"},
        follow_redirects=False,
    )
    assert posted.status_code == 401 and posted.headers["cache-control"] == "no-store"
    assert 'data-testid="session-expired"' in posted.text
    shown = re.search(r'<textarea id="typed-text"[^>]*readonly[^>]*>([^<]*)</textarea>', posted.text)
    assert shown and html_unescape(shown.group(1)) == text, posted.text
    assert 'id="typed-unit_id"' not in posted.text  # a choice is made again, not shown as a number
    assert f'href="/login?next=%2Forders%2F{order.id}" target="_blank"' in posted.text
    assert f'href="/orders/{order.id}" role="button"' in posted.text
    assert [e.action for e in _events(order.id)][-1] == "dispatch"  # nothing was sent
    # Nothing typed (签收): the login form, back to the page afterwards, as before.
    bare = hand.post(
        f"/orders/{order.id}/act/accept",
        headers={"Referer": f"http://testserver/orders/{order.id}"},
        data={"csrf_token": token, "version": "1"},
        follow_redirects=False,
    )
    assert bare.status_code == 303 and bare.headers["location"] == f"/login?next=%2Forders%2F{order.id}"


def test_login_errors_keep_the_username_and_success_opens_the_role_workbench(org) -> None:
    client = _client()
    page = client.get("/login")
    bad = client.post("/login", data={"csrf_token": hidden(page.text), "username": "op", "password": "wrong-one"})
    assert bad.status_code == 401 and "用户名或密码错误" in bad.text and 'value="op"' in bad.text
    token = hidden(bad.text)
    good = client.post(
        "/login", data={"csrf_token": token, "username": "op", "password": PASSWORD}, follow_redirects=False
    )
    assert good.status_code == 303 and good.headers["location"] == "/intake"
    set_cookie = "\n".join(good.headers.get_list("set-cookie"))
    assert "cityhub_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
    menu = client.get("/intake").text
    assert 'href="/intake"' in menu and 'href="/orders"' in menu
    assert 'href="/queue"' not in menu and 'href="/dashboard"' not in menu
    assert "王话务" in menu and "话务员" in menu

    assert login("disp").get("/").url.path == "/queue"
    assert login("lead").get("/").url.path == "/dashboard"
    handler_home = login("hand_a").get("/")
    assert handler_home.url.path == "/orders" and handler_home.url.params.get_list("state") == ["open"]
    assert handler_home.url.params.get("sort") == "due"  # the time limit nearest first
    # Their menu's 工单 is that workbench too (it led to every order ever, closed ones first in number), marked as the
    # page shown on any order list.
    assert '<a href="/orders?state=open&amp;held=1&amp;sort=due" aria-current="page">工单</a>' in handler_home.text
    handler_menu = handler_home.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert 'href="/orders"' not in handler_menu
    # 本单位考核: their unit's assessment figures, one click from every page (only the leaders' ranking linked there).
    assessment = f'<a href="/assessment/{org["street_a"]}">本单位考核</a>'
    assert assessment in handler_menu
    figures = login("hand_a").get(f"/assessment/{org['street_a']}")
    assert (
        figures.status_code == 200
        and f'<a href="/assessment/{org["street_a"]}" aria-current="page">本单位考核</a>' in figures.text
    )
    assert "本单位考核" not in login("sup").get("/orders").text  # a supervisor's unit is the hotline's, not assessed
    assert '<a href="/orders" aria-current="page">工单</a>' in login("sup").get("/orders").text
    leader_menu = login("lead").get("/dashboard").text
    assert 'href="/dashboard"' in leader_menu and 'href="/intake"' not in leader_menu
    # 领导驾驶舱 is the leader's; a supervisor reads the same figures as 运行总览, in the menu and the page.
    assert (
        '<a href="/dashboard" aria-current="page">领导驾驶舱</a>' in leader_menu
        and "<h1>领导驾驶舱</h1>" in leader_menu
    )
    overview = login("sup").get("/dashboard").text
    assert '<a href="/dashboard" aria-current="page">运行总览</a>' in overview and "<h1>运行总览</h1>" in overview
    assert "领导驾驶舱" not in overview


def test_login_honours_next_but_never_leaves_the_site(org) -> None:
    client = _client()
    page = client.get("/login?next=%2Forders%3Fq%3Dx")
    assert hidden(page.text, "next") == "/orders?q=x"
    done = client.post(
        "/login",
        data={"csrf_token": hidden(page.text), "username": "op", "password": PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/intake"


def test_login_form_needs_its_own_csrf_token(org) -> None:
    client = _client()
    response = client.post("/login", data={"username": "op", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403 and "登录页面已过期" in response.text
    assert "cityhub_session" not in client.cookies


def test_logout_needs_the_csrf_token_and_ends_the_server_side_session(org) -> None:
    client = login("op")
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuthSession)) == 1
    done = client.post("/logout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(AuthSession)) == 0
    assert client.get("/orders", follow_redirects=False).status_code == 303
    assert "您已退出登录" in client.get("/login").text


def test_a_user_changes_their_password_on_the_account_page(org) -> None:
    """我的账户: a wrong current password, two different new ones and a guessable one are each told at their field
    in Chinese; a good change keeps this session, ends the other, and the new password signs in."""
    other = login("op")
    client = login("op")
    page = client.get("/account")
    assert page.status_code == 200 and "修改密码" in page.text and 'data-testid="account-link"' in page.text
    new = "violet-harbour-lantern-42"

    def change(current: str, first: str, second: str | None = None) -> Any:
        data = {"csrf_token": csrf(client), "current_password": current, "new_password": first}
        return client.post(
            "/account/password", data=data | {"new_password_again": second or first}, follow_redirects=False
        )

    wrong = change("not-my-password", new)
    assert wrong.status_code == 422 and "当前密码不正确" in wrong.text
    assert 'data-testid="field-error-current_password"' in wrong.text
    differ = change(PASSWORD, new, new + "x")
    assert differ.status_code == 422 and "两次输入的新密码不一致" in differ.text
    guessable = change(PASSWORD, "password12")
    assert guessable.status_code == 422 and "新密码太容易被猜到" in guessable.text
    assert client.post("/account/password", data={"current_password": PASSWORD}).status_code == 403  # no CSRF

    done = change(PASSWORD, new)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert "密码已修改。其他登录已退出 1 个" in client.get("/account").text
    assert other.get("/orders", follow_redirects=False).status_code == 303  # signed out
    fresh = _client()
    login_page = fresh.get("/login")
    signed_in = fresh.post(
        "/login",
        data={"csrf_token": hidden(login_page.text), "username": "op", "password": new},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303


def test_a_citizens_account_page_shows_api_tokens_only_once_they_made_one(org) -> None:
    """我的账户 of a citizen: their password, no API-token section while they hold none (the page is how they use
    their account); one made over the API (a resident's own app) is listed there, to be revoked."""
    staff = login("op")
    assert 'data-testid="tokens"' in staff.get("/account").text  # staff: the section, even empty
    client = login("cit")
    page = client.get("/account")
    assert page.status_code == 200 and 'data-testid="password-form"' in page.text
    assert 'data-testid="tokens"' not in page.text
    headers = {"X-CSRF-Token": client.cookies.get("cityhub_csrf") or ""}
    made = client.post("/api/v1/auth/tokens", json={"name": "我的应用"}, headers=headers)
    assert made.status_code == 201, made.text
    page = client.get("/account")
    assert 'data-testid="tokens"' in page.text and "我的应用" in page.text
    revoked = client.post(
        f"/account/tokens/{made.json()['id']}/revoke", data={"csrf_token": csrf(client)}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert 'data-testid="tokens"' in client.get("/account").text  # still held (revoked), still listed


def test_an_administrator_manages_accounts_on_the_users_pages(org) -> None:
    """用户管理: only for users:manage; a new account with a generated password shown once on the answering page
    (never in a redirect), errors at their fields, role and unit changed, a reset password, lock and unlock; an
    administrator cannot lock or demote themself."""
    dispatcher = login("disp")
    assert dispatcher.get("/admin/users", follow_redirects=False).status_code == 403
    assert dispatcher.get("/admin", follow_redirects=False).status_code == 403
    assert 'href="/admin"' not in dispatcher.get("/queue").text
    admin = login("adm")
    home = admin.get("/admin")  # 系统管理: one menu entry, the pages the role may use
    assert home.status_code == 200 and 'href="/admin"' in home.text
    assert all(f'href="{path}"' in home.text for path in ("/admin/users", "/sla", "/admin/calendar"))
    listed = admin.get("/admin/users")
    assert listed.status_code == 200 and 'data-username="hand_a"' in listed.text
    assert 'data-username="hand_b"' not in admin.get("/admin/users", params={"q": "hand_a"}).text

    def post(path: str, **data: str) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
    fields = {"username": "new_hand", "full_name": "孙新人", "role": "handler", "unit_id": "", "active": "1"}
    no_unit = post("/admin/users", **fields)
    assert no_unit.status_code == 422 and "工作人员须选择所在单位" in no_unit.text
    weak = post("/admin/users", **(fields | {"unit_id": str(street), "password": "password12"}))
    assert weak.status_code == 422 and "新密码太容易被猜到" in weak.text
    taken = post("/admin/users", **(fields | {"username": "hand_a", "unit_id": str(street)}))
    assert taken.status_code == 422 and "该登录名已被使用" in taken.text
    # A name taken (in other case too) is said with the form's other problems, not once they are mended.
    both = post("/admin/users", **(fields | {"username": "Hand_A", "unit_id": str(street), "phone": "abc"}))
    assert both.status_code == 422 and 'data-testid="field-error-phone"' in both.text
    assert 'data-testid="field-error-username">该登录名已被使用。<' in both.text
    created = post("/admin/users", **(fields | {"unit_id": str(street)}))
    assert created.status_code == 201 and "cityhub_flash" not in created.headers.get("set-cookie", "")
    password = re.search(r'<code class="secret">([^<]+)</code>', created.text).group(1)  # type: ignore[union-attr]
    newcomer = _client()
    page = newcomer.get("/login")
    data = {"csrf_token": hidden(page.text), "username": "new_hand", "password": password}
    assert newcomer.post("/login", data=data, follow_redirects=False).status_code == 303

    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.username == "new_hand")).one()
        admin_id = s.scalars(select(User.id).where(User.username == "adm")).one()
    changed = post(f"/admin/users/{user_id}", full_name="孙新人", role="supervisor", unit_id=str(street), active="1")
    assert changed.status_code == 303
    with session_scope() as s:
        assert s.get(User, user_id).role == Role.SUPERVISOR  # type: ignore[union-attr]
    assert newcomer.get("/orders", follow_redirects=False).status_code == 303  # the role change ended its session
    # Changing an account is held to what creating one is: a name, a phone and an e-mail that are such.
    for field, value in (("full_name", " "), ("full_name", "名" * 81), ("email", "notanemail"), ("phone", "abc")):
        data = {"full_name": "孙新人", "role": "supervisor", "unit_id": str(street), "active": "1", field: value}
        refused = post(f"/admin/users/{user_id}", **data)
        assert refused.status_code == 422 and f'data-testid="field-error-{field}"' in refused.text, (field, value)
    with session_scope() as s:
        assert s.get(User, user_id).full_name == "孙新人"  # type: ignore[union-attr]
    reset = post(f"/admin/users/{user_id}/password")
    assert reset.status_code == 200 and '<code class="secret">' in reset.text
    assert post(f"/admin/users/{user_id}/lock").status_code == 303
    assert "该账户已被管理员锁定" in admin.get(f"/admin/users/{user_id}").text
    assert post(f"/admin/users/{user_id}/unlock").status_code == 303
    assert "该账户已被管理员锁定" not in admin.get(f"/admin/users/{user_id}").text

    own = post(f"/admin/users/{admin_id}/lock")
    assert own.status_code == 409 and "不能停用、降级或锁定自己的账户" in own.text
    demote = post(f"/admin/users/{admin_id}", full_name="周管理", role="handler", unit_id=str(street), active="1")
    assert demote.status_code == 422 and "不能停用、降级或锁定自己的账户" in demote.text
    assert admin.get("/admin/users/999999").status_code == 404


def test_an_administrator_enters_a_year_of_holidays_on_the_calendar_page(org) -> None:
    """工作日历: a year the built-in calendar does not know is flagged until its holidays are entered; a pasted year
    enters its good rows and lists every bad one in Chinese; an entry is deleted again; only calendar:manage."""
    assert login("disp").get("/admin/calendar", follow_redirects=False).status_code == 403
    admin = login("adm")
    year = 2090  # far beyond any built-in calendar: its deadlines skip the holidays the law gives, computed
    page = admin.get("/admin/calendar", params={"year": year})
    assert page.status_code == 200 and 'data-testid="calendar-by-law"' in page.text
    statutory = workcal.statutory_holidays(year)
    assert f"{year}-10-01" in page.text and "calendar-missing" not in page.text and len(statutory) >= 13
    beyond = next(y for y in range(2100, 2300) if not workcal.statutory_holidays(y))  # past the lunar tables
    assert 'data-testid="calendar-missing"' in admin.get("/admin/calendar", params={"year": beyond}).text
    assert 'data-testid="calendar-builtin"' in admin.get("/admin/calendar", params={"year": 2025}).text

    def post(path: str, **data: str) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    # The kinds as an administrator writes them (放假/休, 上班/班), the codes too; the hint names the words first.
    assert "类型写“放假”或“休”，调休上班写“上班”或“班”" in page.text
    holidays = [f"{year}-10-{d:02d},{('放假', '休', 'holiday')[d % 3]},国庆节" for d in range(1, 8)] + [
        f"{year}-01-0{d},放假,元旦" for d in (2, 3, 4, 5)
    ]
    workdays = [f"{year}-09-29,上班,调休上班", f"{year}-10-14,班,"]
    rows = "\n".join(["日期,类型,名称", *holidays, *workdays, f"{year}-13-01,放假,x", f"{year}-10-09,rest,y"])
    imported = post(f"/admin/calendar/import?year={year}", rows=rows)
    assert imported.status_code == 422
    assert "以下 2 行未录入" in imported.text and f"“{year}-13-01”不是有效日期" in imported.text
    assert "类型应为“放假”（或“休”）或“上班”（或“班”），而不是“rest”" in imported.text
    with session_scope() as s:
        entered = [d for d in workcal.list_days(s, year=year) if not d.is_workday]
        worked = [d.day.isoformat() for d in workcal.list_days(s, year=year) if d.is_workday]
    assert len(entered) == 11 and worked == [f"{year}-09-29", f"{year}-10-14"]
    for day in worked:
        assert post(f"/admin/calendar/days/{day}/delete").status_code == 303
    page = admin.get("/admin/calendar", params={"year": year})
    weekday_holidays = sum(1 for d in entered if d.day.weekday() < 5)
    assert ('data-testid="calendar-by-law"' in page.text) == (weekday_holidays < workcal.MIN_WEEKDAY_HOLIDAYS)

    one = post("/admin/calendar/days", day=f"{year}-10-10", kind="workday", name="调休上班")
    assert one.status_code == 303 and one.headers["location"] == f"/admin/calendar?year={year}"
    assert f"已录入 {year}-10-10" in admin.get(one.headers["location"]).text
    bad = post("/admin/calendar/days", day="tomorrow", kind="workday", name="补班")
    assert bad.status_code == 422 and "请输入有效日期" in bad.text
    assert 'value="补班"' in bad.text and '<option value="workday" selected>' in bad.text  # what was typed stays
    long = post("/admin/calendar/days", day=f"{year}-10-12", kind="holiday", name="节" * 61)
    assert long.status_code == 422 and "最多 60 个字" in long.text
    with_long = post(f"/admin/calendar/import?year={year}", rows=f"{year}-10-13,holiday,{'节' * 61}")
    assert with_long.status_code == 422 and "第 1 行：名称超过 60 个字" in with_long.text
    assert post(f"/admin/calendar/days/{year}-10-10/delete").status_code == 303
    assert post(f"/admin/calendar/days/{year}-10-11/delete").status_code == 404
    with session_scope() as s:
        assert all(d.day.isoformat() != f"{year}-10-10" for d in workcal.list_days(s, year=year))

    # The State Council's notice pasted as published: its days off and workdays are entered, on the page of its year
    # (a 2019 notice begins with 2018-12-29); an item that does not add up is listed, the rest entered.
    from holiday_notices import NOTICES

    pasted = post(f"/admin/calendar/import?year={year}", rows=NOTICES[2019])
    assert pasted.status_code == 303 and pasted.headers["location"] == "/admin/calendar?year=2019"
    assert "已录入 31 天" in admin.get(pasted.headers["location"]).text
    wrong = post("/admin/calendar/import?year=2025", rows=NOTICES[2025].replace("共5天", "共4天"))
    assert wrong.status_code == 422 and "第 6 行（劳动节）：“共N天”与所列日期不符，未录入" in wrong.text
    with session_scope() as s:
        days = {d.day: d.name for d in workcal.list_days(s, year=2025)}
    assert days[date(2025, 1, 28)] == "春节" and date(2025, 5, 2) not in days


def test_the_calendar_page_refuses_a_paste_without_days(org) -> None:
    """A blank box or a header alone was taken as "0 days entered" (the command line and the API refused it; the
    service now does, for every caller): it is said beside the box, which keeps what was pasted."""
    admin = login("adm")
    for pasted in ("", "date,kind,name\n", "  \n"):
        page = admin.post(
            "/admin/calendar/import?year=2031",
            data={"csrf_token": csrf(admin), "rows": pasted},
            follow_redirects=False,
        )
        assert page.status_code == 422, pasted
        assert 'data-testid="field-error-rows"' in page.text and "没有可录入的日期" in page.text
        assert f'aria-describedby="err-rows">{pasted}</textarea>' in page.text  # what was pasted stays in the box
    with session_scope() as s:
        assert workcal.list_days(s, year=2031) == []


def test_the_built_in_holidays_are_named_in_the_readers_language(org) -> None:
    """The built-in calendars' holiday names are the product's own words: an English page names them in English (a
    day off in lieu too), a Chinese page as the calendars write them."""
    admin = login("adm")
    assert (
        "国庆节" in admin.get("/admin/calendar", params={"year": 2026}).text.split('data-testid="official-holidays"')[1]
    )
    admin.cookies.set("cityhub_lang", "en")
    official = admin.get("/admin/calendar", params={"year": 2026}).text.split('data-testid="official-holidays"')[1]
    official = official.split("</ul>")[0]
    assert "2026-10-01 National Day" in official and "2026-02-16 Spring Festival" in official
    assert "国庆节" not in official and "春节" not in official
    # A year beyond the built-in calendar: the holidays the law gives, computed, with the days off in lieu.
    by_law = admin.get("/admin/calendar", params={"year": 2090}).text.split('data-testid="statutory-holidays"')[1]
    by_law = by_law.split("</ul>")[0]
    assert "National Day" in by_law and "Mid-autumn Festival" in by_law and "(day in lieu)" in by_law
    assert not re.search(r"[\u4e00-\u9fff]", by_law), by_law


def test_time_limits_are_read_by_supervisors_and_set_by_administrators(org) -> None:
    """办理时限: the table and the built-in terms for a supervisor (no form); an administrator sets a category's rule
    (a running order under it gets its deadline recomputed), gets bad values told at their field, deletes it."""
    assert login("op").get("/sla", follow_redirects=False).status_code == 403
    sup = login("sup").get("/sla")
    assert sup.status_code == 200 and "内置时限" in sup.text and 'data-testid="sla-form"' not in sup.text
    admin = login("adm")
    assert 'href="/sla"' in login("sup").get("/orders").text  # a supervisor's menu has it; an admin's via /admin

    def post(path: str, **data: str) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    order = _order()
    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
        orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": street})
        category = s.get(Order, order.id).category_id  # type: ignore[union-attr]
        due_before = s.get(Order, order.id).due_at  # type: ignore[union-attr]
    bad = post("/sla", category_id=str(category or ""), urgency="", accept_hours="0", finish_days="x")
    assert bad.status_code == 422 and 'data-testid="field-error-accept_hours"' in bad.text
    assert "须大于 0。" in bad.text and "请选择有效的选项" not in bad.text  # a number out of range, not a choice
    saved = post("/sla", category_id=str(category or ""), urgency="", accept_hours="1", finish_days="20")
    assert saved.status_code == 303
    table = admin.get("/sla").text
    assert "1 张在办工单的时限已重新计算" in table
    # A rule without its own warning share warns at the default, which its row says (not a bare "—").
    assert '<span class="hint" data-testid="sla-default-share">80%（默认）</span>' in table
    # The share typed as the page words the default, a percentage, is that share.
    assert (
        post(
            "/sla", category_id="", urgency="urgent", accept_hours="1", finish_days="2", warning_share="75%"
        ).status_code
        == 303
    )
    assert (
        post(
            "/sla", category_id="", urgency="urgent", accept_hours="1", finish_days="2", warning_share="七成"
        ).status_code
        == 422
    )
    with session_scope() as s:
        assert s.scalars(select(SlaRule.warning_share).where(SlaRule.urgency == "urgent")).one() == 0.75
    with session_scope() as s:
        assert s.get(Order, order.id).due_at > due_before  # type: ignore[union-attr,operator]
        rule_id = s.scalars(select(SlaRule.id).where(SlaRule.finish_days == 20)).one()
    assert post(f"/sla/{rule_id}/delete").status_code == 303
    assert post(f"/sla/{rule_id}/delete").status_code == 404
    # A rule that runs round the clock (全天候): ticked on the form, said in its row, kept when the form is refused.
    rtc = post("/sla", category_id="", urgency="critical", accept_hours="x", finish_days="1", round_the_clock="1")
    assert (
        rtc.status_code == 422
        and 'name="round_the_clock" value="1" data-testid="sla-round-the-clock" checked' in rtc.text
    )
    assert (
        post(
            "/sla", category_id="", urgency="critical", accept_hours="0.5", finish_days="1", round_the_clock="1"
        ).status_code
        == 303
    )
    page = admin.get("/sla")
    [row] = [r for r in page.text.split('data-testid="sla-rule"')[1:] if "特急" in r.split("</tr>")[0]]
    assert '<td data-testid="sla-clock">全天候</td>' in row
    assert (
        "1 小时内签收" not in page.text and "0.5 小时内签收，1 天内办结（全天候计时）" in page.text
    )  # the built-in terms
    with session_scope() as s:
        assert s.scalars(select(SlaRule.round_the_clock).where(SlaRule.urgency == "critical")).one() is True


def test_an_administrator_manages_api_clients_on_the_data_sharing_page(org) -> None:
    """数据共享: a new client's key shown once and working; scopes and limit changed for every key; a key revoked;
    the calls of the last days counted per client; only apiclients:manage."""
    from cityhub.sharing import service as sharing

    assert login("sup").get("/admin/api-clients", follow_redirects=False).status_code == 403
    admin = login("adm")
    assert 'href="/admin/api-clients"' in admin.get("/admin").text
    assert 'href="/docs" data-testid="api-docs-link"' in admin.get("/admin/api-clients").text  # the integrators guide

    def post(path: str, **data: Any) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    no_scope = post("/admin/api-clients", name="hotline-app", rate_limit="30")
    assert no_scope.status_code == 422 and "请至少选择一项权限范围" in no_scope.text
    made = post("/admin/api-clients", name="hotline-app", scopes=["sharing:read"], rate_limit="30")
    assert made.status_code == 201 and "cityhub_flash" not in made.headers.get("set-cookie", "")
    key = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
    api = _client()
    assert api.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 200
    again = post("/admin/api-clients", name="hotline-app", scopes=["admin"], rate_limit="30")
    assert again.status_code == 409 and "该名称的客户端已存在" in again.text

    with session_scope() as s:
        client = sharing.get_client(s, name="hotline-app")
        assert client is not None
        client_id = client.id
    page = admin.get("/admin/api-clients")
    assert "近 30 天调用 1 次，出错 0 次" in page.text and "/api/v1/sharing/orders" in page.text
    changed = post(f"/admin/api-clients/{client_id}", scopes=["open311:write"], rate_limit="5")
    assert changed.status_code == 303
    assert api.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 403  # scope taken away
    bad = post(f"/admin/api-clients/{client_id}", scopes=["open311:write"], rate_limit="0")
    assert bad.status_code == 422 and "限额须为至少 1 的整数" in bad.text
    second = post(f"/admin/api-clients/{client_id}/keys")
    assert second.status_code == 201 and '<code class="secret">' in second.text
    assert post(f"/admin/api-clients/keys/{key[:12]}/revoke").status_code == 303
    with session_scope() as s, pytest.raises(sharing.PermissionDenied):
        sharing.authenticate(s, raw_key=key)
    assert post("/admin/api-clients/keys/chk_nothere1/revoke").status_code == 404


def test_an_api_key_gets_an_expiry_on_the_data_sharing_page(org) -> None:
    """A key issued for some days shows until when it works; an expired one says so and is refused with 401; its
    expiry is moved on (or taken away) at its row; bad days are told at the field."""
    from sqlalchemy import update

    from cityhub.sharing.models import ApiKey

    admin = login("adm")

    def post(path: str, **data: Any) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    bad = post("/admin/api-clients", name="grid-app", scopes=["sharing:read"], rate_limit="30", expires_in_days="x")
    assert bad.status_code == 422 and "有效天数须为不小于 1 的整数" in bad.text
    made = post("/admin/api-clients", name="grid-app", scopes=["sharing:read"], rate_limit="30", expires_in_days="7")
    assert made.status_code == 201
    key = re.search(r'<code class="secret">([^<]+)</code>', made.text).group(1)  # type: ignore[union-attr]
    row = re.search(rf'data-prefix="{re.escape(key[:12])}">.*?</tr>', made.text, re.S).group(0)  # type: ignore[union-attr]
    assert '<td data-testid="key-expiry">至 ' in row
    api = _client()
    assert api.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 200
    with session_scope() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == key[:12]).values(expires_at=utcnow() - timedelta(hours=1)))
    refused = api.get("/api/v1/sharing/orders", headers={"X-API-Key": key})
    assert refused.status_code == 401 and refused.json()["code"] == "key_expired"
    page = admin.get("/admin/api-clients").text
    assert "过期" in re.search(rf'data-prefix="{re.escape(key[:12])}">.*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    wrong = post(f"/admin/api-clients/keys/{key[:12]}/expiry", expires_in_days="0")
    assert wrong.status_code == 422 and "有效天数须为不小于 1 的整数" in wrong.text
    assert post(f"/admin/api-clients/keys/{key[:12]}/expiry", expires_in_days="30").status_code == 303
    assert api.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 200
    assert post(f"/admin/api-clients/keys/{key[:12]}/expiry", expires_in_days="").status_code == 303
    with session_scope() as s:
        assert s.scalars(select(ApiKey.expires_at).where(ApiKey.prefix == key[:12])).one() is None
    # 立即失效 ends the key now (a leaked key): its next call is refused saying when; a validity set restores it.
    assert 'data-testid="expire-now"' in admin.get("/admin/api-clients").text
    ended = post(f"/admin/api-clients/keys/{key[:12]}/expiry", end_now="1")
    assert ended.status_code == 303
    assert "已立即失效" in admin.get(ended.headers["location"]).text
    refused = api.get("/api/v1/sharing/orders", headers={"X-API-Key": key})
    assert (refused.status_code, refused.json()["code"]) == (401, "key_expired"), refused.text
    assert f"API key {key[:12]}… expired at {refused.json()['details']['expired_at']}" in refused.json()["message"]
    assert post(f"/admin/api-clients/keys/{key[:12]}/expiry", expires_in_days="1").status_code == 303
    assert api.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 200


def test_the_order_list_folds_the_further_criteria_until_one_is_set(org) -> None:
    client = login("hand_a")
    plain = client.get("/orders")
    assert '<details class="more-filters" data-open-wide>' in plain.text  # folded: a phone shows the list first
    assert 'class="opt"' in plain.text  # the columns a phone's card leaves out
    picked = client.get("/orders", params={"channel": "hotline"})
    assert '<details class="more-filters" data-open-wide open>' in picked.text
    # A 常用视图 names its criteria in its tab: the handler's 在办 (只看本单位承办 among them) keeps them folded, on a
    # wide screen too (unfolded there, they left one order of the handler's morning above the fold at 1440 × 900)…
    workbench = client.get("/orders?state=open&held=1&sort=due")
    assert '<details class="more-filters">' in workbench.text
    # …which open once a criterion is added to it.
    added = client.get("/orders?state=open&held=1&sort=due&channel=hotline")
    assert '<details class="more-filters" data-open-wide open>' in added.text
    wrong = client.get("/orders", params={"created_from": "yesterday"})
    assert '<details class="more-filters" data-open-wide open>' in wrong.text and "请输入有效日期" in wrong.text


def test_an_administrator_keeps_the_units_on_the_organisation_pages(org) -> None:
    """组织机构: the tree with each unit's people; a community added under a street with contacts and a boundary;
    its code kept, bad contacts, boundary and a move under itself told at their fields; units:manage only."""
    assert login("lead").get("/admin/units", follow_redirects=False).status_code == 403
    admin = login("adm")
    tree = admin.get("/admin/units")
    assert tree.status_code == 200 and 'data-code="W-JT"' in tree.text

    def post(path: str, **data: str) -> Any:
        return admin.post(path, data={"csrf_token": csrf(admin), **data}, follow_redirects=False)

    with session_scope() as s:
        street = s.scalars(select(Unit).where(Unit.code == "W-JT")).one()
        street_id = street.id
    square = '{"type": "Polygon", "coordinates": [[[113.2, 23.2], [113.3, 23.2], [113.3, 23.3], [113.2, 23.2]]]}'
    fields = {"code": "W-JT-C9", "name": "新村社区居委会", "tier": "community", "parent_id": str(street_id)}
    fields |= {"contacts": "值班室,020-12345678\n书记,13800000000,,书记", "boundary": square, "active": "1"}
    bad = post("/admin/units", **(fields | {"boundary": '{"type": "Point", "coordinates": [1, 2]}'}))
    assert bad.status_code == 422 and "辖区边界不是有效的 GeoJSON 多边形" in bad.text
    # Each problem of a boundary said in the page's language, where in the coordinates it is (no English detail).
    for boundary, said in (
        ('{"type": "Polygon"', "不是 JSON 文本"),
        ('{"type": "Point", "coordinates": [1, 2]}', "type 应为 Polygon 或 MultiPolygon"),
        ('{"type": "Polygon", "coordinates": [[[113.2, 23.2], [113.3, 23.2], [113.2, 23.2]]]}', "至少要有 4 个坐标点"),
        (square.replace("[113.3, 23.3]", "[113.3, 223.3]"), "coordinates[0] 的坐标点 [113.3, 223.3] 超出经纬度范围"),
        (square.replace("[113.2, 23.2]]]", "[113.2, 23.25]]]"), "coordinates[0] 的线环没有闭合"),
    ):
        refused = post("/admin/units", **(fields | {"boundary": boundary}))
        error = re.search(r'data-testid="field-error-boundary">([^<]*)<', refused.text)
        assert refused.status_code == 422 and error is not None, boundary
        assert said in html_unescape(error.group(1)), error.group(1)
        assert not re.search(r"ring|position|longitude|must|is not", error.group(1)), error.group(1)
    made = post("/admin/units", **fields)
    assert made.status_code == 303
    with session_scope() as s:
        unit = s.scalars(select(Unit).where(Unit.code == "W-JT-C9")).one()
        assert unit.parent_id == street_id and unit.short_name
        assert unit.contacts == [
            {"name": "值班室", "phone": "020-12345678"},
            {"name": "书记", "phone": "13800000000", "role": "书记"},
        ]
        assert unit.boundary is not None and unit.boundary["type"] == "Polygon"
        unit_id = unit.id
    # The new community sits folded under its street in the tree, listed once the street is opened.
    assert 'data-code="W-JT-C9"' not in admin.get("/admin/units").text
    assert 'data-code="W-JT-C9"' in admin.get("/admin/units", params={"open": street_id}).text
    # The configuration log's entry leads to it (a search by its code), its page back to its place in the tree.
    assert 'href="/admin/units?q=W-JT-C9"' in admin.get("/admin/log", params={"area": "unit"}).text
    taken = post("/admin/units", **fields)
    assert taken.status_code == 422 and "该单位编码已被使用" in taken.text
    page = admin.get(f"/admin/units/{unit_id}")
    assert page.status_code == 200 and "值班室,020-12345678" in page.text
    assert f'href="/admin/units?open={street_id}#unit-{unit_id}"' in page.text
    renamed = post(f"/admin/units/{unit_id}", **(fields | {"name": "新村社区", "code": "IGNORED"}))
    assert renamed.status_code == 303
    with session_scope() as s:
        assert s.get(Unit, unit_id).name == "新村社区" and s.get(Unit, unit_id).code == "W-JT-C9"  # type: ignore[union-attr]
    cycle = post(f"/admin/units/{street_id}", name="景泰街道", tier="street", parent_id=str(unit_id), active="1")
    assert cycle.status_code == 422 and "不能把单位移到它自己或它的下级单位之下" in cycle.text
    contacts = post(f"/admin/units/{unit_id}", **(fields | {"contacts": ",020-1"}))
    assert contacts.status_code == 422 and "联系人每行应为" in contacts.text
    # A tier that does not fit the tree would widen or break what the unit's staff see: refused at its field.
    district = post(f"/admin/units/{unit_id}", **(fields | {"tier": "district"}))
    assert district.status_code == 422 and "区不能设在镇街之下" in district.text
    orphan = post("/admin/units", **(fields | {"code": "W-C10", "parent_id": ""}))
    assert orphan.status_code == 422 and "村社须有上级单位（镇街）" in orphan.text
    emptied = post(f"/admin/units/{street_id}", name="景泰街道", tier="department", active="1")
    assert emptied.status_code == 422 and "其下已有村社单位，不能改为职能部门" in emptied.text
    with session_scope() as s:
        assert s.get(Unit, unit_id).tier == "community" and s.get(Unit, street_id).tier == "street"  # type: ignore[union-attr]


def _poster(client: TestClient) -> Any:
    """A form's post by ``client`` with its CSRF token, redirects not followed."""

    def post(path: str, **data: str) -> Any:
        return client.post(path, data={"csrf_token": csrf(client), **data}, follow_redirects=False)

    return post


def _form_errors(page: Any) -> dict[str, str]:
    """A refused form's (422) errors by field, as its page says them."""
    assert page.status_code == 422, page.status_code
    found = re.findall(r'data-testid="field-error-(\w+)">([^<]*)<', page.text)
    return {field: html_unescape(text) for field, text in found}


def test_the_admin_forms_say_all_their_problems_at_once(org) -> None:
    """A unit with a bad boundary had its code and tier checked only once the boundary was mended; a routing rule's
    reversed dates were said only once a bad priority was; an account's bad phone only once its weak password was
    (or the other way round). Each form says all its problems at once, each at its field, keeping what was typed."""
    post = _poster(login("adm"))

    unit = {"code": "W-JT", "name": "新村社区居委会", "tier": "community", "parent_id": "", "active": "1"}
    said = _form_errors(post("/admin/units", **(unit | {"boundary": '{"type": "Polygon"', "contacts": ",020-1"})))
    assert said.keys() >= {"boundary", "code", "tier", "contacts"}, said
    assert "不是 JSON 文本" in said["boundary"] and "已被使用" in said["code"] and "村社须有上级单位" in said["tier"]
    said = _form_errors(post("/admin/units", **(unit | {"code": "W JT 9", "name": "", "boundary": "[1"})))
    assert said.keys() >= {"boundary", "code", "name", "tier"}, said
    rule = {"name": "测试规则", "priority": "5000", "active": "1", "target_kind": "unit"}
    rule |= {"target_unit_id": str(org["street_a"]), "valid_from": "2026-12-10", "valid_until": "2026-12-01"}
    refused = post("/rules", **rule)
    said = _form_errors(refused)
    assert said.keys() >= {"priority", "valid_until"}, said
    assert 'value="2026-12-01"' in refused.text and 'value="5000"' in refused.text  # what was typed stays
    said = _form_errors(post("/rules", **(rule | {"priority": "x", "valid_from": "2026-13-40", "target_unit_id": ""})))
    assert said.keys() >= {"priority", "valid_from", "target_unit_id"}, said
    account = {"username": "new_hand", "full_name": "孙新人", "role": "handler", "unit_id": "", "active": "1"}
    refused = post("/admin/users", **(account | {"phone": "abc", "password": "password12"}))
    said = _form_errors(refused)
    assert said.keys() >= {"phone", "password", "unit_id"}, said
    assert 'value="abc"' in refused.text and 'value="new_hand"' in refused.text
    with session_scope() as s:
        assert s.scalars(select(User).where(User.username == "new_hand")).first() is None


def test_the_edit_forms_of_an_account_and_a_rule_say_all_their_problems_at_once(org) -> None:
    """Editing an account said one problem a round (a bad phone, and only once it was mended that a handler needs a
    unit or that one's own role cannot change); editing a routing rule did not check its category, place and target
    beside its other problems, as a new rule's form does. Both say all at once, each at its field, keeping what was
    typed, and change nothing."""
    post = _poster(login("adm"))

    with session_scope() as s:
        hand_a = s.scalars(select(User).where(User.username == "hand_a")).one()
        me = s.scalars(select(User).where(User.username == "adm")).one()
        hand_id, my_id, my_unit = hand_a.id, me.id, str(me.unit_id)
        rule_id = s.scalars(select(DispatchRule.id)).first()
    account = {"full_name": "李承办", "role": "handler", "unit_id": "", "active": "1"}
    refused = post(f"/admin/users/{hand_id}", **(account | {"phone": "abc"}))
    said = _form_errors(refused)
    assert said.keys() >= {"phone", "unit_id"}, said
    assert "须选择所在单位" in said["unit_id"] and 'value="abc"' in refused.text
    mine = {"full_name": "周管理", "role": "handler", "unit_id": my_unit, "active": "1", "email": "not-mail"}
    said = _form_errors(post(f"/admin/users/{my_id}", **mine))
    assert said.keys() >= {"email", "_form"}, said
    assert "不能停用、降级或锁定自己的账户" in said["_form"]
    with session_scope() as s:
        assert s.get(User, hand_id).unit_id is not None and s.get(User, my_id).role == Role.ADMIN  # type: ignore[union-attr]
    rule = {"name": "环境保护 → 指定单位", "priority": "5000", "active": "1", "target_kind": "unit"}
    rule |= {"category_id": "999999", "place_unit_id": "999999", "target_unit_id": ""}
    refused = post(f"/rules/{rule_id}", **rule)
    said = _form_errors(refused)
    assert said.keys() >= {"priority", "category_id", "place_unit_id", "target_unit_id"}, said
    assert "不能大于 1000" in said["priority"] and "分类不存在" in said["category_id"]
    assert "须为区、镇街或村社" in said["place_unit_id"] and "请选择承办单位" in said["target_unit_id"]
    assert 'value="5000"' in refused.text and 'value="环境保护 → 指定单位"' in refused.text
    with session_scope() as s:
        assert s.get(DispatchRule, rule_id).target_kind == TargetKind.LOCAL_STREET  # type: ignore[union-attr]


def _units_of_a_district() -> dict[str, int]:
    """Communities under both streets of the world — two named 新村社区, one stopped — a sub-centre on a street, a
    department known by its short name and a section two levels under it, another whose code sorts before the
    streets'; every unit's id by its code."""
    from cityhub.org.models import UnitTier

    with session_scope() as s:
        ids = {code: unit_id for code, unit_id in s.execute(select(Unit.code, Unit.id))}
        units = [
            ("W-JT-C1", "新村社区居委会", "新村社区", UnitTier.COMMUNITY, "W-JT", True),
            ("W-JT-C2", "景泰社区居委会", None, UnitTier.COMMUNITY, "W-JT", False),
            ("W-JT-S1", "景泰街道网格分中心", None, UnitTier.SUBCENTRE, "W-JT", True),
            ("W-JX-C1", "新村社区居委会", "新村社区", UnitTier.COMMUNITY, "W-JX", True),
            ("W-ZJ", "广州市白云区住房和城乡建设局", "区住建局", UnitTier.DEPARTMENT, "W-QU", True),
            ("W-CG", "广州市白云区城市管理和综合执法局", "区城管局", UnitTier.DEPARTMENT, "W-QU", True),
            ("W-ZJ-1", "物业管理科", None, UnitTier.DEPARTMENT, "W-ZJ", True),
            ("W-ZJ-1-1", "加装电梯组", None, UnitTier.DEPARTMENT, "W-ZJ-1", True),
        ]
        for code, name, short_name, tier, parent, active in units:
            unit = Unit(code=code, name=name, short_name=short_name, tier=tier, parent_id=ids[parent], active=active)
            s.add(unit)
            s.flush()
            ids[code] = unit.id
        return ids


def _unit_rows(html: str) -> dict[str, str]:
    """Each unit row of a units page by the unit's code."""
    return dict(re.findall(r'<tr data-testid="unit-row" data-code="([^"]+)"(.*?)</tr>', html, re.S))


def test_the_unit_tree_folds_each_streets_communities_until_it_is_opened(org) -> None:
    """组织机构 at a district's size: the district, departments, sub-centres and streets listed, at any depth — a
    unit's streets before its departments, as a district lists itself (by code, 440111-D01… came before 440111002…);
    a street's communities folded under it, the street saying how many, opened by a link (no script) and folded
    again."""
    ids = _units_of_a_district()
    admin = login("adm")

    def toggle(row: str) -> tuple[str, str, str]:
        """A street row's link opening or folding its communities: aria-expanded, its address, its text."""
        found = re.search(r'<a href="([^"]+)" class="unit-toggle" aria-expanded="(\w+)"[^>]*>([^<]*)</a>', row)
        assert found is not None, row
        return found.group(2), html_unescape(found.group(1)), found.group(3)

    tree = admin.get("/admin/units")
    rows = _unit_rows(tree.text)
    assert {"W-QU", "W-JT", "W-JX", "W-JT-S1", "W-ZJ", "W-ZJ-1", "W-ZJ-1-1"} <= set(rows)
    assert not {"W-JT-C1", "W-JT-C2", "W-JX-C1"} & set(rows)
    assert "--depth: 3" in rows["W-ZJ-1-1"]  # three levels under the district, indented as such
    # The district's streets first, then its departments (W-CG's code sorts before the streets'), each with the
    # units under it; a street's sub-centre after its communities.
    assert list(rows) == ["W-QU", "W-JT", "W-JT-S1", "W-JX", "W-CG", "W-ZJ", "W-ZJ-1", "W-ZJ-1-1"]
    street = ids["W-JT"]
    assert toggle(rows["W-JT"]) == ("false", f"/admin/units?open={street}#unit-{street}", "展开 2 个村社")
    assert "展开 1 个村社" in rows["W-JX"] and "unit-toggle" not in rows["W-ZJ"] + rows["W-JT-S1"]
    # 景泰街道 opened: its communities under it (the stopped one muted, with its badge), 京溪街道's still folded.
    opened = admin.get(toggle(rows["W-JT"])[1])
    rows = _unit_rows(opened.text)
    codes = list(rows)
    assert codes[:6] == ["W-QU", "W-JT", "W-JT-C1", "W-JT-C2", "W-JT-S1", "W-JX"]
    assert "W-JX-C1" not in rows and "--depth: 2" in rows["W-JT-C1"]
    assert 'class="muted"' in rows["W-JT-C2"] and "已停用" in rows["W-JT-C2"]
    assert 'class="muted"' not in rows["W-JT-C1"] and "已停用" not in rows["W-JT-C1"]
    assert toggle(rows["W-JT"]) == ("true", f"/admin/units#unit-{street}", "收起 2 个村社")
    # Another street opened keeps the first one open.
    rows = _unit_rows(admin.get(toggle(rows["W-JX"])[1]).text)
    assert {"W-JT-C1", "W-JT-C2", "W-JX-C1"} <= set(rows)
    # Nonsense to open is the folded tree; the create-unit form is there either way.
    odd = admin.get("/admin/units", params={"open": ["x", str(ids["W-ZJ"])]})
    assert odd.status_code == 200 and "W-JT-C1" not in _unit_rows(odd.text)
    assert 'data-testid="unit-form"' in odd.text and 'action="/admin/units"' in odd.text
    english = login("adm")
    english.get("/lang/en")
    assert "Show 2 communities" in english.get("/admin/units").text
    assert "Show 1 community<" in english.get("/admin/units").text


def test_a_units_page_lists_its_streets_before_its_departments(org) -> None:
    """A unit's own page (下级单位) lists the units under it as the tree does: a district's streets first, then its
    departments (W-CG's code sorts before the streets'), by code within each."""
    ids = _units_of_a_district()
    page = login("adm").get(f"/admin/units/{ids['W-QU']}")
    assert page.status_code == 200
    listed = re.search(r'<ul data-testid="sub-units">(.*?)</ul>', page.text, re.S)
    assert listed is not None
    shown = [int(i) for i in re.findall(r'<a href="/admin/units/(\d+)">', listed.group(1))]
    by_id = {unit_id: code for code, unit_id in ids.items()}
    assert [by_id[i] for i in shown] == ["W-JT", "W-JX", "W-CG", "W-ZJ"]


def test_an_administrator_finds_a_unit_by_its_name_short_name_or_code(org, monkeypatch: pytest.MonkeyPatch) -> None:
    """组织机构's search (名称或编码): by name, short name or code (a code's letters in either case), stopped units
    too; each match with the units above it, so two 新村社区 are told apart; how many matched; none said so."""
    from cityhub.web import units_pages

    ids = _units_of_a_district()
    with session_scope() as s:
        names = dict(s.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids.values()))).all())
    admin = login("adm")

    def search(q: str, **params: Any) -> tuple[str, dict[str, str]]:
        page = admin.get("/admin/units", params={"q": q, **params})
        assert page.status_code == 200
        return page.text, _unit_rows(page.text)

    def path(row: str) -> str:
        """The units above a match, as read; each a link to its unit's page."""
        found = re.search(r'<small class="unit-path" data-testid="unit-path">上级单位：(.*?)</small>', row)
        assert found is not None, row
        links = re.findall(r'<a href="/admin/units/(\d+)">([^<]*)</a>', found.group(1))
        assert [names[int(unit_id)] for unit_id, _ in links] == [name for _, name in links], row
        return html_unescape(re.sub("<[^>]+>", "", found.group(1)))

    text, rows = search("新村")
    assert list(rows) == ["W-JT-C1", "W-JX-C1"] and "名称、简称或编码含“新村”的单位共 2 个。" in text
    assert path(rows["W-JT-C1"]) == "白云区 › 景泰街道" and path(rows["W-JX-C1"]) == "白云区 › 京溪街道"
    assert 'href="/admin/units"' in text and 'value="新村"' in text  # back to the tree; the search kept in its box
    text, rows = search("w-jx-c1")
    assert list(rows) == ["W-JX-C1"] and "共 1 个" in text
    text, rows = search("区住建局")  # its short name: the name is 广州市白云区住房和城乡建设局
    assert list(rows) == ["W-ZJ"] and path(rows["W-ZJ"]) == "白云区"
    _, rows = search("加装电梯")
    assert path(rows["W-ZJ-1-1"]) == "白云区 › 广州市白云区住房和城乡建设局 › 物业管理科"
    assert f'<a href="/admin/units/{ids["W-ZJ-1"]}">物业管理科</a></small>' in rows["W-ZJ-1-1"]
    _, rows = search(" 景泰社区 ")
    assert list(rows) == ["W-JT-C2"] and 'class="muted"' in rows["W-JT-C2"] and "已停用" in rows["W-JT-C2"]
    _, rows = search("白云区")
    assert "unit-path" not in rows["W-QU"]  # the top unit has none above it
    text, rows = search("<不存在>")
    assert rows == {} and "没有名称、简称或编码含“&lt;不存在&gt;”的单位。" in text and "<不存在>" not in text
    # Many matches come a page at a time, the count of them all.
    monkeypatch.setattr(units_pages, "PAGE_SIZE", 1)
    text, rows = search("新村")
    assert list(rows) == ["W-JT-C1"] and "共 2 个" in text and 'rel="next"' in text
    text, rows = search("新村", page="2")
    assert list(rows) == ["W-JX-C1"] and 'rel="prev"' in text and 'rel="next"' not in text
    text, rows = search("新村", page="99999999999999999999")
    assert list(rows) == ["W-JX-C1"] and 'rel="prev"' in text


# ------------------------------------------------------------------------------------------------------- CSRF


def test_form_posts_without_the_session_csrf_token_are_rejected(org) -> None:
    client = login("op")
    appeal = {"channel": "hotline", "content": "路灯不亮", "citizen_name": "张三"}
    for data, headers in (
        (appeal, {}),
        ({**appeal, "csrf_token": "forged"}, {}),
        ({**appeal, "csrf_token": csrf(client)}, {"Origin": "http://evil.example"}),
    ):
        response = client.post("/intake", data=data, headers=headers)
        assert response.status_code == 403 and "安全校验失败" in response.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
    order = _order()
    disp = login("disp")
    refused = disp.post(f"/orders/{order.id}/act/cancel", data={"reason": "重复"}, follow_redirects=False)
    assert refused.status_code == 403 and _state(order.id) == State.RECEIVED
    accepted = client.post(
        "/intake", data={**appeal, "appeal_type": "help", "csrf_token": csrf(client)}, follow_redirects=False
    )
    assert accepted.status_code == 303


def test_a_form_larger_than_a_page_takes_is_refused_saying_so(org) -> None:
    client = login("op")
    huge = intake_form(client, content="路灯不亮" * 70_000)  # ~840 KB of text, beyond the forms' 256 KiB
    refused = client.post("/intake", data=huge)
    assert refused.status_code == 413 and "提交的内容超过了允许的大小" in refused.text
    assert "标出的字段" not in refused.text  # nothing is marked on an error page
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_pages_carry_the_csrf_token_masked_afresh_and_go_compressed(org) -> None:
    client = login("op")
    session_token = client.cookies["cityhub_csrf"]
    first, second = client.get("/intake"), client.get("/intake")
    tokens = {hidden(first.text), hidden(second.text)}
    # BREACH: a secret the same in every compressed page could be read from the sizes; each page masks it anew.
    assert len(tokens) == 2 and session_token not in first.text and session_token not in second.text
    assert first.headers["content-encoding"] == "gzip" and int(first.headers["content-length"]) < len(first.content)
    plain = client.get("/intake", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and hidden(plain.text) not in tokens
    accepted = client.post(
        "/intake",
        data={"channel": "hotline", "content": "路灯不亮", "appeal_type": "help", "csrf_token": hidden(second.text)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303


# ---------------------------------------------------------------------------------------------------- 拆单


def test_an_operator_splits_a_second_problem_off_an_appeal_from_its_page(org) -> None:
    smoke = "楼下新开的餐馆每天中午晚上油烟直排，熏得整栋楼没法开窗，投诉多次没人管"
    order = _order(content=f"{smoke}。另外门口路灯坏了。", citizen_name="张三", address="景泰街道云苑新村3栋")
    client = login("op")
    page = client.get(f"/orders/{order.id}").text
    assert 'data-testid="action-split"' in page and "由系统判断" in page
    form = {"csrf_token": hidden(page), "version": str(order.version)}
    empty = client.post(f"/orders/{order.id}/act/split", data={**form, "content": "  ", "title": "油烟"})
    assert empty.status_code == 422 and 'value="油烟"' in empty.text  # what was typed stays
    # The refused form's page is the answer to a POST: its language and theme switches go back to the order's page
    # (the form's, by its Referer), not to a GET of the action's address.
    referred = client.post(
        f"/orders/{order.id}/act/split",
        data={**form, "content": "  ", "title": "油烟"},
        headers={"Referer": f"http://testserver/orders/{order.id}"},
    )
    assert f'href="/lang/en?next=/orders/{order.id}"' in referred.text.replace("%2F", "/")
    assert 'href="/lang/en?next=/"' in empty.text.replace("%2F", "/")  # no Referer: the home page
    long = client.post(f"/orders/{order.id}/act/split", data={**form, "content": "油" * 20_001, "title": "油烟"})
    assert long.status_code == 422 and "最多 20,000 个字" in long.text and "too long" not in long.text
    dispatcher = login("disp")
    disp_form = {"csrf_token": hidden(dispatcher.get(f"/orders/{order.id}").text), "version": str(order.version)}
    reason = dispatcher.post(f"/orders/{order.id}/act/cancel", data={**disp_form, "reason": "重" * 2_001})
    assert reason.status_code == 422 and "最多 2,000 个字" in reason.text  # the API's limit, on the page too
    dispatcher.cookies.set("cityhub_lang", "en")
    reason = dispatcher.post(f"/orders/{order.id}/act/cancel", data={**disp_form, "reason": "重" * 2_001})
    assert reason.status_code == 422 and "At most 2,000 characters." in reason.text
    done = client.post(
        f"/orders/{order.id}/act/split",
        data={**form, "content": smoke, "appeal_type": "complaint", "category_id": str(org["cats"]["环境保护"])},
    )
    assert done.status_code == 200
    with session_scope() as s:
        part = s.scalars(select(Order).where(Order.split_from_id == order.id)).one()
        assert part.category_id == org["cats"]["环境保护"] and part.citizen_name == "张三"
        assert part.appeal_type == "complaint"
        part_id, part_number = part.id, part.number
    assert f"已拆分出新工单 {part_number}" in done.text
    facts = re.search(r'data-testid="split">(.*?)</td>', done.text, re.S)
    assert facts is not None and f'<a href="/orders/{part_id}">{part_number}</a>' in facts.group(1)
    trail = re.search(r'<tr data-action="split">(.*?)</tr>', done.text, re.S)
    assert trail is not None and part_number in trail.group(1) and "油烟直排" in trail.group(1)
    queued = re.search(rf'data-number="{part_number}">(.*?)</header>', login("disp").get("/queue").text, re.S)
    assert queued is not None and f"拆分自 {order.number}" in queued.group(1)  # the dispatcher sees where it came from
    back = client.get(f"/orders/{part_id}").text
    assert re.search(rf'data-testid="split">拆分自 <a href="/orders/{order.id}">{order.number}</a>', back)
    assert "疑似重复工单" not in back  # the appeal it came from says the same on purpose
    assert f'<a href="/orders/{order.id}">{order.number}</a>' not in back.split('data-testid="similar"')[-1]
    # Splitting is the hotline's and the dispatchers' step, not a handling unit's.
    assert 'data-testid="action-split"' not in login("hand_a").get(f"/orders/{order.id}").text


def test_importing_a_hotline_export_again_shows_no_warned_rows_and_a_bad_phone_is_named(org) -> None:
    """A hotline export (来话时间, 联系电话) is read without column choices; a 联系电话 that is no number is a warning
    naming the field; the same file again imports nothing, and its warnings tile says 0, not the first import's."""
    client = login("op")
    page = client.get("/orders/import")
    sheet = (
        "工单编号,标题,内容,来话时间,联系电话\n"
        "R-1,路灯不亮,云苑新村路灯连续三晚不亮,2026-11-20 09:10:00,abc\n"
        "R-2,噪音扰民,夜间施工噪音严重,2026-11-21 23:10:00,13812345678\n"
    ).encode()
    form = {"csrf_token": hidden(page.text)}

    def tiles(text: str) -> dict[str, str]:
        return dict(re.findall(r'data-testid="import-(imported|skipped|warnings)">(\d+)<', text))

    done = client.post("/orders/import", data=form, files={"file": ("热线.csv", sheet, "text/csv")})
    assert done.status_code == 200, done.text
    assert tiles(done.text) == {"imported": "2", "skipped": "0", "warnings": "1"}
    assert "按导入时间记" not in done.text  # 来话时间 is the time of receipt
    warned = re.findall(
        r'data-row="(\d+)" data-level="warning">\s*<td>\d+</td>\s*<td>.*?</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>',
        done.text,
        re.S,
    )
    assert warned == [("2", "联系电话", "不是电话号码：“abc”，作为附加信息保存，未设联系电话")]

    again = client.post("/orders/import", data=form, files={"file": ("热线.csv", sheet, "text/csv")})
    assert tiles(again.text) == {"imported": "0", "skipped": "2", "warnings": "0"}
    assert 'data-testid="import-warning-kinds"' not in again.text


def test_an_operator_imports_a_spreadsheet_of_appeals_from_the_intake_page(org, monkeypatch) -> None:
    """批量导入: the good rows imported under the operator's name, every refused row listed in Chinese by row and
    field; the same file again adds nothing; a file that is not a table is refused; handlers have no such page."""
    client = login("op")
    intake = client.get("/intake").text
    assert 'href="/orders/import"' in intake
    page = client.get("/orders/import")
    assert page.status_code == 200 and "反映内容" not in page.text and "留言详情" in page.text  # the known headers
    # Where nothing runs in the background (CITYHUB_DISPATCH_IN_BACKGROUND off) the choice does nothing, so it is off
    # and cannot be ticked, as its hint says (it was ticked beside 本系统未开启自动派单) …
    with monkeypatch.context() as patched:
        patched.setattr(import_pages.background, "enabled", lambda: False)
        patched.setattr(import_pages.background, "suggests", lambda: False)
        off = client.get("/orders/import").text
    assert 'data-testid="import-dispatch" disabled>' in off and "本系统未开启自动派单" in off
    # … where something does, it is on unless unticked: here, automatic dispatch off, for the system's suggestions.
    assert 'name="dispatch" value="1" data-testid="import-dispatch" checked' in page.text
    assert "自动派单未开启：新工单由系统自动查重（重复的并入原工单）、分类并给出派单建议" in page.text
    sheet = (
        "工单号,诉求标题,反映内容,来电时间,经度\n"
        "M-1,路灯不亮,景泰街道云苑新村路灯连续三晚不亮,2026-11-20 09:10:00,\n"
        "M-2,噪音扰民,夜间施工噪音严重,2026-11-21 23:10:00,113.3\n"
        "M-3,,,2026-11-21 10:00:00,\n"
        "M-4,垃圾未清运,小区门口垃圾堆放三天未清运,明天,\n"
    ).encode()
    form = {
        "csrf_token": hidden(page.text),
        "channel": "mailbox",
        "column_content": "反映内容",
        "column_title": "诉求标题",
        "column_created_at": "来电时间",
        "column_external_id": "工单号",
    }

    done = client.post("/orders/import", data=form, files={"file": ("信箱.csv", sheet, "text/csv")})

    assert done.status_code == 200, done.text
    counts = dict(re.findall(r'data-testid="import-(read|imported|skipped|rejected)">(\d+)<', done.text))
    assert counts == {"read": "4", "imported": "1", "skipped": "0", "rejected": "3"}
    issues = re.findall(
        r'data-row="(\d+)" data-level="error">\s*<td>\d+</td>\s*<td>.*?</td>\s*<td>(.*?)</td>\s*'
        r"<td>(.*?)</td>",
        done.text,
        re.S,
    )
    assert issues == [
        ("3", "纬度", "经度和纬度须同时填写"),
        ("4", "诉求内容", "标题和内容都是空的"),
        ("5", "受理时间", "无法识别的日期时间“明天”"),
    ]
    assert 'value="反映内容"' in done.text  # the choices stay for the corrected file
    assert "新工单已进入待派单队列" in done.text  # the box left unticked: nothing handed to the dispatcher
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.external_id == "M-1")).one()
        assert (order.channel, order.state, order.title) == (Channel.MAILBOX, State.RECEIVED, "路灯不亮")
        trail = [(e.action, e.actor_name) for e in order.events]
    assert trail == [("create", "王话务")]

    again = client.post("/orders/import", data=form, files={"file": ("信箱.csv", sheet, "text/csv")})
    assert (
        re.search(r'data-testid="import-skipped">1<', again.text) and 'data-testid="import-imported">0<' in again.text
    )
    assert "自动派单未开启：新工单由系统自动查重" in done.text  # here it is off: the box says where the orders go
    one_more = "工单号,诉求标题,反映内容,来电时间\nM-9,积水,桥下积水,2026-11-22 08:00:00\n".encode()
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")  # decided by the background dispatcher
    get_settings.cache_clear()
    try:
        ticked = client.post(
            "/orders/import", data={**form, "dispatch": "1"}, files={"file": ("信箱2.csv", one_more, "text/csv")}
        )
    finally:
        get_settings.cache_clear()
    assert "1 件新工单已交由自动派单" in ticked.text
    with session_scope() as s:
        assert background.waiting(s, [s.scalars(select(Order.id).where(Order.external_id == "M-9")).one()])
    status_page = _client().get("/").text  # behind newly received appeals, and said so apart from them
    assert "批量导入的工单 1 件待后台派单或查重" in status_page and 'data-testid="dispatch-backlog"' not in status_page
    wrong = client.post("/orders/import", data=form, files={"file": ("信箱.pdf", b"%PDF-1.4", "application/pdf")})
    assert wrong.status_code == 422 and "信箱.pdf：不是 CSV 或 Excel 文件" in wrong.text
    missing = client.post(
        "/orders/import", data={**form, "column_content": "内容栏"}, files={"file": ("信箱.csv", sheet, "text/csv")}
    )
    assert missing.status_code == 422 and "为“诉求内容”指定的列“内容栏”不在表头中" in missing.text
    # A file of unknown headers is refused naming them and pointing to 列名对应, which is open beside the message.
    folded = "<details>\n      <summary>列名对应（可选）</summary>"
    assert folded in page.text
    unknown = client.post(
        "/orders/import",
        data={"csrf_token": form["csrf_token"]},
        files={"file": ("来电.csv", "序号,来电人,问题描述\n1,张三,路灯坏了\n".encode(), "text/csv")},
    )
    assert unknown.status_code == 422 and "没有找到标题或内容列" in unknown.text and "问题描述" in unknown.text
    assert folded.replace("<details>", "<details open>") in unknown.text
    nothing = client.post("/orders/import", data=form)
    assert nothing.status_code == 422 and "请选择要导入的文件" in nothing.text
    without_token = client.post(
        "/orders/import", data={**form, "csrf_token": "x"}, files={"file": ("b.csv", sheet, "text/csv")}
    )
    assert without_token.status_code == 403
    handler = login("hand_a")
    assert 'href="/orders/import"' not in handler.get("/orders").text
    assert handler.get("/orders/import").status_code == 403


def test_the_import_pages_link_lists_exactly_the_orders_that_import_created(org) -> None:
    """查看导入的工单 lists the orders the import created — not the channel's older orders, nor the rows it found
    imported already — under a chip naming the file, when, who and how many, whose ✕ lists every order again; the
    list's other criteria keep it; a street's handler sees those of its street, without the import's count."""
    client = login("op")
    form = {"csrf_token": hidden(client.get("/orders/import").text), "channel": "mailbox"}
    older = "编号,内容,街道\nA-1,上个月的诉求：路灯不亮,W-JT\n".encode()
    assert client.post("/orders/import", data=form, files={"file": ("十月.csv", older)}).status_code == 200
    sheet = "编号,内容,街道\nA-1,上个月的诉求：路灯不亮,W-JT\nB-1,井盖缺失,W-JT\nB-2,噪音扰民,W-JX\n".encode()
    done = client.post("/orders/import", data=form, files={"file": ("十一月.csv", sheet)})
    assert done.status_code == 200, done.text
    link = re.search(
        r'<a href="(/orders\?import_batch_id=\d+)" data-testid="import-see-orders">查看导入的工单</a>', done.text
    )
    assert link is not None, done.text
    with session_scope() as s:
        numbers = {ext: number for ext, number in s.execute(select(Order.external_id, Order.number))}

    def listed(page: str) -> set[str]:
        return set(re.findall(r'<a href="/orders/\d+">([^<]+)</a>', page)) & set(numbers.values())

    page = client.get(link.group(1)).text
    assert listed(page) == {numbers["B-1"], numbers["B-2"]}  # the channel holds A-1 too
    chip = re.search(r'data-testid="batch-chip">(.*?)</p>', page, re.S)
    assert chip is not None
    assert "导入批次：" in chip.group(1) and "<strong" in chip.group(1) and "十一月.csv</strong>" in chip.group(1)
    assert "王话务" in chip.group(1) and 'data-testid="batch-count">导入 2 件<' in chip.group(1)
    assert 'data-testid="batch-remove"' in chip.group(1) and 'href="/orders"' in chip.group(1)
    batch = link.group(1).split("=")[1]
    assert f'name="import_batch_id" value="{batch}"' in page  # the filter form keeps it
    narrowed = client.get("/orders", params={"import_batch_id": batch, "street_id": str(org["street_a"])}).text
    assert listed(narrowed) == {numbers["B-1"]}
    assert f'href="/orders?street_id={org["street_a"]}"' in narrowed  # the ✕ keeps the other criteria
    assert listed(client.get("/orders").text) >= set(numbers.values())
    handler = login("hand_a").get(link.group(1)).text
    assert listed(handler) == {numbers["B-1"]}  # 景泰街道's handler: its street's order of the import
    assert "十一月.csv" in handler and 'data-testid="batch-count"' not in handler  # not the others' number
    for unknown_id in ("999999", "99999999999"):  # the latter beyond the key's range
        unknown = client.get("/orders", params={"import_batch_id": unknown_id})
        assert unknown.status_code == 200 and f"没有编号为 {unknown_id} 的导入批次" in unknown.text
        assert not listed(unknown.text)
    assert "请输入数字" in client.get("/orders", params={"import_batch_id": "x"}).text
    client.get("/lang/en")
    english = client.get(link.group(1)).text
    assert 'data-testid="batch-count">2 orders imported<' in english and "Import: <strong" in english


def test_an_imported_orders_page_names_its_import_and_links_the_orders_of_it(org) -> None:
    """导入来源 on an imported order's page: the file, when, who, and 查看同批导入的工单 — the order list of that
    import — for staff, in either language; not for the citizen whose appeal it is, nor on an order received
    otherwise."""
    client = login("op")
    form = {"csrf_token": hidden(client.get("/orders/import").text), "channel": "mailbox"}
    sheet = "编号,内容,街道\nC-1,路灯不亮,W-JT\n".encode()
    assert client.post("/orders/import", data=form, files={"file": ("十二月.csv", sheet)}).status_code == 200
    with session_scope() as s:
        order_id, batch = s.execute(select(Order.id, Order.import_batch_id).where(Order.external_id == "C-1")).one()
        me = s.scalars(select(User.id).where(User.username == "cit")).one()
    page = client.get(f"/orders/{order_id}").text
    row = re.search(r'<tr><th>导入来源</th><td data-testid="import-batch">(.*?)</td></tr>', page, re.S)
    assert row is not None, page
    assert row.group(1).startswith("十二月.csv · ") and " · 王话务 · " in row.group(1)
    link = f'<a href="/orders?import_batch_id={batch}" data-testid="import-batch-orders">查看同批导入的工单</a>'
    assert link in row.group(1)
    assert 'data-testid="import-batch"' in login("hand_a").get(f"/orders/{order_id}").text  # its street's handler
    client.get("/lang/en")
    english = client.get(f"/orders/{order_id}").text
    assert "<tr><th>Imported from</th>" in english and ">Orders of this import</a>" in english
    with session_scope() as s:
        other = submit(s, data={"channel": "hotline", "appeal_type": "complaint", "content": "井盖缺失"}).order.id
        s.get(Order, order_id).citizen_user_id = me  # the imported appeal linked to its citizen's account
    assert 'data-testid="import-batch"' not in client.get(f"/orders/{other}").text
    mine = login("cit").get(f"/orders/{order_id}")
    assert mine.status_code == 200 and 'data-testid="import-batch"' not in mine.text


def test_the_import_page_counts_every_kind_of_warning(org) -> None:
    """Warned rows are imported; the page sums them up by kind (in Chinese, with the count and the first row)."""
    client = login("op")
    page = client.get("/orders/import")
    sheet = "留言编号,留言详情\nW-1,路灯不亮\nW-2,井盖缺失\nW-3,垃圾未清运\n".encode()
    done = client.post("/orders/import", data={"csrf_token": hidden(page.text)}, files={"file": ("w.csv", sheet)})
    assert done.status_code == 200, done.text
    kinds = re.findall(
        r'data-testid="import-warning-kind"><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td><td>(\d+)</td>', done.text
    )
    assert kinds == [("受理时间", "缺少受理时间：按导入时间记", "3", "2")]
    assert 'data-testid="import-more"' not in done.text  # no rejected row left unlisted


# ----------------------------------------------------------------------------------------------------- intake


def test_assistance_shows_instant_answers_similar_orders_and_top3_categories(org) -> None:
    past = _order(title="餐馆油烟噪音扰民")
    client = login("op")
    form = intake_form(
        client,
        appeal_type="consultation",
        title="油烟噪音",
        content="小区楼下餐馆油烟排放严重，噪音扰民，请问住房公积金提取怎么办",
    )
    panel = client.post("/intake/assist", data=form)
    assert panel.status_code == 200
    assert "离职后住房公积金怎么提取" in panel.text and f'value="{org["entry"]}"' in panel.text  # 秒回
    assert past.number in panel.text  # the similar past order
    # opened beside the form, not in its place (the appeal being typed and its files chosen stay, as the caller's
    # history leaves them)
    assert f'<a href="/orders/{past.id}" target="_blank" rel="noopener">{past.number}<span' in panel.text
    top3 = re.findall(r"<li><span>(\S+) <small>(\d+)%</small>", panel.text)
    assert top3[0][0] == "环境保护" and {label for label, _ in top3} <= set(TOPICS)  # the classifier's best first
    assert all(int(p) >= 1 for _, p in top3)  # a runner-up at 0% is left out
    assert f'data-pick-category="{org["cats"]["环境保护"]}"' in panel.text
    assert 'data-testid="classify-doubtful"' not in panel.text
    # A text the classifier knows next to nothing of: its guesses are shown as guesses.
    doubtful = client.post("/intake/assist", data={**form, "title": "qwerty", "content": "asdfgh 1234"})
    assert 'data-testid="classify-doubtful"' in doubtful.text and "仅供参考" in doubtful.text
    guesses = doubtful.text.split('data-testid="classify-top3"')[1].split("</ol>")[0]
    assert "<li><span>" in guesses and "%</small>" not in guesses  # guesses, with no confidence to read into them
    # No order is created by looking things up.
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
    # Not a consultation: no instant answer is offered.
    complaint = client.post("/intake/assist", data={**form, "appeal_type": "complaint"})
    assert "离职后住房公积金怎么提取" not in complaint.text and "仅咨询类诉求可秒回" in complaint.text
    # A phone number half typed is left out of the look-up, not the rest of what was typed: still a complaint.
    typing = client.post("/intake/assist", data={**form, "appeal_type": "complaint", "citizen_phone": "138"})
    assert "离职后住房公积金怎么提取" not in typing.text and "仅咨询类诉求可秒回" in typing.text


def test_intake_suggests_answers_and_categories_only_to_the_roles_that_use_them(org) -> None:
    """The assistance panel offers the knowledge base's answers to whoever may answer on the spot (秒回) and the
    classifier's categories and odds to whoever routes orders — a grid inspector reporting from patrol and a citizen
    get neither (an inspector read 知识库秒回 and 环境保护 87%), the similar cases (without their scores) and the place
    still."""
    from cityhub.auth import service as auth
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == "W-JT")).one()
        auth.create_account(
            s,
            data=UserCreate(username="grid", full_name="吴网格", role=Role.INSPECTOR, unit_id=street),
            password=PASSWORD,
        )
    past = _order(title="餐馆油烟噪音扰民")
    text = {"title": "油烟噪音", "content": "小区楼下餐馆油烟排放严重，噪音扰民，请问住房公积金提取怎么办"}
    shown = {}
    for username in ("op", "disp", "grid", "cit"):
        client = login(username)
        panel = client.post("/intake/assist", data=intake_form(client, appeal_type="consultation", **text))
        assert panel.status_code == 200 and 'data-testid="intake-place"' in panel.text, username
        # A citizen reads only their own appeals among them: none here, no section saying so.
        assert ('data-testid="similar"' in panel.text) == (past.number in panel.text) == (username != "cit"), username
        shown[username] = ('data-testid="kb"' in panel.text, 'data-testid="classify"' in panel.text)
        if not shown[username][0]:
            assert "离职后住房公积金怎么提取" not in panel.text and "秒回" not in panel.text, username
        if not shown[username][1]:
            assert "%</small>" not in panel.text, username
        # a similar case's score is read with the odds, by who routes orders (an inspector read 相似度 0.26)
        assert ("相似度" in panel.text) == shown[username][1], username
    assert shown == {"op": (True, True), "disp": (False, True), "grid": (False, False), "cit": (False, False)}
    # Nor are they told of answers they are not shown, or the staff's diagnosis of an appeal not placed yet: what
    # they can do about it.
    citizen = login("cit")
    form = citizen.get("/intake").text
    assert "知识库" not in form and "请写明问题、地点和您的诉求" in form
    panel = citizen.post("/intake/assist", data=intake_form(citizen, content="路灯坏了一个星期")).text
    assert "问题所在地" in panel and "请在地址中写明街道、路名或小区" in panel and "工单未登记街镇社区" not in panel


def test_the_intake_form_lists_a_returning_callers_earlier_appeals(org) -> None:
    """来电历史: typing the caller's phone lists the appeals made from it before, newest first, with a link to them all
    — an operator registering a repeat caller's complaint had to leave the form to search the order list."""
    first = _order(title="油烟扰民", citizen_phone="13800138000")
    second = _order(title="噪音又来了", citizen_phone="13800138000")
    _order(title="别人的诉求", citizen_phone="13900139000")
    client = login("op")
    form_page = client.get("/intake").text
    assert 'hx-post="/intake/caller"' in form_page
    # Beside the form, not inside it: its links are no tab stops between the phone and the title.
    assert form_page.index('id="caller-history"') > form_page.index("</form>")
    form = intake_form(client, citizen_phone="138-0013 8000")
    found = client.post("/intake/caller", data=form)
    assert "该号码以往的诉求（共 2 件）" in found.text and 'href="/orders?q=13800138000"' in found.text
    assert found.text.index(second.number) < found.text.index(first.number) and "别人的诉求" not in found.text
    assert "该号码没有以往的诉求" in client.post("/intake/caller", data={**form, "citizen_phone": "13700137000"}).text
    # Still being typed, or shortened below a number: no list, and the count said before is emptied (it stayed).
    short = client.post("/intake/caller", data={**form, "citizen_phone": "138"}).text
    assert 'data-testid="caller-history"' not in short
    assert re.search(r'<span id="caller-status" hx-swap-oob="innerHTML">\s*</span>', short), short
    # The same mobile with China's country code, as a caller ID shows it, or stored so: the same caller.
    third = _order(title="油烟还在", citizen_phone="+86 138-0013-8000")
    for typed in ("+86 138 0013 8000", "8613800138000", "13800138000"):
        coded = client.post("/intake/caller", data={**form, "citizen_phone": typed})
        assert "该号码以往的诉求（共 3 件）" in coded.text and third.number in coded.text, typed
        assert 'href="/orders?q=13800138000"' in coded.text, typed
    assert (
        "该号码没有以往的诉求" in client.post("/intake/caller", data={**form, "citizen_phone": "+8613700137000"}).text
    )
    # A citizen's own form looks up no one's history.
    citizen = login("cit")
    assert "/intake/caller" not in citizen.get("/intake").text
    assert citizen.post("/intake/caller", data=intake_form(citizen, citizen_phone="13800138000")).text == ""


def test_the_intake_forms_links_that_open_a_new_tab_say_so(org) -> None:
    """The similar cases, possible duplicates and the caller's earlier appeals open in a new tab (the form stays):
    a screen reader heard only the order's number; each link's name now ends with words saying it opens a new tab
    (visually hidden, through the locale files)."""
    _order(title="餐馆油烟扰民", citizen_phone="13800138000", address="景泰街道云景路1号")
    _order("W-JX", title="餐馆油烟扰民", address="京溪街道南方医院")  # a similar case, in another street
    client = login("op")
    form = intake_form(
        client,
        content="小区楼下餐馆油烟排放严重，噪音扰民",
        address="景泰街道云景路1号",
        citizen_phone="13800138000",
    )
    panel = client.post("/intake/assist", data=form).text
    history = client.post("/intake/caller", data=form).text
    said = '<span class="visually-hidden">（在新标签页打开）</span></a>'
    for html, where in ((panel, "duplicates"), (panel, "similar"), (history, "caller-history")):
        section = re.search(rf'data-testid="{where}">.*?</section>', html, flags=re.S)
        assert section is not None, (where, html)
        links = re.findall(r'<a [^>]*target="_blank".*?</a>', section.group(0), flags=re.S)
        assert links and all(link.endswith(said) for link in links), (where, links)
    english = login("op")
    english.cookies.set("cityhub_lang", "en")
    theirs = {**form, "csrf_token": english.cookies["cityhub_csrf"]}
    assert "(opens in a new tab)</span></a>" in english.post("/intake/caller", data=theirs).text


def test_the_knowledge_base_and_rules_lists_name_states_as_their_filter_does(org) -> None:
    """The knowledge base's filter offers 含已停用 / Include inactive, while its list and the routing rules' called
    the states 启用 / 停用 — On / Off in English: a stopped entry is 已停用 / Inactive, a running one 已启用 / Active,
    as the filter and the forms' checkbox (启用 / Active) say."""
    with session_scope() as s:
        kb.update_entry(s, entry_id=org["entry"], data=EntryUpdate(active=False))
    admin = login("adm")

    def states(html: str, row: str) -> list[str]:
        return re.findall(rf'<tr data-testid="{row}"[^>]*>.*?<td>([^<]*)</td>\s*</tr>', html, flags=re.S)

    for lang, on, off, include in (
        ("zh-CN", "已启用", "已停用", "含已停用"),
        ("en", "Active", "Inactive", "Include inactive"),
    ):
        admin.cookies.set("cityhub_lang", lang)
        listed = admin.get("/kb", params={"inactive": "1"}).text
        assert include in listed and states(listed, "kb-row") == [off], (lang, states(listed, "kb-row"))
        assert states(admin.get("/rules").text, "rule-row") == [on], lang


def test_the_rules_list_shows_the_active_rules_with_a_filter_for_the_stopped_ones_and_their_counts(org) -> None:
    """派单规则 listed every rule, stopped ones among those that route: it lists the active ones (what an administrator
    reads the routing by), says how many stopped ones it leaves out, and 含已停用 (inactive=1, as 知识库's filter)
    lists them all — each choice with its count, the outcomes' period kept across them."""
    from cityhub.dispatch.schemas import RuleCreate

    with session_scope() as s:
        stopped = dispatch.create_rule(
            s, data=RuleCreate(name="旧规则 已停用", keywords=["占道"], target_unit_id=org["street_a"], active=False)
        ).id
    admin = login("adm")

    def rows(html: str) -> list[str]:
        return re.findall(r'<tr data-testid="rule-row" data-rule="(\d+)"', html)

    listed = admin.get("/rules").text
    assert str(stopped) not in rows(listed) and len(rows(listed)) == 1
    tabs = re.search(r'data-testid="rule-filter">(.*?)</nav>', listed, re.S)
    assert tabs is not None
    counts = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)<span class="count[^"]*">(\d+)</span>', tabs.group(1))
    assert counts == [("/rules", "已启用", "1"), ("/rules?inactive=1", "含已停用", "2")], counts
    assert 'data-testid="rules-active" aria-current="page"' in listed
    assert "另有 1 条已停用的规则未列出" in listed
    everything = admin.get("/rules", params={"inactive": "1"}).text
    assert str(stopped) in rows(everything) and len(rows(everything)) == 2
    assert 'data-testid="rules-all" aria-current="page"' in everything and "未列出" not in everything
    assert '<input type="hidden" name="inactive" value="1">' in everything  # the period's form keeps the choice
    month = admin.get("/rules", params={"period": "2026-11"})
    assert month.status_code == 200 and 'href="/rules?inactive=1&amp;period=2026-11"' in month.text
    admin.cookies.set("cityhub_lang", "en")
    assert "1 inactive rule is not listed" in admin.get("/rules").text


def test_every_link_that_opens_a_new_tab_says_so(org) -> None:
    """Only the intake form's links said they open a new tab; an order's files, the dashboard's 专报 (HTML), an
    alarm's snapshot and the sign-in after a session ended opened one unannounced. Every such link is written by one
    macro (``new_tab_link``), its name ending in the words, in the reader's language."""
    templates = Path(web_routes.__file__).parent / "templates"
    written = {p.name: p.read_text(encoding="utf-8").count('target="_blank"') for p in templates.glob("*.html")}
    assert {name: n for name, n in written.items() if n} == {"_macros.html": 1}, written
    said = '<span class="visually-hidden">（在新标签页打开）</span></a>'
    files = [{"filename": "现场.pdf", "url": "https://uploads.example.org/x.pdf"}]
    order = _order(attachments=files)
    page = login("op").get(f"/orders/{order.id}").text
    links = re.findall(r'<a [^>]*target="_blank".*?</a>', page, flags=re.S)
    assert links and all(link.endswith(said) for link in links), links
    leader = login("lead")
    report = re.findall(r'<a [^>]*target="_blank".*?</a>', leader.get("/dashboard").text, flags=re.S)
    assert len(report) == 1 and "format=html" in report[0] and report[0].endswith(said), report
    leader.cookies.set("cityhub_lang", "en")
    english = re.findall(r'<a [^>]*target="_blank".*?</a>', leader.get("/dashboard").text, flags=re.S)
    assert english and english[0].endswith('HTML<span class="visually-hidden"> (opens in a new tab)</span></a>')
    # The sign-in after a session ended, in the intake form's assistance and on the page a post was shown back on.
    anonymous = _client()
    headers = {"HX-Request": "true", "HX-Current-URL": "http://testserver/intake"}
    fragment = anonymous.post("/intake/assist", headers=headers, data={}, follow_redirects=False).text
    posted = anonymous.post("/orders/1/act/comment", data={"text": "已核实"}, follow_redirects=False).text
    for html in (fragment, posted):
        links = re.findall(r'<a [^>]*target="_blank".*?</a>', html, flags=re.S)
        assert links and all(link.endswith(said) for link in links), links


def test_assistance_lists_no_unrelated_order_among_the_similar_cases(org) -> None:
    """The street's recent orders are always scored; one that shares nothing with the appeal but a word is not shown
    as a "most similar" case (with its reply beside it), while a close one still is."""
    unrelated = _order(title="井盖松动", content="景泰街道小区门口井盖松动，车辆经过哐哐响")
    close = _order(title="餐馆油烟扰民", content="景泰街道小区楼下餐馆油烟排放严重，噪音扰民")
    client = login("op")
    form = intake_form(client, content="小区楼下餐馆油烟排放严重，晚上噪音扰民", address="景泰街道云景路1号")
    panel = client.post("/intake/assist", data=form)
    assert panel.status_code == 200
    similar = re.search(r'data-testid="similar">.*?</section>', panel.text, flags=re.S).group(0)  # type: ignore[union-attr]
    duplicates = re.search(r'data-testid="duplicates">.*?</section>', panel.text, flags=re.S).group(0)  # type: ignore[union-attr]
    # the close one at the same place is a possible duplicate, listed there once, not again among the similar cases
    assert close.number in duplicates and close.number not in similar and unrelated.number not in similar
    alone = client.post("/intake/assist", data={**form, "content": "请问身份证丢了在哪里补办"})
    similar = re.search(r'data-testid="similar">.*?</section>', alone.text, flags=re.S).group(0)  # type: ignore[union-attr]
    assert unrelated.number not in similar and close.number not in similar and "相似" in similar


def test_assistance_shows_where_the_appeal_will_be_placed(org) -> None:
    client = login("op")

    def place_shown(**fields: str) -> str:
        panel = client.post("/intake/assist", data=intake_form(client, **fields))
        assert panel.status_code == 200
        section = re.search(r'data-testid="intake-place">.*?</section>', panel.text, flags=re.S).group(0)  # type: ignore[union-attr]
        return re.search(r"<small>(.*?)</small>", section).group(1)  # type: ignore[union-attr]

    assert place_shown(title="路灯不亮", content="京溪街道云景路的路灯坏了") == "地点：京溪街道（按正文识别）"
    assert place_shown(title="路灯不亮", content="路灯坏了", address="景泰街道某小区") == "地点：景泰街道（按地址识别）"
    assert place_shown(title="路灯不亮", content="路灯坏了一个星期").startswith("地点：未识别")
    typing = place_shown(title="路灯不亮", content="路灯坏了", address="景泰街道某小区", citizen_phone="13")
    assert typing == "地点：景泰街道（按地址识别）"  # the address still counts while the phone is half typed
    client.get("/lang/en")  # the same line in English, the street in pinyin, English punctuation around it
    shown = place_shown(title="路灯不亮", content="京溪街道云景路的路灯坏了")
    assert shown == "Place: Jingxi Subdistrict (from the text)"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0  # looking up creates nothing


def test_register_an_appeal_and_land_on_its_detail_with_suggestions(org) -> None:
    _order(title="餐馆油烟噪音扰民", content="楼下餐馆油烟排放严重，噪音扰民")  # a similar past appeal
    client = login("op")
    response = client.post(
        "/intake",
        data=intake_form(
            client,
            citizen_name="张三丰",
            citizen_phone="138-0013-8000",
            title="餐馆油烟",
            content="小区楼下餐馆油烟排放严重，噪音扰民",
            address="广州市白云区景泰街道云景路1号",
            category_id=str(org["cats"]["环境保护"]),
        ),
        follow_redirects=False,
    )
    assert response.status_code == 303
    order_id = int(response.headers["location"].rsplit("/", 1)[1])
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.state == State.RECEIVED
        assert (order.citizen_name, order.citizen_phone, order.category_id) == (
            "张三丰",
            "13800138000",
            org["cats"]["环境保护"],
        )
        number = order.number
    detail = client.get(f"/orders/{order_id}")
    assert f"已受理：工单 {number}" in detail.text and "13800138000" in detail.text
    assert 'data-testid="decision"' in detail.text and 'data-testid="similar"' in detail.text
    assert 'data-testid="decision-place"><small>地点：景泰街道（按地址识别）</small>' in detail.text
    # Each score of the similar orders is labelled as at intake (相似度 0.84), not a bare 0.84.
    similar = re.search(r'data-testid="similar">.*?</section>', detail.text, flags=re.S).group(0)  # type: ignore[union-attr]
    scores = re.findall(r"(\S+) \d\.\d\d\b", similar)
    assert scores and set(scores) == {"相似度"}, scores
    assert "cityhub_flash" not in detail.cookies or not detail.cookies["cityhub_flash"]
    assert f"已受理：工单 {number}" not in client.get(f"/orders/{order_id}").text  # the flash shows once


def test_a_citizen_files_an_appeal_on_the_web_and_follows_it_as_their_own(org) -> None:
    client = login("cit")
    home = client.get("/orders")
    assert 'href="/intake"' in home.text and "我要反映" in home.text
    assert "<h1>我的诉求</h1>" in home.text and "工单列表" not in home.text  # their appeals, not a work-order list
    assert 'id="unit_id"' not in home.text and 'name="overdue"' not in home.text  # the staff's filters
    assert 'id="unit_id"' in login("op").get("/orders").text
    assert '<th class="opt">市民姓名</th>' not in home.text  # their own name in every row says nothing
    assert '<th class="opt">市民姓名</th>' in login("op").get("/orders").text
    form = client.get("/intake")
    assert form.status_code == 200 and "我要反映" in form.text and 'name="channel"' not in form.text
    # The hint sends them to their menu's 我的诉求 (it said 「工单」, a menu only the staff have), to rate a reply.
    assert "提交后可在「我的诉求」中查看办理进度，收到答复后请评价" in form.text
    assert 'name="urgency"' not in form.text
    # Nor hundreds of categories to pick from on a phone: the centre classifies their appeal (the staff's form has it).
    assert 'name="category_id"' not in form.text and 'name="category_id"' in login("op").get("/intake").text
    # Their appeal goes under their account's name unless they change it: the form shows it, not an empty field.
    assert 'name="citizen_name" maxlength="80" value="张市民"' in form.text
    assert login("op").get("/intake").text.count('name="citizen_name" maxlength="80" value=""') == 1  # a caller's
    response = client.post(
        "/intake",
        # A category posted all the same (an old page, a hand-made form) is not taken as certain: none is kept.
        data=intake_form(
            client, title="路灯不亮", content="景泰街道云景路的路灯不亮三天了", category_id=str(org["cats"]["环境保护"])
        ),
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/orders/")
    order_id = int(response.headers["location"].rsplit("/", 1)[1])
    with session_scope() as s:
        order = s.get(Order, order_id)
        me = s.scalar(select(User.id).where(User.username == "cit"))
        assert order is not None and (order.channel, order.citizen_user_id) == (Channel.WEB, me)
        assert order.category_id != org["cats"]["环境保护"]  # the classifier's, if it found one (a street light)
        assert order.citizen_name == "张市民"  # under their own name when they gave none
        number = order.number
    detail = client.get(f"/orders/{order_id}")
    assert detail.status_code == 200 and f"已受理：诉求编号 {number}" in detail.text
    assert number in client.get("/orders").text  # their own list shows it


def _citizens_appeal(client: TestClient) -> int:
    """The id of a street light's appeal the signed-in citizen of ``client`` files on the intake form."""
    response = client.post(
        "/intake",
        data=intake_form(client, title="路灯不亮", content="景泰街道云景路的路灯不亮三天了"),
        follow_redirects=False,
    )
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_a_citizen_reads_one_progress_on_their_page_and_the_lookup_without_the_units_returns(org) -> None:
    """办理进度: the citizen's own order page (and the API's trail for them) listed a unit's return, 退回重新分派, where
    the progress lookup (/track) left it out; both now list the same steps — the urging too — and no return."""
    client = login("cit")
    order_id = _citizens_appeal(client)
    disp, hand, sup = login("disp"), login("hand_a"), login("sup")
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order_id, "return", reason="不归我们管").status_code == 303
    # returned, it waits to be dispatched again: to its citizen 已受理, as when received, not the units' 已退单
    with session_scope() as s:
        returned = s.get(Order, order_id)
        assert returned is not None
        returned.citizen_phone = returned.citizen_phone or "13800001111"
        number, phone = returned.number, returned.citizen_phone
    their_page, their_list = client.get(f"/orders/{order_id}").text, client.get("/orders").text
    anonymous = TestClient(shared_app())
    token = re.search(r'name="csrf_token" value="([^"]+)"', anonymous.get("/track").text)
    assert token is not None
    lookup = {"number": number, "phone": phone, "csrf_token": token.group(1)}
    looked_up = anonymous.post("/track", data=lookup).text.split('data-testid="track-state">')[1].split("<")[0]
    their_page = their_page.split('data-testid="order-state">')[1].split("</span></span>")[0]
    for shown in (their_page, their_list, looked_up):
        assert "已退单" not in shown and "已受理" in shown, shown
    assert "已退单" in sup.get(f"/orders/{order_id}").text
    assert number in client.get("/orders", params={"state": "received"}).text  # their 已受理 lists it
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(sup, order_id, "urge", reason="请尽快办理").status_code == 303
    steps = ["create", "dispatch", "dispatch", "urge"]
    assert [e["action"] for e in client.get(f"/api/v1/orders/{order_id}/events").json()] == steps
    tracked = TestClient(shared_app()).post("/api/v1/track", json={"number": number, "phone": phone}).json()
    assert [m["action"] for m in tracked["milestones"]] == steps
    page = client.get(f"/orders/{order_id}").text
    assert "退回重新分派" not in page and "督促加快办理" in page
    staff = sup.get(f"/orders/{order_id}").text
    assert "退单" in re.search(r'data-testid="audit">.*?</section>', staff, re.S).group(0)  # type: ignore[union-attr]


def test_a_citizen_follows_what_happened_to_their_appeal_not_the_units_internal_trail(org) -> None:
    client = login("cit")
    order_id = _citizens_appeal(client)
    sup, disp, hand = login("sup"), login("disp"), login("hand_a")
    assert _act(sup, order_id, "comment", text="内部备注：此人多次投诉，联系人 13600009999").status_code == 303
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order_id, "return", reason="内部分歧：不归我们管").status_code == 303
    staff_page = sup.get(f"/orders/{order_id}").text
    assert "内部备注" in staff_page and "内部分歧" in staff_page and "陈督办" in staff_page
    # Returned, its clock has stopped (the next dispatch starts a new limit): staff are told so, not the working
    # days "left" of the old limit; the citizen sees no limit until there is a new one.
    limit = re.search(r'<section data-testid="sla">.*?</section>', staff_page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "已停止计时" in limit and "剩余" not in limit
    listed = sup.get("/orders", params={"state": "returned"}).text  # the list's due column says so too
    assert 'data-testid="clock-stopped">已停止计时，待重新派单<' in listed

    page = client.get(f"/orders/{order_id}").text
    assert 'data-testid="sla"' not in page
    for internal in ("内部备注", "13600009999", "内部分歧", "陈督办", "黄派单", "李承办"):
        assert internal not in page, internal
    assert "景泰街道" in page and "工作人员" in page  # where it went, and that staff acted
    assert "次数统计" in staff_page and "次数统计" not in page  # supervision counts
    trail = client.get(f"/api/v1/orders/{order_id}/events").json()
    assert [e["action"] for e in trail] == ["create", "dispatch"]  # the unit's return is between the units
    assert all(e["actor_name"] in ("", "张市民") for e in trail) and all(e["unit_id"] is None for e in trail)
    assert trail[1]["payload"] == {"unit_id": org["street_a"]}
    assert len(sup.get(f"/api/v1/orders/{order_id}/events").json()) == 4  # staff see the whole trail
    # Answered, the citizen rates it (评价答复), what staff call the callback (回访). (Back to the unit that returned
    # it: the dispatcher says why.)
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_a"]), reason="核实属本街道").status_code == 303
    # The limit promised them (办结时限), not the steps inside it: when the unit must sign for it (签收时限, 签收超期)
    # and when its supervisors are warned (预警时间, the 预警 status) — which staff read as before.
    with session_scope() as s:
        held = s.get(Order, order_id)
        assert held is not None and held.accept_due_at and held.warn_at and held.due_at
        held.sla_status, held.accept_overdue = SlaStatus.WARNING, True
    page, staff_page = client.get(f"/orders/{order_id}").text, sup.get(f"/orders/{order_id}").text
    sla = re.search(r'data-testid="sla">.*?</section>', page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "办结时限" in sla and 'data-testid="due-at"><span' in sla
    for internal in ("签收时限", "预警时间", "预警", "签收超期"):
        assert internal not in sla and internal in staff_page, internal
    assert "sla-warning" not in client.get("/orders").text and "sla-warning" in sup.get("/orders").text
    assert "sla-warning" not in page and "sla-warning" in staff_page  # the heading's badge too
    # Their API says the same (an app of theirs shows no more); staff read every deadline.
    internal = {"accept_due_at": None, "warn_at": None, "accept_overdue": False, "sla_status": "ok"}
    theirs = client.get(f"/api/v1/orders/{order_id}").json()
    listed = next(o for o in client.get("/api/v1/orders").json()["items"] if o["id"] == order_id)
    assert {k: theirs[k] for k in internal} == {k: listed[k] for k in internal} == internal
    assert theirs["due_at"] is not None

    def theirs_listed(**criteria: str) -> bool:
        return order_id in [o["id"] for o in client.get("/api/v1/orders", params=criteria).json()["items"]]

    # Their filters read the status as they are told it: in 正常, in neither 预警 nor 签收超时 — staff's as stored.
    assert theirs_listed(sla_status="ok") and theirs_listed(accept_overdue="false")
    assert not theirs_listed(sla_status="warning") and not theirs_listed(accept_overdue="true")
    assert order_id in [o["id"] for o in sup.get("/api/v1/orders", params={"sla_status": "warning"}).json()["items"]]
    assert order_id not in [o["id"] for o in sup.get("/api/v1/orders", params={"sla_status": "ok"}).json()["items"]]
    staff = sup.get(f"/api/v1/orders/{order_id}").json()
    assert (
        staff["accept_due_at"]
        and staff["warn_at"]
        and (staff["sla_status"], staff["accept_overdue"])
        == (
            "warning",
            True,
        )
    )
    assert _act(hand, order_id, "accept").status_code == 303
    assert _act(hand, order_id, "reply", text="已修复").status_code == 303
    page = client.get(f"/orders/{order_id}").text
    assert 'data-testid="action-callback"' in page and "评价答复" in page and "回访" not in page
    assert "回访" in sup.get(f"/orders/{order_id}").text
    # The remark of a 回访 is its record to staff, the citizen's comments to them (it read 理由).
    form = re.search(r'data-testid="action-callback".*?</form>', page, flags=re.S).group(0)  # type: ignore[union-attr]
    staff_form = re.search(  # type: ignore[union-attr]
        r'data-testid="action-callback".*?</form>', sup.get(f"/orders/{order_id}").text, flags=re.S
    ).group(0)
    assert "意见和建议" in form and "理由" not in form and "回访记录" in staff_form and "理由" not in staff_form
    # Asked as the progress lookup asks (满意 / 不满意, not 是 / 否); 不满意 says what is still wrong, as there.
    assert "您对答复满意吗？" in form and '<option value="false">不满意</option>' in form
    # Their comments are asked for with 不满意: the field says so before the refusal does (it read 选填).
    assert "意见和建议<small" in form and "选择“不满意”时必填" in form and "选填" not in form
    assert "回访记录<small>（选填）</small>" in staff_form
    unexplained = _act(client, order_id, "callback", satisfied="false")
    assert unexplained.status_code == 422 and "选择“不满意”时，请说明仍未解决的问题。" in unexplained.text
    assert '<option value="false" selected>不满意</option>' in unexplained.text and _state(order_id) == State.REPLIED
    rated = _act(client, order_id, "callback", satisfied="true")
    assert rated.status_code == 303
    # thanked as /track thanks them, not told 已完成：评价答复 (nor the staff's 回访)
    assert "感谢您的评价，我们已记录。" in client.get(rated.headers["location"]).text
    # Their trail too names it as they did it; staff's keeps 回访.
    rating = r'<tr data-action="callback">.*?</tr>'
    theirs_row = re.search(rating, client.get(f"/orders/{order_id}").text, flags=re.S).group(0)  # type: ignore[union-attr]
    staff_row = re.search(rating, sup.get(f"/orders/{order_id}").text, flags=re.S).group(0)  # type: ignore[union-attr]

    def action_cell(row: str) -> str:  # the trail's third column: what was done
        return str(re.findall(r"<td>(.*?)</td>", row, flags=re.S)[2])

    assert action_cell(theirs_row) == "评价答复" and action_cell(staff_row) == "回访"


def test_a_citizens_trail_reads_as_their_progress_in_the_words_the_progress_lookup_uses(org) -> None:
    """A citizen's order page headed their trail 处理记录 / "Audit trail" and named its steps by the staff's buttons
    (Receive, Dispatch, Return, Accept); /track reads the same steps as what happened (Received, Dispatched …). Their
    page says 办理进度 / Progress in /track's words, one wording for both; staff keep their trail, and what the citizen
    reads of it is what it was (no internal note, no staff name)."""
    client = login("cit")
    order_id = _citizens_appeal(client)
    sup, disp, hand = login("sup"), login("disp"), login("hand_a")
    assert _act(sup, order_id, "comment", text="内部备注：施工队周三到").status_code == 303
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(login("hand_b"), order_id, "return", reason="不归我们管").status_code == 303
    assert _act(disp, order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order_id, "accept").status_code == 303
    assert _act(hand, order_id, "reply", text="已修复").status_code == 303
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        order.citizen_phone = order.citizen_phone or "13812345678"  # what /track asks with the number
        number, phone = order.number, order.citizen_phone
    anonymous = _client()

    def trail(page: str) -> tuple[str, list[str]]:
        section = page.split('data-testid="audit">')[1].split("</section>")[0]
        heading = re.sub(r"<[^>]+>", "", section.split("</h2>")[0]).strip()
        rows = re.findall(r"<tr data-action=.*?</tr>", section, flags=re.S)
        cells = [str(re.findall(r"<td>(.*?)</td>", row, flags=re.S)[2]) for row in rows]
        return heading, [re.split(r" → |<", cell)[0].strip() for cell in cells]

    def tracked() -> list[str]:
        form = anonymous.get("/track").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        page = anonymous.post("/track", data={"number": number, "phone": phone, "csrf_token": token.group(1)}).text
        listed = page.split('data-testid="track-milestones">')[1].split("</ol>")[0]
        return [re.sub(r"<[^>]+>", "", li).split(" · ")[0].strip() for li in re.findall(r"</time>(.*?)</li>", listed)]

    expected = {  # the units' return between the two dispatches left out, as /track leaves it out
        "zh-CN": ("办理进度", ["受理", "转交办理", "转交办理", "接收办理", "答复"]),  # not the staff's 派单, 签收
        "en": ("Progress", ["Received", "Passed on", "Passed on", "Taken on", "Replied"]),
    }
    staff_expected = {
        "zh-CN": ("处理记录", ["受理", "备注", "派单", "退单", "派单", "签收", "答复"]),
        "en": ("Audit trail", ["Received", "Commented", "Dispatched", "Returned", "Dispatched", "Accepted", "Replied"]),
    }
    for lang in ("zh-CN", "en"):
        for who in (client, sup, anonymous):
            who.get(f"/lang/{lang}")
        page = client.get(f"/orders/{order_id}").text
        assert trail(page) == expected[lang], lang
        assert tracked() == expected[lang][1]  # /track shows the same steps in the same words
        assert trail(sup.get(f"/orders/{order_id}").text) == staff_expected[lang], lang
        for internal in ("内部备注", "不归我们管", "陈督办", "黄派单", "李承办"):
            assert internal not in page, internal
    client.get("/lang/zh-CN")
    sup.get("/lang/zh-CN")


def test_a_citizens_appeal_waiting_for_dispatch_reads_as_the_progress_lookup_says_it(org) -> None:
    """Not yet dispatched, the citizen's page says 承办单位 正在分派 and shows no time limit, as /track does (it said
    — and 未计时, the units' word); staff read the page as before."""
    client = login("cit")
    order_id = _citizens_appeal(client)
    page, staff_page = client.get(f"/orders/{order_id}").text, login("sup").get(f"/orders/{order_id}").text
    assert 'data-testid="lead-unit">正在分派</td>' in page
    assert 'data-testid="lead-unit">—</td>' in staff_page
    assert 'data-testid="sla"' not in page and "未计时" not in page
    assert 'data-testid="sla"' in staff_page and "未计时" in staff_page
    # Dispatched, the unit is named and the limit promised them shown.
    assert _act(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    page = client.get(f"/orders/{order_id}").text
    assert 'data-testid="lead-unit">景泰街道' in page and 'data-testid="due-at"><span' in page
    assert "正在分派" not in page and "未计时" not in page


def test_a_citizen_told_to_rate_the_reply_is_named_the_question_they_were_asked(org) -> None:
    client = login("cit")
    order_id = _citizens_appeal(client)
    hand = login("hand_a")
    assert _act(login("disp"), order_id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order_id, "accept").status_code == 303
    assert _act(hand, order_id, "reply", text="已修复").status_code == 303
    unrated = _act(client, order_id, "callback")
    assert unrated.status_code == 422 and "请选择「您对答复满意吗？」" in unrated.text
    assert "是否满意" not in unrated.text  # the staff's label
    staff = _act(login("sup"), order_id, "callback")
    assert staff.status_code == 422 and "请选择「是否满意」" in staff.text


def test_a_citizens_appeal_merged_into_another_shows_where_that_one_stands(org) -> None:
    """Their page said 已合并办理 and the other appeal's number, which they cannot open: it now says where the
    appeal handled for both stands and its answer, without the other citizen's words."""
    client = login("cit")
    mine = _citizens_appeal(client)
    master = _order(citizen_name="赵六", citizen_phone="13900004444")
    assert _act(login("disp"), mine, "merge", master_id=master.number).status_code == 303
    page = client.get(f"/orders/{mine}").text
    progress = re.search(r'data-testid="merged-progress">(.*?)</td>', page, flags=re.S).group(1)  # type: ignore[union-attr]
    assert master.number in progress and "已受理" in progress
    with session_scope() as s:
        orders.act(s, order_id=master.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
        orders.act(s, order_id=master.id, action=Action.ACCEPT)
        orders.act(s, order_id=master.id, action=Action.REPLY, params={"text": "赵六您好，已约谈餐馆整改油烟。"})
    progress = re.search(r'data-testid="merged-progress">(.*?)</td>', client.get(f"/orders/{mine}").text, re.S)
    assert progress is not None and "已约谈餐馆整改油烟" in progress.group(1) and "已答复" in progress.group(1)
    assert "赵六" not in progress.group(1)
    assert 'data-testid="merged-progress"' not in login("disp").get(f"/orders/{mine}").text  # staff open it


def test_an_order_not_theirs_is_no_appeal_of_the_citizens_not_one_outside_a_data_scope(org) -> None:
    order_id = _order().id  # a caller's, on the hotline
    client = login("cit")
    for response in (
        client.get(f"/orders/{order_id}"),
        client.post(f"/orders/{order_id}/act/callback", data={"csrf_token": csrf(client), "version": "1"}),
    ):
        assert response.status_code == 404
        assert "您提交的诉求中没有它" in response.text and "数据范围" not in response.text
    # Staff keep theirs: an order outside their unit's street.
    staff = login("hand_b").get(f"/orders/{order_id}")
    assert staff.status_code == 404 and "不在您的数据范围内" in staff.text
    # A staff page is not the citizen's: said as such, not as what their "role" may do.
    refused = client.get("/dashboard")
    assert refused.status_code == 403 and "只供工作人员使用" in refused.text and "您的角色" not in refused.text
    assert "您的角色无权进行此操作" in login("hand_b").get("/admin/users").text


def test_the_intake_pages_tab_says_its_heading_for_every_role(org) -> None:
    """诉求受理 was every role's tab on the intake page: a citizen's heading is 我要反映 and an inspector's 巡查上报."""
    from cityhub.auth import service as auth
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        auth.create_account(
            s,
            data=UserCreate(username="insp", full_name="网格员甲", role=Role.INSPECTOR, unit_id=org["street_a"]),
            password=PASSWORD,
        )
    for username, heading in (("op", "诉求受理"), ("cit", "我要反映"), ("insp", "巡查上报")):
        page = login(username).get("/intake").text
        assert f"<h1>{heading}</h1>" in page, username
        assert re.search(r"<title>(.*?)</title>", page).group(1) == f"{heading} · cityhub", username  # type: ignore[union-attr]


def test_an_inspectors_new_report_shows_duplicates_and_similar_cases_not_the_dispatch_suggestion(org) -> None:
    """A 网格员's report, just filed, is not theirs to dispatch: its page shows the possible duplicates and similar
    cases (and its place in the facts), not the dispatchers' 派单建议 — candidates, scores, rule grounds, odds."""
    from cityhub.auth import service as auth
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        auth.create_account(
            s,
            data=UserCreate(username="insp", full_name="网格员甲", role=Role.INSPECTOR, unit_id=org["street_a"]),
            password=PASSWORD,
        )
    earlier = _order(title="景泰街道云景路路灯不亮")
    client = login("insp")
    form = client.get("/intake")
    assert form.status_code == 200
    response = client.post(
        "/intake",
        data={
            "csrf_token": csrf(client),
            "title": "景泰街道云景路路灯不亮",
            "content": "小区楼下餐馆油烟排放严重，噪音扰民",
            "address": "景泰街道云景路",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    order_id = int(response.headers["location"].rsplit("/", 1)[1])
    assert _state(order_id) == State.RECEIVED
    page = client.get(f"/orders/{order_id}").text
    assert 'data-testid="similar"' in page and earlier.number in page  # what helps: the same problem reported
    assert 'data-testid="decision"' not in page and "派单建议" not in page and 'data-testid="candidates"' not in page
    assert 'data-testid="top3-categories"' not in page
    assert "景泰街道" in re.search(r"<th>镇街 / 村社</th><td[^>]*>(.*?)</td>", page).group(1)  # type: ignore[union-attr]
    dispatcher = login("disp").get(f"/orders/{order_id}").text
    assert 'data-testid="decision"' in dispatcher and "派单建议" in dispatcher


def test_the_order_pages_supervision_counts_read_as_words(org) -> None:
    """次数统计 (催办, 升级, 延期, 退单, 重办) read 2 / 0 / 0 / 1 / 0: each count done is said with its step
    (催办 2 次 · 退单 1 次, Urged 2 times · Returned 1 time), the steps never done left out, none at all said so."""
    order = _order()
    client = login("sup")

    def counts(lang: str) -> str:
        client.cookies.set("cityhub_lang", lang)
        found = re.search(r'data-testid="counts">(.*?)</td>', client.get(f"/orders/{order.id}").text)
        assert found is not None
        return re.sub(r"<[^>]+>", "", found.group(1))

    assert counts("zh-CN") == "均无" and counts("en") == "None"
    with session_scope() as s:
        held = s.get(Order, order.id)
        held.urge_count, held.return_count, held.escalation_level = 2, 1, 1
    assert counts("zh-CN") == "催办 2 次 · 升级 1 次 · 退单 1 次"
    assert counts("en") == "Urged 2 times · Escalated 1 time · Returned 1 time"


def test_order_page_says_when_the_order_waits_for_automatic_dispatch(org, monkeypatch) -> None:
    from cityhub.config import get_settings

    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")  # decided by the background dispatcher
    get_settings.cache_clear()
    try:
        order_id = _order().id
        disp = login("disp")
        assert 'data-testid="dispatch-pending"' in disp.get(f"/orders/{order_id}").text
        assert "自动派单中" in disp.get("/queue").text  # a person may still act first
        assert "待自动派单 1 件" in _client().get("/").text  # the status page
        background.run_once()
        assert 'data-testid="dispatch-backlog"' not in _client().get("/").text
        assert 'data-testid="dispatch-pending"' not in disp.get(f"/orders/{order_id}").text
        assert "自动派单中" not in disp.get("/queue").text
    finally:
        get_settings.cache_clear()


def test_without_automatic_dispatch_the_pages_say_the_order_waits_for_its_analysis(org, monkeypatch) -> None:
    """Automatic dispatch off: a new order waits for the background dispatcher's duplicate check and decision (kept,
    not sent) — the order page, the queue and the status page say 系统分析, not 自动派单; then it waits for a
    dispatcher with its suggestions. With nothing but the duplicate check in the background, they say 自动查重."""
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "true")  # what the background check is for
    get_dedupe_settings.cache_clear()
    data = {"channel": "app", "content": "小区楼下餐馆油烟排放严重，噪音扰民", "street_code": "W-JT"}
    with session_scope() as s:  # as the API creates
        order_id = submit(s, data=data, similar=False, defer_duplicates=True).order.id
    disp = login("disp")
    page = disp.get(f"/orders/{order_id}").text
    assert 'data-testid="dispatch-pending"' in page and "已排队等待系统分析" in page
    assert "系统分析中" in disp.get("/queue").text and "自动派单中" not in disp.get("/queue").text
    assert "待系统分析（查重、分类、派单建议）1 件" in _client().get("/").text
    assert background.run_once() == {"suggested": 1}
    assert 'data-testid="dispatch-pending"' not in disp.get(f"/orders/{order_id}").text
    assert _state(order_id) == State.RECEIVED  # waits for a dispatcher, as before
    with session_scope() as s:
        assert dispatch.latest_decision(s, order_id=order_id) is not None  # what the queue shows, kept


def test_intake_errors_show_per_field_and_keep_everything_typed(org) -> None:
    client = login("op")
    typed = intake_form(client, citizen_name="李四", citizen_phone="12ab", title="", content="", address="云景路88号")
    response = client.post("/intake", data=typed)
    assert response.status_code == 422
    assert "电话号码只能包含数字" in response.text and 'data-testid="field-error-citizen_phone"' in response.text
    assert "请填写诉求内容或标题" in response.text
    assert 'value="李四"' in response.text and 'value="12ab"' in response.text and 'value="云景路88号"' in response.text
    assert '<option value="complaint" selected>' in response.text
    too_long = client.post("/intake", data={**typed, "citizen_phone": "", "content": "路灯", "title": "长" * 301})
    assert too_long.status_code == 422 and "最多 300 个字" in too_long.text and "路灯</textarea>" in too_long.text
    for phone in ("1", "138001380001380013800"):
        bad_phone = client.post("/intake", data={**typed, "citizen_phone": phone, "content": "路灯不亮"})
        assert bad_phone.status_code == 422 and "电话号码应为 5 到 16 位数字" in bad_phone.text, phone
    # A category gone while the form was open (deactivated, deleted): a field error, the appeal kept.
    gone = client.post("/intake", data={**typed, "citizen_phone": "", "content": "路灯不亮", "category_id": "999999"})
    assert gone.status_code == 422 and "分类不存在" in gone.text and "路灯不亮</textarea>" in gone.text
    # No kind of appeal chosen: the operator is asked for it (a report is not filed as a 咨询 by default).
    blank = client.get("/intake").text
    assert '<option value="" selected disabled>请选择诉求类型</option>' in blank
    unsaid = client.post("/intake", data={**typed, "appeal_type": "", "citizen_phone": "", "content": "路灯坏了一周"})
    assert (
        unsaid.status_code == 422 and "请选择「诉求类型」" in unsaid.text and "路灯坏了一周</textarea>" in unsaid.text
    )
    both = client.post("/intake", data={**typed, "appeal_type": ""})  # said with the other problems, in one round
    assert "请选择「诉求类型」" in both.text and "电话号码只能包含数字" in both.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_instant_answer_closes_the_order_as_answered(org) -> None:
    client = login("op")
    response = client.post(
        "/intake",
        data=intake_form(
            client,
            appeal_type="consultation",
            content="离职后住房公积金怎么提取？",
            citizen_phone="13900001111",
            instant_entry_id=str(org["entry"]),
        ),
    )
    assert response.status_code == 200 and "已秒回并办结" in response.text
    # Answered on the spot with no kind chosen: a consultation, as the suggestions took it.
    untyped = intake_form(client, appeal_type="", content="公积金怎么提取？", instant_entry_id=str(org["entry"]))
    assert "已秒回并办结" in client.post("/intake", data=untyped).text
    with session_scope() as s:
        order, other = s.scalars(select(Order).order_by(Order.id)).all()
        assert other.appeal_type.value == "consultation" and other.instant_answered
        assert order.state == State.CLOSED_RESOLVED and order.instant_answered
        assert order.reply_text == "账户封存满6个月后凭身份证到公积金中心办理。"
        event = s.scalars(
            select(OrderEvent).where(OrderEvent.action == "instant_answer", OrderEvent.order_id == order.id)
        ).one()
        assert event.payload["kb_entry_id"] == org["entry"] and event.actor_name == "王话务"
    # A dispatcher may register but not answer instantly.
    disp = login("disp")
    refused = disp.post(
        "/intake",
        data=intake_form(disp, appeal_type="consultation", content="公积金提取", instant_entry_id="1"),
    )
    assert refused.status_code == 403 and "无权" in refused.text and "公积金提取</textarea>" in refused.text


def test_a_retired_knowledge_entry_no_longer_answers_from_a_page_shown_before(org) -> None:
    """An administrator retires an entry while an operator has it on screen: answering from it is refused with a
    message saying why — at intake and on a received consultation's page — and nothing is closed."""
    from cityhub.knowledge import service as kb

    client = login("op")
    waiting = _order(appeal_type="consultation", content="离职后住房公积金怎么提取？")
    with session_scope() as s:
        kb.deactivate_entry(s, entry_id=org["entry"])
    answer = {"answer": "账户封存满6个月后凭身份证到公积金中心办理。", "kb_entry_id": str(org["entry"])}
    page = _act(client, waiting.id, "instant_answer", **answer)
    assert page.status_code == 422 and "这条知识库答复已停用" in page.text
    assert _state(waiting.id) == State.RECEIVED
    intake = client.post(
        "/intake",
        data=intake_form(
            client, appeal_type="consultation", content="公积金怎么提取？", instant_entry_id=str(org["entry"])
        ),
    )
    assert intake.status_code == 422 and "这条知识库答复已停用" in intake.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1  # only the one waiting before


# ------------------------------------------------------------------------------------------ list and detail


def test_order_list_is_scoped_filtered_and_paginated(org) -> None:
    mine = [_order("W-JT", title=f"景泰油烟{i}") for i in range(22)]
    other = _order("W-JX", title="京溪油烟")
    for o in (*mine[:1], other):
        with session_scope() as s:
            orders.act(s, order_id=o.id, action="dispatch", params={"unit_id": s.get(Order, o.id).street_id})

    handler_a = login("hand_a")
    page1 = handler_a.get("/orders")
    assert page1.status_code == 200 and other.number not in page1.text
    assert page1.text.count('href="/orders/') == 20 and 'rel="next"' in page1.text
    page2 = handler_a.get("/orders?page=2")
    assert page2.text.count('href="/orders/') == 2 and 'rel="prev"' in page2.text
    dispatched = handler_a.get("/orders?state=dispatched")
    assert mine[0].number in dispatched.text and mine[1].number not in dispatched.text
    assert "京溪油烟" in login("disp").get("/orders?q=京溪").text
    assert "京溪油烟" not in handler_a.get("/orders?q=京溪").text
    bad = handler_a.get("/orders?created_from=2026-13-40&state=bogus")
    assert bad.status_code == 200 and "请输入有效日期" in bad.text and "请选择有效的选项" in bad.text
    assert 'value="2026-13-40"' in bad.text  # the typed filter stays in the form
    assert handler_a.get("/orders?created_from=2999-01-01").text.count('href="/orders/') == 0


def test_a_handler_lands_on_the_open_orders_of_its_unit(org) -> None:
    """在办: a handler's workbench lists what is still to do — not the closed orders that, newest first, buried an
    order dispatched a while ago; the choice stays in the form, and 全部 lists everything again."""
    waiting, done = _order(title="待办油烟"), _order(title="已办结油烟")
    disp, hand = login("disp"), login("hand_a")
    for order in (waiting, done):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, done.id, "accept")
    _act(hand, done.id, "reply", text="已处理")
    _act(login("sup"), done.id, "close", resolved="true", reason="已电话确认")
    home = hand.get("/")
    assert home.status_code == 200 and waiting.number in home.text and done.number not in home.text
    assert re.search(r'<option value="open" selected>在办（未答复）</option>', home.text)
    every = hand.get("/orders")
    assert waiting.number in every.text and done.number in every.text


def test_the_handlers_list_marks_what_supervisors_and_leaders_asked_of_its_orders(org) -> None:
    """督办: an order urged (催办) or assigned by a leader (交办) says so in the unit's list, not only on its page."""
    urged, assigned, plain = _order(title="催办油烟"), _order(title="交办油烟"), _order(title="普通油烟")
    disp, hand = login("disp"), login("hand_a")
    for order in (urged, assigned, plain):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(login("sup"), urged.id, "urge", reason="市民再次来电")
    _act(login("lead"), assigned.id, "assign", reason="请街道主要负责人牵头")
    page = hand.get("/").text

    def row(order: Order) -> str:
        return re.search(rf"<tr>\s*<td><a href=\"/orders/{order.id}\">.*?</tr>", page, flags=re.S).group(0)  # type: ignore[union-attr]

    assert 'data-testid="urged"' in row(urged) and "催办 1 次" in row(urged)
    assert 'data-testid="leader-assigned"' in row(assigned) and "领导交办" in row(assigned)
    assert 'data-testid="urged"' not in row(plain) and 'data-testid="leader-assigned"' not in row(plain)


def test_order_list_filters_by_where_the_place_came_from(org) -> None:
    given = _order("W-JX", title="京溪油烟")
    by_text = _order(None, title="路灯", content="京溪街道云景路路灯不亮")
    nowhere = _order(None, title="井盖", content="小区门口井盖松动")
    disp = login("disp")
    assert 'id="place_source"' in disp.get("/orders").text and "按正文识别" in disp.get("/orders").text

    def numbers(query: str) -> set[str]:
        page = disp.get(f"/orders?{query}")
        assert page.status_code == 200
        return {o.number for o in (given, by_text, nowhere) if o.number in page.text}

    assert numbers("place_source=text") == {by_text.number}
    assert numbers("place_source=none") == {nowhere.number}  # the ones to place by hand
    assert numbers("place_source=order&place_source=text") == {given.number, by_text.number}
    bad = disp.get("/orders?place_source=moon")
    assert bad.status_code == 200 and "请选择有效的选项" in bad.text


def test_a_street_user_cannot_open_another_streets_order(org) -> None:
    other = _order("W-JX")
    handler_a = login("hand_a")
    response = handler_a.get(f"/orders/{other.id}")
    assert response.status_code == 404 and "没有找到该工单" in response.text
    missing = handler_a.get("/orders/987654321")  # the same answer as for a missing order

    # The same page but for the CSRF token, masked afresh in every answer.
    def unmasked(text: str) -> str:
        return re.sub(r'(name="csrf-token" content|name="csrf_token" value)="[^"]+"', r"\1", text)

    assert missing.status_code == 404
    assert unmasked(missing.text.replace("987654321", str(other.id))) == unmasked(response.text)
    assert "李承办" in response.text  # the error page keeps the user's menu
    assert login("hand_b").get(f"/orders/{other.id}").status_code == 200
    acted = _act(handler_a, other.id, "accept")
    assert acted.status_code == 404 and _state(other.id) == State.RECEIVED


def test_malformed_page_addresses_and_dates_get_the_error_page_not_json(org) -> None:
    html = {"accept": "text/html"}
    disp = login("disp")
    for url in ("/orders/abc", "/orders/99999999999999999999", "/no-such-page", "/queue?page=99999999999999999999"):
        page = disp.get(url, headers=html)
        assert page.status_code == 404 and "页面不存在" in page.text and "<html" in page.text, url
        # Still signed in: their name, menu and 退出登录, not a 登录 link as if the dead link had signed them out.
        assert "黄派单" in page.text and 'data-testid="logout"' in page.text and 'href="/queue"' in page.text, url
        assert 'href="/login"' not in page.text, url
    assert 'href="/login"' in _client().get("/no-such-page", headers=html).text  # no session: the login link
    for query in ("created_from=0001-01-01", "created_to=9999-12-31"):
        page = disp.get(f"/orders?{query}", headers=html)
        assert page.status_code == 200 and "请输入有效日期" in page.text, query
    # Machines keep the JSON error body.
    api = disp.get("/api/v1/orders/abc", headers={"accept": "application/json"})
    assert api.status_code == 422 and api.json()["code"] == "validation_failed"


def test_a_refusal_a_page_route_lets_through_is_said_in_the_users_words() -> None:
    """Not found, no permission, changed meanwhile: each its own message on the error page; JSON for machines."""
    from sqlalchemy.orm.exc import StaleDataError

    from cityhub.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

    app = create_app()
    refusals = {
        "not-found": NotFound("gone"),
        "forbidden": PermissionDenied("no"),
        "conflict": Conflict("changed"),
        "invalid": ValidationFailed("bad"),
        "stale": StaleDataError("changed"),
    }

    def refuse(kind: str) -> None:
        raise refusals[kind]

    app.add_api_route("/refuse/{kind}", refuse)
    client = TestClient(app, raise_server_exceptions=False)
    expected = {
        "not-found": (404, "页面不存在", "找不到页面"),
        "forbidden": (403, "您的角色无权进行此操作", "无权访问"),
        "conflict": (409, "已被他人修改", "操作未完成"),
        "invalid": (422, "链接中的参数无效", "请求有误"),
        "stale": (409, "已被他人修改", "操作未完成"),
    }
    for kind, (status, words, heading) in expected.items():
        page = client.get(f"/refuse/{kind}", headers={"accept": "text/html"})
        assert page.status_code == status and words in page.text and "<html" in page.text, kind
        # headed by what happened (出错了 over every refusal before)
        assert f'<h1 data-testid="error-heading">{heading}</h1>' in page.text, kind
        assert f"<title>{heading}" in page.text, kind
        machine = client.get(f"/refuse/{kind}", headers={"accept": "application/json"})
        assert machine.status_code == status and "code" in machine.json(), kind


def test_citizen_data_is_masked_for_leaders_like_in_the_api(org) -> None:
    order = _order(citizen_name="张三丰", citizen_phone="13800138000")
    page = login("disp").get(f"/orders/{order.id}")
    assert "13800138000" in page.text
    assert page.headers["cache-control"] == "no-store"  # not shown again by Back after logout
    leader_page = login("lead").get(f"/orders/{order.id}").text
    assert "138****8000" in leader_page and "13800138000" not in leader_page and "张**" in leader_page
    assert "13800138000" not in login("lead").get("/orders").text
    # A returning caller: those who see citizens' data find their earlier appeals by phone or name.
    for query in ("138-0013-8000", "张三丰"):
        assert order.number in login("op").get(f"/orders?q={query}").text, query
        assert order.number not in login("lead").get(f"/orders?q={query}").text, query  # masking is not bypassed


def test_the_order_page_shows_what_the_channel_sent_masked_for_masked_readers(org) -> None:
    """渠道信息: the appeal's channel fields (an enterprise's credit code, a contact's e-mail) were kept and shown
    nowhere; staff read them, a leader without the e-mail, a citizen not at all."""
    attributes = {"企业统一信用代码": "91440111MA59ABCD1X", "联系人邮箱": "li@example.cn", "设备": {"id": "CAM-7"}}
    order = _order(channel="enterprise", attributes=attributes, citizen_name="李企业")
    page = login("disp").get(f"/orders/{order.id}").text
    details = re.search(r'data-testid="channel-details">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "91440111MA59ABCD1X" in details and "li@example.cn" in details and "CAM-7" in details
    leader = login("lead").get(f"/orders/{order.id}").text
    shown = re.search(r'data-testid="channel-details">(.*?)</td>', leader, re.S).group(1)  # type: ignore[union-attr]
    assert "企业统一信用代码" in shown and "li@example.cn" not in shown


def test_a_sensor_alarms_order_names_its_reading_in_chinese_and_links_the_sensor(org) -> None:
    """An alarm's order showed its attributes as the monitoring code wrote them (sensor_kind waterlogging, severity
    critical): now by their labels, the sensor and its alarm as links to the sensor's page, a finding's orders as
    links; another system's column keeps its own name; a null is a dash."""
    attributes = {
        "source": "monitoring",
        "alarm_id": 9,
        "sensor_code": "BY-WL-001",
        "sensor_kind": "waterlogging",
        "metric": "depth",
        "value": 31.1,
        "severity": "critical",
        "order_ids": [3, 5],
        "finding": {"id": "f1", "summary": "嘉禾街道 近7天 路灯故障 异常增多", "z": 4.2},
        "备注": "waterlogging",
        "proactive": True,
        "hotspot": None,
    }
    order = _order(attributes=attributes)
    page = login("sup").get(f"/orders/{order.id}").text
    details = re.search(r'data-testid="channel-details">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    rows = dict(re.findall(r'<div data-key="([^"]+)"><small>[^<]*</small> (.*?)</div>', details))
    assert rows["source"] == "物联感知告警" and rows["sensor_kind"] == "内涝" and rows["metric"] == "积水深度"
    assert rows["severity"] == "严重" and rows["value"] == "31.1"
    assert rows["sensor_code"] == '<a href="/monitoring/sensors/BY-WL-001">BY-WL-001</a>'
    assert rows["alarm_id"] == '<a href="/monitoring/sensors/BY-WL-001#alarm-9">9</a>'
    assert rows["order_ids"] == '<a href="/orders/3">#3</a> <a href="/orders/5">#5</a>'
    assert rows["finding"] == "嘉禾街道 近7天 路灯故障 异常增多"  # what was found, not its statistics
    assert rows["proactive"] == "是" and rows["hotspot"] == "—"  # a null sent: nothing, not JSON's null
    assert rows["备注"] == "waterlogging"  # another system's column: its name and its text as they came
    assert "<small>监测点</small>" in details and "<small>备注</small>" in details
    # A demo order says it is one; the generator's bookkeeping (its scenario's code, its hotspot) is not shown.
    demo = _order(attributes={"demo": True, "scenario": "consumer", "hotspot": None})
    page = login("sup").get(f"/orders/{demo.id}").text
    details = re.search(r'data-testid="channel-details">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r'<div data-key="([^"]+)"><small>([^<]*)</small>', details) == [("demo", "演示数据")]


def test_a_sensor_alarms_reading_reads_with_its_unit_sign_and_local_time(org) -> None:
    """The department handler read 读数 26.0, 阈值 15.0, 比较 >= — a program's figures: now the reading and the limit
    in the sensor's unit as the monitoring pages write them, the comparison as its sign, the reading's time local."""
    attributes = {
        "source": "monitoring",
        "sensor_code": "BY-WL-001",
        "metric": "depth",
        "value": 26.0,
        "threshold": 15.0,
        "comparison": ">=",
        "measure_unit": "cm",
        "measured_at": "2026-12-07T02:20:00Z",
    }
    order = _order(attributes=attributes)
    page = login("sup").get(f"/orders/{order.id}").text
    details = re.search(r'data-testid="channel-details">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    rows = dict(re.findall(r'<div data-key="([^"]+)"><small>[^<]*</small> (.*?)</div>', details))
    assert (rows["value"], rows["threshold"], rows["comparison"]) == ("26cm", "15cm", "≥")
    assert rows["measured_at"] == "2026-12-07 10:20"  # Asia/Shanghai, as every time on the pages
    assert "<small>测量时间</small>" in details and "<small>计量单位</small>" in details
    # Another system's columns of the same names are its own: shown as they came.
    other = _order(attributes={"value": 26.0, "measured_at": "2026-12-07T02:20:00Z", "comparison": "gt"})
    page = login("sup").get(f"/orders/{other.id}").text
    details = re.search(r'data-testid="channel-details">(.*?)</td>', page, re.S).group(1)  # type: ignore[union-attr]
    rows = dict(re.findall(r'<div data-key="([^"]+)"><small>[^<]*</small> (.*?)</div>', details))
    assert (rows["value"], rows["measured_at"]) == ("26.0", "2026-12-07T02:20:00Z")


def test_a_phone_number_in_an_appeals_text_is_searched_only_by_those_who_read_it(org) -> None:
    """Finding an order by a phone number in its text would tell a masked reader who filed it: a leader is told why
    not, a handler finds it among the orders its unit leads (whose personal data it reads), an operator anywhere."""
    order = _order(content="我是王小明，电话13912345678，小区门口井盖缺失", street="W-JT")
    assert order.number in login("op").get("/orders?q=13912345678").text
    refused = login("lead").get("/orders?q=139 1234 5678")
    assert refused.status_code == 200 and order.number not in refused.text
    assert "按电话、身份证号、邮箱或门牌号检索需可查看市民个人信息的角色" in refused.text
    assert order.number in login("lead").get("/orders?q=井盖缺失").text  # the words of the appeal still find it
    # Nor a house number the leader reads as [门牌号]: it would confirm whose door it is one guess at a time.
    door = _order(content="三元里大道123号1203房楼上漏水", street="W-JT")
    assert door.number in login("op").get("/orders?q=1203房").text
    for guess in ("1203房", "123号", "12栋"):
        assert door.number not in login("lead").get(f"/orders?q={guess}").text, guess
    assert door.number in login("lead").get("/orders?q=楼上漏水").text
    handler = login("hand_a")
    assert order.number in handler.get("/orders?q=井盖缺失").text  # on the handler's street: in its scope
    assert order.number not in handler.get("/orders?q=13912345678").text  # but its unit does not lead it
    with session_scope() as s:
        orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    assert order.number in handler.get("/orders?q=13912345678").text
    api = login("lead").get("/api/v1/orders", params={"q": "13912345678"})
    assert api.status_code == 403 and "phone number" in api.json()["message"] and api.json()["details"]["field"] == "q"


def test_a_masked_reader_does_not_find_an_appeal_by_its_filers_name_in_the_text(org) -> None:
    order = _order(content="我叫王小明，住在这里，小区门口井盖缺失", citizen_name="王小明", street="W-JT")
    assert order.number in login("op").get("/orders?q=王小明").text
    assert order.number not in login("lead").get("/orders?q=王小明").text  # the text holds it, scrubbed for them
    assert order.number not in login("lead").get("/orders?q=小明 井盖").text
    assert order.number in login("lead").get("/orders?q=井盖缺失").text
    api = login("lead").get("/api/v1/orders", params={"q": "王小明"})
    assert api.status_code == 200 and order.number not in api.text
    handler = login("hand_a")
    assert order.number not in handler.get("/orders?q=王小明").text  # on its street, but its unit does not lead it
    with session_scope() as s:
        orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": org["street_a"]})
    assert order.number in handler.get("/orders?q=王小明").text


def test_a_leader_sees_no_more_of_the_citizen_in_the_text_than_in_the_masked_fields(org) -> None:
    """List and detail: title, content, address and the audit trail's texts scrubbed, as in the API."""
    call = "本人李雪梅，住三元里大道88号5栋1907室，手机１３９１２３４５６７８，楼上夜间装修噪音"
    order = _order(
        citizen_name="李雪梅", citizen_phone="13912345678", content=call, address="三元里街道三元里大道88号5栋1907室"
    )
    with session_scope() as s:
        orders.act(s, order_id=order.id, action=Action.COMMENT, params={"text": "已联系李雪梅 139 1234 5678"})
    leader = login("lead")
    detail = html_unescape(leader.get(f"/orders/{order.id}").text)
    listing = html_unescape(leader.get("/orders").text)
    for page in (detail, listing):
        for secret in ("李雪梅", "88号", "5栋", "1907", "１３９", "139 1234"):
            assert secret not in page, secret
    assert "本人[已隐去]，住三元里大道[门牌号]，手机[已隐去]" in detail and "三元里街道三元里大道<" in detail
    assert "已联系[已隐去] [电话]" in detail and order.number in listing
    # In English the marks read in English, the appeal's words (data) as written; the API keeps the marks as stored.
    leader.get("/lang/en")
    english = html_unescape(leader.get(f"/orders/{order.id}").text)
    assert "本人[withheld]，住三元里大道[house number]，手机[withheld]" in english and "[电话]" not in english
    assert "已联系[withheld] [phone]" in english
    assert "[门牌号]" in leader.get(f"/api/v1/orders/{order.id}").json()["content"]
    seen_in_full = html_unescape(login("disp").get(f"/orders/{order.id}").text)
    assert call in seen_in_full and "已联系李雪梅 139 1234 5678" in seen_in_full


# -------------------------------------------------------------------------------------------------- actions


def test_each_role_drives_the_life_cycle_from_its_forms_and_the_audit_trail_records_it(org) -> None:
    # categorised at intake: a dispatch of an uncategorised order to a suggested unit records the classifier's reading
    # first (a comment of its own, tested with the queue)
    order = _order(category_id=org["cats"]["环境保护"])
    disp, hand, sup = login("disp"), login("hand_a"), login("sup")
    forms = disp.get(f"/orders/{order.id}").text
    assert 'data-testid="action-dispatch"' in forms and 'data-testid="action-accept"' not in forms

    steps = [
        (disp, "dispatch", {"unit_id": str(org["street_a"])}, State.DISPATCHED),
        (hand, "accept", {}, State.ACCEPTED),
        (hand, "start", {}, State.IN_PROGRESS),
        (hand, "request_extension", {"days": "2", "reason": "需协调执法"}, State.IN_PROGRESS),
        (sup, "approve_extension", {}, State.IN_PROGRESS),
        (sup, "urge", {"reason": "尽快处理"}, State.IN_PROGRESS),
        (hand, "suspend", {"reason": "等待市民补充材料"}, State.SUSPENDED),
        (hand, "resume", {}, State.IN_PROGRESS),
        (hand, "comment", {"text": "已约谈店主"}, State.IN_PROGRESS),
        (hand, "reply", {"text": "已责令餐馆加装油烟净化器，经复查已整改。"}, State.REPLIED),
        (sup, "callback", {"satisfied": "true"}, State.CALLED_BACK),
        (sup, "close", {}, State.CLOSED_RESOLVED),
    ]
    for client, action, data, expected in steps:
        response = _act(client, order.id, action, **data)
        assert response.status_code == 303, (action, response.text[:500])
        assert _state(order.id) == expected, action
        # each step's flash says it was done (督办催办 names the order and the unit it went to: 已催办)
        assert ("已催办" if action == "urge" else "已完成") in client.get(response.headers["location"]).text
    trail = _events(order.id)
    assert [e.action for e in trail] == ["create"] + [a for _, a, _, _ in steps]
    assert [e.actor_name for e in trail[1:4]] == ["黄派单", "李承办", "李承办"]
    page = sup.get(f"/orders/{order.id}").text
    assert page.count("<tr data-action=") == len(steps) + 1 and "已责令餐馆加装油烟净化器" in page
    # A step that changed no state (催办, 备注) shows the state it left the order in, not "办理中 → 办理中".
    urged = re.search(r'<tr data-action="urge">.*?</tr>', page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "<td>办理中</td>" in urged and "→ 办理中" not in urged
    assert "<td>已答复 → 已回访</td>" in re.search(r'<tr data-action="callback">.*?</tr>', page, flags=re.S).group(0)  # type: ignore[union-attr]


def test_the_lead_unit_is_not_offered_the_reply_while_assisting_units_have_not_answered(org) -> None:
    """The lead unit wrote a reply the life cycle then refused (its assisting units had not answered): the page
    offers no 答复 meanwhile and names the units awaited, with their contacts; once they answer, 答复 is back."""
    with session_scope() as s:
        s.get(Unit, org["street_a"]).contacts = [{"name": "李主任", "phone": "020-86000001"}]  # type: ignore[union-attr]
    disp, lead, helper = login("disp"), login("hand_b"), login("hand_a")
    order = _order(street="W-JX")
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(lead, order.id, "accept").status_code == 303
    assert _act(disp, order.id, "add_assist", unit_id=str(org["street_a"])).status_code == 303

    page = lead.get(f"/orders/{order.id}").text
    assert 'data-testid="action-reply"' not in page
    awaited = re.search(r'data-testid="reply-awaits">(.*?)</div>', page, flags=re.S).group(1)  # type: ignore[union-attr]
    assert "景泰街道" in awaited and "待签收" in awaited and "李主任 020-86000001" in awaited
    assert 'data-testid="action-request_extension"' in page  # the lead's other steps stay
    api = lead.get(f"/api/v1/orders/{order.id}/actions").json()
    assert "reply" not in api and "request_extension" in api
    # The assisting unit itself, and a supervisor, are not the ones waiting to reply: no such notice for them.
    assert 'data-testid="reply-awaits"' not in helper.get(f"/orders/{order.id}").text
    assert 'data-testid="reply-awaits"' not in login("sup").get(f"/orders/{order.id}").text

    assert _act(helper, order.id, "assist_reply", text="已配合清理").status_code == 303
    page = lead.get(f"/orders/{order.id}").text
    assert 'data-testid="action-reply"' in page and 'data-testid="reply-awaits"' not in page
    assert _act(lead, order.id, "reply", text="已处理完毕").status_code == 303
    assert _state(order.id) == State.REPLIED


def test_an_assisting_unit_reads_what_it_is_asked_and_the_lead_reads_its_answer_among_the_facts(org) -> None:
    """协办 on the order page: the unit asked to assist reads what it is asked to do, by whom and when, above its
    协办签收 and 协办答复 until it has answered (the request stood only in the trail); the lead unit reads each
    assisting unit's answer under its name among the facts, where it writes its own reply from (the trail only)."""
    disp, lead, helper = login("disp"), login("hand_b"), login("hand_a")
    order = _order(street="W-JX")
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(lead, order.id, "accept").status_code == 303
    asked = "请核实楼下餐馆的营业执照"
    assert _act(disp, order.id, "add_assist", unit_id=str(org["street_a"]), reason=asked).status_code == 303

    def notice(page: str) -> str:
        found = re.search(r'data-testid="assist-asked">(.*?)</p>', page, flags=re.S)
        return html_unescape(re.sub("<[^>]+>", "", found.group(1))) if found else ""

    page = helper.get(f"/orders/{order.id}").text
    assert notice(page).startswith(f"请本单位协办：{asked}") and "黄派单" in notice(page)
    assert page.index('data-testid="assist-asked"') < page.index('data-testid="action-assist_accept"')
    assert notice(lead.get(f"/orders/{order.id}").text) == ""  # the lead asked nothing of itself
    assert _act(helper, order.id, "assist_accept").status_code == 303
    assert asked in notice(helper.get(f"/orders/{order.id}").text)  # signed for, still to answer
    assert _act(helper, order.id, "assist_reply", text="经核实该餐馆证照齐全，已责令加装油烟净化器").status_code == 303
    assert notice(helper.get(f"/orders/{order.id}").text) == ""  # answered: nothing more asked of it
    facts = re.search(r'data-testid="assists">(.*?)</td>', lead.get(f"/orders/{order.id}").text, flags=re.S)
    assert facts is not None and "景泰街道（已答复）" in facts.group(1)
    assert "经核实该餐馆证照齐全，已责令加装油烟净化器" in facts.group(1)


def test_a_handler_checks_a_reply_before_sending_it_and_nothing_is_recorded(org) -> None:
    """检查答复质量: the reply typed is scored as the supervisors' review scores it, before it is sent — a weak one
    said so with its reasons — and given back in its box; the order is not replied, nothing is written. (A reply was
    scored only once sent, and a weak one came back from the supervisor as 退回答复.)"""
    order = _order(title="楼下餐馆油烟扰民")
    hand = login("hand_a")
    assert _act(login("disp"), order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order.id, "accept").status_code == 303
    form = hand.get(f"/orders/{order.id}").text
    assert 'name="check" value="1"' in form and "检查答复质量（不提交）" in form
    # 申请延期 says, before it is asked, how many days one request may ask for and the limit it moves on.
    hint = re.search(r'data-testid="extension-days-hint">(.*?)</small>', form, flags=re.S)
    assert hint is not None and re.fullmatch(
        r"工作日，一次最多 30 天；现办结时限 \d{4}-\d\d-\d\d \d\d:\d\d，批准后顺延。",
        re.sub("<[^>]+>", "", hint.group(1)),
    )
    version = _version(order.id)
    checked = _act(hand, order.id, "reply", text="已处理。", check="1")
    assert checked.status_code == 200
    preview = re.search(r'data-testid="reply-preview">(.*?)</div>', checked.text, flags=re.S)
    assert preview is not None and "这条答复偏弱" in preview.group(1)
    # its findings as 答复审核 words them: a sentence each, the figures after it
    said = re.findall(r"<li[^>]*>(.*?)</li>", preview.group(1).split('data-testid="reply-preview-findings"')[1])
    assert "只有问候、收悉或致谢套话，没有实质答复" in said and all("<small" not in f or "（" in f for f in said), said
    assert re.search(r'<textarea id="reply-text"[^>]*>已处理。</textarea>', checked.text)
    assert '<details open data-testid="action-reply">' in checked.text
    assert _state(order.id) == State.ACCEPTED and _version(order.id) == version  # nothing recorded
    with session_scope() as s:
        assert s.get(ReplyCheck, order.id) is None
    # Sent as it stands, the reply is recorded as before.
    assert (
        _act(hand, order.id, "reply", text="经现场核查，已责令餐馆加装油烟净化设施，并于12月5日复查达标。").status_code
        == 303
    )
    assert _state(order.id) == State.REPLIED


def test_an_order_sent_back_for_rework_says_why_under_its_heading(org) -> None:
    """重办: the unit reads why the order came back — the supervisor's reason, what the citizen said at the callback,
    the reply they were not satisfied with — under the heading; it stood only in the trail, and the order read as any
    newly dispatched one. Answered again, the notice goes."""
    order = _order(title="楼下餐馆油烟扰民")
    disp, hand, sup = login("disp"), login("hand_a"), login("sup")
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert _act(hand, order.id, "accept").status_code == 303
    assert _act(hand, order.id, "reply", text="已约谈餐馆负责人，要求整改油烟排放").status_code == 303
    assert 'data-testid="reopened"' not in hand.get(f"/orders/{order.id}").text
    said = "餐馆仍在晚上排放油烟"
    assert _act(sup, order.id, "callback", satisfied="false", reason=said).status_code == 303
    assert _act(sup, order.id, "reopen", reason="请现场复查并加装净化设施").status_code == 303
    page = hand.get(f"/orders/{order.id}").text
    notice = re.search(r'data-testid="reopened">(.*?)</div>\s*</div>', page, flags=re.S)
    assert notice is not None
    text = html_unescape(re.sub("<[^>]+>", "", notice.group(1)))
    assert text.startswith("重办（第 1 次）：请现场复查并加装净化设施") and "陈督办" in text
    assert f"回访不满意：{said}" in text and "上次答复：" in text and "已约谈餐馆负责人，要求整改油烟排放" in text
    assert page.index('data-testid="reopened"') < page.index('data-testid="facts"')
    listed = re.search(rf'<a href="/orders/{order.id}">.*?</tr>', hand.get("/orders").text, flags=re.S)
    assert listed is not None and 'data-testid="reopened">重办</span>' in listed.group(0)  # marked on 在办 too
    assert _act(hand, order.id, "accept").status_code == 303
    assert _act(hand, order.id, "reply", text="经现场复查，餐馆已加装油烟净化器并检测达标").status_code == 303
    assert 'data-testid="reopened"' not in hand.get(f"/orders/{order.id}").text


def test_a_handlers_workbench_marks_the_orders_their_unit_assists_on(org) -> None:
    """在办 lists the orders a unit assists on (协办) among those it leads: each marked with where its part stands, so
    that the handler knows the step is 协办签收 or 协办答复 (the lead unit's name in the row was the only hint)."""
    disp, lead, helper = login("disp"), login("hand_b"), login("hand_a")
    order = _order(street="W-JX")
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(disp, order.id, "add_assist", unit_id=str(org["street_a"])).status_code == 303

    def mark(client: TestClient) -> str | None:
        listed = client.get("/orders", params={"state": "open", "held": "1"}).text
        row = re.search(rf'<a href="/orders/{order.id}">.*?</tr>', listed, re.S)
        assert row is not None, listed
        found = re.search(r'data-testid="assisting">([^<]*)<', row.group(0))
        return found.group(1) if found else None

    assert mark(helper) == "本单位协办（待签收）"
    assert mark(lead) is None  # the unit holding it leads it
    assert _act(helper, order.id, "assist_accept").status_code == 303
    assert mark(helper) == "本单位协办（办理中）"
    assert _act(helper, order.id, "assist_reply", text="已配合清理").status_code == 303
    assert mark(helper) == "本单位协办（已答复）"


def test_a_streets_coordinator_finds_its_own_communities_first_among_the_units(org) -> None:
    """转派 on a street's order: the street's coordinator (its dispatcher) passes it on to one of its communities,
    offered first (本街道村社) — they stood at the foot of the district's units, after every department and street;
    another street's communities stay where they were, and the district's dispatcher has no such group."""
    from cityhub.auth import service as auth_service
    from cityhub.org.models import UnitTier
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        ours = Unit(code="W-JT-01", name="云景社区", tier=UnitTier.COMMUNITY, parent_id=org["street_a"])
        theirs = Unit(code="W-JX-01", name="京溪社区", tier=UnitTier.COMMUNITY, parent_id=org["street_b"])
        s.add_all([ours, theirs])
        s.flush()
        ours_id, theirs_id = ours.id, theirs.id
        auth_service.create_account(
            s,
            data=UserCreate(username="jt_disp", full_name="何协调", role=Role.DISPATCHER, unit_id=org["street_a"]),
            password=PASSWORD,
        )
    order = _order()
    assert _act(login("disp"), order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    coordinator = login("jt_disp")
    page = coordinator.get(f"/orders/{order.id}").text
    form = re.search(r'<select id="transfer-unit_id".*?</select>', page, flags=re.S)
    assert form is not None
    groups = re.findall(r'<optgroup label="([^"]*)"[^>]*>(.*?)</optgroup>', form.group(0), flags=re.S)
    assert (
        groups[0][0] == "本街道村社"
        and f'value="{ours_id}"' in groups[0][1]
        and f'value="{theirs_id}"' not in groups[0][1]
    )
    assert form.group(0).count(f'value="{ours_id}"') == 1  # not again among 村社
    assert f'value="{theirs_id}"' in form.group(0)
    assert 'data-testid="units-below"' not in login("disp").get(f"/orders/{order.id}").text
    assert _act(coordinator, order.id, "transfer", unit_id=str(ours_id), reason="属地社区处理").status_code == 303
    with session_scope() as s:
        assert s.get(Order, order.id).lead_unit_id == ours_id  # type: ignore[union-attr]


def test_return_transfer_assist_cancel_and_reopen_forms(org) -> None:
    disp, hand, sup = login("disp"), login("hand_a"), login("sup")
    order = _order()
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    # The time limit is in working days: so is what is left of it, with the deadline.
    left = re.search(
        r"剩余 (\d+\.\d) 个工作日（(\d{4}-\d\d-\d\d \d\d:\d\d) 截止）", hand.get(f"/orders/{order.id}").text
    )
    assert left is not None and 0 < float(left.group(1)) <= 15
    assert _act(hand, order.id, "return", reason="不属于本街道").status_code == 303
    assert _state(order.id) == State.RETURNED
    # Returning an order placed in another street takes it out of the handler's sight: back to their list (在办, not
    # every order newest first), told which order it was.
    elsewhere = _order(street="W-JX")
    _act(disp, elsewhere.id, "dispatch", unit_id=str(org["street_a"]))
    left = _act(hand, elsewhere.id, "return", reason="不在本街道")
    assert left.status_code == 303 and left.headers["location"] == "/orders?state=open&held=1&sort=due"
    assert f"工单 {elsewhere.number}：已完成退单。" in hand.get(left.headers["location"]).text
    assert _act(disp, order.id, "dispatch", unit_id=str(org["street_b"])).status_code == 303
    assert _act(disp, order.id, "add_assist", unit_id=str(org["street_a"])).status_code == 303
    again = _act(disp, order.id, "add_assist", unit_id=str(org["street_a"]))
    assert re.search(r'data-testid="field-error-unit_id">该单位已在协办。<', again.text), again.text
    assert _act(hand, order.id, "assist_accept").status_code == 303
    assert _act(hand, order.id, "assist_reply", text="已配合巡查").status_code == 303
    # 转派 to the unit that holds it: said at the unit chosen, not as a step the order's state forbids.
    same = _act(disp, order.id, "transfer", unit_id=str(org["street_b"]), reason="属地调整")
    assert same.status_code == 422 and "不能执行" not in same.text
    assert re.search(r'data-testid="field-error-unit_id">工单已在该单位。<', same.text), same.text
    assert _act(disp, order.id, "transfer", unit_id=str(org["street_a"]), reason="属地调整").status_code == 303
    with session_scope() as s:
        o = s.get(Order, order.id)
        assert o is not None and o.lead_unit_id == org["street_a"] and o.return_count == 1
    assert _act(disp, order.id, "cancel", reason="重复诉求").status_code == 303
    assert _state(order.id) == State.CANCELLED
    # The history says where an action sent the order, and who acted from which unit: a return is no "→ unit".
    history = disp.get(f"/orders/{order.id}").text
    returned = re.search(r'<tr data-action="return">.*?</tr>', history, flags=re.S).group(0)  # type: ignore[union-attr]
    dispatched = re.search(r'<tr data-action="dispatch">.*?</tr>', history, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "→ 景泰街道" in dispatched and "→" not in returned.split("</td>")[2] and "景泰街道" in returned

    unsatisfied = _order()
    _act(disp, unsatisfied.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, unsatisfied.id, "accept")
    _act(hand, unsatisfied.id, "reply", text="已处理")
    assert _act(sup, unsatisfied.id, "reject_reply", reason="答复过于简单").status_code == 303
    _act(hand, unsatisfied.id, "reply", text="已现场处理并复查，油烟已达标。")
    _act(sup, unsatisfied.id, "callback", satisfied="false")
    assert 'data-testid="satisfied">不满意<' in sup.get(f"/orders/{unsatisfied.id}").text  # what the callback heard
    assert _act(disp, unsatisfied.id, "reopen", reason="市民不满意").status_code == 303
    assert _state(unsatisfied.id) == State.DISPATCHED
    # The reopen cleared the verdict from the facts; the trail keeps what the callback heard.
    reopened = sup.get(f"/orders/{unsatisfied.id}").text
    assert 'data-testid="satisfied"' not in reopened
    called = re.search(r'<tr data-action="callback">.*?</tr>', reopened, flags=re.S).group(0)  # type: ignore[union-attr]
    assert '<div data-testid="event-satisfied"><strong>不满意</strong></div>' in called
    # A 重办 naming no unit goes back to the unit that answered: the trail says so (its event names none).
    again = re.search(r'<tr data-action="reopen">.*?</tr>', reopened, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "重办 → 景泰街道" in again

    master, dup = _order(), _order()
    assert _act(disp, dup.id, "merge", master_id=f" {master.number.lower()} ").status_code == 303
    assert _state(dup.id) == State.MERGED
    # Each page says where the other is: the merged order its master, the master what was merged into it.
    merged_page = disp.get(f"/orders/{dup.id}").text
    assert re.search(rf'data-testid="merge">已并入 <a href="/orders/{master.id}">{master.number}</a>', merged_page)
    # So does the merge's step in the trail: 合并 → the master, as 拆单 names its new order.
    merged_step = re.search(r'<tr data-action="merge">.*?</tr>', merged_page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert f'合并 → <a href="/orders/{master.id}">{master.number}</a>' in merged_step
    master_page = disp.get(f"/orders/{master.id}").text
    assert re.search(rf'data-testid="merge">并入本单的工单 <a href="/orders/{dup.id}">{dup.number}</a>', master_page)
    # The master's trail tells its handler too: who merged which appeal into it, when (by hand: no 自动).
    joined = re.search(r'<tr data-action="merged_in">.*?</tr>', master_page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert f'<td>并入诉求 ← <a href="/orders/{dup.id}">{dup.number}</a></td>' in joined and "黄派单" in joined
    assert _act(disp, _order().id, "merge", master_id="BY00000000-999999").status_code == 422
    # Merged by the duplicate check (as intake does): 自动, in either language.
    again = _order()
    with session_scope() as s:
        master_row = s.get(Order, master.id)
        orders.act(s, order_id=again.id, action="merge", params=auto_merge_params(master_row, 0.97))  # type: ignore[arg-type]
    master_page = disp.get(f"/orders/{master.id}").text
    auto = re.findall(r'<tr data-action="merged_in">.*?</tr>', master_page, flags=re.S)[-1]
    assert f'<td>并入诉求（自动） ← <a href="/orders/{again.id}">{again.number}</a></td>' in auto
    merged_step = re.search(r'<tr data-action="merge">.*?</tr>', disp.get(f"/orders/{again.id}").text, flags=re.S)
    assert merged_step and f'<td>合并（自动） → <a href="/orders/{master.id}">' in merged_step.group(0)
    english = disp.get("/lang/en", params={"next": f"/orders/{master.id}"}).text
    rows = re.findall(r'<tr data-action="merged_in">.*?</tr>', english, flags=re.S)
    assert f'<td>Appeal merged in ← <a href="/orders/{dup.id}">{dup.number}</a></td>' in rows[0]
    assert f'<td>Appeal merged in (automatic) ← <a href="/orders/{again.id}">{again.number}</a></td>' in rows[1]


def test_the_unit_picker_groups_units_by_tier_and_leaves_out_the_district(org) -> None:
    order = _order()
    page = login("disp").get(f"/orders/{order.id}").text
    picker = re.search(r'<select id="dispatch-unit_id".*?</select>', page, re.S).group(0)  # type: ignore[union-attr]
    assert '<optgroup label="镇街">' in picker and "景泰街道" in picker and "京溪街道" in picker
    assert "白云区" not in picker  # nobody accepts an order there
    listing = login("disp").get("/orders").text  # the list's filter still offers the district's own orders
    assert re.search(r'<optgroup label="区">.*?白云区', listing, re.S)


def test_an_urge_without_a_message_is_refused_at_its_field(org) -> None:
    """催办 asks what to tell the unit (催办内容, not 选填): a blank one is refused at the field, in the form's own
    words, and nothing is recorded."""
    order = _order()
    sup = login("sup")
    assert _act(login("disp"), order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    form = re.search(r'<details[^>]*data-testid="action-urge">.*?</details>', sup.get(f"/orders/{order.id}").text, re.S)
    assert form and '<label for="urge-reason">催办内容</label>' in form.group(0), form
    blank = _act(sup, order.id, "urge", reason=" \u3000 ")
    assert blank.status_code == 422 and re.search(r'<details open data-testid="action-urge">', blank.text)
    assert re.search(r'data-testid="field-error-reason">请填写「催办内容」。<', blank.text), blank.text
    with session_scope() as s:
        assert s.get(Order, order.id).urge_count == 0  # type: ignore[union-attr]
    english = sup.get("/lang/en", params={"next": f"/orders/{order.id}"})
    assert '<label for="urge-reason">Message to the unit</label>' in english.text
    refused = _act(sup, order.id, "urge")
    said = re.search(r'data-testid="field-error-reason">([^<]*)<', refused.text)
    assert said and html_unescape(said.group(1)) == "Please fill in 'Message to the unit'.", refused.text
    assert _act(sup, order.id, "urge", reason="市民再次来电").status_code == 303
    assert [(e.action, e.reason) for e in _events(order.id)][-1] == ("urge", "市民再次来电")


def test_the_handler_reads_the_latest_urge_at_the_top_of_the_order_while_it_is_open(org) -> None:
    """督办催办: what the unit is urged to do, by whom and when, under the order's heading — the handler on a phone
    saw a count among the facts and the message in the trail, two screens below the actions."""
    order = _order()
    sup, hand = login("sup"), login("hand_a")
    assert _act(login("disp"), order.id, "dispatch", unit_id=str(org["street_a"])).status_code == 303
    assert 'data-testid="urged"' not in hand.get(f"/orders/{order.id}").text
    assert _act(sup, order.id, "urge", reason="市民第二次来电").status_code == 303
    assert _act(sup, order.id, "urge", reason="请今天内到现场处理并回复").status_code == 303
    page = hand.get(f"/orders/{order.id}").text
    urged = re.search(r'<p class="notice" data-testid="urged">(.*?)</p>', page, re.S)
    assert urged, page
    words = re.sub(r"<[^>]+>", "", urged.group(1))
    assert "催办 2 次：请今天内到现场处理并回复" in words and "市民第二次来电" not in words  # the newest one
    assert page.index('data-testid="urged"') < page.index('data-testid="facts"')  # before the facts
    with session_scope() as s:
        supervisor = s.scalars(select(User).where(User.username == "sup")).one().full_name
    assert supervisor and supervisor in words
    # A citizen reads no internal urging; once the order is replied, the urge is history (the trail keeps it).
    assert _act(hand, order.id, "accept").status_code == 303
    assert _act(hand, order.id, "reply", text="已到现场修复路灯。").status_code == 303
    assert 'data-testid="urged"' not in hand.get(f"/orders/{order.id}").text


def test_refused_actions_show_readable_messages_and_keep_the_input(org) -> None:
    order = _order()
    disp, hand, op = login("disp"), login("hand_a"), login("op")

    missing = _act(disp, order.id, "dispatch")
    # The form's fault, not the state's; a unit is picked from the list, not typed ("请填写" asked to type it).
    assert missing.status_code == 422 and "请选择「单位」" in missing.text and "请填写「单位」" not in missing.text
    assert re.search(r'<details open data-testid="action-dispatch">', missing.text)

    wrong_state = _act(hand, order.id, "accept")
    # Handlers of street A see the order (it is on their street) but it is not dispatched yet.
    assert wrong_state.status_code == 409 and "当前状态「已受理」下不能执行「签收」" in wrong_state.text

    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, order.id, "accept")
    empty_reply = _act(hand, order.id, "reply", text="   ")
    assert empty_reply.status_code == 422 and "请填写「内容」" in empty_reply.text

    bad_days = _act(hand, order.id, "request_extension", days="两天", reason="需要协调")
    assert bad_days.status_code == 422 and "请输入数字" in bad_days.text and "需要协调" in bad_days.text
    # Too many days is the typed value's fault, said at the field, not "not allowed in this state".
    too_long = _act(hand, order.id, "request_extension", days="999", reason="需要协调")
    assert too_long.status_code == 422 and 'data-testid="field-error-days"' in too_long.text
    assert "最多申请延期 30 个工作日" in too_long.text and "下不能执行" not in too_long.text
    # The supervisor sees how many working days were asked for, in the time-limit line and the audit trail.
    assert _act(hand, order.id, "request_extension", days="5", reason="需要协调").status_code == 303
    sup_page = login("sup").get(f"/orders/{order.id}").text
    assert "延期申请待审批（申请 5 个工作日）" in sup_page
    asked = re.search(r'<tr data-action="request_extension">.*?</tr>', sup_page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert '<div data-testid="event-days">5 个工作日</div>需要协调' in asked

    stale = hand.post(
        f"/orders/{order.id}/act/reply",
        data={"csrf_token": csrf(hand), "version": "1", "text": "我写了很长的答复"},
    )
    assert stale.status_code == 409 and "我写了很长的答复</textarea>" in stale.text
    # Not "reload and try again" (a reload throws the reply away): the page is the order as it stands, the text kept,
    # the form on the new version, to be sent again as it is (below).
    assert "页面已是最新状态，填写的内容已保留：请核对后再次提交" in stale.text and "请刷新" not in stale.text
    assert _state(order.id) == State.ACCEPTED
    again = re.search(r'<form method="post" action="/orders/\d+/act/reply".*?</form>', stale.text, flags=re.S)
    assert again is not None
    kept = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', again.group(0)))
    assert kept["version"] == str(_version(order.id))

    forbidden = _act(op, order.id, "dispatch", unit_id=str(org["street_b"]))
    assert forbidden.status_code == 403 and "无权" in forbidden.text
    assert _act(hand, order.id, "not_an_action").status_code == 404
    # Replied with the extension request still pending: the request ends undecided, and the reply's entry says so.
    assert _act(hand, order.id, "reply", text="已协调施工单位处理完毕").status_code == 303
    page = login("sup").get(f"/orders/{order.id}").text
    replied = re.search(r'<tr data-action="reply">.*?</tr>', page, flags=re.S).group(0)  # type: ignore[union-attr]
    assert '<div data-testid="event-extension-withdrawn"><small>待审批的延期申请随之撤销</small></div>' in replied
    assert "延期申请待审批" not in page and page.count('data-testid="event-extension-withdrawn"') == 1


def test_a_handlers_workbench_lists_what_their_unit_holds_not_every_order_in_its_street(org) -> None:
    """在办 (their home and menu): the orders their unit leads or assists in — not those they read only because they
    lie in their street while another unit holds them, which they cannot act on. The list's 只看本单位承办 and the
    API's ``held`` choose the same; for the district's staff (every order is theirs to oversee) nothing narrows."""
    mine, elsewhere, assisting = _order(title="路灯不亮"), _order(title="井盖缺失"), _order(title="树木倒伏")
    with session_scope() as s:
        orders.act(s, order_id=mine.id, action="dispatch", params={"unit_id": org["street_a"]})
        for o in (elsewhere, assisting):
            orders.act(s, order_id=o.id, action="dispatch", params={"unit_id": org["street_b"]})
        orders.act(s, order_id=assisting.id, action="add_assist", params={"unit_id": org["street_a"]})
    hand = login("hand_a")

    def listed(client: TestClient, url: str) -> set[int]:
        return {int(i) for i in re.findall(r'<a href="/orders/(\d+)">', client.get(url).text)}

    everything = listed(hand, "/orders?state=open")
    assert {mine.id, elsewhere.id, assisting.id} <= everything  # all lie in 景泰街道: its staff read them
    workbench = hand.get("/").url
    assert workbench.params.get("held") == "1"
    assert listed(hand, str(workbench)) == {mine.id, assisting.id}
    page = hand.get("/orders?state=open&held=1").text
    assert '<input type="checkbox" name="held" value="1" checked data-testid="filter-held"> 只看本单位承办' in page
    api = hand.get("/api/v1/orders", params={"state": ["dispatched"], "held": "true"}).json()["items"]
    assert {o["id"] for o in api} == {mine.id, assisting.id}
    # The district's supervisor oversees every order: no such choice, and held narrows nothing.
    sup = login("sup")
    assert 'name="held"' not in sup.get("/orders").text
    assert listed(sup, "/orders?state=open&held=1") == listed(sup, "/orders?state=open")
    assert len(sup.get("/api/v1/orders", params={"held": "true"}).json()["items"]) >= 3


def test_a_supervisor_escalates_with_a_higher_urgency_and_the_time_limit_comes_forward(org) -> None:
    order = _order()
    disp, sup = login("disp"), login("sup")
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    with session_scope() as s:
        due_normal = s.get(Order, order.id).due_at  # type: ignore[union-attr]
    form = re.search(r'<details data-testid="action-escalate">.*?</details>', sup.get(f"/orders/{order.id}").text, re.S)
    assert form is not None and "不变（一般）" in form.group(0)
    assert '<option value="urgent">紧急</option>' in form.group(0) and '<option value="normal">' not in form.group(0)
    assert _act(sup, order.id, "escalate", reason="市民多次来电", urgency="urgent").status_code == 303
    with session_scope() as s:
        escalated = s.get(Order, order.id)
        assert escalated is not None and escalated.urgency.value == "urgent" and escalated.escalation_level == 1
        assert escalated.due_at is not None and due_normal is not None and escalated.due_at < due_normal
    page = sup.get(f"/orders/{order.id}").text
    assert "不变（紧急）" in page and '<option value="urgent">' not in page and '<option value="critical">特急' in page
    due = escalated.due_at.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M")
    row = re.search(r'<tr data-action="escalate">.*?</tr>', page, re.S)
    assert row is not None and "紧急程度：一般 → 紧急；办结时限提前至 " + due in re.sub(r"<[^>]+>", "", row.group(0))
    assert f'<span class="nowrap">{due[:10]}</span>' in row.group(0)  # the new date never broken at its hyphens


def test_the_approver_is_told_when_the_urgency_was_raised_after_the_extension_request(org) -> None:
    order = _order()
    disp, sup, hand = login("disp"), login("sup"), login("hand_a")
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, order.id, "accept")
    assert _act(hand, order.id, "request_extension", days="3", reason="需协调多个部门").status_code == 303
    assert 'data-testid="raised-since-request"' not in sup.get(f"/orders/{order.id}").text
    _act(sup, order.id, "escalate", reason="市民多次来电", urgency="urgent")
    _act(sup, order.id, "escalate", reason="媒体关注", urgency="critical")
    note = re.search(
        r'<p class="hint" data-testid="raised-since-request">(.*?)</p>', sup.get(f"/orders/{order.id}").text
    )
    assert note is not None and note.group(1).startswith("延期申请提出后，紧急程度已由一般提高至特急")
    assert _act(sup, order.id, "approve_extension").status_code == 303  # decided: nothing pending to warn of
    assert 'data-testid="raised-since-request"' not in sup.get(f"/orders/{order.id}").text


def test_the_approver_reads_the_extension_request_above_the_decision(org) -> None:
    """批准延期 / 驳回延期: the days asked, why, by whom and when stand with the time limit, above the actions — a
    supervisor deciding on a phone read the reason in the trail, a screen below the two buttons."""
    order = _order()
    disp, sup, hand = login("disp"), login("sup"), login("hand_a")
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, order.id, "accept")
    assert 'data-testid="extension-request"' not in sup.get(f"/orders/{order.id}").text
    assert _act(hand, order.id, "request_extension", days="4", reason="需协调住建部门联合执法").status_code == 303
    page = sup.get(f"/orders/{order.id}").text
    asked = re.search(r'<p class="notice" data-testid="extension-request">(.*?)</p>', page, re.S)
    assert asked, page
    words = re.sub(r"<[^>]+>", "", asked.group(1))
    with session_scope() as s:
        handler = s.scalars(select(User).where(User.username == "hand_a")).one().full_name
    assert "申请延期 4 个工作日：需协调住建部门联合执法" in words and handler and handler in words, words
    assert page.index('data-testid="extension-request"') < page.index('data-testid="action-approve_extension"')
    english = sup.get("/lang/en", params={"next": f"/orders/{order.id}"}).text
    assert "Extension of 4 working days requested" in english
    assert _act(sup, order.id, "approve_extension").status_code == 303  # decided: nothing pending to show
    assert 'data-testid="extension-request"' not in sup.get(f"/orders/{order.id}").text


def test_supervisors_list_the_extension_requests_waiting_for_their_decision(org) -> None:
    """延期审批: a supervisor finds the orders whose extension request waits for them (the list's filter, the API's
    ``extension_pending``), each marked; a decided one leaves the list."""
    asked, other = _order(title="延期申请油烟"), _order(title="无延期油烟")
    disp, sup, hand = login("disp"), login("sup"), login("hand_a")
    for order in (asked, other):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
        _act(hand, order.id, "accept")
    assert _act(hand, asked.id, "request_extension", days="3", reason="需协调多个部门").status_code == 303

    def listed(client: TestClient) -> set[str]:
        page = client.get("/orders?extension_pending=1")
        assert page.status_code == 200
        return {o.number for o in (asked, other) if o.number in page.text}

    page = sup.get("/orders?extension_pending=1")
    assert listed(sup) == {asked.number}
    assert 'data-testid="extension-pending"' in page.text and "延期待审批" in page.text
    assert re.search(r'name="extension_pending" value="1" checked', page.text)  # the filter stays set
    assert 'data-testid="extension-pending"' in sup.get("/orders").text  # marked in the whole list too
    api = sup.get("/api/v1/orders", params={"extension_pending": "true"}).json()
    assert [item["number"] for item in api["items"]] == [asked.number]
    # The approval may grant fewer days than asked: its form says how many were asked, and refuses more at the field.
    form = re.search(  # type: ignore[union-attr]
        r'data-testid="action-approve_extension".*?</form>', sup.get(f"/orders/{asked.id}").text, flags=re.S
    ).group(0)
    assert 'name="days" inputmode="decimal" value="" placeholder="3"' in form and "可少于申请" in form
    more = _act(sup, asked.id, "approve_extension", days="9")
    assert more.status_code == 422 and 'data-testid="field-error-days"' in more.text
    assert "批准的延期不能多于申请的 3 个工作日。" in more.text and listed(sup) == {asked.number}
    assert _act(sup, asked.id, "approve_extension").status_code == 303
    assert listed(sup) == set()
    # Approved without a reason: the trail says the days granted, nothing dangling after them ("3 个工作日；").
    trail = sup.get(f"/orders/{asked.id}").text
    approved = re.search(r'<tr data-action="approve_extension">.*?</tr>', trail, flags=re.S).group(0)  # type: ignore[union-attr]
    assert re.search(r'<div data-testid="event-days">3 个工作日</div></td>', approved), approved


def test_the_rule_form_offers_communities_under_their_streets() -> None:
    """小事不出村: a rule may name a community as its place (the API took one; the form offered districts and streets
    only), listed under its street."""
    from cityhub.org.models import UnitTier
    from cityhub.org.service import UnitRef
    from cityhub.web.rules_pages import _place_choices

    district, street, community = UnitTier.DISTRICT, UnitTier.STREET, UnitTier.COMMUNITY
    units = [
        UnitRef(1, "440111", "白云区", district, None, True),
        UnitRef(2, "440111002", "松洲街道", street, 1, True),
        UnitRef(3, "440111001", "景泰街道", street, 1, True),
        UnitRef(4, "440111001003", "广园社区", community, 3, True),
        UnitRef(5, "440111002001", "松洲社区", community, 2, True),
        UnitRef(6, "D-CG", "城管局", UnitTier.DEPARTMENT, 1, True),
    ]
    assert [u.name for u in _place_choices(units)] == ["白云区", "景泰街道", "广园社区", "松洲街道", "松洲社区"]


def test_supervisors_list_the_orders_not_accepted_in_time(org) -> None:
    """签收超时: the orders the sweep found not accepted within the time allowed — the list's filter, the API's
    ``accept_overdue`` — late or still waiting; the others stay out."""
    from cityhub.workorders.scheduled import sla_sweep

    late, prompt = _order(title="签收超时油烟"), _order(title="按时签收油烟")
    disp, sup, hand = login("disp"), login("sup"), login("hand_a")
    for order in (late, prompt):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, prompt.id, "accept")
    with session_scope() as s:
        sla_sweep(s, now=utcnow() + timedelta(days=5))  # the accept limit long past for the one not accepted

    page = sup.get("/orders?accept_overdue=1")
    assert page.status_code == 200 and late.number in page.text and prompt.number not in page.text
    assert re.search(r'name="accept_overdue" value="1" checked', page.text)  # the filter stays set
    api = sup.get("/api/v1/orders", params={"accept_overdue": "true"}).json()
    assert [item["number"] for item in api["items"]] == [late.number]
    others = sup.get("/api/v1/orders", params={"accept_overdue": "false"}).json()
    assert prompt.number in {item["number"] for item in others["items"]}
    assert _act(hand, late.id, "accept").status_code == 303  # accepted late: still counted as not in time
    assert late.number in sup.get("/orders?accept_overdue=1").text


def test_supervisors_list_the_orders_in_warning(org) -> None:
    """预警: the supervisors' list of the orders near their limit (the list showed 预警 badges but could only filter
    超期); a status the list does not know is said at the field, and a citizen's list has no such filter."""
    warned, calm = _order(title="预警油烟"), _order(title="正常油烟")
    disp, sup = login("disp"), login("sup")
    for order in (warned, calm):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    with session_scope() as s:
        s.get(Order, warned.id).sla_status = SlaStatus.WARNING  # type: ignore[union-attr]

    page = sup.get("/orders?state=open&sla_status=warning")
    assert page.status_code == 200 and warned.number in page.text and calm.number not in page.text
    assert re.search(r'<option value="warning" selected>预警</option>', page.text)  # the filter stays set
    assert calm.number in sup.get("/orders?sla_status=ok").text
    bad = sup.get("/orders?sla_status=late")
    assert bad.status_code == 200 and "请选择有效的选项" in bad.text
    assert 'id="sla_status" name="sla_status" aria-invalid' in bad.text
    assert 'name="sla_status"' not in login("cit").get("/orders").text


def test_order_lists_sort_by_the_nearest_time_limit_or_the_longest_wait(org) -> None:
    """排序: 时限最近在前 (a handler's 在办 opens so: their list came in order of arrival, the order due today below
    those due next week), 等待最久在前 (a queue worked in turn); orders without a running limit last, on the page and
    through the API alike; a sort the list does not know is said at the field."""
    soon, later, none = _order(title="明天到期"), _order(title="下周到期"), _order(title="无时限")
    disp, hand = login("disp"), login("hand_a")
    for order in (later, soon, none):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    now = datetime.now(UTC)
    with session_scope() as s:
        s.get(Order, soon.id).due_at = now + timedelta(days=1)  # type: ignore[union-attr]
        s.get(Order, later.id).due_at = now + timedelta(days=7)  # type: ignore[union-attr]
        s.get(Order, none.id).due_at = None  # type: ignore[union-attr]
    numbers = (soon.number, later.number, none.number)

    def listed(text: str) -> list[str]:
        return sorted(numbers, key=lambda n: text.index(n))

    workbench = hand.get("/")
    assert listed(workbench.text) == [soon.number, later.number, none.number]
    assert '<option value="due" selected>时限最近在前</option>' in workbench.text
    # Each row says the time it is sorted by (办结时限), not only 正常 / 预警 beside the time it was received.
    assert "<th>办结时限</th>" in workbench.text
    due = dict(
        re.findall(r'<a href="/orders/\d+">([^<]+)</a>.*?<td data-testid="due"[^>]*>(.*?)</td>', workbench.text, re.S)
    )
    soon_due = (now + timedelta(days=1)).astimezone(get_settings().tz).strftime("%Y-%m-%d")
    # No 办结时限 running: — (and, not signed for yet, its 签收时限 under it).
    assert soon_due in due[soon.number] and due[none.number].split("<br>")[0] == "—"
    # An order no unit holds yet: its unit cell is one the phone's card leaves out (no lone — after 办结时限：—).
    waiting = _order(title="待派")
    row = re.search(rf"{waiting.number}</a>.*?</tr>", disp.get("/orders").text, re.S).group(0)  # type: ignore[union-attr]
    assert re.search(r'<td data-testid="due"[^>]*>—</td>\s*<td class="opt">—</td>', row), row
    assert listed(hand.get("/orders?state=open&sort=oldest").text) == [soon.number, later.number, none.number]
    assert listed(hand.get("/orders?state=open").text) == [none.number, later.number, soon.number]  # newest first
    bad = hand.get("/orders?state=open&sort=priority")
    assert bad.status_code == 200 and 'id="sort" name="sort" aria-invalid' in bad.text
    assert "请选择有效的选项" in bad.text
    api = hand.get("/api/v1/orders", params={"state": "dispatched", "sort": "due"}).json()["items"]
    assert [o["number"] for o in api if o["number"] in numbers] == [soon.number, later.number, none.number]
    refused = hand.get("/api/v1/orders", params={"sort": "priority"})
    assert refused.status_code == 422 and "sort" in refused.text


def test_a_leader_finds_what_was_escalated_to_them_and_follows_what_they_assigned(org) -> None:
    """已升级 / 领导交办: the leader's quick views list the open orders a supervisor escalated and those a leader
    assigned (交办), the time limit nearest first; each filter stays set, the rows say so, and the API's ``escalated``
    and ``leader_assigned`` answer the same orders."""
    escalated, assigned, plain = _order(title="升级的油烟"), _order(title="交办的油烟"), _order(title="普通的油烟")
    disp, sup, lead = login("disp"), login("sup"), login("lead")
    for order in (escalated, assigned, plain):
        _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    assert _act(sup, escalated.id, "escalate", reason="媒体关注，升级处理").status_code == 303
    assert (
        _act(lead, assigned.id, "assign", unit_id=str(org["street_b"]), reason="请街道主要负责人牵头").status_code
        == 303
    )

    def listed(path: str) -> set[str]:
        page = lead.get(path)
        assert page.status_code == 200
        return {o.number for o in (escalated, assigned, plain) if o.number in page.text}

    views = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(
            r'<a href="([^"]*)" data-testid="quick-view"[^>]*>([^<]*)<', lead.get("/orders").text
        )
    )
    assert views["已升级"] == "/orders?state=open&escalated=1&sort=due"
    assert views["领导交办"] == "/orders?state=open&leader_assigned=1&sort=due"
    assert listed(views["已升级"]) == {escalated.number}
    assert listed(views["领导交办"]) == {assigned.number}
    page = lead.get(views["已升级"]).text
    assert re.search(r'name="escalated" value="1" checked', page) and 'data-testid="escalated"' in page
    for name, order in (("escalated", escalated), ("leader_assigned", assigned)):
        api = lead.get("/api/v1/orders", params={name: "true"}).json()["items"]
        assert order.number in {o["number"] for o in api} and plain.number not in {o["number"] for o in api}
    # A handler has no such views: they are the leaders'.
    assert "领导交办</a>" not in login("hand_a").get("/orders").text


def test_the_order_list_offers_each_role_the_lists_it_works_through(org) -> None:
    """常用视图: a handler's 在办 / 待签收 / 预警 / 超期, a supervisor's also 待审批延期, 待回访 (oldest first: called
    back in turn) and 回访不满意; each an ordinary set of criteria, marked while shown; none for a citizen; 清除条件
    keeps the sort."""
    first, second = _order(title="先答复的"), _order(title="后答复的")
    with session_scope() as s:
        for order in (first, second):
            s.get(Order, order.id).state = State.REPLIED  # type: ignore[union-attr]

    def views(text: str) -> dict[str, str]:
        return dict(
            (label, href.replace("&amp;", "&"))
            for href, label in re.findall(r'<a href="([^"]*)" data-testid="quick-view"[^>]*>([^<]*)<', text)
        )

    handler = views(login("hand_a").get("/orders").text)
    assert list(handler) == ["在办", "待签收", "预警", "超期", "协办"]
    supervisor = login("sup")
    offered = views(supervisor.get("/orders").text)
    assert list(offered) == [
        "预警",
        "超期",
        "协办",
        "待审批延期",
        "待回访",
        "待办结（无需回访）",
        "待办结（回访满意）",
        "回访不满意",
    ]
    assert offered["预警"] == "/orders?state=open&sla_status=warning&sort=due"
    callback = supervisor.get(offered["待回访"])
    assert (
        '<a href="/orders?state=replied&amp;no_citizen=false&amp;sort=oldest" data-testid="quick-view" '
        'aria-current="page">' in callback.text
    )
    assert callback.text.index(first.number) < callback.text.index(second.number)
    assert 'href="/orders?sort=oldest" role="button" class="secondary" data-testid="reset-filters"' in callback.text
    assert 'aria-current="page">待回访' not in supervisor.get("/orders?state=replied").text
    assert 'data-testid="quick-views"' not in login("cit").get("/orders").text


def _tabs(text: str) -> dict[str, tuple[str, str, str]]:
    """The order list's quick views: label → (address, the count shown, the count as a screen reader hears it)."""
    found = re.findall(
        r'<a href="([^"]*)" data-testid="quick-view"[^>]*>([^<]*)<span class="count[^"]*" data-testid="view-count" '
        r'aria-hidden="true">([^<]*)</span><span class="visually-hidden"> ([^<]*)</span></a>',
        text,
    )
    return {label: (html_unescape(href), shown, spoken) for href, label, shown, spoken in found}


def test_a_tabs_list_and_a_units_own_assessment_are_named_by_what_they_show(org) -> None:
    """A handler's 待签收, 在办 … were all titled 工单列表, and their unit's 本单位考核 单位考核: the page's title and
    heading name the tab (我的待办 · 待签收) and their own unit's assessment as the menu does; others' lists name the
    tab beside 工单列表, a list no tab shows stays 工单列表."""

    def named(text: str) -> tuple[str, str]:
        title = re.search(r"<title>(.*) · [^·]*</title>", text).group(1)  # type: ignore[union-attr]
        heading = re.search(r"<h1>(.*?)</h1>", text).group(1)  # type: ignore[union-attr]
        return html_unescape(title), html_unescape(heading)

    hand = login("hand_a")
    tabs = _tabs(hand.get("/orders").text)
    assert named(hand.get(tabs["待签收"][0]).text) == ("我的待办 · 待签收", "我的待办 · 待签收")
    assert named(hand.get(tabs["在办"][0]).text) == ("我的待办 · 在办", "我的待办 · 在办")  # their menu's 工单
    assert named(hand.get("/orders?state=closed_resolved").text) == ("工单列表", "工单列表")
    sup = login("sup")
    assert named(sup.get(_tabs(sup.get("/orders").text)["预警"][0]).text) == ("工单列表 · 预警", "工单列表 · 预警")
    assert named(hand.get(f"/assessment/{org['street_a']}").text) == ("本单位考核：景泰街道",) * 2
    assert named(login("lead").get(f"/assessment/{org['street_a']}").text) == ("单位考核：景泰街道",) * 2


def test_an_order_not_signed_for_shows_its_acceptance_limit_in_the_list(org) -> None:
    """A handler's 在办 showed each row's 办结时限 only: an order waiting to be signed for (签收) has a nearer limit,
    its 签收时限, which the row now names too — until it is signed for."""
    waiting, accepted = _order(title="路灯不亮"), _order(title="井盖缺失")
    with session_scope() as s:
        for o in (waiting, accepted):
            orders.act(s, order_id=o.id, action="dispatch", params={"unit_id": org["street_a"]})
        orders.act(s, order_id=accepted.id, action="accept")
        limit = s.get(Order, waiting.id).accept_due_at
    assert limit is not None
    page = login("hand_a").get("/orders", params={"state": "open"}).text
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<a href="/orders/(\d+)">.*?</tr>', page, re.S)}
    assert 'data-testid="accept-due">签收时限 ' in rows[str(waiting.id)]
    assert "accept-due" not in rows[str(accepted.id)]


def test_each_quick_view_counts_the_orders_its_list_shows_for_the_reader(org, monkeypatch: pytest.MonkeyPatch) -> None:
    """常用视图 with their counts: each tab says how many orders its list shows for the reader — a street's handler
    their street's, not another street's; the district's supervisor every street's —, in words for a screen reader
    too; an empty list a muted 0; from the cap on one less and a plus (99+; a cap of 3 here: 2+)."""
    jingtai = [_order(title=f"景泰油烟{i}") for i in range(3)]
    jingxi = [_order("W-JX", title=f"京溪油烟{i}") for i in range(2)]
    disp = login("disp")
    for orders_of, street in ((jingtai, org["street_a"]), (jingxi, org["street_b"])):
        for order in orders_of:
            assert _act(disp, order.id, "dispatch", unit_id=str(street)).status_code == 303
    with session_scope() as s:
        for order in (jingtai[0], jingtai[1], jingxi[0]):
            s.get(Order, order.id).sla_status = SlaStatus.OVERDUE  # type: ignore[union-attr]
    hand, sup = login("hand_a"), login("sup")

    def rows(client: TestClient, href: str) -> int:
        page = client.get(href)
        assert page.status_code == 200
        return len(re.findall(r'<td><a href="/orders/\d+">', page.text))

    handler = _tabs(hand.get("/orders").text)
    assert {label: shown for label, (_, shown, _) in handler.items()} == {
        "在办": "3",
        "待签收": "3",
        "预警": "0",
        "超期": "2",
        "协办": "0",
    }
    assert handler["超期"][2] == "2 件" and handler["预警"][2] == "0 件"
    assert '<span class="count zero" data-testid="view-count" aria-hidden="true">0</span>' in hand.get("/orders").text
    supervisor = _tabs(sup.get("/orders").text)
    assert supervisor["超期"][1] == "3" and supervisor["待回访"][1] == "0"
    for client, tabs in ((hand, handler), (sup, supervisor)):
        for label, (href, shown, _) in tabs.items():
            assert rows(client, href) == int(shown), label
    # The tab of the list shown counts too (marked as the current page).
    assert _tabs(hand.get(handler["超期"][0]).text)["超期"][1] == "2"
    monkeypatch.setattr(web_routes, "VIEW_COUNT_CAP", 3)
    capped = _tabs(sup.get("/orders").text)["超期"]
    assert capped[1:] == ("2+", "2 件以上")
    assert rows(sup, capped[0]) == 3
    assert _tabs(hand.get("/orders").text)["超期"][1] == "2"  # below the cap: the number itself


def test_a_handlers_tabs_are_of_their_units_work_what_waits_to_be_signed_for_first(org) -> None:
    """A handler's morning starts with what is new for their unit: 待签收 lists the orders sent to it and the assists
    asked of it that nobody has signed for yet; 预警 and 超期 count their unit's orders, as 在办 does — a street's
    超期 counted another unit's order lying on its street, which is not the street's to answer for."""
    sent, taken, on_street = _order(title="路灯不亮"), _order(title="井盖缺失"), _order(title="占道经营")
    helped = _order("W-JX", title="排水管堵塞")
    disp, hand_b = login("disp"), login("hand_b")
    for order, unit in ((sent, "street_a"), (taken, "street_a"), (on_street, "street_b"), (helped, "street_b")):
        assert _act(disp, order.id, "dispatch", unit_id=str(org[unit])).status_code == 303
    assert _act(login("hand_a"), taken.id, "accept").status_code == 303
    assert _act(hand_b, helped.id, "accept").status_code == 303
    assert _act(disp, helped.id, "add_assist", unit_id=str(org["street_a"]), reason="请协助核实").status_code == 303
    with session_scope() as s:
        for order in (taken, on_street):
            s.get(Order, order.id).sla_status = SlaStatus.OVERDUE  # type: ignore[union-attr]
    hand = login("hand_a")
    tabs = _tabs(hand.get("/orders").text)
    assert list(tabs) == ["在办", "待签收", "预警", "超期", "协办"]
    assert tabs["待签收"][1] == "2" and tabs["超期"][1] == "1"
    waiting = hand.get(tabs["待签收"][0]).text
    assert sent.number in waiting and helped.number in waiting and taken.number not in waiting
    assert 'data-testid="assisting">本单位协办（待签收）' in waiting
    overdue = hand.get(tabs["超期"][0]).text
    assert taken.number in overdue and on_street.number not in overdue
    # Each is signed for from the list, one button a row (签收, 协办签收 for the assist), back on the list.
    here = "/orders?to_accept=1&sort=due"
    for order, step in ((helped, "assist_accept"), (sent, "accept")):
        form = re.search(
            rf'<form method="post" action="/orders/{order.id}/act/{step}"[^>]*>(.*?)</form>', waiting, re.S
        )
        assert form is not None, step
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))
        fields.pop("and_start", None)  # the second button's (签收并开始办理), not a field of 签收
        assert html_unescape(fields["next"]) == here
        done = hand.post(f"/orders/{order.id}/act/{step}", data={**fields, "next": here}, follow_redirects=True)
        assert done.url.path == "/orders" and f"工单 {order.number}：已完成" in done.text
    assert f'data-testid="sign-for-{taken.id}"' not in hand.get("/orders").text  # signed for already: no button
    assert 'data-testid="sign-for-' not in login("sup").get("/orders?state=open").text  # not theirs to sign for
    # Signed for, they leave 待签收: the assist too, once its 协办签收 is done.
    assert _state(sent.id) == State.ACCEPTED
    assert _tabs(hand.get("/orders").text)["待签收"][1] == "0"
    # Whoever reads every order signs for none of them: no such tab.
    assert "待签收" not in _tabs(login("sup").get("/orders").text)


# ---------------------------------------------------------------------------------------- queue, dashboard


def test_the_dispatch_queue_shows_top_suggestions_and_dispatches_in_one_click(org) -> None:
    order = _order(category_id=org["cats"]["环境保护"])
    returned = _order("W-JX", category_id=org["cats"]["环境保护"])
    disp = login("disp")
    _act(disp, returned.id, "dispatch", unit_id=str(org["street_b"]))
    _act(login("hand_b"), returned.id, "return", reason="非本辖区")
    by_address = _order(None, address="京溪街道云景路1号", category_id=org["cats"]["环境保护"])
    nowhere = _order(None, category_id=org["cats"]["环境保护"])
    queue = disp.get("/queue")
    assert queue.status_code == 200 and order.number in queue.text and returned.number in queue.text
    assert "派至 景泰街道" in queue.text and "退回 1 次" in queue.text

    def item(number: str) -> str:
        return re.search(rf'data-number="{number}".*?</article>', queue.text, flags=re.S).group(0)  # type: ignore[union-attr]

    def place_of(number: str) -> str:
        return re.search(r'data-testid="decision-place"><small>(.*?)</small>', item(number)).group(1)  # type: ignore[union-attr]

    # Where each order is, as dispatch placed it, and from what.
    assert place_of(order.number) == "地点：景泰街道（工单登记）"
    assert place_of(by_address.number) == "地点：京溪街道（按地址识别）"
    assert place_of(nowhere.number).startswith("地点：未识别")

    # A confident decision in the queue says why the order is still here (automatic dispatch is off in this world).
    assert 'data-testid="confident"' in item(order.number) and "未开启自动派单" in item(order.number)
    assert 'data-testid="confident"' not in item(returned.number)  # a returned order is always a person's call
    # Who sent it back and why, to choose the next unit by; an order never dispatched says nothing of the kind.
    back = re.search(r'data-testid="returned-by"><small>(.*?)</small>', item(returned.number))
    assert back is not None and re.fullmatch(
        r"京溪街道 于 .* 退回：非本辖区", html_unescape(re.sub("<[^>]+>", "", back.group(1)))
    )
    assert 'data-testid="returned-by"' not in item(order.number)
    button = re.search(rf'data-testid="dispatch-{order.number}-1"', queue.text)
    assert button is not None
    # Each suggestion's number says what it is (the probability that the unit is the one), and how ties are ranked.
    score = re.search(r'<small class="score" title="([^"]*)">单位概率 (\d\.\d\d)</small>', item(order.number))
    assert score is not None and "按派单规则的层级" in score.group(1) and 0 <= float(score.group(2)) <= 1
    form = re.search(
        rf'<form method="post" action="/orders/{order.id}/act/dispatch".*?</form>', queue.text, flags=re.S
    ).group(0)  # type: ignore[union-attr]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))
    assert fields["unit_id"] == str(org["street_a"]) and fields["next"] == "/queue"
    done = disp.post(f"/orders/{order.id}/act/dispatch", data=fields, follow_redirects=True)
    assert done.url.path == "/queue" and f"已派单：{order.number} → 景泰街道" in done.text
    assert f'data-number="{order.number}"' not in done.text  # gone from the queue
    assert _state(order.id) == State.DISPATCHED
    assert login("op").get("/queue").status_code == 403


def test_a_return_suggests_the_unit_it_belongs_to_and_the_queue_offers_it_first(org) -> None:
    """退单 says where the order goes (back to the dispatcher's queue, 待重新派单) and may name the unit that should
    have it (建议改派至, any active unit but the returning one): the queue and the order's page say it beside who
    returned it and why, and the queue offers that unit first, marked as the returning unit's word, not a score."""
    returned = _order("W-JX", category_id=org["cats"]["环境保护"])
    disp, hand = login("disp"), login("hand_b")
    _act(disp, returned.id, "dispatch", unit_id=str(org["street_b"]))
    page = hand.get(f"/orders/{returned.id}").text
    form = re.search(r'data-testid="action-return">.*?</form>', page, re.S)
    assert form is not None
    assert 'data-testid="return-hint"' in form.group(0) and "待重新派单" in form.group(0)
    choice = re.search(r'<select id="return-suggest_unit_id".*?</select>', form.group(0), re.S)
    assert choice is not None and "建议改派至" in form.group(0)
    # the units borrowed from the page's one list (申请协办's), the unit returning it left out (app.js)
    lender = re.search(r'data-options-from="([^"]+)" data-options-except="(\d+)"', choice.group(0))
    assert lender is not None and lender.group(2) == str(org["street_b"])  # not the unit returning it
    lent = re.search(rf'<select id="{lender.group(1)}".*?</select>', page, re.S)
    assert lent is not None and f'<option value="{org["street_a"]}"' in lent.group(0)
    # Itself, or a unit that does not exist: refused at the field, nothing recorded.
    for unit, words in ((org["street_b"], "不能建议改派给本单位"), (999_999, "单位不存在")):
        refused = _act(hand, returned.id, "return", reason="非本辖区", suggest_unit_id=str(unit))
        assert refused.status_code == 422 and words in refused.text, unit
        assert 'aria-invalid="true"' in re.search(r'<select id="return-suggest_unit_id"[^>]*>', refused.text).group(0)  # type: ignore[union-attr]
    assert _state(returned.id) == State.DISPATCHED
    done = _act(hand, returned.id, "return", reason="非本辖区", suggest_unit_id=str(org["street_a"]))
    assert done.status_code == 303 and _state(returned.id) == State.RETURNED
    assert _events(returned.id)[-1].payload["suggest_unit_id"] == org["street_a"]
    queue = disp.get("/queue").text
    item = re.search(rf'data-number="{returned.number}".*?</article>', queue, re.S).group(0)  # type: ignore[union-attr]
    back = re.search(r'data-testid="returned-by"><small>(.*?)</small>', item)
    assert back is not None and re.fullmatch(
        r"京溪街道 于 .* 退回：非本辖区 · 建议改派至 景泰街道", html_unescape(re.sub("<[^>]+>", "", back.group(1)))
    )
    offer = re.search(rf'<form [^>]*data-testid="returner-suggestion-{returned.number}".*?</form>', item, re.S)
    assert offer is not None
    assert "退单单位建议" in offer.group(0) and "派至 景泰街道" in offer.group(0) and "单位概率" not in offer.group(0)
    assert re.search(
        rf'name="unit_{returned.id}" value="{org["street_a"]}" checked', offer.group(0)
    )  # 批量派单's choice
    assert "没有可建议的承办单位" not in item  # the returning unit's suggestion is one
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', offer.group(0)))
    assert fields["unit_id"] == str(org["street_a"])
    sent = disp.post(f"/orders/{returned.id}/act/dispatch", data=fields, follow_redirects=True)
    assert f"已派单：{returned.number} → 景泰街道" in sent.text
    # Beside the rules' suggestion (京溪街道, the street it lies in), the returning unit's comes first and is the
    # bulk dispatch's choice; the order's page says it too.
    again = _order("W-JX", category_id=org["cats"]["环境保护"])
    _act(disp, again.id, "dispatch", unit_id=str(org["street_a"]))
    district = str(org["district"])
    assert _act(login("hand_a"), again.id, "return", reason="区级事项", suggest_unit_id=district).status_code == 303
    item = re.search(rf'data-number="{again.number}".*?</article>', disp.get("/queue").text, re.S).group(0)  # type: ignore[union-attr]
    assert item.index("returner-suggestion") < item.index(f'data-testid="dispatch-{again.number}-1"')
    assert "派至 白云区" in item and "派至 京溪街道" in item
    assert re.findall(rf'name="unit_{again.id}" value="(\d+)" checked', item) == [district]
    page = disp.get(f"/orders/{again.id}").text
    assert re.search(
        r'<section data-testid="decision">.*?data-testid="returned-suggests">建议改派至 白云区', page, re.S
    )


def test_a_queued_order_without_a_suggestion_is_dispatched_from_the_queue(org) -> None:
    """A returned order whose rules' units all sent it back has no suggestion: the queue offers the units to pick one
    in place, with a note, instead of a detour through the order's page (or ticking it for the bulk bar)."""
    suggested = _order(category_id=org["cats"]["环境保护"])
    returned = _order("W-JX", category_id=org["cats"]["环境保护"])
    disp = login("disp")
    _act(disp, returned.id, "dispatch", unit_id=str(org["street_b"]))
    _act(login("hand_b"), returned.id, "return", reason="非本辖区")
    # Its page says who sent it back and why beside the suggestions, as the queue does, not only in the trail.
    page = disp.get(f"/orders/{returned.id}").text
    back = re.search(r'<section data-testid="decision">.*?data-testid="returned-by"><small>(.*?)</small>', page, re.S)
    assert back is not None and re.fullmatch(r"京溪街道 于 .* 退回：非本辖区", re.sub("<[^>]+>", "", back.group(1)))
    assert 'data-testid="returned-by"' not in disp.get(f"/orders/{suggested.id}").text
    queue = disp.get("/queue").text
    assert f'data-testid="manual-{suggested.number}"' not in queue  # its suggestions' buttons are enough
    form = re.search(rf'<form [^>]*data-testid="manual-{returned.number}"[^>]*>.*?</form>', queue, flags=re.S)
    assert form is not None
    # Its list of units is the bulk bar's (app.js lends it: the page carries the district's units once).
    assert 'data-options-from="bulk-unit"' in form.group(0) and "<optgroup" not in form.group(0)
    bar = re.search(r'<select id="bulk-unit".*?</select>', queue, flags=re.S)
    assert bar is not None and (str(org["street_a"]), "景泰街道") in re.findall(
        r'<option value="(\d+)">([^<]+)</option>', bar.group(0)
    )
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    fields |= {"unit_id": str(org["street_a"]), "reason": "云景路属景泰街道"}
    done = disp.post(f"/orders/{returned.id}/act/dispatch", data=fields, follow_redirects=True)
    assert done.url.path == "/queue" and f"已派单：{returned.number} → 景泰街道" in done.text
    assert _state(returned.id) == State.DISPATCHED
    assert _events(returned.id)[-1].reason == "云景路属景泰街道"


def test_the_queue_says_how_many_orders_wait_and_how_many_were_returned(org) -> None:
    """A page shows 20 orders; the queue says how many wait in all, the returned (退单) among them, which a link
    shows alone."""
    for _ in range(2):
        _order(category_id=org["cats"]["环境保护"])
    returned = _order("W-JX", category_id=org["cats"]["环境保护"])
    sent = _order(category_id=org["cats"]["环境保护"])
    disp = login("disp")
    _act(disp, sent.id, "dispatch", unit_id=str(org["street_a"]))
    _act(disp, returned.id, "dispatch", unit_id=str(org["street_b"]))

    def count() -> str:
        found = re.search(r'data-testid="queue-count">(.*?)</p>', disp.get("/queue").text, flags=re.S)
        assert found is not None
        return re.sub("<[^>]+>", "", found.group(1))

    assert count() == "共 2 件待派单"
    _act(login("hand_b"), returned.id, "return", reason="非本辖区")
    assert count() == "共 3 件待派单，其中退单 1 件"
    # A page past the end (the queue emptied as others dispatched) points back to the orders that wait.
    beyond = disp.get("/queue", params={"page": "5"}).text
    assert 'data-testid="queue-past-end"' in beyond and "没有待派单的工单。" not in beyond
    # The returned ones alone, wherever their age puts them among the pages: a link from their count.
    assert 'href="/queue?returned=1" data-testid="queue-returned"' in disp.get("/queue").text
    only = disp.get("/queue", params={"returned": "1"}).text
    assert re.findall(r'data-testid="queue-item" data-number="([^"]+)"', only) == [returned.number]
    assert 'href="/queue" data-testid="queue-all"' in only
    # Dispatching from it comes back to it, saying where the order went.
    form = re.search(rf'<form [^>]*data-testid="manual-{returned.number}"[^>]*>.*?</form>', only, flags=re.S)
    assert form is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0))) | {"unit_id": str(org["street_a"])}
    assert fields["next"] == "/queue?returned=1"
    done = disp.post(f"/orders/{returned.id}/act/dispatch", data=fields, follow_redirects=True)
    assert str(done.url).endswith("/queue?returned=1") and f"已派单：{returned.number} → 景泰街道" in done.text


def test_the_queue_is_searched_by_number_phone_words_category_and_street(org) -> None:
    """找单 on the queue itself (a dispatcher went to /orders?q= to find a waiting order): an order's number, a
    caller's phone, words of the appeal, its category and street, together with 只看退单 and the pages, and a clear
    "no match" with the way back to the whole queue."""
    env = org["cats"]["环境保护"]
    noise = _order(category_id=env, content="工地夜间施工噪音扰民", citizen_phone="13912345678")
    fumes = _order("W-JX", category_id=env, content="餐馆油烟直排")
    traffic = _order(category_id=org["cats"]["交通运输"], content="路口红绿灯坏了")
    returned = _order("W-JX", category_id=env, content="河道污水排放")
    disp = login("disp")
    _act(disp, returned.id, "dispatch", unit_id=str(org["street_b"]))
    _act(login("hand_b"), returned.id, "return", reason="非本辖区")

    def numbers(**params: str) -> list[str]:
        page = disp.get("/queue", params=params)
        assert page.status_code == 200
        return re.findall(r'data-testid="queue-item" data-number="([^"]+)"', page.text)

    assert set(numbers()) == {noise.number, fumes.number, traffic.number, returned.number}
    assert numbers(q=fumes.number) == [fumes.number]
    assert numbers(q="13912345678") == [noise.number]
    assert numbers(q="油烟") == [fumes.number]
    assert numbers(category_id=str(org["cats"]["交通运输"])) == [traffic.number]
    assert set(numbers(street_id=str(org["street_b"]))) == {fumes.number, returned.number}
    assert numbers(street_id=str(org["street_b"]), returned="1") == [returned.number]
    assert numbers(q="油烟", returned="1") == []
    found = disp.get("/queue", params={"q": "油烟", "street_id": str(org["street_b"])}).text
    assert 'data-testid="queue-matched">符合条件的 1 件<' in found
    assert 'name="q" type="search" maxlength="100" value="油烟"' in found  # what was typed stays in the box
    # What a dispatch from the searched queue comes back to: the same search.
    back = re.search(rf'action="/orders/{fumes.id}/act/dispatch".*?name="next" value="([^"]+)"', found, re.S)
    assert (
        back is not None and html_unescape(back.group(1)) == f"/queue?q=%E6%B2%B9%E7%83%9F&street_id={org['street_b']}"
    )
    none = disp.get("/queue", params={"q": "没有这样的诉求"}).text
    assert "没有符合条件的待派单工单。" in none and "没有待派单的工单。" not in none
    assert 'data-testid="queue-count"><strong>共 4 件待派单' in none  # the whole queue still counted
    bad = disp.get("/queue", params={"category_id": "x"})
    assert bad.status_code == 200 and 'data-testid="field-error-category_id"' in bad.text


def test_the_queue_pages_keep_the_search(org) -> None:
    """A search of more orders than a page holds: its pages keep it."""
    for n in range(web_routes.PAGE_SIZE + 1):
        _order(category_id=org["cats"]["环境保护"], content=f"工地夜间施工噪音扰民 第{n}次")
    _order(category_id=org["cats"]["环境保护"], content="餐馆油烟直排")
    page = login("disp").get("/queue", params={"q": "施工"}).text
    assert 'href="/queue?q=%E6%96%BD%E5%B7%A5&amp;page=2" rel="next"' in page


def test_a_queued_order_says_its_grounds_without_repeating_its_first_suggestion(org) -> None:
    """依据 repeated what the first suggestion's reasons say (规则 #N → its unit): it says only what they do not."""
    order = _order(category_id=org["cats"]["环境保护"])
    queue = login("disp").get("/queue").text
    item = re.search(rf'data-number="{order.number}".*?</article>', queue, flags=re.S)
    assert item is not None
    reasons = re.findall(r'<small class="reasons">(.*?)</small>', item.group(0))
    assert len(reasons) == 1 and re.search(r"规则 #\d+「", reasons[0]), reasons
    grounds = re.search(r'<p class="decision-reason">(.*?)</p>', item.group(0), re.S)
    assert grounds is None or not re.search(r"规则 #\d+ →", grounds.group(1)), grounds


def test_the_queue_carries_the_districts_units_once(org) -> None:
    """Each order without a suggestion repeated the district's units in its own list (a queue page of ~400 units was
    ~145 KB): the bulk bar's list is the one list, which the manual dispatches share."""
    disp = login("disp")
    for _ in range(3):
        order = _order("W-JX", category_id=org["cats"]["环境保护"])
        _act(disp, order.id, "dispatch", unit_id=str(org["street_b"]))
        _act(login("hand_b"), order.id, "return", reason="非本辖区")
    queue = disp.get("/queue").text
    assert queue.count('class="inline-form manual-dispatch"') == 3
    bar = re.findall(r'<select id="bulk-unit".*?</select>', queue, re.S)
    assert len(bar) == 1 and queue.count("<optgroup") == bar[0].count("<optgroup") > 0
    # (the search's list of streets names them too, once)
    assert queue.count(f'<option value="{org["street_a"]}">景泰街道</option>') == 2


def test_the_queue_classifies_the_orders_it_decides_afresh_in_one_call(org, monkeypatch) -> None:
    """A queue page without stored decisions (automatic dispatch off) decided each order afresh, the classifier
    called once an order (two thirds of a page's decisions' time): its orders are classified in one call, the
    suggestions as before."""
    for content in ("工地夜间施工噪音扰民", "餐馆油烟直排", "河道有污水排放"):
        _order(content=content)
    loaded = dispatch.load_model()
    assert loaded is not None
    model = loaded[0]
    calls: list[int] = []
    predict = type(model).predict

    def counted(self: Any, texts: Any) -> Any:
        calls.append(len(texts))
        return predict(self, texts)

    monkeypatch.setattr(type(model), "predict", counted)
    queue = login("disp").get("/queue")
    assert queue.status_code == 200 and queue.text.count('data-testid="queue-item"') == 3
    assert calls == [3]


def test_the_queue_tells_a_category_the_classifier_read_from_one_set_on_the_order(org) -> None:
    """分类：… read alike for an order whose category was set and one only the classifier read — which a dispatch by
    hand leaves without a category: the classifier's is marked so, with where to set it."""
    read = _order(content="工地夜间施工噪音扰民")
    chosen = _order(category_id=org["cats"]["环境保护"])
    queue = login("disp").get("/queue").text

    def item(number: str) -> str:
        return re.search(rf'data-number="{number}".*?</article>', queue, flags=re.S).group(0)  # type: ignore[union-attr]

    guessed = re.search(
        r'分类：[^<]+<span data-testid="category-guessed" title="([^"]*)">(.*?)</span>', item(read.number)
    )
    assert guessed is not None and guessed.group(2) == "（系统判断，工单未设定）" and "设定分类" in guessed.group(1)
    assert "选用系统建议的单位派单时，按该建议所依据的分类记入工单" in guessed.group(1)
    assert 'data-testid="category-guessed"' not in item(chosen.number)
    shown_as = re.search(r'分类：([^<]+)<span data-testid="category-guessed"', item(read.number)).group(1)  # type: ignore[union-attr]
    # The order page says so too; the queue's 派至 of the first suggestion then records the reading it was made under
    # (a rule of that category gives the suggestion; the small world's toy classifier reads what it reads).
    from cityhub.dispatch import service as dispatch
    from cityhub.dispatch.schemas import RuleCreate

    with session_scope() as s:
        category = s.scalars(select(Category).where(Category.name == shown_as)).one()
        unit = s.scalars(select(Unit).where(Unit.code == "W-JT")).one()
        dispatch.create_rule(s, data=RuleCreate(name="读出的分类", category_id=category.id, target_unit_id=unit.id))
    dispatcher = login("disp")
    queue = dispatcher.get("/queue").text
    assert 'data-testid="category-guessed-hint"' in dispatcher.get(f"/orders/{read.id}").text
    first = re.search(
        r'<form method="post" action="/orders/\d+/act/dispatch" class="card">.*?</form>', item(read.number), flags=re.S
    )
    assert first is not None
    form = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', first.group(0)))
    sent = dispatcher.post(f"/orders/{read.id}/act/dispatch", data=form, follow_redirects=False)
    assert sent.status_code == 303
    with session_scope() as s:
        stored = s.get(Order, read.id)
        assert stored is not None and stored.state == State.DISPATCHED
        assert stored.category is not None and stored.category.name in shown_as


def _environment_bureau_rule(org: dict[str, Any]) -> None:
    """A rule sending environmental orders to the district's 区生态环境局: a second suggestion beside the street's."""
    from cityhub.dispatch import service as dispatch
    from cityhub.dispatch.rules import TargetKind
    from cityhub.dispatch.schemas import RuleCreate
    from cityhub.org.models import UnitTier

    with session_scope() as s:
        bureau = Unit(code="W-HB", name="区生态环境局", tier=UnitTier.DEPARTMENT)
        s.add(bureau)
        s.flush()
        rule = RuleCreate(
            name="环境保护 → 生态环境局",
            priority=20,
            category_id=org["cats"]["环境保护"],
            target_kind=TargetKind.UNIT,
            target_unit_id=bureau.id,
        )
        dispatch.create_rule(s, data=rule)


def test_suggestions_of_one_score_say_it_once_with_how_they_are_ranked(org) -> None:
    """Two rules leading the same category reading to two units give both the same probability: the queue says it
    once, with how they are ranked (tier, priority), instead of 单位概率 1.00 on each as if the number chose."""

    _environment_bureau_rule(org)
    order = _order(category_id=org["cats"]["环境保护"])
    queue = login("disp").get("/queue").text
    item = re.search(rf'data-number="{order.number}".*?</article>', queue, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "派至 景泰街道" in item and "派至 区生态环境局" in item
    said = re.search(r'data-testid="one-score" title="([^"]*)">(.*?)</small>', item)
    assert said is not None and "按派单规则的层级" in said.group(1)
    assert re.fullmatch(r"各推荐单位的单位概率同为 \d\.\d\d，按派单规则的层级.*首条优先。", said.group(2))
    assert '<small class="score"' not in item  # not repeated on each


def test_the_dispatcher_sends_ticked_orders_to_their_chosen_suggestions_at_once(org) -> None:
    """批量派单: the ticked orders go to the suggestion chosen for each (the first shown unless another is), each
    audited under the dispatcher's name with that suggestion's reason; one changed after the page was read is named
    and left in the queue; unticked ones stay; or all ticked go to one unit chosen in the bar, with its note."""

    _environment_bureau_rule(org)  # a second suggestion for environmental orders: the district's department
    first = _order(category_id=org["cats"]["环境保护"])
    second = _order("W-JX", category_id=org["cats"]["环境保护"])
    changed = _order(category_id=org["cats"]["环境保护"])
    kept = _order(category_id=org["cats"]["环境保护"])
    disp = login("disp")
    queue = disp.get("/queue").text
    bulk = re.search(r'<form id="bulk-dispatch".*?</form>', queue, flags=re.S).group(0)  # type: ignore[union-attr]

    def pick_of(number: str) -> str:
        return re.search(rf'name="pick" value="([^"]+)" data-testid="pick-{number}"', queue).group(1)  # type: ignore[union-attr]

    def choices(order_id: int) -> list[str]:  # the suggestions' radio buttons, in order; the first one ticked
        found = re.findall(rf'name="unit_{order_id}" value="(\d+)"( checked)?', queue)
        assert [bool(ticked) for _, ticked in found] == [True] + [False] * (len(found) - 1)
        return [unit for unit, _ in found]

    pick = {o.number: pick_of(o.number) for o in (first, second, changed, kept)}
    assert pick[first.number] == f"{first.id}:{first.version}"
    offered = {o.id: choices(o.id) for o in (first, second, changed)}
    assert (offered[first.id][0], offered[second.id][0]) == (str(org["street_a"]), str(org["street_b"]))
    assert len(offered[second.id]) >= 2  # the dispatcher sends this one to its second suggestion instead
    units = {first.id: offered[first.id][0], second.id: offered[second.id][1], changed.id: offered[changed.id][0]}

    def shown_reasons(number: str) -> list[str]:  # each suggestion's, as the page shows it (in the choices' order)
        item = re.search(rf'data-number="{number}".*?</article>', queue, flags=re.S).group(0)  # type: ignore[union-attr]
        return [html_unescape(r) for r in re.findall(r'<small class="reasons">(.*?)</small>', item)]

    reason = shown_reasons(first.number)[0]
    second_reason = shown_reasons(second.number)[1]
    with session_scope() as s:  # changed (its version) after the page was read
        orders.act(s, order_id=changed.id, action=Action.COMMENT, params={"text": "市民来电补充：晚上更严重"})

    form = {
        "csrf_token": hidden(bulk),
        "next": "/queue",
        "pick": [pick[first.number], pick[second.number], pick[changed.number]],
        **{f"unit_{i}": u for i, u in units.items()},
    }  # (the suggestions' reasons are not posted: the dispatch reads them again)
    done = disp.post("/queue/dispatch", data=form, follow_redirects=True)

    assert done.url.path == "/queue"
    assert "已派出 2 件；1 件未派出，仍在待派单队列（原因见下）。" in done.text
    # Which order went where, and why the refused one stayed (what it is now beside it).
    with session_scope() as s:
        names = {u.id: u.name for u in s.scalars(select(Unit))}
    sent = re.search(r'data-testid="bulk-sent" open>(.*?)</details>', done.text, re.S)
    assert sent is not None  # two orders: listed open
    for order_id, number in ((first.id, first.number), (second.id, second.number)):
        group = re.search(rf"<strong>{names[int(units[order_id])]}</strong>（\d）：(.*?)</li>", sent.group(1))
        assert group is not None and f'<a href="/orders/{order_id}">{number}</a>' in group.group(1)
    refused = re.search(r'data-testid="bulk-refused">(.*?)</ul>', done.text, re.S)
    assert refused is not None
    why = "页面打开后已被他人处理或有变更，请查看后重新派单（当前已受理）"
    assert f'<a href="/orders/{changed.id}">{changed.number}</a>：{why}' in refused.group(1)
    assert 'data-testid="bulk-result"' not in disp.get("/queue").text  # said once
    assert (_state(first.id), _state(second.id), _state(changed.id), _state(kept.id)) == (
        State.DISPATCHED,
        State.DISPATCHED,
        State.RECEIVED,
        State.RECEIVED,
    )
    [dispatch_event] = [e for e in _events(first.id) if e.action == "dispatch"]
    assert dispatch_event.actor_name == "黄派单" and dispatch_event.reason == reason and reason
    [to_second] = [e for e in _events(second.id) if e.action == "dispatch"]
    assert (str(to_second.payload["unit_id"]), to_second.reason) == (units[second.id], second_reason)
    assert second_reason and second_reason != shown_reasons(second.number)[0]
    assert disp.post("/queue/dispatch", data={"csrf_token": hidden(bulk)}, follow_redirects=True).text.count(
        "请先勾选要派出的工单"
    )
    assert login("op").post("/queue/dispatch", data=form).status_code == 403

    # One unit for all the ticked orders (here 京溪街道 for two 景泰 orders), with the bar's note.
    again = disp.get("/queue").text
    assert f'<option value="{org["street_b"]}">' in again
    versions = {o.id: _version(o.id) for o in (changed, kept)}
    to_one = {
        "csrf_token": hidden(again),
        "pick": [f"{i}:{v}" for i, v in versions.items()],
        "bulk_unit": str(org["street_b"]),
        "bulk_reason": "地址核实在京溪街道",
    }
    assert "已派出 2 件工单" in disp.post("/queue/dispatch", data=to_one, follow_redirects=True).text
    for order_id in versions:
        [event] = [e for e in _events(order_id) if e.action == "dispatch"]
        assert (event.payload["unit_id"], event.reason) == (org["street_b"], "地址核实在京溪街道")


def test_a_bulk_dispatch_of_many_says_how_many_went_where_and_folds_the_order_by_order_list(org, monkeypatch) -> None:
    """Seven orders to two streets and one with no unit: the counts by unit first, the refused one with why, each
    dispatched order's number under its unit in a folded list; when the flash has no room for every number the counts
    stay whole and the page says how many it does not name; in English too."""
    from cityhub.web import routes

    to_a = [_order(category_id=org["cats"]["环境保护"]) for _ in range(4)]
    to_b = [_order(category_id=org["cats"]["环境保护"]) for _ in range(3)]
    orphan = _order(category_id=org["cats"]["环境保护"])
    disp = login("disp")
    queue = disp.get("/queue").text
    form: dict[str, Any] = {
        "csrf_token": hidden(queue),
        "pick": [f"{o.id}:{o.version}" for o in (*to_a, *to_b, orphan)],
        **{f"unit_{o.id}": str(org["street_a"]) for o in to_a},
        **{f"unit_{o.id}": str(org["street_b"]) for o in to_b},  # the orphan: no unit (no suggestion ticked)
    }

    done = disp.post("/queue/dispatch", data=form, follow_redirects=True).text

    assert "已派出 7 件；1 件未派出" in done
    assert re.search(r'data-testid="bulk-by-unit">派至：景泰街道 4 件、京溪街道 3 件</p>', done)
    sent = re.search(
        r'<details data-testid="bulk-sent">\s*<summary>逐件查看已派出的 7 件</summary>(.*?)</details>', done, re.S
    )
    assert sent is not None  # folded: seven numbers do not push the queue away
    rows = dict(re.findall(r"<li><strong>(\S+)</strong>（\d）：(.*?)</li>", sent.group(1)))
    assert set(re.findall(r">(BY[^<]+)</a>", rows["景泰街道"])) == {o.number for o in to_a}
    assert set(re.findall(r">(BY[^<]+)</a>", rows["京溪街道"])) == {o.number for o in to_b}
    assert f"{orphan.number}</a>：没有推荐单位，也未在上方选定派至的单位（当前已受理）" in done
    assert 'data-testid="bulk-unlisted"' not in done
    assert _state(orphan.id) == State.RECEIVED and {_state(o.id) for o in (*to_a, *to_b)} == {State.DISPATCHED}

    # Room for a few ids only: the refused one named first (still to do), the counts whole, the rest said.
    monkeypatch.setattr(routes, "BULK_DETAIL_MAX", 30)
    more = [_order(category_id=org["cats"]["环境保护"]) for _ in range(6)]
    queue = disp.get("/queue").text
    form = {
        "csrf_token": hidden(queue),
        "pick": [f"{o.id}:{o.version}" for o in (orphan, *more)],
        "bulk_unit": str(org["street_b"]),
    }
    with session_scope() as s:  # changed (its version) after the page was read
        orders.act(s, order_id=orphan.id, action=Action.COMMENT, params={"text": "市民来电补充"})
    disp.get("/lang/en")
    cut = disp.post("/queue/dispatch", data=form, follow_redirects=True).text
    assert "Dispatched 6; 1 not dispatched, still in the queue (why below)." in cut
    assert re.search(r'data-testid="bulk-by-unit">Sent to: Jingxi Subdistrict \(6\)</p>', cut)
    assert f"{orphan.number}</a>: taken or changed by someone else since the page was opened" in cut
    sent = re.search(r'data-testid="bulk-sent">(.*?)</details>', cut, re.S)
    assert sent is not None and "See each of the 6 orders dispatched" in sent.group(1)
    named = re.findall(r'<a href="/orders/\d+">', sent.group(1))
    assert len(named) < 6
    unlisted = re.search(r'data-testid="bulk-unlisted">(\d) more (orders are|order is) not listed one by one', cut)
    assert unlisted is not None and int(unlisted.group(1)) == 6 - len(named)


def test_the_result_of_the_largest_bulk_dispatch_fits_its_cookie() -> None:
    """200 orders (the most one bulk dispatch takes) with ids as long as the keys allow, some refused and the rest sent
    to as many units as there are: the flash still fits a browser's 4 KB cookie (refused numbers joined overflowed it,
    and the browser dropped the message), its counts whole."""
    from fastapi import Response

    from cityhub.dispatch.service import BULK_MAX, PickOutcome, Refusal
    from cityhub.web import routes, support

    big = 2_000_000_000
    outcomes = [
        PickOutcome(big + i, None, False, refusal=Refusal.CHANGED)
        if i % 2
        else PickOutcome(big + i, None, True, unit_id=big + i)
        for i in range(BULK_MAX)
    ]
    key, params = routes._bulk_flash(outcomes)
    response = Response()
    support.set_flash(response, key, **params)
    cookie = response.headers["set-cookie"].split(";")[0]
    assert len(cookie.encode()) < 4096
    assert (key, params["n"], params["m"]) == ("queue.bulk_partial", 100, 100)
    assert params["sent"].count(";") == 99 and all(g.split(":")[1] == "1" for g in params["sent"].split(";"))


def test_a_missing_classifier_leaves_the_queue_intake_and_status_page_working(org, monkeypatch, tmp_path) -> None:
    order = _order(category_id=org["cats"]["环境保护"])
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(tmp_path / "moved-away"))
    get_settings.cache_clear()
    try:
        _pages_without_their_classifier(order)
    finally:
        get_settings.cache_clear()


def _pages_without_their_classifier(order: Order) -> None:
    queue = login("disp").get("/queue")
    assert queue.status_code == 200 and order.number in queue.text
    assert "分类模型暂不可用，本单不自动派单" in queue.text
    assert f'data-testid="dispatch-{order.number}-1"' in queue.text  # the rules still suggest
    operator = login("op")
    form = intake_form(operator, title="路灯不亮", content="京溪街道云景路的路灯坏了三天")
    panel = operator.post("/intake/assist", data=form)
    assert panel.status_code == 200 and "分类模型暂不可用" in panel.text
    status = _client().get("/")
    assert 'data-testid="dispatch-model"' in status.text and "派单分类模型未找到" in status.text


def test_the_order_page_links_the_appeals_attachments(org) -> None:
    link = "https://uploads.example.org/p/1.jpg?size=big&v=2"
    photo = {"filename": "油烟.jpg", "url": link, "content_type": "image/jpeg", "size": 250_000}
    order = _order(attachments=[photo, {"filename": "<b>x</b>.pdf", "url": "https://uploads.example.org/x.pdf"}])
    page = login("op").get(f"/orders/{order.id}")
    [cell] = re.findall(r'<td data-testid="attachments">(.*?)</td>', page.text)
    assert '<a href="https://uploads.example.org/p/1.jpg?size=big&amp;v=2" target="_blank"' in cell
    assert (
        'rel="noopener noreferrer nofollow">油烟.jpg<span class="visually-hidden">（在新标签页打开）</span></a>' in cell
    )
    assert "</a> <small>（image/jpeg · 250.0 kB）</small>" in cell
    assert "&lt;b&gt;x&lt;/b&gt;.pdf<span" in cell and "<b>" not in cell  # a name is text, never markup
    assert "附件" in page.text
    plain = _order(content="小区门口路灯不亮")
    assert 'data-testid="attachments"' not in login("op").get(f"/orders/{plain.id}").text


def test_a_dispatcher_sets_the_place_on_the_order_page(org) -> None:
    order = _order(None, category_id=org["cats"]["环境保护"])
    disp = login("disp")
    page = disp.get(f"/orders/{order.id}")
    assert 'data-testid="place-form"' in page.text and "地点：未识别" in page.text
    assert 'data-testid="place-form"' not in login("op").get(f"/orders/{order.id}").text  # an operator cannot

    def post(client: TestClient, version: int, unit_id: int) -> Any:
        data = {"csrf_token": csrf(client), "version": str(version), "unit_id": str(unit_id), "reason": "来电核实"}
        return client.post(f"/orders/{order.id}/place", data=data, follow_redirects=True)

    version = _version(order.id)
    done = post(disp, version, org["street_b"])
    assert done.status_code == 200 and done.url.path == f"/orders/{order.id}"
    assert "地点已设为 京溪街道" in done.text and "地点：京溪街道（调度员更正）" in done.text
    assert 'data-testid="place-source">（调度员更正）' in done.text  # beside the order's street and community
    with session_scope() as s:
        assert s.get(Order, order.id).street_id == org["street_b"]  # type: ignore[union-attr]
    event = _events(order.id)[-1]
    assert event.action == "comment" and event.reason == "来电核实" and event.actor_name
    # The place the order has already: confirmed, nothing changed — and the message says so, not 地点已设为.
    events = len(_events(order.id))
    same = post(disp, _version(order.id), org["street_b"])
    assert same.status_code == 200 and "地点确认为 京溪街道：工单原已在此，未作更改。" in same.text
    assert "地点已设为" not in same.text and len(_events(order.id)) == events
    english = login("disp")
    english.get("/lang/en")
    again = post(english, _version(order.id), org["street_b"])
    assert "Place confirmed as 京溪街道: the order was there already, nothing changed." in again.text
    stale = post(disp, version, org["street_a"])  # the version the page was shown with has moved on
    assert stale.status_code == 409 and "地点：京溪街道" in stale.text
    assert post(login("hand_a"), _version(order.id), org["street_a"]).status_code == 403


def test_a_dispatcher_sets_the_category_on_the_order_page(org) -> None:
    """A waiting order without a category (the classifier unsure, or none): the dispatcher sets it where they read the
    suggestions — audited, and the suggestions follow it. Before, a web dispatcher could not, and an order dispatched
    by hand kept no category (分类 —)."""
    order = _order()
    assert order.category_id is None
    disp = login("disp")
    page = disp.get(f"/orders/{order.id}").text
    form = re.search(r'<form [^>]*data-testid="category-form">.*?</form>', page, flags=re.S)
    assert form is not None and '<option value="">未分类：请选择</option>' in form.group(0)
    assert f'<option value="{org["cats"]["环境保护"]}">' in form.group(0)
    assert 'data-testid="category-form"' not in login("op").get(f"/orders/{order.id}").text  # routing is not theirs

    def post(client: TestClient, category_id: object, version: int | None = None) -> Any:
        data = {
            "csrf_token": csrf(client),
            "version": str(version or _version(order.id)),
            "category_id": str(category_id),
        }
        return client.post(f"/orders/{order.id}/category", data=data, follow_redirects=True)

    done = post(disp, org["cats"]["环境保护"])
    assert done.status_code == 200 and done.url.path == f"/orders/{order.id}"
    assert "分类已设定为 环境保护" in done.text
    with session_scope() as s:
        assert s.get(Order, order.id).category_id == org["cats"]["环境保护"]  # type: ignore[union-attr]
    event = _events(order.id)[-1]
    assert event.action == "comment" and event.payload["category_id"] == org["cats"]["环境保护"] and event.actor_name
    again = re.search(r'<form [^>]*data-testid="category-form">.*?</form>', done.text, flags=re.S)
    assert again is not None and f'<option value="{org["cats"]["环境保护"]}" selected>' in again.group(0)
    assert "未分类" not in again.group(0)
    assert post(disp, "").status_code == 422  # none chosen: said, nothing changed
    assert post(disp, 999999).status_code == 422  # not a category
    assert post(disp, org["cats"]["环境保护"], version=1).status_code == 409  # the page shown has moved on
    assert post(login("hand_a"), org["cats"]["环境保护"]).status_code == 403
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    assert 'data-testid="category-form"' not in disp.get(f"/orders/{order.id}").text  # dispatched: not before it now


def test_the_place_correction_offers_the_places_the_gazetteer_does_not_know_as_aliases(org) -> None:
    order = _order(
        None,
        content="石井大道88号门口和龙湖公园旁边垃圾堆积",
        address="景泰街道石井大道88号",
        category_id=org["cats"]["环境保护"],
    )
    disp = login("disp")
    page = disp.get(f"/orders/{order.id}").text
    # 景泰街道 places the order (its address): only the road and the park are offered, each with its guessed kind.
    boxes = re.findall(r'<input type="checkbox" name="(alias_\d+)" value="([^"]+)" data-testid="place-alias">', page)
    assert boxes == [("alias_0", "石井大道"), ("alias_1", "龙湖公园")], page
    assert "记为「<span data-chosen-place>景泰街道</span>」的地名别名" in page
    kinds = re.findall(r'<select name="(alias_kind_\d+)".*?<option value="(\w+)" selected>', page, re.S)
    assert kinds == [("alias_kind_0", "road"), ("alias_kind_1", "landmark")]
    assert 'data-testid="place-aliases"' not in login("op").get(f"/orders/{order.id}").text  # no place form at all
    assert 'data-unit-name="京溪街道"' in page  # the script names the unit chosen from its option

    data = {"csrf_token": csrf(disp), "version": str(_version(order.id)), "unit_id": str(org["street_a"])}
    data |= {"alias_0": "石井大道", "alias_kind_0": "road", "alias_kind_1": "landmark"}  # the park left unticked
    done = disp.post(f"/orders/{order.id}/place", data=data, follow_redirects=True)
    assert done.status_code == 200 and done.url.path == f"/orders/{order.id}"
    # 景泰街道 was the order's place already (its address): confirmed, the alias kept.
    assert "地点确认为 景泰街道：工单原已在此，未作更改。已记为地名别名：石井大道。" in done.text, done.text
    # The road is the street's name now: offered no more; the park still is.
    again = re.findall(r'name="alias_\d+" value="([^"]+)"', done.text)
    assert again == ["龙湖公园"]
    # Ticked again (a page shown before): refused with why, the correction made all the same.
    data |= {"version": str(_version(order.id)), "unit_id": str(org["street_b"])}
    refused = disp.post(f"/orders/{order.id}/place", data=data, follow_redirects=True)
    assert "地点已设为 京溪街道" in refused.text
    assert (
        "「石井大道」未记为别名：这个名称已指向景泰街道（W-JT），如确指多处，请管理员在地名别名中设置。" in refused.text
    )
    with session_scope() as s:
        assert s.get(Order, order.id).street_id == org["street_b"]  # type: ignore[union-attr]


def _form(page: str, action: str) -> str:
    return re.search(rf'data-testid="action-{action}">.*?</details>', page, flags=re.S).group(0)  # type: ignore[union-attr]


def _label(form: str, field_id: str) -> str:
    return re.search(rf'<label for="{field_id}">(.*?)</label>', form, flags=re.S).group(1)  # type: ignore[union-attr]


def test_the_close_assign_and_reopen_forms_say_what_they_need_and_an_empty_assignment_is_refused(org) -> None:
    """办结 of a replied order without a callback needs 是否解决 and 理由 (the life cycle refuses it without): its
    form said 选填 — now required there, optional after a callback. 交办 and 重办 say what leaving the unit empty
    does; 交办 naming no unit and saying nothing is refused at its 交办意见, nothing recorded; and the trail names the
    leader's unit as everyone else's."""
    disp, hand, sup, lead = login("disp"), login("hand_a"), login("sup"), login("lead")
    order = _order()
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, order.id, "accept")

    held = lead.get(f"/orders/{order.id}").text
    assign = _form(held, "assign")
    assert _label(assign, "assign-unit_id") == (
        '交办单位<small data-testid="when-empty-assign-unit_id">（不选即由原承办单位办理）</small>'
    )
    assert _label(assign, "assign-reason").startswith("交办意见<small") and "（不选交办单位时必填）" in assign
    assert "选填" not in assign
    refused = _act(lead, order.id, "assign")
    assert refused.status_code == 422
    assert 'data-testid="field-error-reason">请填写「交办意见」。<' in refused.text
    assert '<details open data-testid="action-assign">' in refused.text
    assert [e.action for e in _events(order.id)].count("assign") == 0
    assert _act(lead, order.id, "assign", reason="本周内办结").status_code == 303
    # 交办 to a unit: the step names that unit, and the leader's own (the district) under their name.
    assert _act(lead, order.id, "assign", unit_id=str(org["street_b"])).status_code == 303
    trail = lead.get(f"/orders/{order.id}").text
    steps = re.findall(r'<tr data-action="assign">.*?</tr>', trail, flags=re.S)
    leader = '<span class="nowrap">刘领导</span><br><small>白云区</small>'
    assert len(steps) == 2 and all(leader in step for step in steps), steps
    assert "→ 京溪街道" in steps[1]
    dispatched = re.search(r'<tr data-action="dispatch">.*?</tr>', trail, flags=re.S).group(0)  # type: ignore[union-attr]
    assert '<span class="nowrap">黄派单</span><br><small>白云区</small>' in dispatched and "→ 景泰街道" in dispatched

    hand_b = login("hand_b")
    _act(hand_b, order.id, "accept")
    _act(hand_b, order.id, "reply", text="已清理并复查。")
    replied = _form(sup.get(f"/orders/{order.id}").text, "close")
    assert _label(replied, "close-resolved") == "是否解决" and _label(replied, "close-reason") == "理由"
    assert '<select id="close-resolved" name="resolved" required>' in replied
    assert '<input id="close-reason" name="reason" value="" required>' in replied
    _act(sup, order.id, "callback", satisfied="false", reason="油烟仍在")
    called = _form(sup.get(f"/orders/{order.id}").text, "close")
    assert _label(called, "close-resolved") == "是否解决<small>（选填）</small>"
    assert _label(called, "close-reason") == "理由<small>（选填）</small>" and " required" not in called
    reopen = _form(disp.get(f"/orders/{order.id}").text, "reopen")
    assert "重办单位" in _label(reopen, "reopen-unit_id") and "（不选即退回原承办单位重办）" in reopen
    disp.get("/lang/en")
    english = _form(disp.get(f"/orders/{order.id}").text, "reopen")
    assert _label(english, "reopen-unit_id") == (
        'Unit to redo it<small data-testid="when-empty-reopen-unit_id">'
        " (leave empty to send it back to the unit that handled it)</small>"
    )


def test_supervisors_review_weak_replies_from_their_list_and_the_order_page(org) -> None:
    order = _order(
        title="王小明反映路灯不亮，电话13912345678",
        content="景泰街道云景路的路灯不亮三天了，请尽快维修并告知维修时间",
        citizen_name="王小明",
        citizen_phone="13912345678",
    )
    disp, hand = login("disp"), login("hand_a")
    _act(disp, order.id, "dispatch", unit_id=str(org["street_a"]))
    _act(hand, order.id, "accept")
    assert _act(hand, order.id, "reply", text="您好，王小明，收悉，谢谢。").status_code == 303
    sup = login("sup")
    # Until the reply-check job has scored it, the list says that a reply awaits (its empty list read as no weak one).
    waiting = sup.get("/reviews").text
    assert "另有 1 条答复等待质量检查" in waiting and f'data-number="{order.number}"' not in waiting
    with session_scope() as s:
        check = kb.check_reply(s, order=s.get(Order, order.id))  # what the reply-check job does
        assert check.weak
    assert 'href="/reviews"' in sup.get("/orders").text
    listed = sup.get("/reviews")
    assert listed.status_code == 200 and f'data-number="{order.number}"' in listed.text
    assert 'data-testid="unchecked"' not in listed.text
    assert "只有问候、收悉或致谢套话" in listed.text and "boilerplate_only" not in listed.text
    # The supervisor reads the title and the reply itself as written; a leader (who reads orders masked) through
    # the scrubber, here and in the API's list.
    assert "王小明反映路灯不亮，电话13912345678" in listed.text and "答复：您好，王小明，收悉，谢谢。" in listed.text
    leader = login("lead")
    masked = leader.get("/reviews")
    assert f'data-number="{order.number}"' in masked.text and "王小明" not in masked.text
    assert "13912345678" not in masked.text and "路灯不亮" in masked.text
    api = leader.get("/api/v1/kb/weak-replies").json()["items"]
    assert [i["number"] for i in api] == [order.number] and "王小明" not in api[0]["title"]
    assert "13912345678" not in api[0]["title"]
    page = sup.get(f"/orders/{order.id}").text
    assert 'data-testid="reply-check"' in page and "偏弱，待审核" in page
    # the order's 答复质量检查 words its findings as 答复审核 does: the overall score's sentence, its figures after it
    findings = page.split('data-testid="reply-check-findings">')[1].split("</ul>")[0]
    assert "答复整体质量低于审核线" in findings and 'data-testid="finding-figures"' in findings
    # the checker named in Chinese, kept whole (a four-character name broke a character from its end)
    assert '<td><span class="nowrap">答复质量检查</span></td>' in page and "reply-check</" not in page
    assert hand.get("/reviews").status_code == 403 and 'href="/reviews"' not in hand.get("/orders").text
    # A reply a hard rule fails (套话 only) says its score below the cut too, as any other weak reply does: 0.15 and
    # 0.25 said nothing of it while 0.27 did.
    # (The review list says it as a sentence, its figures after it:
    # 答复整体质量低于审核线（综合得分 0.15，审核线 0.35）.)
    assert re.search(r"综合得分 0\.\d\d，审核线 0\.35", listed.text), listed.text
    assert re.search(r"综合得分 0\.\d\d 低于 0\.35", page)

    # 退回答复: the reply sent back no longer stands as the order's answer nor as a reply under review; the page says
    # it was sent back and why, and the trail keeps what was sent back.
    assert _act(sup, order.id, "reject_reply", reason="请说明何时修复路灯").status_code == 303
    back = sup.get(f"/orders/{order.id}").text
    assert 'data-testid="reply"' not in back and 'data-testid="reply-check"' not in back and "偏弱，待审核" not in back
    sent_back = re.search(r'data-testid="reply-sent-back">.*?</td>', back, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "已退回</span> 待承办单位重新答复" in sent_back and "退回理由：请说明何时修复路灯" in sent_back
    assert "陈督办" in sent_back
    replied = re.search(r'<tr data-action="reply">.*?</tr>', back, flags=re.S).group(0)  # type: ignore[union-attr]
    assert "您好，王小明，收悉，谢谢。" in replied
    with session_scope() as s:
        assert s.get(Order, order.id).reply_text is None  # type: ignore[union-attr]
        assert s.get(ReplyCheck, order.id) is None
    assert f'data-number="{order.number}"' not in sup.get("/reviews").text
    assert order.number not in str(sup.get("/api/v1/kb/weak-replies?state=in_progress").json())
    with session_scope() as s:  # sent back before a reply sent back was emptied: the trail says it all the same
        s.get(Order, order.id).reply_text = "您好，王小明，收悉，谢谢。"  # type: ignore[union-attr]
    before = sup.get(f"/orders/{order.id}").text
    assert 'data-testid="reply-sent-back"' in before and 'data-testid="reply"' not in before
    with session_scope() as s:
        s.get(Order, order.id).reply_text = None  # type: ignore[union-attr]
    # The same words replied again are a new reply: scored by the job (the old score had kept it from it) and
    # flagged again, back on the list.
    assert _act(hand, order.id, "reply", text="您好，王小明，收悉，谢谢。").status_code == 303
    assert "另有 1 条答复等待质量检查" in sup.get("/reviews").text
    with session_scope() as s:
        assert kb.check_pending_replies(s) == {"checked": 1, "weak": 1}
    again = sup.get(f"/orders/{order.id}").text
    assert 'data-testid="reply-sent-back"' not in again and 'data-testid="reply-check"' in again
    assert len(re.findall(r'<tr data-action="comment">', again)) == 2  # a weak-reply note for each reply
    assert f'data-number="{order.number}"' in sup.get("/reviews").text


def test_routing_rules_and_thresholds_are_read_by_dispatchers_and_edited_by_administrators(org) -> None:
    from cityhub.dispatch.models import DispatchRule, DispatchThreshold

    disp, adm = login("disp"), login("adm")
    listed = disp.get("/rules")
    assert listed.status_code == 200 and "环境保护 → 本街道" in listed.text and "工单所在街道" in listed.text
    assert 'data-testid="rule-form"' not in listed.text and 'href="/rules"' in listed.text  # read-only, in the menu
    # …and it says who may change them, as a rule's own page does.
    assert '<p class="hint" data-testid="rules-read-only">只有系统管理员可以修改规则。</p>' in listed.text
    assert 'data-testid="rules-read-only"' not in adm.get("/rules").text
    assert re.search(r"都没有时为 0\.\d+。", listed.text)  # the default threshold
    assert disp.post("/rules", data={"csrf_token": csrf(disp), "name": "x"}).status_code == 403
    # 派单成效: the last 30 days' first dispatches by default, an order sent by hand today among them.
    assert "近 30 天" in listed.text and "该周期内没有首次派出的工单" in listed.text
    sent = _order()
    with session_scope() as s:
        orders.act(s, order_id=sent.id, action="dispatch", params={"unit_id": org["street_a"]})
    outcomes = disp.get("/rules").text
    assert "首次派单 1 件，其中自动派单 0.0%" in outcomes and 'data-testid="outcomes-table"' in outcomes
    odd = disp.get("/rules", params={"period": "someday"})
    assert odd.status_code == 200 and "无法识别统计周期「someday」" in odd.text
    assert "该周期内没有首次派出的工单" in disp.get("/rules", params={"period": "2020-01"}).text
    # The period box shows a period that read by its own label, one that did not as typed, to correct.
    assert 'name="period" value="2020-Q1"' in disp.get("/rules", params={"period": "2020-q1"}).text
    assert 'name="period" value="someday"' in odd.text

    form = {
        "csrf_token": csrf(adm),
        "name": "路灯 → 京溪街道",
        "priority": "60",
        "active": "1",
        "category_id": str(org["cats"]["交通运输"]),
        "keywords": "路灯、灯杆",
        "target_kind": "unit",
        "target_unit_id": "",
        "valid_until": "2999-12-31",
    }
    refused = adm.post("/rules", data=form)  # a rule for a given unit names the unit
    assert refused.status_code == 422 and 'data-testid="field-error-target_unit_id"' in refused.text
    assert "派往指定单位时请选择承办单位" in refused.text and "needs an existing" not in refused.text
    too_high = adm.post("/rules", data={**form, "target_unit_id": str(org["street_b"]), "priority": "5000"})
    assert too_high.status_code == 422 and "不能大于 1000" in too_high.text
    assert 'value="路灯 → 京溪街道"' in refused.text  # what was typed is kept
    local = {**form, "target_kind": "local_community", "tier": "department"}
    wrong_tier = adm.post("/rules", data=local)
    assert wrong_tier.status_code == 422 and 'data-testid="field-error-tier"' in wrong_tier.text
    assert "该派往对象的层级固定为「村社」" in wrong_tier.text
    created = adm.post("/rules", data={**form, "target_unit_id": str(org["street_b"])}, follow_redirects=False)
    assert created.status_code == 303
    assert "已创建规则" in adm.get("/rules").text  # the flash, once
    with session_scope() as s:
        rule = s.scalars(select(DispatchRule).where(DispatchRule.name == "路灯 → 京溪街道")).one()
        assert (rule.keywords, rule.target_unit_id, rule.tier.value) == (["路灯", "灯杆"], org["street_b"], "street")
        rule_id = rule.id
    edit = adm.get(f"/rules/{rule_id}")
    assert edit.status_code == 200 and 'value="路灯、灯杆"' in edit.text and 'value="2999-12-31"' in edit.text
    token = hidden(edit.text, "updated_at")
    view = disp.get(f"/rules/{rule_id}").text  # a dispatcher sees every field, read-only
    assert "<fieldset disabled>" in view and 'value="路灯、灯杆"' in view and "rule-delete" not in view
    mine = {**form, "target_unit_id": str(org["street_b"]), "updated_at": token}
    saved = adm.post(f"/rules/{rule_id}", data={**mine, "active": ""})
    assert saved.status_code == 200 and "已保存规则" in saved.text  # the redirect's flash
    # stopped, it stays in sight: the list with the stopped rules (the default lists the active ones only)
    assert str(saved.url).endswith("/rules?inactive=1") and f'data-rule="{rule_id}"' in saved.text
    # A second administrator's form made on the version before that save does not silently undo it.
    late = adm.post(f"/rules/{rule_id}", data={**mine, "active": "1", "priority": "70"})
    assert late.status_code == 409 and "已被他人修改" in late.text and 'value="70"' in late.text
    with session_scope() as s:
        assert s.get(DispatchRule, rule_id).active is False  # type: ignore[union-attr]

    category = str(org["cats"]["环境保护"])
    bad = adm.post("/rules/thresholds", data={"csrf_token": csrf(adm), "category_id": category, "threshold": "1.5"})
    assert bad.status_code == 422 and "阈值须大于 0、不超过 1" in bad.text
    form = re.search(r'data-testid="threshold-form".*?</form>', bad.text, re.S).group(0)  # type: ignore[union-attr]
    assert 'value="1.5"' in form and f'<option value="{category}" selected>' in form  # what was typed stays
    assert adm.get("/rules/thresholds", follow_redirects=False).headers["location"] == "/rules"  # reloading it
    adm.post("/rules/thresholds", data={"csrf_token": csrf(adm), "category_id": category, "threshold": "0.8"})
    with session_scope() as s:
        assert s.get(DispatchThreshold, int(category)).threshold == 0.8  # type: ignore[union-attr]
    assert adm.get("/rules/987654").status_code == 404
    page = {"accept": "text/html"}
    for url in ("/rules/thresholds/abc/delete", "/rules/abc/delete", "/kb/abc"):  # a form posted to a bad address
        gone = adm.post(url, data={"csrf_token": csrf(adm)}, headers=page)
        assert gone.status_code in (404, 405) and "页面不存在" in gone.text, url


def test_the_rules_page_shows_what_the_thresholds_in_force_do_by_the_classifiers_cross_validation(
    org, model_dir: Path
) -> None:
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    curves = meta["evaluation"]["all"]["at_threshold"]  # the tiny model's messages are of one form: "all"
    grid = curves["thresholds"]

    def row_of(page: str, label: str) -> str:
        guide = page[page.index('data-testid="threshold-guide"') :]
        found = re.search(rf"<tr><td>{label}</td>.*?</tr>", guide, re.S)
        assert found, label
        return found.group()

    def percent(share: float | None) -> str:
        return "—" if share is None else f"{share * 100:.1f}%"

    disp, adm = login("disp"), login("adm")
    page = disp.get("/rules").text
    assert 'data-testid="threshold-guide"' in page and "全部训练留言" in page and "准确率≥97%最低阈值" in page
    default = grid.index(0.9)  # CITYHUB_DISPATCH_THRESHOLD's default
    for label in TOPICS:
        curve, row = curves["per_class"][label], row_of(page, label)
        assert f'<td class="num">{curve["n"]}</td>' in row
        assert percent(curve["share"][default]) in row and percent(curve["precision"][default]) in row
    # A category's own threshold is read at that threshold; one between the grid's steps at the next step up.
    category = str(org["cats"]["环境保护"])
    adm.post("/rules/thresholds", data={"csrf_token": csrf(adm), "category_id": category, "threshold": "0.6"})
    row = row_of(disp.get("/rules").text, "环境保护")
    curve = curves["per_class"]["环境保护"]
    assert '<td class="num">0.6</td>' in row and percent(curve["share"][grid.index(0.6)]) in row
    adm.post("/rules/thresholds", data={"csrf_token": csrf(adm), "category_id": category, "threshold": "0.655"})
    row = row_of(disp.get("/rules").text, "环境保护")
    assert "(≈0.66)" in row and percent(curve["share"][grid.index(0.66)]) in row
    total = sum(curves["per_class"][label]["n"] for label in TOPICS)
    page = disp.get("/rules").text
    assert f'<td class="num">{total}</td>' in page
    # Under it, how the same held-out confidences matched how often they were right, highest bin first.
    cal = meta["evaluation"]["all"]["calibration"]
    table = page[page.index('data-testid="calibration"') :]
    table = table[: table.index("</table>")]
    assert "置信度校准" in page and f"加权平均差距（ECE）：{percent(cal['ece'])}" in page
    cells = re.findall(r'<tr><td>[\d.]+–[\d.]+</td><td class="num">(\d+)</td><td class="num">([\d.]+%)</td>', table)
    assert cells == [(str(b["n"]), percent(b["confidence"])) for b in reversed(cal["bins"])]
    assert sum(b["n"] for b in cal["bins"]) == meta["evaluation"]["all"]["n"]
    # The same through the API and the CLI.
    api = disp.get("/api/v1/dispatch/thresholds/effect")
    assert api.status_code == 200, api.text
    row = next(c for c in api.json()["categories"] if c["label"] == "环境保护")
    assert (row["threshold"], row["read_at"], row["n"], row["category_path"]) == (0.655, 0.66, curve["n"], "环境保护")
    assert set(row["lowest_threshold_for_precision"]) == {"0.95", "0.97"}
    assert api.json()["calibration"] == cal
    assert login("hand_a").get("/api/v1/dispatch/thresholds/effect").status_code == 403
    from typer.testing import CliRunner

    from cityhub.cli import _mount, app

    _mount()
    printed = CliRunner().invoke(app, ["dispatch", "thresholds", "effect", "--json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["categories"] == api.json()["categories"]
    plain = CliRunner().invoke(app, ["dispatch", "thresholds", "effect"])
    assert plain.exit_code == 0 and f"calibration: ECE {percent(cal['ece'])}" in plain.output


def test_the_knowledge_base_is_kept_from_its_page_and_feeds_the_instant_answers(org) -> None:
    from cityhub.knowledge.models import KnowledgeEntry

    sup, op = login("sup"), login("op")
    assert 'href="/kb"' in sup.get("/orders").text and login("hand_a").get("/kb").status_code == 403
    form = {
        "csrf_token": csrf(sup),
        "question": "  ",
        "answer": "携带身份证到社保服务网点补办。",
        "keywords": "社保卡、补办",
    }
    refused = sup.post("/kb", data=form)
    assert refused.status_code == 422 and 'data-testid="field-error-question"' in refused.text
    assert "携带身份证到社保服务网点补办。</textarea>" in refused.text  # the typed answer is kept
    made = sup.post("/kb", data={**form, "question": "社保卡丢了怎么补办？"}, follow_redirects=False)
    assert made.status_code == 303
    with session_scope() as s:
        entry = s.scalars(select(KnowledgeEntry).where(KnowledgeEntry.question == "社保卡丢了怎么补办？")).one()
        entry_id, version = entry.id, entry.version
    assert "社保卡丢了怎么补办？" in sup.get("/kb?q=社保卡").text
    # Words apart: each must be in the question or the answer, not the whole phrase.
    assert "社保卡丢了怎么补办？" in sup.get("/kb?q=补办  社保卡").text
    assert "社保卡丢了怎么补办？" in sup.get("/kb?q=社保卡 身份证").text  # 身份证 is in the answer
    assert "社保卡丢了怎么补办？" not in sup.get("/kb?q=社保卡 公积金").text
    dated = sup.post("/kb", data={**form, "question": "旧政策", "valid_until": "2020-10-31"}, follow_redirects=False)
    assert dated.status_code == 303
    old_row = re.search(r'<tr data-testid="kb-row"[^>]*>(?:(?!</tr>).)*旧政策.*?</tr>', sup.get("/kb").text, re.S)
    assert old_row and "2020-10-31" in old_row.group(0) and "已过期" in old_row.group(0)  # the day it is valid to
    # The operator's intake assistance offers it at once (the index follows the knowledge base's revision).
    assistance = op.post(
        "/intake/assist",
        data=intake_form(op, appeal_type="consultation", content="我的社保卡丢了，怎么补办"),
        headers={"HX-Request": "true"},
    )
    assert "携带身份证到社保服务网点补办" in assistance.text
    page = sup.get(f"/kb/{entry_id}").text
    assert f'name="version" value="{version}"' in page
    edit = {**form, "question": "社保卡丢失补办", "version": str(version), "active": "1"}
    assert sup.post(f"/kb/{entry_id}", data=edit, follow_redirects=False).status_code == 303
    stale = sup.post(f"/kb/{entry_id}", data={**edit, "answer": "我的新答复"})  # made on the old version
    assert stale.status_code == 409 and "已被他人修改" in stale.text and "我的新答复</textarea>" in stale.text
    assert 'data-testid="kb-current"' in stale.text
    deactivated = {**edit, "version": str(version + 1), "active": ""}
    assert sup.post(f"/kb/{entry_id}", data=deactivated, follow_redirects=False).status_code == 303
    with session_scope() as s:
        assert s.get(KnowledgeEntry, entry_id).active is False  # type: ignore[union-attr]
    assert "社保卡丢失补办" not in sup.get("/kb").text and "社保卡丢失补办" in sup.get("/kb?inactive=1").text


def test_a_nul_character_in_a_form_is_dropped_and_the_rest_saved_on_either_backend(org) -> None:
    """A text with NUL pasted into a form reached the database: SQLite stored it, PostgreSQL refused it and the whole
    form was lost to an error page. No one types it and no page shows it: the form's text is saved without it."""
    from cityhub.knowledge.models import KnowledgeEntry

    sup = login("sup")
    form = {
        "csrf_token": csrf(sup),
        "question": "社保卡\x00丢了怎么办？",
        "answer": "到社保网点\x00补办。",
        "keywords": "社保卡",
    }
    saved = sup.post("/kb", data=form, headers={"Accept": "text/html"}, follow_redirects=False)
    assert saved.status_code == 303
    with session_scope() as s:
        entry = s.scalars(select(KnowledgeEntry).where(KnowledgeEntry.question == "社保卡丢了怎么办？")).one()
        assert entry.answer == "到社保网点补办。"


def test_knowledge_base_edits_read_in_the_configuration_log_in_either_language(org, tmp_path) -> None:
    """An entry made and edited on the 知识库 page, and one imported, are in 系统日志: by whom, which entry (linked),
    its fields by their names, the expiry in local time, the import's file — in Chinese and in English."""
    from cityhub.knowledge.models import KnowledgeEntry

    sup = login("sup")
    form = {
        "csrf_token": csrf(sup),
        "question": "社保卡丢了怎么补办？",
        "answer": "到社保网点补办。",
        "keywords": "社保卡",
    }
    assert sup.post("/kb", data=form, follow_redirects=False).status_code == 303
    with session_scope() as s:
        entry = s.scalars(select(KnowledgeEntry).where(KnowledgeEntry.question == "社保卡丢了怎么补办？")).one()
        entry_id, version = entry.id, entry.version
    edit = {**form, "answer": "携带身份证到社保网点补办。", "valid_until": "2030-12-31", "version": str(version)}
    assert sup.post(f"/kb/{entry_id}", data={**edit, "active": "1"}, follow_redirects=False).status_code == 303
    path = tmp_path / "kb.csv"
    path.write_text("question,answer\n公租房申请条件,连续缴纳社保满1年\n", encoding="utf-8")
    with session_scope() as s:
        kb.import_entries(s, path=path, actor=orders.Actor(name="周管理"))
        imported = s.scalars(select(KnowledgeEntry.id).where(KnowledgeEntry.question == "公租房申请条件")).one()
        # An end the API or the command line set at another hour than midnight reads as that time.
        noon = datetime(2031, 6, 30, 4, 0, tzinfo=UTC)  # 12:00 in the district
        kb.update_entry(s, entry_id=imported, data=EntryUpdate(valid_until=noon), actor=orders.Actor(name="周管理"))

    adm = login("adm")
    page = adm.get("/admin/log", params={"area": "kb_entry"}).text
    rows = re.findall(r'<tr data-testid="log-entry" data-area="kb_entry" data-target="(\d+)">(.*?)</tr>', page, re.S)
    # Newest first (the world's own entry, made before, last).
    assert [target for target, _ in rows][:4] == [str(imported), str(imported), str(entry_id), str(entry_id)]
    text = [re.sub(r"<[^>]+>", "", row) for _, row in rows[:4]]
    assert "有效至：— → 2031-06-30 12:00" in text[0]
    import_row, edit_row, create_row = text[1:]
    assert f'<a href="/kb/{entry_id}">#{entry_id}</a>' in rows[2][1] and "知识库条目" in edit_row
    assert "陈督办" in create_row and "新建" in create_row and "问题：社保卡丢了怎么补办？" in create_row
    assert "修改" in edit_row and "答复：到社保网点补办。 → 携带身份证到社保网点补办。" in edit_row
    # The last day it is valid, as the form took it and the 知识库 page shows it (stored: the next local midnight).
    assert "有效至：— → 2030-12-31" in edit_row and "2031-01-01" not in edit_row
    assert "周管理" in import_row and "由 kb.csv 导入" in import_row
    english = adm.get("/lang/en", params={"next": "/admin/log?area=kb_entry"}).text
    rows = re.findall(r'data-area="kb_entry" data-target="\d+">(.*?)</tr>', english, re.S)
    import_row, edit_row, create_row = (html_unescape(re.sub(r"<[^>]+>", "", row)) for row in rows[1:4])
    assert (
        "Knowledge entry" in create_row and "Created" in create_row and "question: 社保卡丢了怎么补办？" in create_row
    )
    assert "Changed" in edit_row and "valid until: — → 2030-12-31" in edit_row
    assert "imported from kb.csv" in import_row


def test_the_leader_dashboard_counts_ranks_and_lists_hot_topics(org) -> None:
    first, second, _ = (_order(title="餐馆油烟扰民") for _ in range(3))
    lamp = _order("W-JX", title="京溪路灯不亮")
    page = login("lead").get("/dashboard")
    assert page.status_code == 200
    assert re.search(r'data-testid="tile-total"><a [^>]+>4<', page.text)
    assert re.search(r'data-testid="tile-valid"><a [^>]+>4<', page.text)
    # A duplicate merged into another order and a call cancelled as invalid were received, but are no problem of
    # their own: 有效工单 leaves them out and says how many.
    with session_scope() as s:
        orders.act(s, order_id=second.id, action="merge", params={"master_id": first.id})
        orders.act(s, order_id=lamp.id, action="cancel", params={"reason": "测试来电"})
    page = login("lead").get("/dashboard")
    assert re.search(r'data-testid="tile-total"><a [^>]+>4<', page.text)
    assert re.search(r'data-testid="tile-valid"><a [^>]+>2<', page.text)
    assert "不含重复并单 1、作废 1" in page.text
    # No period asked for: the last 30 days (a month just begun would show next to nothing).
    today = utcnow().astimezone(get_settings().tz).date()
    first, last = (f'<span class="nowrap">{day}</span>' for day in (today - timedelta(days=29), today))
    shown = f"当前显示：近 30 天（{first} 至 {last}）"
    assert shown in page.text  # each date kept whole on a phone
    # A state's count links to the orders behind it: of this period, not of all time.
    link = f'href="/orders?state=received&amp;created_from={today - timedelta(days=29)}&amp;created_to={today}"'
    assert link in page.text
    assert "景泰街道" in page.text and "京溪街道" in page.text
    # A street's count there is of the orders that happened in it (the ranking's 承办量: those assigned to it).
    assert "<h2>镇街工单量</h2>" in page.text and "本期受理、发生在该镇街的工单" in page.text
    # Orders nobody has categorised yet are said to be so (the row read 未归属, "unassigned", as for a street).
    categories = re.search(r'data-testid="by-category">.*?</section>', page.text, re.S)
    assert categories and "<td>未分类</td>" in categories.group(0) and "未归属" not in page.text
    assert "餐馆油烟扰民" in page.text  # a hot topic of the period
    # A topic's title is someone's appeal: the leader (who reads orders masked) does not read a phone in it.
    for _ in range(3):
        _order(title="13912345678反映井盖缺失")
    assert "13912345678" not in login("lead").get("/dashboard").text
    assert login("sup").get("/dashboard").status_code == 200
    assert login("hand_a").get("/dashboard").status_code == 403
    bad = login("lead").get("/dashboard?period=never")
    assert bad.status_code == 200 and "无法识别统计周期「never」" in bad.text and 'value="never"' in bad.text
    assert "当前显示：近 30 天" in bad.text
    quarter = login("lead").get("/dashboard?period=2026-Q4")
    assert quarter.status_code == 200 and "当前显示：2026-Q4" in quarter.text and "无法识别" not in quarter.text
    # The period's analysis report (专报), in each format and the reader's language, from the assessment API the
    # page's session may call.
    assert 'href="/api/v1/kpi/report?period=2026-Q4&amp;format=xlsx&amp;lang=zh-CN"' in quarter.text
    leader = login("lead")
    report = leader.get("/api/v1/kpi/report", params={"period": "2026-Q4", "format": "html"})
    assert report.status_code == 200 and "专报（2026-Q4）" in report.text
    assert "<td>1 个镇街</td>" in quarter.text  # the title grouping's topic: in how many streets its orders are
    # A reader of the English UI opens it in English; the grouped topic's streets are counted in English too.
    english = leader.get("/lang/en", params={"next": "/dashboard?period=2026-Q4"})
    link = re.search(r'href="(/api/v1/kpi/report\?[^"]*format=html[^"]*)"', english.text)
    assert link and link.group(1).endswith("&amp;lang=en"), english.text
    report = leader.get(link.group(1).replace("&amp;", "&"))
    assert report.status_code == 200 and '<html lang="en"' in report.text and ": report (2026-Q4)" in report.text
    assert "<td>1 street or town</td>" in english.text and "个镇街" not in english.text
    assert 'data-testid="hot-mined-at"' not in page.text  # grouped by title: nothing mined yet
    from cityhub import jobs

    jobs.run_job("hot-topics")
    assert 'data-testid="hot-mined-at"' in login("lead").get("/dashboard").text  # when the topics shown were mined


def test_the_dashboards_counts_open_the_orders_they_count(org) -> None:
    """A leader's figure is one click from its orders: the period's total, today's, the open ones, a category's and
    a street's count each link to the order list, which lists as many orders as the figure says. A category with
    subcategories is not linked: the list of a category counts its subcategories, the dashboard's row does not."""
    with session_scope() as s:
        noise = Category(code="W9", name="噪音", level=2, path="环境保护/噪音", parent_id=org["cats"]["环境保护"])
        s.add(noise)
    for _ in range(2):
        _order(title="餐馆油烟扰民", category="环境保护")
    _order(title="工地夜间施工", category="环境保护/噪音")
    _order("W-JX", title="京溪路口拥堵", category="交通运输")
    _order("W-JX", title="去年的公交车投诉", category="交通运输", created_at="2026-01-05T02:00:00+00:00")
    lead = login("lead")
    page = lead.get("/dashboard").text

    def listed(href: str) -> int:
        answer = lead.get(html_unescape(href))
        assert answer.status_code == 200, href
        table = answer.text.split('data-testid="order-table"')[1].split("</table>")[0]
        return len(re.findall(r'<a href="/orders/\d+">', table))

    figures = {}
    for tile in ("total", "today", "open"):
        found = re.search(rf'data-testid="tile-{tile}"><a href="([^"]+)">(\d+)</a>', page)
        assert found, tile
        figures[tile] = int(found.group(2))
        assert listed(found.group(1)) == figures[tile], tile
    assert figures == {"total": 4, "today": 4, "open": 5}  # last January's open order: open, not of the period
    for section, names in (("by-category", {"交通运输", "环境保护/噪音"}), ("by-street", {"景泰街道", "京溪街道"})):
        rows = page.split(f'data-testid="{section}"')[1].split("</section>")[0]
        links = re.findall(r'<a href="([^"]+)">([^<]+)</a></td><td class="num">(\d+)</td>', rows)
        assert {name for _, name, _ in links} == names, rows
        for href, name, n in links:
            assert listed(href) == int(n), name
    categories = page.split('data-testid="by-category"')[1].split("</section>")[0]
    assert "<td>环境保护</td>" in categories  # 2 of its own, the list would count its 噪音 order too
    # 有效工单 opens the period's orders that are a problem of their own: not a merged duplicate, not a cancelled call.
    with session_scope() as s:
        period_orders = s.scalars(select(Order).where(Order.title != "去年的公交车投诉").order_by(Order.id)).all()
        first, duplicate, prank = period_orders[0], period_orders[1], period_orders[3]
        orders.act(s, order_id=duplicate.id, action="merge", params={"master_id": first.id})
        orders.act(s, order_id=prank.id, action="cancel", params={"reason": "测试来电"})
    page = lead.get("/dashboard").text
    found = re.search(r'data-testid="tile-valid"><a href="([^"]+)">(\d+)</a>', page)
    assert found and int(found.group(2)) == 2 and listed(found.group(1)) == 2
    assert "state=valid" in found.group(1) and "created_from=" in found.group(1)
    # The list offers the same choice: picked there, it stays picked.
    chosen = lead.get(html_unescape(found.group(1))).text
    assert '<option value="valid" selected>有效工单（不含重复并单、作废）</option>' in chosen


def test_the_period_box_says_in_words_what_it_takes_on_every_page(org) -> None:
    """统计周期's box showed codes as its placeholder (2026-11 / 2026-Q4 / 2026): every page choosing a period — the
    dashboard, a unit's assessment, the dispatch outcomes, the risk warnings, the correlation graph — says in words
    under it what may be typed (the box names the line), its placeholder a short example that fits a phone's box, in
    either language."""
    box = r'<input name="period"[^>]*placeholder="([^"]*)"[^>]*aria-describedby="period-words"'
    words = r'<small class="hint period-words" id="period-words" data-testid="period-words">([^<]*)</small>'
    lead, disp = login("lead"), login("disp")
    pages = (
        (lead, "/dashboard"),
        (lead, f"/assessment/{org['street_a']}"),
        (disp, "/rules"),
        (lead, "/brain/findings"),  # 风险预警
        (lead, "/brain/graph"),  # 关联图谱
    )
    for client, path in pages:
        page = client.get(path).text
        assert re.findall(box, page) == ["如 2026-11"], path
        said = re.findall(words, page)
        assert len(said) == 1 and all(w in said[0] for w in ("月份", "季度", "年份", "一周", "一天", "不填")), path
        # the correlation graph counts every order when no period is typed, not the recent days
        assert ("不填则不限周期" in said[0]) == (path == "/brain/graph"), path
    lead.cookies.set("cityhub_lang", "en")
    page = lead.get("/dashboard").text
    assert re.findall(box, page) == ["e.g. 2026-11"]
    assert "A month, quarter or year" in re.findall(words, page)[0]


def test_a_units_assessment_page_shows_its_rates_and_the_orders_behind_each(org) -> None:
    """单位考核: the dashboard ranked the streets by a score with nothing behind it on the web; a unit's page shows
    its eight rates of the period, and each rate the orders counted in it — for overseers, and for the unit's own
    staff, not another unit's."""
    street = org["street_a"]
    accepted, waiting = _order(title="路灯不亮"), _order(title="井盖缺失")
    with session_scope() as s:
        for o in (accepted, waiting):
            orders.act(s, order_id=o.id, action="dispatch", params={"unit_id": street})
        orders.act(s, order_id=accepted.id, action="accept")
    lead = login("lead")
    page = lead.get(f"/assessment/{street}")
    assert page.status_code == 200 and "单位考核：景泰街道" in page.text
    cells = r'<tr data-kpi="([a-z_]+)"[^>]*>.*?</td>\s*<td class="num">(\d+)</td><td class="num">(\d+)</td>'
    rows = {name: (int(n), int(d)) for name, n, d in re.findall(cells, page.text, re.S)}
    assert len(rows) == 8 and rows["return_rate"] == (0, 2)  # two assignments, none returned
    # A rate's link keeps the period as the reader chose it: the recent days, not their dates typed into the picker.
    assert f'href="/assessment/{street}?period=&amp;kpi=on_time_accept#drill"' in page.text
    drill = lead.get(f"/assessment/{street}", params={"kpi": "on_time_accept"})
    assert 'name="period" value=""' in drill.text and "当前显示：近 30 天" in drill.text
    assert drill.status_code == 200 and 'data-testid="drill"' in drill.text
    counted = dict(re.findall(r'<tr data-order="(\d+)" data-hit="(\d)"', drill.text))
    assert counted == {str(accepted.id): "1"}  # accepted in time; the other's limit has not passed yet
    assert f'href="/orders/{accepted.id}"' in drill.text and 'aria-current="true"' in drill.text
    assert login("hand_a").get(f"/assessment/{street}").status_code == 200  # its own unit
    refused = login("hand_b").get(f"/assessment/{street}")
    assert refused.status_code == 404 and "没有找到该单位" in refused.text  # another street's (a unit, not 该工单)
    from cityhub.auth import service as auth
    from cityhub.org.models import Role
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        data = UserCreate(username="jx_sup2", full_name="街道督办", role=Role.SUPERVISOR, unit_id=org["street_b"])
        auth.create_account(s, data=data, password=PASSWORD)
    other = login("jx_sup2").get(f"/assessment/{street}", params={"kpi": "on_time_accept"})
    assert other.status_code == 200 and "按时签收率" in other.text  # a district-wide ranking's unit: its rates
    assert 'data-testid="drill"' not in other.text and "?period=" not in other.text  # not its orders
    assert lead.get("/assessment/987654").status_code == 404
    assert lead.get(f"/assessment/{street}", params={"kpi": "no_such"}).status_code == 200  # no drill-down, no error


def test_a_units_assessment_page_says_what_each_figure_counts_in_the_readers_language(org) -> None:
    """A unit assessed by eight rates could not read what any of them counts (the 专报 pointed to the developers'
    documentation): the page's 指标说明 says each one's numerator and denominator in plain words, its direction and
    weight, opened on the figure drilled into — and in English for an English reader; the API gives the same."""
    street = org["street_a"]
    lead = login("lead")
    page = lead.get(f"/assessment/{street}").text
    box = re.search(r'<details class="definitions" data-testid="definitions">.*?</details>', page, re.S)
    assert box is not None
    said = dict(re.findall(r'<div data-kpi="([a-z_]+)"[^>]*>(.*?)</div>', box.group(0), re.S))
    assert len(said) == 8
    assert "退单率" in said["return_rate"] and "被该单位退回的派单" in said["return_rate"]
    assert "越低越好" in said["return_rate"] and "综合得分权重 10" in said["return_rate"]
    assert "此前 30 天内" in said["repeat_rate"] and "越高越好" in said["satisfaction"]
    drilled = lead.get(f"/assessment/{street}", params={"kpi": "resolution"}).text
    assert re.search(r'<details class="definitions" data-testid="definitions" open>', drilled)
    assert re.search(r'<div data-kpi="resolution" aria-current="true">', drilled)
    lead.cookies.set("cityhub_lang", "en")
    english = lead.get(f"/assessment/{street}").text
    assert "What each figure counts" in english and "assignments the unit returned" in english
    assert "被该单位退回的派单" not in english
    [returns] = [k for k in lead.get("/api/v1/kpi/definitions").json() if k["name"] == "return_rate"]
    assert returns["plain_zh"] == ["被该单位退回的派单", "本期派给该单位的工单（派单、转派、领导交办）"]


def test_the_dashboard_ranks_streets_and_departments_and_links_every_unit_below_the_sample(org) -> None:
    """考核排名: the dashboard ranked streets only and dropped every unit under the minimum sample, so a month's
    ranking was usually empty and a department's 单位考核 was reachable from nowhere; now streets and departments are
    ranked apart, and the units with too few orders are listed after, unranked, each linked to its page."""
    from cityhub.org.models import UnitTier

    with session_scope() as s:
        district = s.scalars(select(Unit).where(Unit.tier == UnitTier.DISTRICT)).one()
        department = Unit(code="W-CG", name="区城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
        s.add(department)
        s.flush()
        dept_id = department.id
    for unit in (org["street_a"], dept_id):
        order = _order(title="占道经营")
        with session_scope() as s:
            orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": unit})
    page = login("lead").get("/dashboard").text
    streets = re.search(r'data-testid="ranking-street">.*?</div>', page, re.S).group(0)  # type: ignore[union-attr]
    departments = re.search(r'data-testid="ranking-department">.*?</div>', page, re.S).group(0)  # type: ignore[union-attr]
    assert "<h3>镇街</h3>" in streets and "<h3>职能部门</h3>" in departments
    assert "本期没有样本达到 30 件的单位，暂无排名" in streets
    short = r"<summary>样本不足 30 件、未排名的单位（1 个）</summary>"
    assert re.search(short, streets) and re.search(short, departments)
    # The period as the reader chose it (here the recent days: none typed), for the unit's page to show the same.
    linked = r'\?period="[^>]*>{}</a></td><td class="num">1<'
    assert re.search(rf'href="/assessment/{org["street_a"]}' + linked.format("景泰街道"), streets)
    assert re.search(rf'href="/assessment/{dept_id}' + linked.format("区城管局"), departments)
    assert "区城管局" not in streets and "景泰街道" not in departments


def test_the_dashboards_ranking_writes_every_score_with_two_decimals_as_the_units_page(org) -> None:
    """A ranking's scores in one column line up: 100.00 and 93.28, not 100.0 beside 93.28 (the value rounded to two
    decimals drops a trailing zero) — as the unit's own page writes its score."""
    for _ in range(30):
        order = _order(title="占道经营")
        with session_scope() as s:
            orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": org["street_a"]})
            orders.act(s, order_id=order.id, action="accept")
    lead = login("lead")
    streets = lead.get("/dashboard").text.split('data-testid="ranking-street"')[1].split("</table>")[0]
    scores = re.findall(
        r'<td class="num">\d+</td><td class="num" data-testid="score">([^<]+)</td>', streets
    )  # n, score
    assert scores and all(re.fullmatch(r"\d+\.\d\d", v) for v in scores), scores
    unit = lead.get(f"/assessment/{org['street_a']}").text
    assert f'data-testid="score">{scores[0]}<' in unit


def test_a_street_overseer_sees_the_hot_topics_of_its_street_and_knows_the_ranking_is_the_districts(org) -> None:
    for _ in range(3):
        _order(title="餐馆油烟扰民")  # 景泰街道
    for _ in range(3):
        _order("W-JX", title="京溪路灯不亮")
    from cityhub.auth import service as auth
    from cityhub.org.models import Role
    from cityhub.org.schemas import UserCreate

    with session_scope() as s:
        auth.create_account(
            s,
            data=UserCreate(username="jx_sup", full_name="街道督办", role=Role.SUPERVISOR, unit_id=org["street_b"]),
            password=PASSWORD,
        )
    street = login("jx_sup").get("/dashboard").text
    assert "京溪路灯不亮" in street and "餐馆油烟扰民" not in street  # the topics of the orders it may open
    assert 'data-testid="ranking-district"' in street
    district = login("lead").get("/dashboard").text
    assert "京溪路灯不亮" in district and "餐馆油烟扰民" in district
    assert 'data-testid="ranking-district"' not in district


def test_the_overdue_tile_links_to_the_open_overdue_orders_it_counts(org) -> None:
    late, done = _order(title="超期未办"), _order(title="超期已办结")
    with session_scope() as s:
        for o in (late, done):
            s.get(Order, o.id).sla_status = SlaStatus.OVERDUE  # type: ignore[union-attr]
        s.get(Order, done.id).state = State.CLOSED_RESOLVED  # type: ignore[union-attr]
    lead = login("lead")
    page = lead.get("/dashboard").text
    assert re.search(r'data-testid="tile-overdue"><a href="[^"]+">1<', page)
    link = html_unescape(re.search(r'data-testid="tile-overdue"><a href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    listed = lead.get(link).text
    assert late.number in listed and done.number not in listed


def test_overdue_lists_the_open_orders_late_now_and_ever_overdue_the_closed_ones_too(org) -> None:
    """只看超期 is what a supervisor chases — open orders past their limit now — not every order that once was
    (a closed order keeps its last status); 曾超期 lists those for the assessment's review. The API's ``overdue``
    and ``ever_overdue`` answer the same."""
    late, closed_late, extended, in_time = (
        _order(title=t) for t in ("超期在办", "超期已办结", "超期后已延期", "按时在办")
    )
    with session_scope() as s:
        now = utcnow()
        for o in (late, closed_late, extended, in_time):
            row = s.get(Order, o.id)
            row.state, row.sla_status, row.due_at = State.IN_PROGRESS, SlaStatus.OK, now + timedelta(days=3)  # type: ignore[union-attr]
        for o in (late, closed_late, extended):
            row = s.get(Order, o.id)
            row.sla_status, row.overdue_at = SlaStatus.OVERDUE, now - timedelta(days=1)  # type: ignore[union-attr]
            row.first_overdue_at = row.overdue_at  # type: ignore[union-attr]
        s.get(Order, closed_late.id).state = State.CLOSED_RESOLVED  # type: ignore[union-attr]
        s.get(Order, extended.id).sla_status = SlaStatus.OK  # type: ignore[union-attr]  # an approved extension
    sup = login("sup")

    def listed(query: str) -> set[str]:
        page = sup.get(f"/orders?{query}")
        assert page.status_code == 200
        return {o.number for o in (late, closed_late, extended, in_time) if o.number in page.text}

    assert listed("overdue=1") == {late.number}
    assert listed("ever_overdue=1") == {late.number, closed_late.number, extended.number}
    assert re.search(r'name="ever_overdue" value="1" checked', sup.get("/orders?ever_overdue=1").text)

    def api(**params: str) -> set[str]:
        return {i["number"] for i in sup.get("/api/v1/orders", params=params).json()["items"]}

    assert api(overdue="true") == {late.number}
    assert api(overdue="false") == {closed_late.number, extended.number, in_time.number}
    assert api(ever_overdue="true") == {late.number, closed_late.number, extended.number}
    assert api(ever_overdue="false") == {in_time.number}
    assert api(sla_status="overdue") == {late.number, closed_late.number}  # the stored status, as before


def test_the_order_page_says_an_earlier_limit_ran_out(org) -> None:
    """A transfer started a new limit of an order late at its first unit: 超期 is gone from its status, and the page
    says when it was late, to staff only."""
    order = _order(title="转办前已超期")
    first_late = utcnow() - timedelta(days=2)
    with session_scope() as s:
        row = s.get(Order, order.id)
        row.state, row.sla_status, row.due_at = State.IN_PROGRESS, SlaStatus.OK, utcnow() + timedelta(days=3)  # type: ignore[union-attr]
        row.first_overdue_at = first_late  # type: ignore[union-attr]
    page = login("sup").get(f"/orders/{order.id}")
    assert page.status_code == 200
    shown = re.search(r'data-testid="was-overdue">([^<]*)<', page.text)
    assert shown and "曾超期" in shown.group(1), page.text
    with session_scope() as s:
        s.get(Order, order.id).overdue_at = first_late  # type: ignore[union-attr]  # late now, by that same limit
    assert 'data-testid="was-overdue"' not in login("sup").get(f"/orders/{order.id}").text


def test_the_dashboard_shows_how_much_went_out_automatically_and_how_much_stayed(org) -> None:
    automatic, by_hand = _order(), _order()
    with session_scope() as s:
        engine = orders.Actor(name=orders.AUTO_DISPATCHER)
        params = {"unit_id": org["street_a"], "auto": True}
        orders.act(s, order_id=automatic.id, action="dispatch", actor=engine, params=params)
        orders.act(s, order_id=by_hand.id, action="dispatch", params={"unit_id": org["street_a"]})
        orders.act(s, order_id=by_hand.id, action="return", params={"reason": "非本辖区"})
    page = login("lead").get("/dashboard").text
    assert 'data-testid="tile-auto-share">50.0%<' in page and "首次派单 2 件中自动派出 1 件" in page
    assert 'data-testid="tile-auto-kept">100.0%<' in page and "人工派单 0.0%" in page


# ------------------------------------------------------------------------------------ i18n and vendor files


def test_chinese_first_then_the_users_switch(org) -> None:
    client = _client()
    # Simplified Chinese first: an English browser still gets Chinese until the user switches.
    assert "登录" in client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert "Log in" not in client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    switched = client.get("/lang/en?next=/login", follow_redirects=False)
    assert switched.headers["location"] == "/login" and client.cookies["cityhub_lang"] == "en"
    assert "Password" in client.get("/login").text or "password" in client.get("/login").text
    assert client.get("/lang/en?next=https://evil.example", follow_redirects=False).headers["location"] == "/"
    # The switch on a filtered list comes back to the same list: its filters were dropped.
    sup = login("sup")
    listed = sup.get("/orders?state=open&overdue=1").text
    link = re.search(r'<a href="(/lang/en\?next=[^"]+)" lang="en"', listed)
    assert link, listed
    back = sup.get(link.group(1).replace("&amp;", "&"), follow_redirects=False).headers["location"]
    assert back == "/orders?state=open&overdue=1"


def test_browser_language_negotiation_when_enabled() -> None:
    assert i18n.negotiate(None, "en-US,en;q=0.9,zh;q=0.5") == "en"
    assert i18n.negotiate(None, "fr, zh-CN;q=0.8") == "zh-CN"
    assert i18n.negotiate(None, "fr") == "zh-CN"
    assert i18n.negotiate("en", "zh-CN") == "en"
    assert i18n.negotiate(None, "en-US", from_browser=False) == "zh-CN"


def test_every_refusal_of_the_life_cycle_is_said_in_chinese() -> None:
    from cityhub.errors import InvalidTransition
    from cityhub.web.routes import error_text
    from cityhub.workorders.lifecycle import TRANSITIONS, Action, AssistStatus, OrderView, State, apply

    t = i18n.Translator("zh-CN")
    english = re.compile(r"[A-Za-z]{3,}")
    refusals = [  # one view and parameters each guard refuses
        (OrderView(state=State.RECEIVED), Action.INSTANT_ANSWER, {"answer": "x"}),
        (
            OrderView(state=State.ACCEPTED, lead_unit_id=1, assists={2: AssistStatus.ACCEPTED}),
            Action.REPLY,
            {"text": "x"},
        ),
        (OrderView(state=State.ACCEPTED, lead_unit_id=1), Action.ASSIST_REPLY, {"unit_id": 5, "text": "x"}),
        (
            OrderView(state=State.ACCEPTED, lead_unit_id=1, assists={2: AssistStatus.REPLIED}),
            Action.ASSIST_REPLY,
            {"unit_id": 2, "text": "x"},
        ),
        (OrderView(state=State.ACCEPTED, lead_unit_id=1), Action.REQUEST_EXTENSION, {"days": 99, "reason": "x"}),
        (
            OrderView(state=State.ACCEPTED, lead_unit_id=1, extension_pending=True, extension_days=3),
            Action.APPROVE_EXTENSION,
            {"days": 9},
        ),
        (OrderView(state=State.ACCEPTED, lead_unit_id=1), Action.ADD_ASSIST, {"unit_id": 1}),
    ]
    seen = set()
    for view, action, params in refusals:
        with pytest.raises(InvalidTransition) as refused:
            apply(view, action, params)
        seen.add(action)
        text, fields = error_text(t, refused.value)
        shown = " ".join([text, *fields.values()])
        assert not english.search(shown), (refused.value.reason, shown)
    guarded = {a for a, rule in TRANSITIONS.items() if rule.guards}
    # Guards whose refusals are fixed sentences: each has its catalogue entry.
    for rule in TRANSITIONS.values():
        for guard in rule.guards:
            for const in guard.__code__.co_consts:
                if isinstance(const, str) and const == const.strip() and len(const.split()) > 3:
                    assert f"reason.{const}" in i18n.catalogue("zh-CN"), const
    assert seen <= guarded


def test_the_configuration_log_says_its_values_in_words_not_codes_ids_or_python(org) -> None:
    """系统日志 showed 操作人 system, 派往 local_street, 分类 7, 关键词 ['油烟', '噪音'] and 监测指标 {'depth': 'cm'}:
    now 系统, 工单所在街道, the category's and the unit's names, 油烟、噪音 and 积水深度（cm）."""
    from cityhub.dispatch import service as dispatch
    from cityhub.dispatch.rules import TargetKind
    from cityhub.dispatch.schemas import RuleCreate
    from cityhub.monitoring import service as monitoring
    from cityhub.monitoring.schemas import RuleCreate as AlarmRuleCreate
    from cityhub.monitoring.schemas import SensorCreate

    with session_scope() as s:
        rule = dispatch.create_rule(
            s,
            data=RuleCreate(
                name="油烟 → 本街道",
                category_id=org["cats"]["环境保护"],
                keywords=["油烟", "噪音"],
                target_kind=TargetKind.LOCAL_STREET,
            ),
        )
        rule_id = rule.id
        monitoring.create_sensor(
            s,
            data=SensorCreate(
                code="LOG-WL", name="积水点", kind="waterlogging", metrics={"depth": "cm"}, unit_code="W-JT"
            ),
        )
        alarm_rule = monitoring.create_rule(
            s,
            data=AlarmRuleCreate(
                name="积水超 15 厘米", sensor_kind="waterlogging", metric="depth", comparison=">=", threshold=15
            ),
        )
        alarm_rule_id = alarm_rule.id
    page = login("adm").get("/admin/log").text

    def entry(area: str, target: str) -> str:
        found = re.search(rf'data-area="{area}" data-target="{target}">(.*?)</tr>', page, re.S)
        assert found is not None, (area, target)
        return found.group(1)

    def value(row: str, field: str) -> str:
        found = re.search(rf'<span title="{field}">[^<]*</span>：(.*?)</div>', row)
        assert found is not None, field
        return found.group(1)

    rule_row, sensor_row = entry("dispatch_rule", str(rule_id)), entry("sensor", "LOG-WL")
    assert "<td>系统</td>" in rule_row and "system" not in rule_row
    assert value(rule_row, "target_kind") == "工单所在街道" and value(rule_row, "category_id") == "环境保护"
    assert value(rule_row, "keywords") == "油烟、噪音" and value(rule_row, "exclude_keywords") == "—"
    assert value(sensor_row, "metrics") == "积水深度（cm）" and value(sensor_row, "unit_id") == "景泰街道"
    # A sensor's offline limit and an alarm rule's kind by their names, not silent_after_minutes and threshold.
    assert '<span title="silent_after_minutes">离线时限（分钟）</span>' in sensor_row
    assert value(entry("alarm_rule", str(alarm_rule_id)), "kind") == "限值报警"


def test_catalogues_cover_the_same_keys_and_every_label_the_code_can_show() -> None:
    from cityhub.monitoring.rules import AlarmState, RuleKind, SensorKind, Severity
    from cityhub.org.models import Role as R
    from cityhub.org.models import UnitTier as T
    from cityhub.workorders.lifecycle import Action, AssistStatus, State
    from cityhub.workorders.models import AppealType, Channel, SlaStatus, Urgency

    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    assert set(zh) == set(en)
    for kind, enum in (
        ("state", State),
        ("action", Action),
        ("sla", SlaStatus),
        ("tier", T),
        ("role", R),
        ("channel", Channel),
        ("appeal", AppealType),
        ("urgency", Urgency),
        ("assist", AssistStatus),
        ("sensor_kind", SensorKind),
        ("severity", Severity),
        ("alarm_state", AlarmState),
        ("alarm_rule_kind", RuleKind),  # the configuration log's alarm rules
    ):
        for member in enum:
            assert f"{kind}.{member.value}" in zh, f"{kind}.{member.value}"
    from cityhub import backup
    from cityhub.dispatch import background, retrain
    from cityhub.jobs import JOBS

    for job in (*JOBS, background.JOB_NAME, retrain.JOB_NAME, backup.JOB_NAME):  # the status page names every job run
        assert f"job.{job}" in zh, job
    from cityhub.workorders import recompute
    from cityhub.workorders.models import MERGED_IN

    # The audit trail's events that are not life-cycle actions: the time-limit sweep's marks and recomputations, an
    # appeal merged into the order.
    for event in ("sla_warning", "sla_overdue", "sla_accept_overdue", recompute.ACTION, MERGED_IN):
        assert f"action.{event}" in zh, event
    from cityhub.monitoring.rules import DETECTIONS, MEASURES

    # An alarm's order names its measure as the web UI does.
    assert {k: zh[f"metric.{k}"] for k in {**MEASURES, **DETECTIONS}} == {**MEASURES, **DETECTIONS}
    from cityhub.analytics.correlation import PROACTIVE_SOURCE

    # The channel details cityhub writes itself: an alarm's order, a proactive finding's, an Open311 request's.
    written = ("source", "alarm_id", "sensor_code", "sensor_kind", "rule_id", "metric", "value", "threshold")
    for key in (*written, "comparison", "severity", "proactive", "finding", "order_ids", "open311"):
        assert f"attr.{key}" in zh, key
    for source in ("monitoring", PROACTIVE_SOURCE):
        assert f"source.{source}" in zh, source
    from cityhub import clitools
    from cityhub.dispatch.background import MERGE_ACTOR_NAME
    from cityhub.knowledge.service import REPLY_CHECKER
    from cityhub.workorders.placing import PLACER
    from cityhub.workorders.service import AUTO_DISPATCHER, SYSTEM

    # Who cityhub records itself, in the trails and the configuration log: named in words (系统日志 read "cli").
    for actor in (SYSTEM.name, AUTO_DISPATCHER, MERGE_ACTOR_NAME, REPLY_CHECKER.name, PLACER.name):
        assert f"actor.{actor}" in zh, actor
    assert f"actor.{clitools.cli_actor().name}" in zh
    from cityhub.nlp.reply_quality import FINDING_FIGURES

    # 答复审核 says each reply-check finding as a sentence, and the figures of those that have some after it.
    for code, (_, pattern) in FINDING_FIGURES.items():
        assert f"reviews.finding.{code}" in zh and (pattern is None or f"reviews.figures.{code}" in zh), code
    t = i18n.Translator("en")
    assert t("intake.created", number="BY1") == "Received: order BY1."
    assert i18n.Translator("zh-CN")("no.such.key") == "no.such.key"
    assert i18n.negotiate("en", "zh-CN") == "en" and i18n.negotiate(None, None) == "zh-CN"
    assert i18n.negotiate("xx", "en;q=0, zh;q=0.1") == "zh-CN"


def test_english_counts_agree_with_their_nouns() -> None:
    """ "1 orders (0 overdue)" read the one map's list in English: a count's noun is written {n|order|orders} and the
    word agrees, in the pages (i18n.translate) and in the map's script (map.js's format reads the same form). Every
    English message counting with a parameter of these names says its noun so; Chinese has no plural."""
    t = i18n.Translator("en")
    assert t("map.js.orders_in_cell", place="A", n=1, overdue=0) == "A: 1 open order (0 overdue)"
    assert t("map.js.orders_in_cell", place="A", n=2, overdue=1) == "A: 2 open orders (1 overdue)"
    assert t("calendar.rows_refused", n=1).startswith("1 row was not entered")
    assert t("why.reply.incomplete", addressed=0, points=1) == "About 0 of the appeal's 1 point answered"
    # The verb agrees too (the import page read "1 new order is checked for duplicates first, then wait …").
    queued = "{} new {} checked for duplicates first, then {} in the dispatch queue"
    assert t("import.queued_dedupe_note", n=1) == queued.format(1, "order is", "waits")
    assert t("import.queued_dedupe_note", n=2) == queued.format(2, "orders are", "wait")
    assert i18n.Translator("zh-CN")("queue.bulk_done", n=1) == i18n.catalogue("zh-CN")["queue.bulk_done"].format(n=1)
    # "About 1 of the appeal's 1 points answered", "1 weekday holidays", "knows only 1 phrases" …
    counts = "n|count|total|calls|errors|days|kb|duplicates|similar|merged|cells|points|known|asked|entered|universe"
    counts += "|minutes|accept|finish"
    adjective = "open|new|more|imported|working|first|instant|possible|similar|weekday|rejected"
    bare = re.compile(rf"\{{({counts})\}} (?:(?:{adjective}) )*[a-z]+s\b")
    script = (Path(i18n.__file__).parent / "static" / "map.js").read_text(encoding="utf-8")
    assert "[^{}|]*" in script  # map.js's format reads {name|one|other}
    wrong = {k: v for k, v in i18n.catalogue("en").items() if bare.search(v) and "|" not in v}
    assert wrong == {}, wrong


def test_counts_are_written_with_the_languages_digit_grouping_and_years_and_ids_as_they_are() -> None:
    """English pages wrote "3006 orders" where the one map's tiles wrote 3,006: a count said through a message's
    parameter (``i18n.COUNT_PARAMS``) is written grouped as the language writes counts (``num.group``), in English
    and in Chinese (whose tiles grouped already); a year, an id, an order's number, a limit given as text are not."""
    en, zh = i18n.Translator("en"), i18n.Translator("zh-CN")
    assert en("orders.view_count", n=3006) == "3,006 orders" and en("orders.view_count", n=1) == "1 order"
    assert zh("orders.view_count", n=3006) == zh("orders.view_count", n="3,006") != zh("orders.view_count", n="3006")
    assert (
        en("orders.view_count", n=1_234_567) == "1,234,567 orders"
        and en("orders.view_count", n=-1000) == "-1,000 orders"
    )
    assert en("dash.auto_share_note", auto=1200, total=3006) == "1,200 of 3,006 first dispatches"
    assert en("queue.bulk_partial", n=1000, m=2000).startswith("Dispatched 1,000; 2,000 not dispatched")
    builtin = en("calendar.builtin", year=2026, n=1000)
    assert "of 2026 are built in (1,000 weekday holidays)" in builtin and "2,026" not in builtin
    assert zh("calendar.builtin", year=2026, n=7) == i18n.catalogue("zh-CN")["calendar.builtin"].format(year=2026, n=7)
    assert en("why.rules_only", id=12345, priority=1000, needed=1000, unit="A") == (
        "high-priority rule #12345 (priority 1000 ≥ 1000) → A"
    )
    assert en("order.title", number=202612060001) == "Order 202612060001"
    assert en("err.at_most", n="1000") == "At most 1000." and en("orders.view_count", n=True) == "True orders"
    assert en.count(3006) == "3,006" and zh.count(3006) == "3,006" and en.count(2.5) == 2.5
    # A limit a refusal names is a count of characters, written as one.
    from cityhub.web.forms import field_message

    assert field_message(en, "content is longer than 20000 characters") == "At most 20,000 characters."
    assert field_message(zh, "content is longer than 20000 characters") == "最多 20,000 个字。"


def test_the_dashboards_tables_group_their_figures_as_its_tiles_do(org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiles wrote 3,006 and the tables beside them 3006: a state's, a category's, a street's count, a unit's
    承办量 in the ranking, a hot topic's count — every figure of the dashboard is written by ``t.count``."""
    from cityhub.analytics import kpi

    _order(title="餐馆油烟扰民")
    real = web_routes.render

    def inflated(request: Any, template: str, **context: Any) -> Any:
        if template == "dashboard.html":
            context |= {
                "by_state": [(State.RECEIVED, 3006)],
                "by_category": [(None, 2345)],
                "by_street": [(None, 1234)],
                "hot": [{"topic": "餐馆油烟扰民", "count": 4567}],
                "rankings": [
                    (
                        tier,
                        kpi.Ranking("score", 30, [{"rank": 1, "unit_id": 1, "name": "甲", "n": 5678, "value": 1}], []),
                    )
                    for tier, _ in context["rankings"]
                ],
            }
        return real(request, template, **context)

    monkeypatch.setattr(web_routes, "render", inflated)
    for lang in ("zh-CN", "en"):
        client = login("lead")
        client.get(f"/lang/{lang}")
        page = client.get("/dashboard").text
        for figure in ("3,006", "2,345", "1,234", "4,567", "5,678"):
            assert f'<td class="num">{figure}</td>' in page or f">{figure}</a></td>" in page, (lang, figure)
        assert not re.search(r">(3006|2345|1234|4567|5678)<", page), lang


def test_a_figure_alone_in_a_pages_table_cell_is_written_by_t_count() -> None:
    """One way of writing a figure standing alone in a table: ``t.count`` (grouped as the language writes counts),
    never the bare value — a count cell (``class="num"``) printing a value as it is read 3006 beside 3,006."""
    templates = Path(i18n.__file__).parent / "templates"
    # Not counts: a rule's priority, a threshold, a duration in minutes.
    not_counts = {"r.priority", "row.threshold", "v.duration_min"}
    bare = {}
    for template in templates.glob("*.html"):
        for value in re.findall(r'<td class="num[^"]*"[^>]*>\{\{ ([^}]+?) \}\}', template.read_text(encoding="utf-8")):
            # A figure written by a filter or a format (a share, a score, a measurement) is not a count.
            if value not in not_counts and not re.match(r"t\.(count|label)\(|.*[|%]", value):
                bare.setdefault(template.name, []).append(value)
    assert bare == {}, bare


def test_the_order_lists_english_badges_read_as_labels_and_say_what_they_mean() -> None:
    """Badges are labels like an order's state's (Dispatched, In progress): the list's read "accepted late", "extension
    requested", "more files", "urged 2×", the queue's "being checked for duplicates", others "retired", "new" in
    lower case — and 签收超期 marks an order not accepted in time, which a dispatched one still waiting for acceptance
    is: not "accepted" at all."""
    en = i18n.catalogue("en")
    templates = Path(i18n.__file__).parent / "templates"
    badges = {"orders.page", "queue.dispatch_pending", "queue.duplicate_check_pending"}  # the last two named in parts
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        badges |= set(re.findall(r"<span class=\"badge[^\"]*\"[^>]*>\s*\{\{ t\('([\w.]+\w)'\W", text))
        # A table's column names too (the trail's read "time, by, action, state, note"; the ranking's "rank, unit").
        badges |= set(re.findall(r"<th[^>]*>\s*\{\{ t\('([\w.]+\w)'\W", text))
        # A cell's or a choice's value alone ("any category", "anywhere", "yes", "satisfied", "every … sensor").
        badges |= set(re.findall(r"<(?:td|option)[^>]*>\s*\{\{ t\('([\w.]+\w)'\W", text))
        # A label before its colon ("why: returned order …", "reply: …" began their lines in lower case).
        badges |= set(re.findall(r"\{\{ t\('([\w.]+\w)'\) \}\}\{\{ t\.colon \}\}", text))
        # A check box's label ("include inactive" beside 知识库's search).
        badges |= set(re.findall(r"<label><input type=\"checkbox\"[^>]*> \{\{ t\('([\w.]+\w)'\W", text))
        # A family of labels, one per value, a cell's, a choice's or a heading's whole text: the sensors' states
        # ("in service", "alarming"), the correlation graph's kinds of item (headed "topic", "place"), the
        # configuration log's actions ("created", "key revoked").
        family = r"<(td|option|h[1-6])[^>]*>\s*\{\{ t\('([\w.]+\.)' ~ [\w.]+\) \}\}\s*</\1>"
        badges |= {key for _, prefix in re.findall(family, text) for key in en if key.startswith(prefix)}
    assert {"order.accept_overdue", "orders.urged", "mon.retired", "brain.topics.new", "order.actor"} <= badges
    assert {"rules.any_category", "common.yes", "mon.rule.every", "order.satisfied_yes", "queue.reason"} <= badges
    assert "kb.show_inactive" in badges
    assert {"mon.status.active", "brain.node.topic", "log.action.update", "rules.tier.street"} <= badges
    lower = {key: en[key] for key in sorted(badges) if not en[key][0].isupper() and not en[key].startswith("{")}
    assert lower == {}, lower
    assert "accepted" not in en["order.accept_overdue"].lower()
    # The order page's channel details are labels too (they read "demo data Yes", "sensor type Water level").
    assert {key: v for key, v in en.items() if key.startswith("attr.") and not v[0].isupper()} == {}


def test_the_punctuation_around_names_and_lists_is_the_languages_own() -> None:
    """Templates take the colon, the list separator and brackets from the catalogue (t.colon, t.sep, t.lp, t.rp):
    "地点：甲、乙（街道）" in Chinese, "Place: A, B (street)" in English — never a Chinese mark in an English page."""
    zh, en = i18n.Translator("zh-CN"), i18n.Translator("en")
    assert (zh.colon, zh.sep, zh.lp, zh.rp) == ("：", "、", "（", "）")
    assert (en.colon, en.sep, en.lp, en.rp) == (": ", ", ", " (", ")")
    templates = Path(i18n.__file__).parent / "templates"
    for path in sorted(templates.glob("*.html")):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"), flags=re.S)
        marks = sorted(set(re.findall("[：、（）]", text)))
        assert not marks, f"{path.name}: {marks} written into the template"
        # Nor Latin brackets around a message: "说明 (选填)", "派单 (自动派单)" on a Chinese page.
        bracketed = re.findall(r"\(\{\{ t[.(][^}]*\}\}\)", text)
        assert not bracketed, f"{path.name}: {bracketed}"


def test_every_form_that_deletes_or_revokes_asks_first() -> None:
    """A deletion or a revocation cannot be undone (a time-limit rule's or a calendar day's moves the deadlines of the
    open orders, a revoked key stops a system at once): its form asks before it is sent (data-confirm), as deleting
    a routing rule did — the others went at one click on a small button beside the row."""
    templates = Path(i18n.__file__).parent / "templates"
    forms = []
    for path in sorted(templates.glob("*.html")):
        for form in re.findall(r"<form [^>]*>", path.read_text(encoding="utf-8")):
            if re.search(r'action="[^"]*/(delete|revoke)"', form):
                forms.append((path.name, form))
    assert len(forms) >= 6
    assert [f for f in forms if "data-confirm=" not in f[1]] == []


def test_a_message_keeps_a_markup_parameter_and_escapes_the_rest() -> None:
    """A time kept whole by the `when` filter stays markup inside a message; a plain parameter is escaped as ever."""
    from markupsafe import Markup

    zh = i18n.Translator("zh-CN")
    kept = zh("users.locked_until", until=Markup('<span class="nowrap">2027-01-04</span>'))
    assert isinstance(kept, Markup) and '<span class="nowrap">2027-01-04</span>' in kept
    assert "&lt;b&gt;" in Markup.escape(zh("users.locked_until", until="<b>"))  # plain: escaped by the page


def test_a_warmed_up_application_leaves_its_first_requests_nothing_to_analyse_or_compile(org, monkeypatch) -> None:
    """``cityhub serve`` warms a new process up in the background: each route's dependencies analysed and each page
    template compiled before the first request that reaches it would (a second or more of a first user's wait)."""
    import fastapi.routing

    from cityhub.main import warm_up_pages
    from cityhub.web import support

    analysed: list[str] = []
    real_analysis = fastapi.routing.get_dependant

    def analysis(**kwargs: Any) -> Any:
        analysed.append(kwargs["path"])
        return real_analysis(**kwargs)

    def compilation(*args: Any) -> Any:
        raise AssertionError(f"template compiled at a request: {args[-1]}")

    monkeypatch.setattr(fastapi.routing, "get_dependant", analysis)
    paths = ("/login", "/track", "/api/v1/categories", "/open311/v2/services.json", "/no-such-page")
    cold = TestClient(create_app(), raise_server_exceptions=False)
    for path in paths:
        cold.get(path, headers={"Accept": "text/html"})
    assert analysed  # a new application analyses its routes as requests reach them
    analysed.clear()
    app = create_app()
    support._env.cache.clear()
    warm_up_pages(app)
    assert analysed
    analysed.clear()
    monkeypatch.setattr(support._env.loader, "get_source", compilation)
    warm = TestClient(app, raise_server_exceptions=False)
    answers = [warm.get(path, headers={"Accept": "text/html"}).status_code for path in paths]
    assert answers == [200, 200, 401, 200, 404] and analysed == []


def test_pages_render_without_vendor_files_and_the_app_says_so(org, tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path / "absent")
    with caplog.at_level("WARNING", logger="cityhub.web.vendor"):
        client = TestClient(create_app(), raise_server_exceptions=False)  # a new application warns as it starts
    assert any("vendor files missing" in r.getMessage() for r in caplog.records)
    page = client.get("/login")
    assert page.status_code == 200 and "htmx.min.js" not in page.text and "pico.min.css" not in page.text
    assert 'data-testid="degraded"' in page.text and "/static/app.css" in page.text
    assert client.get("/static/app.css").status_code == 200


def test_vendor_files_are_copied_from_node_modules_and_served(org, tmp_path) -> None:
    node_modules = tmp_path / "node_modules"
    with pytest.raises(FileNotFoundError, match=r"htmx\.org"):
        vendor.copy(node_modules, tmp_path / "vendor")
    for rel in vendor.FILES.values():
        (node_modules / rel).parent.mkdir(parents=True, exist_ok=True)
        (node_modules / rel).write_text(f"/* {rel} */")
    written = vendor.copy(node_modules, tmp_path / "vendor")
    assert sorted(p.relative_to(tmp_path / "vendor").as_posix() for p in written) == sorted(vendor.FILES)
    assert vendor.missing(tmp_path / "vendor") == []
    assert vendor.main([str(tmp_path / "nowhere")]) == 1
    if not vendor.missing():  # after `make install` the app serves the real files
        client = _client()
        assert client.get("/static/vendor/htmx.min.js").status_code == 200
        assert "/static/vendor/htmx.min.js" in client.get("/login").text


def test_the_api_documentation_is_served_from_the_vendored_swagger_ui_never_a_cdn(org, tmp_path, monkeypatch) -> None:
    client = _client()
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads its script and fonts from CDNs
    icon = client.get("/favicon.ico", follow_redirects=False)
    assert icon.status_code == 301 and icon.headers["location"] == "/static/favicon.svg"
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg")
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text and "<script>" not in docs.text
    if not vendor.missing():
        assert '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js">' in docs.text
        assert 'data-openapi-url="/openapi.json"' in docs.text
        assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
        assert client.get("/static/api-docs.js").status_code == 200
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path / "absent")
    degraded = client.get("/docs")
    assert degraded.status_code == 200 and "swagger-ui-bundle" not in degraded.text
    assert "make install" in degraded.text and 'href="/openapi.json"' in degraded.text


def test_the_ui_s_own_files_are_revalidated_so_an_upgrade_reaches_every_browser(org) -> None:
    """Pages name /static/app.js without a version: each answer says ``no-cache`` (kept, but asked about first), so a
    browser does not run a new release's pages with the old script; asking costs a 304."""
    client = _client()
    first = client.get("/static/app.js")
    assert first.status_code == 200 and first.headers["cache-control"] == "no-cache"
    again = client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache" and again.content == b""


def test_pages_may_run_only_the_server_s_own_scripts(org) -> None:
    client = login("op")
    for path in ("/login", "/intake", "/orders", "/docs", "/track"):
        response = client.get(path)
        directives = (part.partition(" ") for part in response.headers["content-security-policy"].split("; "))
        policy = {name: value for name, _, value in directives}
        assert policy["script-src"] == "'self'" and policy["object-src"] == "'none'", path
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'self'", path
        # No inline script runs under that policy: every script of the page is a file of the server.
        scripts = re.findall(r"<script\b[^>]*>", response.text)
        assert all(' src="/static/' in tag or 'type="application/json"' in tag for tag in scripts), (path, scripts)
        assert not re.search(r"\son[a-z]+=", response.text), path  # no inline event handlers either


# ------------------------------------------------------------------------------------------- overload


def test_an_overloaded_server_refuses_pages_and_api_calls_with_503_and_retry_after(org, monkeypatch) -> None:
    """While every read place is taken and a request waits longer than CITYHUB_HTTP_QUEUE_TIMEOUT_MS, a browser gets
    the Chinese error page that reloads itself, an API client the JSON error body, an Open311 client Open311's
    error format; all say when to retry."""
    from cityhub.api.gate import RequestGate, get_gate_settings

    monkeypatch.setenv("CITYHUB_HTTP_READ_CONCURRENCY", "1")
    monkeypatch.setenv("CITYHUB_HTTP_QUEUE_TIMEOUT_MS", "20")
    get_gate_settings.cache_clear()
    try:
        with TestClient(shared_app()) as client:
            assert client.get("/login").status_code == 200  # builds the middleware stack and the gate's lanes
            gate = client.app.middleware_stack  # type: ignore[attr-defined]
            while not isinstance(gate, RequestGate):
                gate = gate.app
            reads = gate._lanes["read"].semaphore
            client.portal.call(reads.acquire)  # the only read place is taken, as by a slow request
            try:
                page = client.get("/login", headers={"Accept": "text/html,application/xhtml+xml"})
                api = client.get("/api/v1/orders", headers={"Accept": "text/html"})
                open311 = client.get("/open311/v2/services.xml", headers={"Accept": "text/html"})
            finally:
                client.portal.call(reads.release)
            again = client.get("/login")
    finally:
        get_gate_settings.cache_clear()
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    seconds = page.headers["retry-after"]
    assert f"页面将在 {seconds} 秒后自动重试" in page.text
    assert f'<meta http-equiv="refresh" content="{seconds}">' in page.text
    assert api.status_code == 503 and int(api.headers["retry-after"]) >= 1
    body = api.json()
    assert body["code"] == "overloaded" and "no place was free" in body["message"]
    assert body["details"]["lane"] == "read"
    assert open311.status_code == 503 and "<errors>" in open311.text and "the server is busy" in open311.text
    assert open311.headers["retry-after"] == api.headers["retry-after"] or int(open311.headers["retry-after"]) >= 1
    assert again.status_code == 200  # the place was given back; nothing is left waiting


def test_a_refused_routing_step_is_explained_as_such_not_as_a_lead_unit_step() -> None:
    from cityhub.errors import PermissionDenied
    from cityhub.web.routes import error_text

    t = i18n.Translator("zh-CN")
    routing = PermissionDenied("held elsewhere", details={"lead_unit_id": 3, "routing": True})
    assert "区派单员" in error_text(t, routing)[0]
    assert "承办单位进行" in error_text(t, PermissionDenied("not lead", details={"lead_unit_id": 3}))[0]
