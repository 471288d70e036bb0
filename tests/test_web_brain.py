"""The city brain's pages (城市大脑: ``/brain/findings``, ``/brain/topics``, ``/brain/graph``) and the hot-topics API
(``/api/v1/topics``) over the real app on both backends.

The small world of ``web_helpers`` gets six communities per street and a month of orders (June 2026): a
background of traffic and housing appeals everywhere, eight callers about night-time construction noise at one
community of 景泰街道 (W-JT) and eight about a polluted river at one community of 京溪街道 (W-JX) — two recurring
problems — mined into hot topics by ``topics_store.mine_database``. A street dispatcher of 京溪街道 (``disp_b``)
reads within that street only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app_helpers import shared_app
from cityhub.analytics import risk, topics_store
from cityhub.analytics.models import HotTopic, HotTopicOrder
from cityhub.auth import service as auth
from cityhub.db import reset_engine, session_scope
from cityhub.intake.service import submit
from cityhub.onemap import service as onemap
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.org.schemas import UserCreate
from cityhub.workorders.models import Category, Order, OrderEvent
from web_helpers import ACCOUNTS, PASSWORD, build_world, hidden, login, world_env

PERIOD = "2026-06"
NOISE_TEXT = "工地夜间施工噪音扰民，学生无法休息，鸿鹄路工地旁第{i}次反映"
RIVER_TEXT = "京溪河道污水排放发臭，老人晨练受影响，沙太路河边第{i}次反映"


@pytest.fixture
def world(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    onemap.clear_caches()  # also forgets the risk findings of an earlier test on the same database URL
    with session_scope() as s:
        w = build_world(s)
        communities: dict[str, list[Unit]] = {}
        for code, street_id in w.streets.items():
            communities[code] = [
                Unit(
                    code=f"{code}-C{i}",
                    name=f"{code[-2:]}第{i}社区居委会",
                    tier=UnitTier.COMMUNITY,
                    parent_id=street_id,
                )
                for i in range(6)
            ]
            s.add_all(communities[code])
        auth.create_account(
            s,
            data=UserCreate(username="disp_b", full_name="京溪派单", role=Role.DISPATCHER, unit_id=w.street_b),
            password=PASSWORD,
        )
        s.add(Category(code="W9", name="水务", level=1, path="水务"))
        s.flush()
        start = datetime(2026, 6, 1, 2, tzinfo=UTC)
        every = [(code, c) for code, cs in communities.items() for c in cs]
        for i in range(96):  # the background over four weeks, eight orders at each community
            code, c = every[i % len(every)]
            submit(
                s,
                data={
                    "channel": "web",
                    "content": f"反映路边车辆违停和公交车问题{i}" if i // 12 % 2 else f"物业电梯漏水没人管{i}",
                    "citizen_phone": f"1390000{i:04d}",
                    "category": "交通运输" if i // 12 % 2 else "住房保障",
                    "street_code": code,
                    "community_code": c.code,
                    "created_at": (start + timedelta(hours=7 * i)).isoformat(),
                },
                similar=False,
                defer_duplicates=True,
            )
        for code, text, category in (("W-JT", NOISE_TEXT, "环境保护"), ("W-JX", RIVER_TEXT, "水务")):
            for i in range(8 if code == "W-JT" else 12):  # one community, one problem, 8 (12) callers
                submit(
                    s,
                    data={
                        "channel": "hotline",
                        "title": text.format(i=i)[:12],
                        "content": text.format(i=i),
                        "citizen_name": "欧阳明华",
                        "citizen_phone": f"138{i:04d}{len(code):04d}",
                        "category": category,
                        "street_code": code,
                        "community_code": communities[code][0].code,
                        "created_at": (start + timedelta(days=2 * i + 1, hours=1 if code == "W-JT" else 5)).isoformat(),
                    },
                    similar=False,
                    defer_duplicates=True,
                )
        s.flush()
        topics_store.mine_database(s)
        noise = set(s.scalars(select(Order.id).where(Order.content.like("%施工噪音%"))))
        river = set(s.scalars(select(Order.id).where(Order.content.like("%河道污水%"))))
        members = {o: t for o, t in s.execute(select(HotTopicOrder.order_id, HotTopicOrder.topic_id))}
        return {
            "noise": noise,
            "river": river,
            "noise_topic": _main_topic(members, noise),
            "river_topic": _main_topic(members, river),
            "noise_place": communities["W-JT"][0].name.removesuffix("居委会"),
            "river_place": communities["W-JX"][0].name.removesuffix("居委会"),
        }


def _main_topic(members: dict[int, int], orders: set[int]) -> int:
    """The topic most of these orders were mined into."""
    topics = [members[o] for o in orders if o in members]
    assert len(topics) >= 5, "the miner should have grouped the repeated problem"
    return max(set(topics), key=topics.count)


def _finding_links(html: str) -> list[str]:
    return re.findall(r'href="/brain/findings/(F[0-9a-f]{12})', html)


def _recurring(place: str) -> risk.Finding:
    from cityhub.analytics.correlation import parse_period

    with session_scope() as s:
        found = risk.findings(s, period=parse_period(PERIOD), kinds=["recurring"])
    [finding] = [f for f in found if f.place == place and f.category in ("环境保护", "水务")]
    return finding


# ------------------------------------------------------------------------------------------------- menu


def test_the_city_brain_is_in_the_menu_of_the_roles_holding_brain_read_only(world) -> None:
    readers = {"disp", "sup", "lead", "adm"}
    for username in ACCOUNTS:
        client = login(username)
        menu = client.get("/account").text
        if username in readers:
            assert 'href="/brain"' in menu, username
            home = client.get("/brain", follow_redirects=False)
            assert home.status_code == 303 and home.headers["location"] == "/brain/findings", username
            page = client.get("/brain/findings")
            assert page.status_code == 200 and 'aria-current="page">城市大脑' in page.text, username
            for sub in ("/brain/findings", "/brain/topics", "/brain/graph"):
                assert f'href="{sub}"' in page.text  # the sub-navigation
        else:
            assert 'href="/brain"' not in menu, username
            for path in ("/brain", "/brain/findings", "/brain/topics", "/brain/graph"):
                assert client.get(path, follow_redirects=False).status_code == 403, (username, path)


# ------------------------------------------------------------------------------------------------ findings


def test_findings_page_lists_the_recurring_problems_most_significant_first_and_filters(world) -> None:
    noise, river = _recurring(world["noise_place"]), _recurring(world["river_place"])
    page = login("lead").get("/brain/findings", params={"period": PERIOD})
    assert page.status_code == 200
    links = _finding_links(page.text)
    assert noise.id in links and river.id in links
    block = page.text.split(f'data-testid="finding-{noise.id}"')[1].split("</li>")[0]
    assert "反复发生" in block and world["noise_place"] in block and "环境保护" in block
    assert "8 人次反映" in block and "显著" in block and "2026-06-01 至 2026-06-30" in block  # 30 days to its end
    # Most significant first: the order of the q-values (an anomaly's z as its tail probability).
    with session_scope() as s:
        from cityhub.analytics.correlation import parse_period

        everything = {f.id: f for f in risk.findings(s, period=parse_period(PERIOD))}
    ranks = [
        everything[i].q_value if everything[i].q_value is not None else 0.0 for i in dict.fromkeys(links)
    ]  # anomalies of the small world have no q (z ranks them as tails, well below 0.05 here)
    assert [r for r in ranks if r] == sorted(r for r in ranks if r)

    rising_only = login("lead").get("/brain/findings", params={"period": PERIOD, "kind": "rising"}).text
    assert noise.id not in _finding_links(rising_only)
    recurring_only = login("lead").get("/brain/findings", params={"period": PERIOD, "kind": "recurring"}).text
    assert set(_finding_links(recurring_only)) >= {noise.id, river.id}
    assert all(everything[i].kind == "recurring" for i in _finding_links(recurring_only))


def test_bad_filters_are_a_message_on_the_page_not_an_error(world) -> None:
    client = login("sup")
    for params, text in (
        ({"period": "2026-13"}, "无法识别统计周期「2026-13」"),
        ({"kind": "weird"}, "未知的预警类型"),
        ({"kind": "weird", "period": "x"}, "无法识别统计周期「x」，下面显示截至今天的结果。可填写：2026-11（月）"),
        ({"kind": "weird", "period": "x"}, "未知的预警类型"),
    ):
        page = client.get("/brain/findings", params=params)
        assert page.status_code == 200 and text in page.text, params
    topics = client.get("/brain/topics", params={"period": "last week"})
    assert topics.status_code == 200 and "无法识别统计周期「last week」" in topics.text
    graph = client.get("/brain/graph", params={"node": "噪音", "period": "Q9"})
    assert graph.status_code == 200 and "无法识别统计周期「Q9」" in graph.text
    assert client.get("/brain/findings/Fdeadbeef0000", params={"period": PERIOD}).status_code == 404
    assert client.get("/brain/findings/whatever", params={"period": "nonsense"}).status_code == 422
    assert client.get("/brain/topics/999999").status_code == 404


def test_finding_detail_lists_its_orders_masked_for_the_reader(world) -> None:
    noise = _recurring(world["noise_place"])
    leader = login("lead").get(f"/brain/findings/{noise.id}", params={"period": PERIOD})
    assert leader.status_code == 200
    listed = {int(i) for i in re.findall(r'href="/orders/(\d+)"', leader.text)}
    assert listed == world["noise"] == set(noise.order_ids)
    # A leader reads citizens' data masked, as the order list shows it; an administrator in clear.
    assert "欧阳明华" not in leader.text and "欧***" in leader.text
    admin = login("adm").get(f"/brain/findings/{noise.id}", params={"period": PERIOD})
    assert "欧阳明华" in admin.text
    assert "8 人次反映" in leader.text and "鸿鹄路" in leader.text  # the place its orders' texts name


def test_a_findings_tab_says_the_finding_its_heading_names(world) -> None:
    """Every finding's browser tab said 预警详情: it says the page's heading — the kind, the place and what recurs."""
    noise = _recurring(world["noise_place"])
    page = login("lead").get(f"/brain/findings/{noise.id}", params={"period": PERIOD}).text
    heading = re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)).strip()  # type: ignore[union-attr]
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)  # type: ignore[union-attr]
    assert title.startswith(heading + " · ") and "预警详情" in title, (title, heading)


def test_leader_opens_the_proactive_order_once_through_intake_audited(world) -> None:
    noise = _recurring(world["noise_place"])
    client = login("lead")
    page = client.get(f"/brain/findings/{noise.id}", params={"period": PERIOD})
    assert 'data-testid="open-button"' in page.text
    form = {"csrf_token": hidden(page.text), "period": PERIOD}
    # Without the session's CSRF token: refused, nothing opened.
    refused = client.post(f"/brain/findings/{noise.id}/open", data={"period": PERIOD}, follow_redirects=False)
    assert refused.status_code == 403
    assert _proactive(noise.id) == []

    opened = client.post(f"/brain/findings/{noise.id}/open", data=form, follow_redirects=False)
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == f"/brain/findings/{noise.id}?period={PERIOD}"
    [order_id] = _proactive(noise.id)
    after = client.get(opened.headers["location"])
    assert f'href="/orders/{order_id}"' in after.text and "已生成主动工单" in after.text
    # no space after the full-width colon
    assert f'已为这条预警生成主动工单：<a href="/orders/{order_id}">' in after.text
    assert 'data-testid="open-button"' not in after.text
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None and order.channel.value == "grid" and order.attributes["source"] == "risk"
        assert sorted(order.attributes["order_ids"]) == sorted(noise.order_ids)
        events = list(s.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)))
        assert events[0].action == "create"
    # Idempotent: the supervisor's press (and the leader's again) return the same order.
    sup = login("sup")
    again = sup.post(
        f"/brain/findings/{noise.id}/open",
        data={"csrf_token": hidden(sup.get(f"/brain/findings/{noise.id}?period={PERIOD}").text), "period": PERIOD},
        follow_redirects=False,
    )
    assert again.status_code == 303 and _proactive(noise.id) == [order_id]
    assert client.post(f"/brain/findings/{noise.id}/open", data=form, follow_redirects=False).status_code == 303
    assert _proactive(noise.id) == [order_id]


def _proactive(finding_id: str) -> list[int]:
    with session_scope() as s:
        return list(s.scalars(select(Order.id).where(Order.external_id == f"finding:{finding_id}")))


def test_a_reader_without_the_right_to_urge_sees_no_button_and_is_refused(world) -> None:
    noise = _recurring(world["noise_place"])
    client = login("disp")  # reads the city brain, does not urge
    page = client.get(f"/brain/findings/{noise.id}", params={"period": PERIOD})
    assert page.status_code == 200 and 'data-testid="open-button"' not in page.text
    assert "督办权限" in page.text
    refused = client.post(
        f"/brain/findings/{noise.id}/open",
        data={"csrf_token": hidden(page.text), "period": PERIOD},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and _proactive(noise.id) == []


def test_a_street_reader_sees_only_its_streets_findings_topics_and_orders(world) -> None:
    noise, river = _recurring(world["noise_place"]), _recurring(world["river_place"])
    client = login("disp_b")
    page = client.get("/brain/findings", params={"period": PERIOD, "kind": "recurring"}).text
    assert noise.id not in _finding_links(page)
    # Computed over the street's own orders (as GET /api/v1/findings computes them for this reader), the river is
    # still a recurring problem there — a finding of its own, not the district's.
    mine = _finding_links(page)
    api = client.get("/api/v1/findings", params={"period": PERIOD, "kind": "recurring"}).json()
    assert set(mine) == {f["id"] for f in api} and mine
    assert world["river_place"] in page and world["noise_place"] not in page
    assert client.get(f"/brain/findings/{noise.id}", params={"period": PERIOD}).status_code == 404
    detail = client.get(f"/brain/findings/{mine[0]}", params={"period": PERIOD})
    assert {int(i) for i in re.findall(r'href="/orders/(\d+)"', detail.text)} <= world["river"]

    topics = client.get("/api/v1/topics", params={"period": PERIOD, "limit": 200}).json()
    ids = {t["id"] for t in topics["items"]}
    assert world["river_topic"] in ids and world["noise_topic"] not in ids
    assert client.get(f"/api/v1/topics/{world['noise_topic']}", params={"period": PERIOD}).status_code == 404
    assert client.get(f"/brain/topics/{world['noise_topic']}", params={"period": PERIOD}).status_code == 404
    river_topic = client.get(f"/api/v1/topics/{world['river_topic']}", params={"period": PERIOD}).json()
    assert {o["id"] for o in river_topic["orders"]} <= world["river"] | _street_orders("W-JX")
    assert river.id not in _finding_links(login("lead").get("/brain/findings", params={"kind": "rising"}).text)


def _street_orders(code: str) -> set[int]:
    with session_scope() as s:
        street = s.scalars(select(Unit.id).where(Unit.code == code)).one()
        return set(s.scalars(select(Order.id).where(Order.street_id == street)))


# ------------------------------------------------------------------------------------------------ topics


def test_topics_api_lists_pages_and_details_within_the_scope(world) -> None:
    client = login("lead")
    body = client.get("/api/v1/topics", params={"period": PERIOD, "limit": 200}).json()
    assert body["period"] == PERIOD and body["total"] == len(body["items"]) >= 2
    by_id = {t["id"]: t for t in body["items"]}
    noise = by_id[world["noise_topic"]]
    with session_scope() as s:
        members = set(s.scalars(select(HotTopicOrder.order_id).where(HotTopicOrder.topic_id == world["noise_topic"])))
    assert noise["count"] == len(members) and noise["size"] == len(members)
    assert noise["period_first_at"] >= "2026-06-01" and noise["period_last_at"] < "2026-07-01"
    counts = [t["count"] for t in body["items"]]
    assert counts == sorted(counts, reverse=True)
    first = client.get("/api/v1/topics", params={"period": PERIOD, "limit": 1}).json()
    second = client.get("/api/v1/topics", params={"period": PERIOD, "limit": 1, "offset": 1}).json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [t["id"] for t in body["items"][:2]]
    assert client.get("/api/v1/topics", params={"period": "2025-07"}).json()["items"] == []

    detail = client.get(f"/api/v1/topics/{world['noise_topic']}", params={"period": PERIOD}).json()
    assert {o["id"] for o in detail["orders"]} == members
    assert all(o["citizen_name"] in (None, "欧***") for o in detail["orders"])  # masked for a leader

    # A street reader's view of a topic: counted over their scope only.
    street = login("disp_b").get(f"/api/v1/topics/{world['river_topic']}", params={"period": PERIOD}).json()
    with session_scope() as s:
        jx = s.scalars(select(Unit.id).where(Unit.code == "W-JX")).one()
        in_scope = s.scalar(
            select(func.count())
            .select_from(HotTopicOrder)
            .join(Order, Order.id == HotTopicOrder.order_id)
            .where(HotTopicOrder.topic_id == world["river_topic"], Order.street_id == jx)
        )
    assert street["count"] == street["size"] == in_scope

    assert client.get("/api/v1/topics", params={"period": "2026-13"}).status_code == 422
    assert client.get("/api/v1/topics", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/topics/999999").status_code == 404
    assert TestClient(shared_app()).get("/api/v1/topics").status_code == 401
    assert login("cit").get("/api/v1/topics", params={"period": PERIOD}).status_code == 403  # staff only

    # A representative title is one person's appeal: a masked reader (the leader) reads it scrubbed.
    with session_scope() as s:
        topic = s.get(HotTopic, world["noise_topic"])
        assert topic is not None
        topic.representative_title = "工地噪音扰民请回电13912345678"
    lead = client.get(f"/api/v1/topics/{world['noise_topic']}", params={"period": PERIOD}).json()
    assert "13912345678" not in lead["topic"] and lead["topic"].startswith("工地噪音扰民")
    page = client.get(f"/brain/topics/{world['noise_topic']}", params={"period": PERIOD}).text
    assert "13912345678" not in page and "工地噪音扰民" in page
    admin = login("adm").get(f"/api/v1/topics/{world['noise_topic']}", params={"period": PERIOD}).json()
    assert admin["topic"] == "工地噪音扰民请回电13912345678"


def test_topics_pages_and_the_dashboard_link_to_a_topic(world) -> None:
    client = login("lead")
    page = client.get("/brain/topics", params={"period": PERIOD})
    assert page.status_code == 200
    assert f'href="/brain/topics/{world["noise_topic"]}?period={PERIOD}"' in page.text
    row = page.text.split(f'data-testid="topic-{world["noise_topic"]}"')[1].split("</tr>")[0]
    assert "新" in row and "2026-06-" in row  # new in the month, with its span
    # 热度 is a bare number (2.31): the list and a topic's page say what it weighs and that it only ranks.
    assert "热度只用于话题之间比较排序，没有上限" in page.text.split('data-testid="heat-help"')[1]
    topic = client.get(f"/brain/topics/{world['noise_topic']}", params={"period": PERIOD})
    assert topic.status_code == 200
    assert "没有上限" in topic.text.split('data-testid="heat-help"')[1]
    listed = {int(i) for i in re.findall(r'href="/orders/(\d+)"', topic.text)}
    with session_scope() as s:
        members = set(s.scalars(select(HotTopicOrder.order_id).where(HotTopicOrder.topic_id == world["noise_topic"])))
    assert listed == members
    assert "/brain/graph?node=topic%3AT" in topic.text  # onward to the correlation graph
    dash = client.get("/dashboard", params={"period": PERIOD}).text.split('data-testid="hot"')[1].split("</section>")[0]
    api = client.get("/api/v1/topics", params={"period": PERIOD, "limit": 10}).json()["items"]
    linked = re.findall(r'href="/brain/topics/(\d+)\?period=2026-06">', dash)
    assert linked and [int(i) for i in linked] == [t["id"] for t in api]
    # The groups a topic concerns, named in the reader's language (老人 in the river's appeals: 老年人).
    river = client.get(f"/brain/topics/{world['river_topic']}", params={"period": PERIOD}).text
    client.get("/lang/en")
    english = client.get(f"/brain/topics/{world['river_topic']}", params={"period": PERIOD}).text
    assert "<td>老年人</td>" in river and "<td>Older people</td>" in english
    # Its key phrases, which the miner lists with 、, as an English list (they read "河水、发臭" in English).
    with session_scope() as s:
        label = s.get(HotTopic, world["river_topic"]).label  # type: ignore[union-attr]
    assert "、" in label and f"<td>{label}</td>" in river
    assert f"<td>{label.replace('、', ', ')}</td>" in english
    listing = client.get("/brain/topics", params={"period": PERIOD}).text
    assert f'<small class="hint">{label.replace("、", ", ")}</small>' in listing


def test_a_topics_span_is_in_the_districts_days_as_its_orders_are(world) -> None:
    """A topic's first and last days are the district's (UTC+8) days, as the times of the orders listed under it
    and the 专报's span: its last order received at 01:30 on 17 June (17:30 UTC on the 16th) ends it on the 17th."""
    with session_scope() as s:
        last = s.get(Order, max(world["noise"]))
        topic = s.get(HotTopic, world["noise_topic"])
        assert last is not None and topic is not None
        last.created_at = topic.last_at = datetime(2026, 6, 16, 17, 30, tzinfo=UTC)
    client = login("lead")
    page = client.get("/brain/topics", params={"period": PERIOD}).text
    row = page.split(f'data-testid="topic-{world["noise_topic"]}"')[1].split("</tr>")[0]
    assert '<span class="nowrap">2026-06-17</span></small>' in row, row
    topic_page = client.get(f"/brain/topics/{world['noise_topic']}", params={"period": PERIOD}).text
    span = topic_page.split(" – ")[1].split("</td>")[0]
    assert "2026-06-17" in span, span
    assert "2026-06-17" in topic_page.split('href="/orders/' + str(last.id))[1].split("</tr>")[0]


def test_topics_page_says_which_period_it_shows_and_refuses_one_it_cannot_read(world) -> None:
    """The hot topics' period as the dashboard's: the one typed, else the recent days, and a typed one that does not
    read is named in an alert over the recent days' topics."""
    client = login("lead")
    chosen = client.get("/brain/topics", params={"period": PERIOD}).text
    assert "当前显示：2026-06" in chosen.split('data-testid="period-shown">')[1].split("</p>")[0]
    assert f'name="period" value="{PERIOD}"' in chosen
    refused = client.get("/brain/topics", params={"period": "2026-13"})
    assert refused.status_code == 200
    alert = refused.text.split('role="alert"')[1].split("</p>")[0]
    assert "2026-13" in alert and "近 30 天" in alert
    assert 'name="period" value="2026-13"' in refused.text  # kept to correct, as the dashboard keeps it
    shown = refused.text.split('data-testid="period-shown">')[1].split("</p>")[0]
    assert "近 30 天" in shown


# ------------------------------------------------------------------------------------------------- graph


def test_graph_page_shows_the_four_dimensions_and_pivots(world) -> None:
    client = login("sup")
    start = client.get("/brain/graph")
    assert start.status_code == 200 and 'data-testid="graph-start"' in start.text
    page = client.get("/brain/graph", params={"node": "噪音", "period": PERIOD})
    assert page.status_code == 200
    assert "「噪音」：在 116 件诉求中出现 8 件" in page.text
    # How fresh the graph is: when its orders were read (a later order is counted in the background).
    as_of = page.text.split('data-testid="graph-as-of">')[1].split("</p>")[0]
    when = r'<span class="nowrap">\d{4}-\d\d-\d\d</span> <span class="nowrap">\d\d:\d\d</span>'
    assert re.match("数据截至 " + when, as_of), as_of
    for section in ("problems", "time", "space", "distribution", "population"):
        assert f'data-testid="graph-{section}"' in page.text, section
    population = page.text.split('data-testid="graph-population"')[1].split("</section>")[0]
    assert ">学生</a>" in population
    space = page.text.split('data-testid="graph-space"')[1].split("</section>")[0]
    assert world["noise_place"] in space
    # Pivot: the related group becomes the query.
    link = re.search(r'href="(/brain/graph\?node=group%3A[^"]+)"', population)
    assert link
    pivot = client.get(link.group(1).replace("&amp;", "&"))
    assert pivot.status_code == 200 and "「学生」：在 116 件诉求中出现" in pivot.text
    assert "噪音" in pivot.text.split('data-testid="graph-problems"')[1].split("</section>")[0]

    # A hot topic is named by its representative title (scrubbed for a masked reader), its key words the hint.
    with session_scope() as s:
        topic = s.get(HotTopic, world["noise_topic"])
        assert topic is not None
        topic.representative_title, label = "工地噪音扰民请回电13912345678", topic.label
    node = f"topic:T{world['noise_topic']} {label}"
    for reader, shown_title in (("sup", "工地噪音扰民请回电13912345678"), ("lead", "工地噪音扰民请回电")):
        text = login(reader).get("/brain/graph", params={"node": node, "period": PERIOD}).text
        answer = text.split('data-testid="graph-answer"')[1].split("</p>")[0]
        assert f"「{shown_title}" in answer and ("13912345678" in answer) == (reader == "sup"), answer
    problems = client.get("/brain/graph", params={"node": "噪音", "period": PERIOD}).text
    assert f'title="{label}">工地噪音扰民请回电13912345678</a>' in problems

    missing = client.get("/brain/graph", params={"node": "不存在的东西"})
    assert missing.status_code == 200 and "没有找到「不存在的东西」" in missing.text
    place = client.get("/brain/graph", params={"node": "噪音", "place": "火星街道"})
    assert place.status_code == 200 and "没有找到地点「火星街道」" in place.text
    english = client.get("/lang/en?next=/brain/graph", follow_redirects=True)
    assert 'data-testid="graph-as-of">Data as of ' in english.text
    # The population groups are the product's own words (its lexicon): named in the reader's language, the
    # Chinese name kept as the link's title; what the citizens wrote (噪音, the places) stays as written.
    chips = english.text.split('data-testid="graph-start"')[1].split("</section>")[0]
    assert 'title="学生">Students</a>' in chips and ">学生</a>" not in chips
    page = client.get("/brain/graph", params={"node": "group:学生", "period": PERIOD}).text
    assert re.search(r"“Students”: in \d+ of 116 orders", page) and ">学生<" not in page
    # Typed as the page names it (the box read "Students" as no item).
    typed = client.get("/brain/graph", params={"node": "students", "period": PERIOD}).text
    assert re.search(r"“Students”: in \d+ of 116 orders", typed) and 'name="pivot" value="group:学生"' in typed
    problems = page.split('data-testid="graph-problems"')[1].split("</section>")[0]
    assert ">噪音</a>" in problems
    population = client.get("/brain/graph", params={"node": "噪音", "period": PERIOD}).text
    population = population.split('data-testid="graph-population"')[1].split("</section>")[0]
    assert ">Students</a>" in population and ">学生</a>" not in population


def test_graph_page_says_which_orders_it_counts_and_names_a_pivot_in_the_readers_words(world) -> None:
    """The graph's counts are of the period typed, else of every order (not the recent days the other pages show):
    the page says which, and how many orders. A pivot (a link) asks for a node by its id — topic:T12 锦绣、内涝 —
    which the box shows by the node's name, the id beside it: the box left as it is asks for that node again."""
    with session_scope() as s:  # an order of last year: counted without a period, not in June's
        data = {"channel": "hotline", "content": "去年的路灯不亮", "created_at": "2025-03-01T02:00:00+00:00"}
        submit(s, data=data, similar=False, defer_duplicates=True)
    client = login("sup")
    start = client.get("/brain/graph").text
    assert "统计范围：不限周期，共 117 件诉求" in start.split('data-testid="graph-period">')[1].split("</p>")[0]
    shown = client.get("/brain/graph", params={"period": PERIOD}).text.split('data-testid="graph-period">')[1]
    assert "统计范围：2026-06，共 116 件诉求" in shown.split("</p>")[0]
    with session_scope() as s:
        topic = s.get(HotTopic, world["noise_topic"])
        assert topic is not None
        title, label = topic.representative_title, topic.label
    node = f"topic:T{world['noise_topic']} {label}"
    page = client.get("/brain/graph", params={"node": node, "period": PERIOD}).text
    assert f'name="node" value="{title}"' in page and f'name="pivot" value="{node}"' in page
    assert "topic:" not in page.split('data-testid="graph-form"')[1].split('name="pivot"')[0]
    again = client.get("/brain/graph", params={"node": title, "pivot": node, "period": PERIOD}).text
    assert f"「{title}」：在 116 件诉求中出现" in again.split('data-testid="graph-answer">')[1].split("</p>")[0]
    typed = client.get("/brain/graph", params={"node": "噪音", "pivot": node, "period": PERIOD}).text
    assert "「噪音」：在 116 件诉求中出现 8 件" in typed and 'name="pivot"' not in typed
    group = client.get("/brain/graph", params={"node": "group:学生", "period": PERIOD}).text
    assert 'name="node" value="学生"' in group and 'name="pivot" value="group:学生"' in group
    english = client.get("/lang/en", params={"next": "/brain/graph"}, follow_redirects=True).text
    assert "Counted over: all time, 117 orders" in english


def test_pages_carry_no_inline_script(world) -> None:
    client = login("adm")
    noise = _recurring(world["noise_place"])
    for path in (
        f"/brain/findings?period={PERIOD}",
        f"/brain/findings/{noise.id}?period={PERIOD}",
        f"/brain/topics?period={PERIOD}",
        f"/brain/topics/{world['noise_topic']}?period={PERIOD}",
        f"/brain/graph?node=噪音&period={PERIOD}",
    ):
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path
    english = client.get("/lang/en?next=/brain/findings", follow_redirects=True)
    assert "Risk findings" in english.text


def test_a_topics_heat_is_said_as_its_level_and_rank_among_the_topics_with_its_figure_in_a_title(world) -> None:
    """热度 was a bare score (2.31) beside the counts, on a scale a leader cannot read: the list, a topic's page and
    the 专报 say where it stands among all topics (很高 · 第 1), the same words from one helper, its figure in the
    cell's title and on the topic's page."""
    with session_scope() as s:
        heats = dict(s.execute(select(HotTopic.id, HotTopic.heat)).tuples().all())
    river = heats[world["river_topic"]]
    rank, heat = 1 + sum(1 for h in heats.values() if h > river), f"{river:.2f}"
    client = login("lead")
    listing = client.get("/brain/topics", params={"period": PERIOD}).text
    cell = re.search(rf'<td[^>]*data-testid="topic-heat-{world["river_topic"]}"[^>]*>(.*?)</td>', listing)
    assert cell and re.sub(r"\s+", " ", cell.group(1)).endswith(f"第 {rank}"), cell
    assert re.match(r"(很高|较高|一般|较低) · ", cell.group(1).strip()), cell.group(1)
    assert f'title="热度 {heat}，在全部 {len(heats)} 个热点中排第 {rank}"' in cell.group(0)
    page = client.get(f"/brain/topics/{world['river_topic']}", params={"period": PERIOD}).text
    words = page.split('data-testid="topic-heat"')[1].split("</td>")[0]
    assert cell.group(1).strip() in words and f"热度 {heat}，在全部 {len(heats)} 个热点中排第 {rank}" in words
    client.get("/lang/en")
    english = client.get("/brain/topics", params={"period": PERIOD}).text
    assert f"no. {rank}</td>" in english and f"Heat {heat}: no. {rank} of all {len(heats)} topics" in english
    with session_scope() as s:
        from cityhub.analytics import kpi, reports

        html = reports.render_html(reports.build_report(s, period=kpi.parse_period(PERIOD), charts=False))
    assert f'title="热度 {heat}，在全部 {len(heats)} 个热点中排第 {rank}">{cell.group(1).strip()}</td>' in html


def test_a_hot_topics_spot_on_the_one_map_says_its_heat_in_the_same_words(world) -> None:
    """一张图's hot-topic spots said 热度 4.21 in their popup: they carry the words the topic pages say
    (``heat_text``)."""
    from types import SimpleNamespace

    from cityhub.analytics import kpi

    june = kpi.parse_period(PERIOD)
    with session_scope() as s:
        s.execute(update(Order).where(Order.id.in_(world["river"])).values(lat=23.2, lng=113.3))
        reader = SimpleNamespace(role=Role.LEADER)
        ctx = onemap.context(s, reader, SimpleNamespace(clause=lambda: None), None, lang="zh-CN")
        spots = {f["properties"]["id"]: f["properties"] for f in onemap._topic_points(ctx, june.start, june.end)}
    client = login("lead")
    page = client.get(f"/brain/topics/{world['river_topic']}", params={"period": PERIOD}).text
    words = re.search(r'data-testid="topic-heat">([^<]*? · 第 \d+)', page)
    assert words and spots[f"T{world['river_topic']}"]["heat_text"] == words.group(1)


def test_a_topics_places_are_named_in_english_for_an_english_reader(world) -> None:
    """A hot topic's places are its orders' streets and communities (by their Chinese names) and the roads and
    estates they name: an English reader read 景泰街道 on the dashboard, the topics' pages and the English 专报. The
    units are named as the English pages name them (a place's pinyin), the rest as written."""
    client = login("lead")
    noise = world["noise_topic"]
    chinese = client.get(f"/brain/topics/{noise}", params={"period": PERIOD}).text
    assert "景泰街道" in chinese.split("<th>地点</th>")[1].split("</tr>")[0]
    client.cookies.set("cityhub_lang", "en")
    pages = {
        "topic": client.get(f"/brain/topics/{noise}", params={"period": PERIOD}).text,
        "topics": client.get("/brain/topics", params={"period": PERIOD}).text,
        "dashboard": client.get("/dashboard", params={"period": PERIOD}).text.split('data-testid="hot"')[1],
        "report": client.get("/api/v1/kpi/report", params={"period": PERIOD, "format": "html", "lang": "en"})
        .text.split('<section id="hot-topics">')[1]
        .split("</section>")[0],
    }
    for name, page in pages.items():  # (the miner's key phrases may hold 景泰街道: the appeals' own words)
        assert "Jingtai Subdistrict" in page, name


def test_the_dashboards_hot_topics_say_when_they_were_mined_under_their_heading(world) -> None:
    """The mining time stood inside the heading, in parentheses (热点问题 （2026-12-07 17:20 挖掘，新工单按计划并入）:
    three bold lines on a phone); it is a plain sentence under it, as on the topics' page after their count."""
    page = login("lead").get("/dashboard", params={"period": PERIOD}).text
    hot = page.split('<section data-testid="hot">')[1].split("</section>")[0]
    assert "<h2>热点诉求</h2>" in hot  # the menu's word (brain.nav.topics), not 热点问题
    said = re.search(r'<p class="hint" data-testid="hot-mined-at">(.*?)</p>', hot)
    assert said is not None and said.group(1).startswith("热点于 ") and "（" not in said.group(1)
    topics = login("lead").get("/brain/topics", params={"period": PERIOD}).text
    assert re.search(r'<p class="hint">共 \d+ 个热点 · 热点于 <span class="nowrap">[^（]+?并入。</p>', topics)
