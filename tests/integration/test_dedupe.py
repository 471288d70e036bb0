"""Duplicates and similar past cases at intake, on both backends: flagging, auto-merge, window, place, API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from cityhub.db import session_scope
from cityhub.dispatch import background
from cityhub.intake import dedupe
from cityhub.intake.service import submit
from cityhub.org.models import Unit, UnitTier
from cityhub.org.places import Place as OrgPlace
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import State
from cityhub.workorders.models import Order, OrderEvent
from cityhub.workorders.schemas import OrderCreate

# Recent: the index holds the last `index_days` days of wall-clock time.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
GARBAGE = "岗贝路12号门口垃圾堆积三天无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理。"
GARBAGE_AGAIN = (
    "岗贝路12号门口垃圾堆积三天了无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，请环卫部门尽快清运处理！"
)
LAMP = "岗贝路旁边的路灯坏了一个月，晚上漆黑一片，行人容易摔倒，请尽快维修路灯。"
GARBAGE_LOOSER = (
    "岗贝路12号门口垃圾堆积三天无人清理，臭气熏天，蚊蝇滋生，附近居民出行都要捂着鼻子，"
    "已经打过好几次电话反映了，请城管部门过来看看。"
)


@pytest.fixture
def places(db_session):
    district = Unit(code="DD440111", name="测试区", tier=UnitTier.DISTRICT)
    db_session.add(district)
    db_session.flush()
    s1 = Unit(code="DD440111001", name="甲街道", tier=UnitTier.STREET, parent_id=district.id)
    s2 = Unit(code="DD440111002", name="乙街道", tier=UnitTier.STREET, parent_id=district.id)
    dept = Unit(code="DD440111-D01", name="区城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    db_session.add_all([s1, s2, dept])
    db_session.flush()
    c1 = Unit(code="DD440111001001", name="望岗社区", tier=UnitTier.COMMUNITY, parent_id=s1.id)
    c2 = Unit(code="DD440111001002", name="岗贝社区", tier=UnitTier.COMMUNITY, parent_id=s1.id)
    db_session.add_all([c1, c2])
    db_session.commit()
    return {"s1": s1, "s2": s2, "c1": c1, "c2": c2, "dept": dept}


def _intake(db_session, content, *, at=T0, actor=orders.SYSTEM, **extra):
    data = {"channel": "hotline", "appeal_type": "complaint", "content": content, "created_at": at, **extra}
    result = submit(db_session, data=data, actor=actor)
    db_session.commit()  # the index sees committed orders only
    return result


def test_near_identical_appeal_at_the_same_place_is_auto_merged_and_audited(db_session, places):
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    assert first.dedupe_action == dedupe.DedupeAction.NONE and first.duplicates == []
    version = first.order.version
    operator = orders.Actor(name="话务员小王", role="operator")
    again = _intake(
        db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=3), community_code="DD440111001001", actor=operator
    )
    assert again.dedupe_action == dedupe.DedupeAction.AUTO_MERGE
    assert [d.order.id for d in again.duplicates] == [first.order.id]
    assert again.duplicates[0].place == dedupe.PlaceMatch.SAME
    merged = db_session.get(Order, again.order.id)
    assert merged.state == State.MERGED and merged.master_order_id == first.order.id
    event = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == merged.id).order_by(OrderEvent.id.desc())
    ).first()
    assert event.action == "merge" and event.to_state == State.MERGED.value and event.payload["auto"] is True
    assert event.reason.startswith(f"auto-merge: duplicate of {first.order.number}, score 0.")
    master = db_session.get(Order, first.order.id)
    assert master.state == State.RECEIVED
    # The master's trail says so too: which order joined it, that the duplicate check merged it, who received it,
    # when. The master itself is not changed (its version stays: whoever works on it is not refused meanwhile).
    joined = orders.history(db_session, order_id=master.id)[-1]
    assert (joined.action, joined.actor_name, joined.at, joined.reason) == ("merged_in", "话务员小王", event.at, None)
    assert joined.payload == {"merged_id": merged.id, "merged_number": merged.number, "auto": True}
    assert joined.to_state == State.RECEIVED.value and joined.id > event.id
    assert master.version == version


def test_a_third_report_is_merged_into_the_open_master_not_into_the_merged_copy(db_session, places):
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=1), community_code="DD440111001001")
    third = _intake(db_session, GARBAGE_AGAIN + "谢谢", at=T0 + timedelta(hours=2), community_code="DD440111001001")
    assert third.dedupe_action == dedupe.DedupeAction.AUTO_MERGE
    assert db_session.get(Order, third.order.id).master_order_id == first.order.id


def test_coordinates_within_the_radius_agree_and_far_apart_disagree(db_session, places):
    first = _intake(db_session, GARBAGE, lat=23.2000, lng=113.3000)
    near = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=1), lat=23.2005, lng=113.3005)  # ~75 m
    assert near.dedupe_action == dedupe.DedupeAction.AUTO_MERGE and near.duplicates[0].order.id == first.order.id
    far = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=2), lat=23.2300, lng=113.3000)  # ~3 km
    assert far.dedupe_action == dedupe.DedupeAction.NONE and far.duplicates == []


def test_same_text_in_another_street_is_not_merged_but_listed_as_similar(db_session, places):
    first = _intake(db_session, GARBAGE, street_code="DD440111001")
    other = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=1), street_code="DD440111002")
    assert other.dedupe_action == dedupe.DedupeAction.NONE and other.duplicates == []
    assert db_session.get(Order, other.order.id).state == State.RECEIVED
    assert [c.order.id for c in other.similar] == [first.order.id]


def test_an_address_or_coordinates_are_placed_among_the_databases_own_units(db_session, places):
    # The fixture's units are a made-up district: only a gazetteer of the database's units can place these.
    places["c2"].boundary = {
        "type": "Polygon",
        "coordinates": [[[113.29, 23.19], [113.31, 23.19], [113.31, 23.21], [113.29, 23.21], [113.29, 23.19]]],
    }
    db_session.commit()
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    # Coordinates inside 岗贝社区's boundary: not where the first appeal is (unplaced, it would be a suggestion).
    by_point = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=1), lat=23.2, lng=113.3)
    assert by_point.dedupe_action == dedupe.DedupeAction.NONE and by_point.duplicates == []
    assert first.order.id in [c.order.id for c in by_point.similar]
    # An address naming the first appeal's community: the same place, merged.
    by_address = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=2), address="甲街道望岗社区垃圾站旁")
    assert by_address.dedupe_action == dedupe.DedupeAction.AUTO_MERGE
    assert {d.order.id: d.place for d in by_address.duplicates}[first.order.id] == dedupe.PlaceMatch.SAME
    assert db_session.get(Order, by_address.order.id).master_order_id == first.order.id


def test_appeals_placed_by_their_text_alone_are_compared_by_that_place(db_session, places):
    # No codes, address or coordinates: each appeal names its community in the text, and intake places it there
    # (before, only an address or coordinates placed an appeal, so these were "place unknown": a suggestion).
    first = _intake(db_session, "望岗社区" + GARBAGE)
    assert (first.order.community_id, first.order.place_source) == (places["c1"].id, "text")
    again = _intake(db_session, "望岗社区" + GARBAGE_AGAIN, at=T0 + timedelta(hours=1))
    assert again.dedupe_action == dedupe.DedupeAction.AUTO_MERGE
    assert {d.order.id: d.place for d in again.duplicates}[first.order.id] == dedupe.PlaceMatch.SAME


def test_unknown_place_is_only_suggested(db_session, places):
    first = _intake(db_session, GARBAGE)
    again = _intake(db_session, GARBAGE_AGAIN, at=T0 + timedelta(hours=1))
    assert again.dedupe_action == dedupe.DedupeAction.SUGGEST_MERGE
    assert again.duplicates[0].order.id == first.order.id and again.duplicates[0].place == dedupe.PlaceMatch.UNKNOWN
    assert db_session.get(Order, again.order.id).state == State.RECEIVED


def test_moderate_similarity_at_the_same_place_is_suggested_not_merged(db_session, places):
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    looser = _intake(db_session, GARBAGE_LOOSER, at=T0 + timedelta(hours=1), community_code="DD440111001001")
    score = looser.similar[0].score
    cfg = dedupe.get_dedupe_settings()
    assert cfg.suggest_threshold <= score < cfg.auto_merge_threshold  # the premise of this case
    assert looser.dedupe_action == dedupe.DedupeAction.SUGGEST_MERGE
    assert looser.duplicates[0].order.id == first.order.id
    assert db_session.get(Order, looser.order.id).state == State.RECEIVED


def test_outside_the_window_is_not_a_duplicate(db_session, places):
    cfg = dedupe.get_dedupe_settings()
    old = _intake(db_session, GARBAGE, at=T0 - timedelta(days=cfg.window_days + 5), community_code="DD440111001001")
    new = _intake(db_session, GARBAGE_AGAIN, community_code="DD440111001001")
    assert new.dedupe_action == dedupe.DedupeAction.NONE and new.duplicates == []
    assert [c.order.id for c in new.similar] == [old.order.id]  # still a similar past case


CORNER = "白云区同和街道岗贝社区岗贝路与广州大道北交界处东北角公交站旁边的人行道上"


@pytest.mark.parametrize(
    ("first_text", "second_text", "merged"),
    [
        (CORNER + "积水", CORNER + "摆摊", False),  # another problem at the corner
        (CORNER + "12号灯杆不亮", CORNER + "14号灯杆不亮", False),  # another house
        (CORNER + "积水", CORNER + "积水了", True),  # the same report, words added
    ],
)
def test_a_short_report_saying_something_else_at_the_same_place_is_suggested_not_merged(
    db_session, places, first_text, second_text, merged
):
    """A short inspector's or caller's report is mostly its place: a second problem at the same corner scores as
    a copy of the first, and merging it would leave it unhandled. Only suggested; the same report told again with
    words added is still merged."""
    first = _intake(db_session, first_text, channel="grid", community_code="DD440111001001")
    second = _intake(
        db_session, second_text, at=T0 + timedelta(minutes=5), channel="grid", community_code="DD440111001001"
    )
    cfg = dedupe.get_dedupe_settings()
    assert second.duplicates[0].order.id == first.order.id
    assert second.duplicates[0].score >= cfg.auto_merge_threshold  # the premise: alike by their score
    assert second.dedupe_action == (dedupe.DedupeAction.AUTO_MERGE if merged else dedupe.DedupeAction.SUGGEST_MERGE)
    state = db_session.get(Order, second.order.id).state
    assert (state == State.MERGED) is merged


def test_auto_merge_can_be_switched_off(db_session, places):
    _intake(db_session, GARBAGE, community_code="DD440111001001")
    second = submit(
        db_session,
        data={"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0, "community_code": "DD440111001001"},
    )
    found = dedupe.check(db_session, order=second.order, settings=dedupe.DedupeSettings(auto_merge=False))
    assert found.action == dedupe.DedupeAction.SUGGEST_MERGE


def _close(db_session, order, *, unit, reply, satisfied, at):
    order.state = State.CLOSED_RESOLVED
    order.lead_unit = unit
    order.reply_text = reply
    order.satisfied = satisfied
    order.closed_at = at
    db_session.commit()


def test_similar_cases_are_ordered_by_score_and_say_how_they_were_handled(db_session, places, monkeypatch):
    monkeypatch.setenv("CITYHUB_DEDUPE_SIMILAR_MIN_SCORE", "0")  # every case scored is listed, however unrelated
    dedupe.get_dedupe_settings.cache_clear()
    texts = [
        "岗贝路旁边的路灯坏了一个月，晚上漆黑一片，行人容易摔倒，请尽快维修路灯。",
        "岗贝路12号门口垃圾堆积好几天没人清理，味道很大，附近居民意见很大，希望尽快清运。",
        GARBAGE_LOOSER,
        "小区门口垃圾没人清理，臭气熏天，请处理。",
    ]
    past = [
        _intake(db_session, t, at=T0 - timedelta(days=20 - i), street_code="DD440111001").order
        for i, t in enumerate(texts)
    ]
    _close(
        db_session,
        past[2],
        unit=places["dept"],
        reply="已安排环卫工人清运，并增加清扫频次。" * 10,
        satisfied=True,
        at=T0,
    )
    new = _intake(db_session, GARBAGE, street_code="DD440111001")
    scores = [c.score for c in new.similar]
    assert scores == sorted(scores, reverse=True) and len(new.similar) == len(texts)
    assert new.similar[0].order.id == past[2].id  # the closest wording ranks first
    assert new.similar[-1].order.id == past[0].id  # the street lamp comes last (found via the street prefilter)
    handled = new.similar[0].how_handled
    assert handled.number == past[2].number and handled.state == State.CLOSED_RESOLVED
    assert handled.lead_unit == "区城管局" and handled.satisfied is True and handled.closed_at is not None
    assert handled.reply_excerpt.startswith("已安排环卫工人清运") and len(handled.reply_excerpt) <= 121
    # By default a case sharing no more than the road's name with the appeal is not listed as a similar one.
    monkeypatch.delenv("CITYHUB_DEDUPE_SIMILAR_MIN_SCORE")
    dedupe.get_dedupe_settings.cache_clear()
    found = dedupe.check(db_session, order=new.order)
    assert [c.order.id for c in found.similar] == [c.order.id for c in new.similar[:-1]]


def test_check_before_creating_an_order(db_session, places):
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    found = dedupe.check(
        db_session,
        data={"channel": "web", "content": GARBAGE_AGAIN, "community_code": "DD440111001001", "created_at": T0},
    )
    assert found.action == dedupe.DedupeAction.AUTO_MERGE and found.master.id == first.order.id
    assert db_session.scalar(select(Order.id).where(Order.content == GARBAGE_AGAIN)) is None  # nothing written


def test_an_edited_order_is_scored_by_what_it_says_now(db_session, places):
    """Candidates' text features are remembered per process, keyed by the text: an order whose text changed since
    is scored by its new text (and by the old one again once it is changed back)."""
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    probe = {"channel": "web", "content": GARBAGE_AGAIN, "community_code": "DD440111001001", "created_at": T0}
    before = dedupe.check(db_session, data=probe, similar=False)
    assert before.action == dedupe.DedupeAction.AUTO_MERGE
    assert [d.order.id for d in before.duplicates] == [first.order.id]
    for text in (LAMP, GARBAGE):
        db_session.execute(update(Order).where(Order.id == first.order.id).values(content=text))
        db_session.commit()
        after = dedupe.check(db_session, data=probe, similar=False)
        if text == LAMP:
            assert after.action == dedupe.DedupeAction.NONE and after.duplicates == []
            assert dedupe.check(db_session, data=probe).similar[0].score < 0.5
        else:
            assert [(d.order.id, d.score) for d in after.duplicates] == [
                (d.order.id, d.score) for d in before.duplicates
            ]


def test_without_similar_cases_the_same_duplicates_are_found(db_session, places):
    old = _intake(db_session, GARBAGE_LOOSER, at=T0 - timedelta(days=60), community_code="DD440111001001")
    first = _intake(db_session, GARBAGE, community_code="DD440111001001")
    probe = {"channel": "web", "content": GARBAGE_AGAIN, "community_code": "DD440111001001", "created_at": T0}
    full = dedupe.check(db_session, data=probe)
    lean = dedupe.check(db_session, data=probe, similar=False)
    assert {c.order.id for c in full.similar} == {old.order.id, first.order.id}
    assert lean.similar == []
    assert [(d.order.id, d.score, d.place) for d in lean.duplicates] == [
        (d.order.id, d.score, d.place) for d in full.duplicates
    ]
    assert lean.action == full.action != dedupe.DedupeAction.NONE
    assert lean.master.id == full.master.id == first.order.id


def test_without_similar_cases_a_burst_of_copies_is_scored_only_in_part(db_session, places, monkeypatch):
    """Duplicates alone: of many earlier copies only the 2 × duplicate_count best estimated are read and scored, and
    the best duplicates are those the full search finds."""
    copies = [_intake(db_session, GARBAGE + "!" * i, at=T0 + timedelta(minutes=i)).order.id for i in range(9)]
    scored: list[int] = []
    real_score = dedupe._score

    def counting(session, index, probe, place, ids, cfg):  # the real scoring, counted
        scored.append(len(ids))
        return real_score(session, index, probe, place, ids, cfg)

    monkeypatch.setattr(dedupe, "_score", counting)
    settings = dedupe.DedupeSettings(duplicate_count=2)
    probe = {"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0 + timedelta(hours=1)}
    full = dedupe.check(db_session, data=probe, settings=settings)
    lean = dedupe.check(db_session, data=probe, settings=settings, similar=False)
    assert scored == [len(copies), 2 * settings.duplicate_count]
    assert len(lean.duplicates) == settings.duplicate_count
    assert [(d.order.id, d.score) for d in lean.duplicates] == [(d.order.id, d.score) for d in full.duplicates]


def test_api_creation_leaves_the_duplicate_check_to_the_background_dispatcher(admin_client, db_session, places):
    body = {"channel": "web", "content": GARBAGE, "community_code": "DD440111001001"}
    first = admin_client.post("/api/v1/orders", json=body)
    again = admin_client.post("/api/v1/orders", json={**body, "content": GARBAGE_AGAIN})
    assert first.status_code == again.status_code == 201
    assert again.json()["state"] == State.RECEIVED.value  # answered at once
    assert background.run_once() == {"suggested": 1, "merged": 1}  # the first decided, not sent (auto off)
    merged = admin_client.get(f"/api/v1/orders/{again.json()['id']}").json()
    assert merged["state"] == State.MERGED.value and merged["master_order_id"] == first.json()["id"]
    # The master's trail (the API's event list) names the order the background dispatcher merged into it.
    trail = admin_client.get(f"/api/v1/orders/{first.json()['id']}/events").json()
    assert [e["action"] for e in trail] == ["create", "merged_in"]
    assert trail[-1]["actor_name"] == "auto-merge"
    assert trail[-1]["payload"] == {"merged_id": merged["id"], "merged_number": merged["number"], "auto": True}
    assert admin_client.get(f"/api/v1/orders/{first.json()['id']}").json()["version"] == first.json()["version"]


def test_api_creation_merges_a_duplicate_at_once_when_told_to(admin_client, db_session, places, monkeypatch):
    monkeypatch.setenv("CITYHUB_DEDUPE_IN_BACKGROUND", "false")
    dedupe.get_dedupe_settings.cache_clear()
    body = {"channel": "web", "content": GARBAGE, "community_code": "DD440111001001"}
    first = admin_client.post("/api/v1/orders", json=body)
    again = admin_client.post("/api/v1/orders", json={**body, "content": GARBAGE_AGAIN})
    assert first.status_code == again.status_code == 201
    assert again.json()["state"] == State.MERGED.value
    assert again.json()["master_order_id"] == first.json()["id"]


def test_only_the_best_duplicates_are_listed(db_session, places):
    copies = [
        _intake(db_session, GARBAGE + "!" * i, at=T0 + timedelta(minutes=i)).order.id for i in range(4)
    ]  # no place: suggested, never merged
    probe = {"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0 + timedelta(hours=1)}
    every = dedupe.check(db_session, data=probe)
    assert {d.order.id for d in every.duplicates} == set(copies)
    best = dedupe.check(db_session, data=probe, settings=dedupe.DedupeSettings(duplicate_count=2))
    # The copies score alike (punctuation is ignored): ties go to the earliest, whatever order the database returns
    # the candidate rows in (rows deleted by earlier tests leave room in the table).
    assert [d.order.id for d in best.duplicates] == [d.order.id for d in every.duplicates][:2]


def test_unit_codes_follow_a_renamed_unit_at_once(db_session, places):
    from cityhub.workorders.service import appeal_place

    def placed(code: str):  # type: ignore[no-untyped-def]
        return appeal_place(db_session, OrderCreate(channel="hotline", content="垃圾", street_code=code))

    assert placed("DD440111001") == OrgPlace(places["s1"].id, None, "order")
    assert placed("NO-SUCH-UNIT") is None
    places["s1"].code = "DD440111009"  # the process's cache of units is told by the table's token
    db_session.commit()
    assert placed("DD440111001") is None and placed("DD440111009") == OrgPlace(places["s1"].id, None, "order")


def test_warm_up_loads_the_gazetteer_and_builds_the_index(app_db, monkeypatch):
    from cityhub import refdata
    from cityhub.nlp import similar as sim
    from cityhub.org import places as org_places

    built = []
    build = org_places._build_gazetteer
    monkeypatch.setattr(org_places, "_build_gazetteer", lambda session: built.append(1) or build(session))
    refdata.clear()
    assert dedupe.warm_up() is True  # returns at once: both load in the background

    def ready() -> bool:
        indexes = list(sim._INDEXES.values())
        return built == [1] and len(indexes) == 1 and indexes[0].built

    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready()


@pytest.fixture
def client(admin_client):
    return admin_client


def test_similar_endpoint(client):
    first = client.post("/api/v1/orders", json={"channel": "web", "content": GARBAGE, "address": "岗贝路12号"})
    assert first.status_code == 201, first.text
    second = client.post("/api/v1/orders", json={"channel": "web", "content": GARBAGE_AGAIN, "address": "岗贝路12号"})
    assert second.status_code == 201, second.text
    background.run_once()  # the duplicate check the API left to the background dispatcher
    second = client.get(f"/api/v1/orders/{second.json()['id']}")
    assert second.json()["state"] == "merged" and second.json()["master_order_id"] == first.json()["id"]
    answer = client.get(f"/api/v1/orders/{first.json()['id']}/similar")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The merged copy is represented by its master, which is the order asked about: nothing else to show.
    assert body["duplicates"] == [] and body["action"] == "none"
    third = client.post("/api/v1/orders", json={"channel": "web", "content": GARBAGE_LOOSER, "address": "民航路3号"})
    body = client.get(f"/api/v1/orders/{third.json()['id']}/similar").json()
    assert body["action"] == "suggest_merge" and body["duplicates"][0]["order_id"] == first.json()["id"]
    assert body["duplicates"][0]["place"] == "unknown"
    assert body["similar"][0]["order_id"] == first.json()["id"] and body["similar"][0]["score"] > 0.5
    assert client.get("/api/v1/orders/999999999/similar").status_code == 404


def test_cli_similar(app_db):
    with session_scope() as s:
        first = submit(s, data={"channel": "web", "content": GARBAGE}).order.number
    with session_scope() as s:
        second = submit(s, data={"channel": "web", "content": GARBAGE_LOOSER}).order.number
    from cityhub.cli import _mount, app

    _mount()
    result = CliRunner().invoke(app, ["orders", "similar", second])
    assert result.exit_code == 0, result.output
    assert '"action": "suggest_merge"' in result.output and first in result.output


NOISE = "夜里十二点以后楼下烧烤摊还在营业，噪音很大，油烟直冲楼上住户窗户，严重影响休息，希望有关部门管一管。"


def test_orders_committed_here_are_indexed_at_once_and_rolled_back_ones_never(db_session, places, monkeypatch):
    # A long refresh interval: the index does not read the table again, so only commit-time indexing can help.
    monkeypatch.setenv("CITYHUB_DEDUPE_REFRESH_SECONDS", "3600")
    dedupe.get_dedupe_settings.cache_clear()
    _intake(db_session, "天河北路公交站旁的路灯坏了一个星期，晚上很黑，行人容易摔倒。")  # builds the index
    first = _intake(db_session, GARBAGE)  # no place: only the index can find it again
    index = dedupe.sim.index_for(db_session, index_days=dedupe.get_dedupe_settings().index_days)
    assert first.order.id in index.index

    again = dedupe.check(db_session, data={"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0})
    assert [d.order.id for d in again.duplicates] == [first.order.id]

    rolled_back = submit(db_session, data={"channel": "hotline", "content": NOISE, "created_at": T0}).order.id
    db_session.rollback()
    assert rolled_back not in index.index
    assert dedupe.check(db_session, data={"channel": "web", "content": NOISE, "created_at": T0}).similar == []


def _insert_as_another_process(db_engine, number: str, content: str) -> int:
    """A plain insert, as another server process's commit looks from here: no session of this process saw it."""
    with db_engine.begin() as conn:
        return conn.execute(
            insert(Order.__table__)
            .values(
                number=number,
                channel="web",
                appeal_type="complaint",
                title="",
                content=content,
                state="received",
                created_at=T0,
                updated_at=T0,
                sla_status="none",
                version=1,
            )
            .returning(Order.__table__.c.id)
        ).scalar_one()


def _built_index(db_session, monkeypatch, *, refresh_seconds: str):
    monkeypatch.setenv("CITYHUB_DEDUPE_REFRESH_SECONDS", refresh_seconds)
    dedupe.get_dedupe_settings.cache_clear()
    _intake(db_session, "天河北路公交站旁的路灯坏了一个星期，晚上很黑，行人容易摔倒。")  # builds the index
    return dedupe.sim.index_for(db_session, index_days=dedupe.get_dedupe_settings().index_days)


def test_an_order_committed_by_another_process_is_read_in_at_the_next_refresh(
    db_engine, db_session, places, monkeypatch
):
    index = _built_index(db_session, monkeypatch, refresh_seconds="0")
    other = _insert_as_another_process(db_engine, "X-1", GARBAGE)
    assert other not in index.index
    found = dedupe.check(db_session, data={"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0})
    assert [d.order.id for d in found.duplicates] == [other]


def test_with_a_refresh_interval_other_processes_orders_are_read_in_the_background(
    db_engine, db_session, places, monkeypatch
):
    index = _built_index(db_session, monkeypatch, refresh_seconds="0.05")
    other = _insert_as_another_process(db_engine, "X-2", GARBAGE)
    time.sleep(0.06)  # the index's last read is now older than the interval
    probe = {"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0}
    dedupe.check(db_session, data=probe)  # finds the index stale: a background thread reads the new row
    deadline = time.monotonic() + 30
    while other not in index.index and time.monotonic() < deadline:
        time.sleep(0.02)
    assert other in index.index
    assert [d.order.id for d in dedupe.check(db_session, data=probe).duplicates] == [other]


def test_a_refresh_that_grows_the_band_tables_merges_them_and_loses_nothing(db_engine, db_session, places, monkeypatch):
    index = _built_index(db_session, monkeypatch, refresh_seconds="0")
    ids = [_insert_as_another_process(db_engine, f"X-M{i}", f"{i}号楼{NOISE}") for i in range(300)]
    found = dedupe.check(db_session, data={"channel": "web", "content": f"123号楼{NOISE}", "created_at": T0})
    # Reading 300 orders in grew every table's additions past an eighth of its arrays: the refresh merged them.
    assert all(t.delta_size == 0 and t.merging is None and len(t.keys) for t in index.index.tables.values())
    assert all(order_id in index.index for order_id in ids)
    assert found.duplicates[0].order.id == ids[123]  # the same text beats its 299 near-copies


def test_an_id_handed_out_again_after_a_deletion_rebuilds_the_index(db_session, places, monkeypatch):
    # SQLite gives the id of a deleted last row to the next insert; the index must not keep the old text under it.
    monkeypatch.setenv("CITYHUB_DEDUPE_REFRESH_SECONDS", "3600")
    dedupe.get_dedupe_settings.cache_clear()
    _intake(db_session, "天河北路公交站旁的路灯坏了一个星期，晚上很黑，行人容易摔倒。")  # builds the index
    gone = _intake(db_session, NOISE).order.id
    db_session.execute(OrderEvent.__table__.delete().where(OrderEvent.order_id == gone))
    db_session.execute(Order.__table__.delete().where(Order.id == gone))
    db_session.commit()
    db_session.expunge_all()  # the deleted rows' objects must not stand in for the next ones
    again = _intake(db_session, GARBAGE, at=T0 + timedelta(hours=1))
    found = dedupe.check(db_session, data={"channel": "web", "content": GARBAGE_AGAIN, "created_at": T0})
    assert [d.order.id for d in found.duplicates] == [again.order.id]


def test_healthz_tells_the_state_of_the_similar_orders_index(client, places):
    assert client.get("/healthz").json()["similar_orders_index"] == {"state": "not built", "orders": 0}
    created = client.post("/api/v1/orders", json={"channel": "web", "content": GARBAGE})
    assert created.status_code == 201
    assert client.get(f"/api/v1/orders/{created.json()['id']}/similar").status_code == 200  # searches the index
    assert client.get("/healthz").json()["similar_orders_index"] == {"state": "ready", "orders": 1}


def test_a_case_in_other_words_is_found_by_the_appeals_telling_words(db_session, places):
    """An appeal whose place is unknown, worded unlike any earlier one: the MinHash index finds no text sharing much of
    its own, the place prefilter has no place to look in — the similar cases were what happened to collide. The
    appeal's telling character pairs (油烟, held by one order here) find the earlier order about the same matter
    through the full-text index; the pairs most orders hold (小区, 噪音) are no clue and weigh next to nothing."""
    for i in range(40):
        _intake(db_session, f"小区{i}号楼下水道堵塞污水外溢，噪音扰民，请尽快处理", at=T0 - timedelta(days=30, hours=i))
    fumes = _intake(db_session, "隔壁饭店排放油烟熏得没法开窗", at=T0 - timedelta(days=3)).order
    new = _intake(db_session, "餐馆油烟很大，噪音扰民")
    assert new.order.street_id is None  # no place: nothing for the prefilter
    assert fumes.id in [c.order.id for c in new.similar], [(c.order.content, c.score) for c in new.similar]


# Names of people and places, each two characters no other text here holds: an appeal's rarest pairs, not its matter.
NAMES = [
    "甲乙",
    "丙丁",
    "戊己",
    "庚辛",
    "壬癸",
    "子丑",
    "寅卯",
    "辰巳",
    "午未",
    "申酉",
    "戌亥",
    "乾坤",
    "震巽",
    "坎离",
    "艮兑",
    "琴瑟",
    "笙箫",
    "鼓钹",
    "钟磬",
    "埙篪",
]


def test_the_matter_an_appeal_repeats_counts_over_its_rarest_pairs(db_session, places):
    """A long appeal holds many pairs no other order holds — names, word boundaries, slips of the keyboard — and few
    that say its matter. The matter's words (油烟, said three times, held by two earlier orders) are looked up before
    the rarest pairs (each name, held by one newer order): the 50 newest holders of the four rarest pairs missed the
    earlier order about the same matter."""
    fumes = _intake(db_session, "楼下油烟，油烟呛人", at=T0 - timedelta(days=20)).order
    _intake(db_session, "油烟机维修收费不合理", at=T0 - timedelta(days=19))
    for i, name in enumerate(NAMES):
        _intake(db_session, f"{name}路口井盖缺失", at=T0 - timedelta(days=10, hours=i))
    appeal = "油烟直冲窗户，油烟熏人，油烟很大。" + "、".join(NAMES)
    index = dedupe.sim.index_for(db_session, index_days=180)
    assert index.ensure(db_session)
    assert fumes.id in dedupe._telling_word_candidates(db_session, index, appeal)
    found = dedupe.check(db_session, data={"channel": "web", "content": appeal, "created_at": T0})
    assert fumes.id in [c.order.id for c in found.similar], [(c.order.content, c.score) for c in found.similar]


def test_the_orders_about_the_appeals_matter_are_found_behind_fifty_that_share_two_of_its_names(db_session, places):
    """The appeal's matter (油烟, said three times) is held by five earlier orders; sixty earlier orders each hold two
    of the fifteen names it lists. Counted ``idf²`` each, however often the appeal says it, two names outweighed the
    matter: the orders about the matter came after the sixty, and with the best 50 taken (the release of
    5 December) never scored exactly. Now a pair counts as often as the appeal uses it (``1 + log uses``, as the score
    weighs it) and the best 200 are taken: they are scored, beside the sixty."""
    fumes = [
        _intake(db_session, f"{i}号楼下饭店油烟，油烟呛人", at=T0 - timedelta(days=20, hours=i)).order.id
        for i in range(5)
    ]
    names = NAMES[:15]
    for i in range(60):  # each name held by 8 of them
        first, second = names[i % 15], names[(i + 1 + i // 15) % 15]
        _intake(db_session, f"{first}{second}社区第{i}号路灯杆倾斜，电线裸露", at=T0 - timedelta(days=10, hours=i))
    for i in range(20):  # the district's other orders
        _intake(db_session, f"第{i}号垃圾桶满了无人清运", at=T0 - timedelta(days=5, hours=i))
    appeal = "油烟直冲窗户，油烟熏人，油烟很大。" + "、".join(names)
    index = dedupe.sim.index_for(db_session, index_days=180)
    assert index.ensure(db_session)
    candidates = dedupe._telling_word_candidates(db_session, index, appeal)
    assert set(fumes) <= set(candidates), [candidates.index(i) if i in candidates else None for i in fumes]


def test_a_readers_similar_cases_are_gathered_within_its_scope(db_session, places):
    """The candidates were drawn from the whole district (``max_candidates`` of the index, best first) before the
    reader's scope applied: a unit's handler, whose unit holds a small share of the orders, was left with none when
    closer orders of other units filled them. A scoped reader's candidates are drawn wider and those it may open
    screened and scored on their own, so its own case is found; the centre's lookup stays as it was."""
    base = "路边流动摊贩占道经营，晚上堆满杂物，行人只能走机动车道，请城管部门处理"
    for i, when in enumerate(("早上", "中午", "下午", "傍晚", "夜里", "周末", "节假日", "每天")):
        there = _intake(db_session, f"{base}，{when}最严重", at=T0 + timedelta(minutes=i))
        orders.act(db_session, order_id=there.order.id, action="dispatch", params={"unit_id": places["s2"].id})
    ours = _intake(db_session, "路边流动摊贩占道经营，晚上堆满杂物，请城管部门处理", at=T0 + timedelta(hours=1))
    orders.act(db_session, order_id=ours.order.id, action="dispatch", params={"unit_id": places["s1"].id})
    now = _intake(db_session, base, at=T0 + timedelta(hours=2))
    db_session.commit()
    # As many candidates as the other street's copies fill: the district's best four of each scheme, none ours.
    settings = dedupe.DedupeSettings(auto_merge=False, max_candidates=4, rerank_count=4, prefilter_limit=0)
    everyone = dedupe.check(db_session, order=now.order, settings=settings)
    assert everyone.similar and ours.order.id not in [c.order.id for c in everyone.similar]
    own = Order.lead_unit_id == places["s1"].id
    mine = dedupe.check(db_session, order=now.order, settings=settings, shown_to=own)
    assert [c.order.id for c in mine.similar] == [ours.order.id]
    other_street = Order.lead_unit_id == places["s2"].id
    theirs = dedupe.check(db_session, order=now.order, settings=settings, shown_to=other_street)
    assert len(theirs.similar) == len(everyone.similar) and ours.order.id not in [c.order.id for c in theirs.similar]
    # One candidate of the index, five for the reader: all the other street's. The reader's own newest orders are
    # candidates too (the scope in the query, ``prefilter_limit`` of them).
    narrow = dedupe.DedupeSettings(auto_merge=False, max_candidates=1, rerank_count=4)
    assert ours.order.id not in [c.order.id for c in dedupe.check(db_session, order=now.order, settings=narrow).similar]
    mine = dedupe.check(db_session, order=now.order, settings=narrow, shown_to=own)
    assert [c.order.id for c in mine.similar] == [ours.order.id]
    unread = dedupe.check(
        db_session, order=now.order, settings=narrow.model_copy(update={"prefilter_limit": 0}), shown_to=own
    )
    assert unread.similar == []


def test_a_complaint_posted_again_word_for_word_is_one_similar_case(db_session, places):
    """Four postings of one text (closed long ago, so not duplicates) fill no list: the operator sees it once, the
    newest, and the other cases after it."""
    for days in (90, 80, 70, 60):
        _intake(db_session, "横滘望江村有人焚烧垃圾，浓烟很大", at=T0 - timedelta(days=days))
    other = _intake(db_session, "望江村有人焚烧垃圾，烟味呛人", at=T0 - timedelta(days=50)).order
    found = dedupe.check(
        db_session, data={"channel": "web", "content": "望江村有人焚烧垃圾，浓烟很大", "created_at": T0}
    )
    texts = [c.order.content for c in found.similar]
    assert texts.count("横滘望江村有人焚烧垃圾，浓烟很大") == 1, texts
    assert other.id in [c.order.id for c in found.similar]


def test_similar_cases_shown_to_a_reader_are_chosen_among_those_it_may_read(db_session, places):
    """``shown_to``: the best cases among the orders the clause holds — not the best of all, then filtered (which
    left a unit's handler fewer than ``similar_count``, or none, while cases it could read matched)."""
    base = "路边流动摊贩占道经营，晚上堆满杂物，行人只能走机动车道，请城管部门处理"
    for i, when in enumerate(("早上", "中午", "下午", "傍晚", "夜里", "周末", "节假日", "每天")):
        there = _intake(db_session, f"{base}，{when}最严重", at=T0 + timedelta(minutes=i))
        orders.act(db_session, order_id=there.order.id, action="dispatch", params={"unit_id": places["s2"].id})
    ours = _intake(db_session, "路边流动摊贩占道经营，晚上堆满杂物，请城管部门处理", at=T0 + timedelta(hours=1))
    orders.act(db_session, order_id=ours.order.id, action="dispatch", params={"unit_id": places["s1"].id})
    now = _intake(db_session, base, at=T0 + timedelta(hours=2))
    db_session.commit()
    settings = dedupe.DedupeSettings(auto_merge=False)
    everyone = dedupe.check(db_session, order=now.order, settings=settings)
    assert ours.order.id not in [c.order.id for c in everyone.similar]  # eight closer copies on the other street
    own = Order.lead_unit_id == places["s1"].id
    mine = dedupe.check(db_session, order=now.order, settings=settings, shown_to=own)
    assert [c.order.id for c in mine.similar] == [ours.order.id]
