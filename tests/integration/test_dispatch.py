"""Dispatch on both backends: suggestions, audited automatic dispatch, the queue API, rules, training export.

The classifier is replaced by a stub with fixed predictions (a trained model is an artefact; its quality is
measured in bench/bench_dispatch.py, not here).
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from cityhub.auth.service import create_token
from cityhub.config import get_settings
from cityhub.db import session_scope, utcnow
from cityhub.dispatch import background, service
from cityhub.dispatch.models import DispatchBacklog, DispatchRule, DispatchSuggestion
from cityhub.dispatch.rules import RuleTier, TargetKind
from cityhub.dispatch.schemas import RuleCreate, RuleUpdate
from cityhub.errors import ValidationFailed
from cityhub.intake.service import submit
from cityhub.nlp import classifier
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.org.places import Place
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import Category, JobRun, Order, OrderEvent
from web_helpers import train_classifier

DISPATCHER = orders.Actor(name="派单员")


@dataclass
class StubModel:
    """Predicts a fixed distribution for every text."""

    top3: list[tuple[str, float]]
    evidence: int | None = None
    read: int = 0  # texts predicted

    def predict(self, texts: list[str]) -> list[classifier.Prediction]:
        self.read += len(texts)
        return [classifier.Prediction(self.top3[0][0], self.top3[0][1], list(self.top3), self.evidence) for _ in texts]


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> StubModel:
    stub = StubModel([("城乡建设", 0.95), ("环境保护", 0.03), ("交通运输", 0.02)])
    monkeypatch.setattr(service, "load_model", lambda: (stub, "stub@1"))
    return stub


@pytest.fixture
def org(db_session) -> dict[str, int]:
    s = db_session
    district = Unit(code="T-QU", name="白云区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    street = Unit(code="T-JD", name="嘉禾街道", tier=UnitTier.STREET, parent_id=district.id)
    other_street = Unit(code="T-JD2", name="京溪街道", tier=UnitTier.STREET, parent_id=district.id)
    housing = Unit(code="T-D01", name="区住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    env = Unit(code="T-D03", name="生态环境分局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    water = Unit(code="T-E02", name="白云供水", tier=UnitTier.DEPARTMENT, parent_id=district.id)
    s.add_all([street, other_street, housing, env, water])
    s.flush()
    community = Unit(code="T-SQ", name="望岗社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id)
    root = Category(code="C01", name="城乡建设", level=1, path="城乡建设")
    env_cat = Category(code="C02", name="环境保护", level=1, path="环境保护")
    s.add_all([community, root, env_cat])
    s.flush()
    child = Category(code="C01.01", name="供水", level=2, parent_id=root.id, path="城乡建设/供水")
    s.add(child)
    s.flush()
    ids = {
        "district": district.id,
        "street": street.id,
        "other_street": other_street.id,
        "community": community.id,
        "housing": housing.id,
        "env": env.id,
        "water": water.id,
        "cat_build": root.id,
        "cat_env": env_cat.id,
        "cat_water": child.id,
    }
    for data in (
        RuleCreate(name="城乡建设 → 住建局", priority=40, category_id=root.id, target_unit_id=housing.id),
        RuleCreate(name="环境保护 → 生态环境", priority=40, category_id=env_cat.id, target_unit_id=env.id),
        RuleCreate(name="停水 → 供水", keywords=["停水", "水压"], target_unit_id=water.id),
        RuleCreate(
            name="噪音 → 本社区",
            keywords=["噪音"],
            exclude_keywords=["施工"],
            target_kind=TargetKind.LOCAL_COMMUNITY,
        ),
    ):
        service.create_rule(s, data=data)
    s.commit()
    return ids


def _order(session, content: str, **extra):  # type: ignore[no-untyped-def]
    return submit(session, data={"channel": "hotline", "content": content, **extra}).order


def test_confident_prediction_dispatches_automatically_and_is_audited(db_session, org, model) -> None:
    order = _order(db_session, "小区外墙脱落，物业不管")
    decision = service.auto_dispatch(db_session, order=order)
    assert decision.auto and decision.dispatched
    assert order.state == State.DISPATCHED and order.lead_unit_id == org["housing"]
    assert order.category_id == org["cat_build"]  # the prediction filled the empty category
    trail = orders.history(db_session, order_id=order.id)
    assert [e.action for e in trail] == ["create", "comment", "dispatch"]
    comment, dispatch = trail[1], trail[2]
    assert comment.actor_name == "auto-dispatch" and comment.payload["category_id"] == org["cat_build"]
    assert comment.payload["text"] == "category set by the classifier: 城乡建设"  # by name, for the order's page
    assert dispatch.actor_name == "auto-dispatch" and dispatch.unit_id == org["housing"]
    rule_id = db_session.scalar(select(DispatchRule.id).where(DispatchRule.name == "城乡建设 → 住建局"))
    recorded = {k: dispatch.payload.get(k) for k in ("unit_id", "auto", "probability", "rule_id", "model_version")}
    assert recorded == {
        "unit_id": org["housing"],
        "auto": True,
        "probability": 0.95,
        "rule_id": rule_id,
        "model_version": "stub@1",
    }
    assert dispatch.reason.startswith("category 城乡建设 p=0.95 ≥ threshold 0.90")
    assert order.due_at is not None  # the time limit started like any dispatch
    stored = db_session.get(DispatchSuggestion, order.id)
    assert stored.dispatched and stored.auto


def test_below_the_category_threshold_the_order_waits_with_three_suggestions(db_session, org, model) -> None:
    service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.97)
    order = _order(db_session, "小区外墙脱落，物业不管")
    decision = service.auto_dispatch(db_session, order=order)
    assert not decision.auto and not decision.dispatched and order.state == State.RECEIVED
    assert decision.reason == "category 城乡建设 p=0.95 < threshold 0.97"
    assert [c.unit_id for c in decision.candidates] == [org["housing"], org["env"]]
    assert decision.candidates[1].reasons[-1] == "if the category is 环境保护 (p=0.03)"
    assert decision.prediction["top3"][0] == ["城乡建设", 0.95]
    assert [e.action for e in orders.history(db_session, order_id=order.id)] == ["create"]
    # A sub-category inherits its ancestor's threshold.
    assert service.threshold_for(db_session, category_id=org["cat_water"]) == 0.97
    assert service.threshold_for(db_session, category_id=None) == get_settings().dispatch_threshold


def test_place_from_the_address_routes_local_matters_to_the_community(db_session, org, model) -> None:
    order = _order(db_session, "楼上天天噪音，睡不着", address="白云区嘉禾街道望岗社区12号")
    decision = service.auto_dispatch(db_session, order=order)
    assert decision.place.source == "address" and decision.place.community_id == org["community"]
    assert decision.candidates[0].unit_id == org["community"] and decision.candidates[0].tier == RuleTier.COMMUNITY
    assert order.lead_unit_id == org["community"] and order.community_id == org["community"]
    assert order.street_id == org["street"]
    construction = _order(db_session, "工地施工噪音", address="白云区嘉禾街道望岗社区")
    assert service.suggest(db_session, order=construction).candidates[0].unit_id == org["housing"]


def test_place_from_coordinates_inside_a_units_boundary(db_session, org, model) -> None:
    community = db_session.get(Unit, org["community"])
    community.boundary = {
        "type": "Polygon",
        "coordinates": [[[113.30, 23.20], [113.32, 23.20], [113.32, 23.22], [113.30, 23.22], [113.30, 23.20]]],
    }
    db_session.commit()
    # A sensor's alarm: a position, no address; the coordinates come before a text that names another street.
    order = _order(db_session, "京溪街道楼上天天噪音，睡不着", lat=23.21, lng=113.31)
    decision = service.auto_dispatch(db_session, order=order)
    assert decision.place.source == "coordinates" and decision.place.community_id == org["community"]
    assert decision.place.street_id == org["street"] and decision.candidates[0].unit_id == org["community"]
    outside = _order(db_session, "京溪街道楼上天天噪音，睡不着", lat=23.25, lng=113.31)
    assert service.suggest(db_session, order=outside).place.source == "text"  # outside every boundary


def test_without_a_model_rules_alone_decide_and_need_a_high_priority(db_session, org) -> None:
    order = _order(db_session, "我家停水三天了")
    decision = service.auto_dispatch(db_session, order=order)
    assert not decision.dispatched and decision.prediction is None
    assert decision.reason.startswith("no classifier configured; best rule")
    assert decision.candidates[0].unit_id == org["water"]
    service.create_rule(
        db_session, data=RuleCreate(name="停水 (urgent)", priority=200, keywords=["停水"], target_unit_id=org["water"])
    )
    decision = service.auto_dispatch(db_session, order=order)
    assert decision.dispatched and order.lead_unit_id == org["water"]
    last = orders.history(db_session, order_id=order.id)[-1]
    assert last.payload["auto"] is True and last.payload.get("probability") is None


def test_intake_dispatches_inline_when_enabled(app_db, monkeypatch, model) -> None:
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")
    monkeypatch.setenv("CITYHUB_DISPATCH_IN_BACKGROUND", "0")
    get_settings.cache_clear()
    with session_scope() as s:
        unit = Unit(code="I-D01", name="区住建局", tier=UnitTier.DEPARTMENT)
        cat = Category(code="C01", name="城乡建设", level=1, path="城乡建设")
        s.add_all([unit, cat])
        s.flush()
        service.create_rule(s, data=RuleCreate(name="建设", category_id=cat.id, target_unit_id=unit.id))
    with session_scope() as s:
        order = submit(s, data={"channel": "web", "content": "楼道灯坏了"}).order
        assert order.state == State.DISPATCHED and order.lead_unit.code == "I-D01"
        # Acting on the order it has just created, intake neither reads nor locks it again; each audited change
        # still moves the version by one.
        trail = orders.history(s, order_id=order.id)
        assert [e.action for e in trail] == ["create", "comment", "dispatch"]
        assert trail[1].payload["category_id"] == cat.id and order.category_id == cat.id
        assert order.version == 3
        stored = service.latest_decision(s, order_id=order.id)  # kept for the queue's history of decisions
        assert stored is not None and stored.dispatched and stored.candidates[0].unit_id == order.lead_unit_id
    with session_scope() as s:
        assert s.get(type(order), order.id).version == 3
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "0")
    get_settings.cache_clear()
    with session_scope() as s:
        assert submit(s, data={"channel": "web", "content": "楼道灯又坏了"}).order.state == State.RECEIVED
    get_settings.cache_clear()


def test_a_confident_order_that_repeats_an_open_one_at_its_place_waits_to_be_merged(
    app_db, org, model, monkeypatch
) -> None:
    from cityhub.intake.dedupe import get_dedupe_settings

    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")
    monkeypatch.setenv("CITYHUB_DISPATCH_IN_BACKGROUND", "0")
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "false")  # a suggestion only: a person decides
    get_settings.cache_clear()
    get_dedupe_settings.cache_clear()
    text = "望岗大街3号楼外墙瓷砖脱落，砸到停在楼下的车，物业一直不管，请尽快处理"
    appeal = {"channel": "hotline", "appeal_type": "complaint", "content": text, "community_code": "T-SQ"}
    try:
        with session_scope() as s:
            first = submit(s, data=appeal).order
            assert first.state == State.DISPATCHED
            first_id, first_number = first.id, first.number
        with session_scope() as s:
            again = submit(s, data=appeal).order
            assert again.state == State.RECEIVED
            decision = service.latest_decision(s, order_id=again.id)
            assert decision is not None and not decision.auto
            assert decision.reason.startswith(f"possible duplicate of open order {first_number} (score ")
            assert decision.candidates  # the rules' suggestions stay, for a dispatch by hand
            orders.act(s, order_id=again.id, action=Action.MERGE, actor=DISPATCHER, params={"master_id": first_id})
            orders.act(s, order_id=first_id, action=Action.CANCEL, actor=DISPATCHER, params={"reason": "测试"})
        with session_scope() as s:  # the earlier ones are no longer open: nothing to merge into
            assert submit(s, data=appeal).order.state == State.DISPATCHED
    finally:
        get_settings.cache_clear()
        get_dedupe_settings.cache_clear()


def test_a_short_report_of_another_problem_at_the_same_corner_is_dispatched_not_held(
    app_db, org, model, monkeypatch
) -> None:
    """Two short reports at one corner score as copies of each other (the place is most of their words): the
    second, another problem (积水, then 摆摊), is neither merged into the first nor held back as its duplicate."""
    from cityhub.intake.dedupe import DedupeAction, get_dedupe_settings

    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")
    monkeypatch.setenv("CITYHUB_DISPATCH_IN_BACKGROUND", "0")
    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "true")
    get_settings.cache_clear()
    get_dedupe_settings.cache_clear()
    corner = "白云区嘉禾街道望岗社区望岗大街与鹤泰路交界处东北角公交站旁边的人行道上"
    appeal = {"channel": "grid", "appeal_type": "complaint", "community_code": "T-SQ"}
    try:
        with session_scope() as s:
            first = submit(s, data={**appeal, "content": corner + "积水"}).order
            assert first.state == State.DISPATCHED
        with session_scope() as s:
            other = submit(s, data={**appeal, "content": corner + "摆摊"})
            assert other.duplicates and other.duplicates[0].order.id == first.id  # alike by their score
            assert other.dedupe_action == DedupeAction.SUGGEST_MERGE
            assert other.order.state == State.DISPATCHED
            assert service.latest_decision(s, order_id=other.order.id).auto
    finally:
        get_settings.cache_clear()
        get_dedupe_settings.cache_clear()


def test_intake_keeps_the_order_when_the_model_is_missing(app_db, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")
    monkeypatch.setenv("CITYHUB_DISPATCH_IN_BACKGROUND", "0")
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(tmp_path / "no-model"))
    get_settings.cache_clear()
    try:
        with session_scope() as s:
            order = submit(s, data={"channel": "web", "content": "楼道灯坏了"}).order
            assert order.state == State.RECEIVED
            assert [e.action for e in orders.history(s, order_id=order.id)] == ["create"]
    finally:
        get_settings.cache_clear()


def test_the_threshold_guide_reads_the_classifiers_curves_at_the_thresholds_in_force(
    db_session, org, monkeypatch, tmp_path
) -> None:
    grid = list(classifier.THRESHOLD_GRID)
    steps = len(grid)

    def curve(n: int, share: list[float], precision: list[float | None]) -> dict[str, object]:
        return {"n": n, "share": share, "precision": precision}

    curves = {
        "thresholds": grid,
        "all": curve(160, [1.0] * steps, [0.9] * steps),
        "per_class": {
            # share falls by 0.01 a step from 1.0 at 0.50; precision rises by 0.002 a step from 0.900
            "城乡建设": curve(
                100, [round(1 - i / 100, 2) for i in range(steps)], [round(0.9 + i / 500, 3) for i in range(steps)]
            ),
            "环境保护": curve(50, [0.5] * (steps - 1) + [0.0], [0.96] * (steps - 1) + [None]),
            # A label the taxonomy has not got; precise at the lowest thresholds only (curves need not be monotone).
            "旅游": curve(10, [1.0] * steps, [0.96] * 10 + [0.5] * (steps - 10)),
        },
    }
    model_dir = tmp_path / "clf"
    model_dir.mkdir()
    meta = {"created_at": "2026-12-01T08:00:00+00:00", "evaluation": {"method": "grouped 3-fold CV"}}
    meta["evaluation"]["all"] = {"at_threshold": {**curves, "per_class": {}}}  # type: ignore[index]
    calibration = {"ece": 0.02, "brier": 0.1, "log_loss": 0.3, "bins": [{"from": 0.9, "to": 1.0, "n": 160}]}
    meta["evaluation"]["all"]["calibration"] = {**calibration, "ece": 0.5}  # type: ignore[index]
    meta["evaluation"]["raw_text"] = {"at_threshold": curves, "calibration": calibration}  # type: ignore[index]
    (model_dir / classifier.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(model_dir))
    monkeypatch.setenv("CITYHUB_DISPATCH_THRESHOLD", "0.9")
    get_settings.cache_clear()
    try:
        service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.7)
        service.set_threshold(db_session, category_id=org["cat_env"], threshold=0.995)  # above the grid: its last
        guide = service.threshold_guide(db_session)
        assert guide is not None and guide.view == "raw_text" and guide.model == "clf"
        assert guide.calibration == calibration and guide.as_dict()["calibration"] == calibration  # the same view's
        rows = {r.label: r for r in guide.rows}
        build, env, tourism = rows["城乡建设"], rows["环境保护"], rows["旅游"]
        assert (build.threshold, build.at, build.share, build.precision) == (0.7, 0.7, 0.8, 0.94)
        # Precision 0.95 from 0.75, 0.97 from 0.85; 环境保护 0.96 at every threshold that dispatches anything.
        assert build.lowest_for == {"0.95": 0.75, "0.97": 0.85}
        assert env.lowest_for == {"0.95": 0.5, "0.97": None} and tourism.lowest_for == {"0.95": 0.5, "0.97": None}
        assert build.category is not None and build.category.id == org["cat_build"]
        assert (env.at, env.share, env.precision) == (0.99, 0.0, None)
        assert tourism.category is None and (tourism.threshold, tourism.at, tourism.share) == (0.9, 0.9, 1.0)
        # Overall: each category at its own threshold, weighted by how many it was predicted for.
        assert guide.share == pytest.approx((100 * 0.8 + 0 + 10 * 1.0) / 160)
        assert guide.precision == pytest.approx((80 * 0.94 + 10 * 0.5) / 90)
        service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.705)  # between steps: the next
        build = next(r for r in service.threshold_guide(db_session).rows if r.label == "城乡建设")  # type: ignore[union-attr]
        assert (build.at, build.share) == (0.71, 0.79)
        # An artefact trained before its evaluation recorded calibration: the guide without it.
        del meta["evaluation"]["raw_text"]["calibration"]  # type: ignore[index]
        (model_dir / classifier.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        os.utime(model_dir / classifier.META_FILE, (2, 2))  # another modification time: read again
        assert service.threshold_guide(db_session).calibration is None  # type: ignore[union-attr]
        # An artefact trained before its evaluation recorded the thresholds' effect, or none configured: no guide.
        del meta["evaluation"]["raw_text"]
        meta["evaluation"]["all"] = {}  # type: ignore[index]
        (model_dir / classifier.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        os.utime(model_dir / classifier.META_FILE, (1, 1))  # another modification time: read again
        assert service.threshold_guide(db_session) is None
        monkeypatch.delenv("CITYHUB_DISPATCH_MODEL_PATH")
        get_settings.cache_clear()
        assert service.threshold_guide(db_session) is None
    finally:
        get_settings.cache_clear()


@pytest.fixture
def client(app_db, model):  # type: ignore[no-untyped-def]
    from app_helpers import shared_app

    with session_scope() as s:
        district = Unit(code="A-QU", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        unit = Unit(code="A-D01", name="区住建局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
        other = Unit(code="A-D02", name="区城管局", tier=UnitTier.DEPARTMENT, parent_id=district.id)
        cat = Category(code="C01", name="城乡建设", level=1, path="城乡建设")
        admin = User(username="d-admin", full_name="管理员", role=Role.ADMIN, unit_id=district.id)
        dispatcher = User(username="d-disp", full_name="派单员", role=Role.DISPATCHER, unit_id=district.id)
        handler = User(username="d-hand", full_name="承办人", role=Role.HANDLER, unit_id=district.id)
        s.add_all([unit, other, cat, admin, dispatcher, handler])
        s.flush()
        street = Unit(code="A-JD", name="嘉禾街道", tier=UnitTier.STREET, parent_id=district.id)
        s.add(street)
        s.flush()
        ids = {"unit": unit.id, "other": other.id, "cat": cat.id, "street": street.id}
        tokens = {u.username: create_token(s, user_id=u.id, name="t")[1] for u in (admin, dispatcher, handler)}
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {tokens['d-admin']}"
        c.ids = ids  # type: ignore[attr-defined]
        c.as_dispatcher = {"Authorization": f"Bearer {tokens['d-disp']}"}  # type: ignore[attr-defined]
        c.as_handler = {"Authorization": f"Bearer {tokens['d-hand']}"}  # type: ignore[attr-defined]
        yield c


def test_queue_rules_and_thresholds_over_the_api(client) -> None:
    ids = client.ids
    made = client.post(
        "/api/v1/dispatch/rules",
        json={
            "name": "建设 → 住建局",
            "category_id": ids["cat"],
            "target_unit_id": ids["unit"],
            "keywords": "外墙、楼道",
        },
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["tier"] == "department" and rule["keywords"] == ["外墙", "楼道"]
    denied = client.post("/api/v1/dispatch/rules", json={"name": "x"}, headers=client.as_dispatcher)
    assert denied.status_code == 403
    assert client.get("/api/v1/dispatch/queue", headers=client.as_handler).status_code == 403
    bad = client.post("/api/v1/dispatch/rules", json={"name": "no target"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    # Text no database stores, wherever it is in the body (a lone surrogate as JSON writes it: \ud800).
    for body, field in (
        ({"name": "x", "target_unit_id": ids["unit"], "keywords": ["\ud800"]}, "keywords.0"),
        ({"name": "x\x00y", "target_unit_id": ids["unit"]}, "name"),
        ({"name": "x", "target_unit_id": ids["unit"], "exclude_keywords": ["a", "b\x00"]}, "exclude_keywords.1"),
    ):
        raw = json.dumps(body)  # ASCII-escaped, so the lone surrogate is sent as JSON has it
        refused = client.post("/api/v1/dispatch/rules", content=raw, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422 and refused.json()["details"]["field"] == field, refused.text
    # An edit is checked as a creation is: unknown ids and times without a zone are 422 naming the field.
    for change, words in (
        ({"category_id": 999999}, "unknown category 999999"),
        ({"place_unit_id": 999999}, "must be a district, street or community"),
        ({"valid_from": "2026-01-01T00:00:00"}, "times must carry a time zone"),
    ):
        edited = client.patch(f"/api/v1/dispatch/rules/{rule['id']}", json=change)
        assert edited.status_code == 422 and words in edited.text, (change, edited.text)
    assert client.get(f"/api/v1/dispatch/rules/{rule['id']}").json()["category_id"] == ids["cat"]
    put = client.put(f"/api/v1/dispatch/thresholds/{ids['cat']}", json={"threshold": 0.99})
    assert put.status_code == 200 and client.get("/api/v1/dispatch/thresholds").json()[0]["threshold"] == 0.99
    assert put.json() == client.get("/api/v1/dispatch/thresholds").json()[0]  # the same shape, path included

    waiting = client.post("/api/v1/orders", json={"channel": "web", "content": "外墙瓷砖脱落"}).json()
    done = client.post("/api/v1/orders", json={"channel": "web", "content": "楼道灯不亮"}).json()
    client.post(f"/api/v1/orders/{done['id']}/actions/dispatch", json={"unit_id": ids["unit"]})
    back = client.post("/api/v1/orders", json={"channel": "web", "content": "外墙又掉了"}).json()
    client.post(f"/api/v1/orders/{back['id']}/actions/dispatch", json={"unit_id": ids["unit"]})
    client.post(
        f"/api/v1/orders/{back['id']}/actions/return", json={"reason": "不属本单位", "suggest_unit_id": ids["street"]}
    )

    queue = client.get("/api/v1/dispatch/queue", headers=client.as_dispatcher)
    assert queue.status_code == 200, queue.text
    items = queue.json()["items"]
    assert [i["order_id"] for i in items] == [waiting["id"], back["id"]]
    first, returned = items[0]["decision"], items[1]["decision"]
    assert not first["auto"] and first["reason"] == "category 城乡建设 p=0.95 < threshold 0.99"
    assert first["candidates"][0]["unit_id"] == ids["unit"] and first["candidates"][0]["rule_id"] == rule["id"]
    # The unit that returned the order is not suggested again.
    assert returned["candidates"] == [] and items[1]["state"] == "returned"
    # The unit the returning unit suggested instead (建议改派至) is said beside the rules' suggestions.
    assert (items[0]["suggest_unit_id"], items[1]["suggest_unit_id"]) == (None, ids["street"])

    suggested = client.post(f"/api/v1/dispatch/{waiting['id']}/suggest", headers=client.as_dispatcher).json()
    assert suggested["prediction"]["label"] == "城乡建设" and suggested["model_version"] == "stub@1"
    placed = client.post(
        f"/api/v1/dispatch/{waiting['id']}/place",
        json={"unit_id": ids["street"], "reason": "来电核实", "version": waiting["version"]},
        headers=client.as_dispatcher,
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["place"] == {"street_id": ids["street"], "community_id": None, "source": "dispatcher"}
    assert placed.json()["moved"] is True
    # The same place again: confirmed, the order unchanged, and the answer says so.
    confirmed = client.post(
        f"/api/v1/dispatch/{waiting['id']}/place", json={"unit_id": ids["street"]}, headers=client.as_dispatcher
    )
    assert confirmed.status_code == 200 and confirmed.json()["moved"] is False
    stale = client.post(
        f"/api/v1/dispatch/{waiting['id']}/place",
        json={"unit_id": ids["street"], "version": waiting["version"]},
        headers=client.as_dispatcher,
    )
    assert stale.status_code == 409
    not_a_place = client.post(
        f"/api/v1/dispatch/{waiting['id']}/place", json={"unit_id": ids["unit"]}, headers=client.as_dispatcher
    )
    assert not_a_place.status_code == 422 and "not an active street or community" in not_a_place.json()["message"]
    denied = client.post(
        f"/api/v1/dispatch/{waiting['id']}/place", json={"unit_id": ids["street"]}, headers=client.as_handler
    )
    assert denied.status_code == 403
    assert client.patch(f"/api/v1/dispatch/rules/{rule['id']}", json={"active": False}).json()["active"] is False
    assert client.delete(f"/api/v1/dispatch/rules/{rule['id']}").status_code == 204
    assert client.get(f"/api/v1/dispatch/rules/{rule['id']}").status_code == 404


def test_bulk_dispatch_over_the_api(client) -> None:
    """``POST /dispatch/bulk``: each order dispatched or refused on its own, with the reason; the refused stay."""
    ids = client.ids
    made = [
        client.post("/api/v1/orders", json={"channel": "web", "content": f"外墙瓷砖脱落{i}号楼"}).json()
        for i in range(3)
    ]
    stale = made[2]
    client.post(f"/api/v1/orders/{made[2]['id']}/actions/comment", json={"text": "补充"})  # changed since read
    body = {
        "items": [
            {"order_id": made[0]["id"], "unit_id": ids["unit"], "version": made[0]["version"], "reason": "首条建议"},
            {"order_id": made[1]["id"], "unit_id": ids["other"]},
            {"order_id": stale["id"], "unit_id": ids["unit"], "version": stale["version"]},
            {"order_id": 999999, "unit_id": ids["unit"]},
        ]
    }

    done = client.post("/api/v1/dispatch/bulk", json=body, headers=client.as_dispatcher)

    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["dispatched"], result["refused"]) == (2, 2)
    assert [(r["order_id"], r["dispatched"], r["unit_id"]) for r in result["results"]] == [
        (made[0]["id"], True, ids["unit"]),  # which order went where
        (made[1]["id"], True, ids["other"]),
        (stale["id"], False, ids["unit"]),
        (999999, False, ids["unit"]),
    ]
    assert result["results"][2]["number"] == stale["number"] and result["results"][2]["error"]
    assert result["results"][3] == {
        "order_id": 999999,
        "number": None,
        "dispatched": False,
        "unit_id": ids["unit"],
        "error": "order 999999 not found",
    }
    first = client.get(f"/api/v1/orders/{made[0]['id']}").json()
    assert first["state"] == "dispatched" and first["lead_unit_id"] == ids["unit"]
    trail = client.get(f"/api/v1/orders/{made[0]['id']}/events").json()
    events = trail if isinstance(trail, list) else trail["items"]
    assert (events[-1]["action"], events[-1]["actor_name"], events[-1]["reason"]) == ("dispatch", "派单员", "首条建议")
    assert client.get(f"/api/v1/orders/{stale['id']}").json()["state"] == "received"
    twice = {"items": [body["items"][2], body["items"][2]]}
    assert client.post("/api/v1/dispatch/bulk", json=twice, headers=client.as_dispatcher).status_code == 422
    # A refused request changes nothing, on SQLite as on PostgreSQL: the first of an order listed twice was dispatched
    # in a savepoint whose release committed it on SQLite, and stayed dispatched behind the 422.
    fresh = client.post("/api/v1/orders", json={"channel": "web", "content": "楼道灯不亮"}).json()
    pick = {"order_id": fresh["id"], "unit_id": ids["unit"]}
    refused = client.post("/api/v1/dispatch/bulk", json={"items": [pick, pick]}, headers=client.as_dispatcher)
    assert refused.status_code == 422 and refused.json()["details"] == {"field": "items"}
    assert client.get(f"/api/v1/orders/{fresh['id']}").json()["state"] == "received"
    assert [e["action"] for e in client.get(f"/api/v1/orders/{fresh['id']}/events").json()] == ["create"]
    assert client.post("/api/v1/dispatch/bulk", json={"items": []}, headers=client.as_dispatcher).status_code == 422
    assert client.post("/api/v1/dispatch/bulk", json=body, headers=client.as_handler).status_code == 403


def _corrected_orders(s, org):  # type: ignore[no-untyped-def]
    """Two orders a dispatcher corrected: one returned and re-dispatched elsewhere, one re-categorised."""
    redirected = _order(s, "外墙脱落，物业不管", category="城乡建设")
    orders.act(s, order_id=redirected.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"]})
    orders.act(s, order_id=redirected.id, action="return", actor=DISPATCHER, params={"reason": "非本单位职责"})
    orders.act(s, order_id=redirected.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    recategorised = _order(s, "河涌发黑发臭", category="城乡建设")
    service.set_category(s, order_id=recategorised.id, category_id=org["cat_env"], actor=DISPATCHER, reason="分类错误")
    return redirected, recategorised


def test_training_export_picks_orders_a_dispatcher_corrected(db_session, org, tmp_path: Path) -> None:
    s = db_session
    redirected, recategorised = _corrected_orders(s, org)
    untouched = _order(s, "停水", category="城乡建设")
    orders.act(s, order_id=untouched.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["water"]})
    same_again = _order(s, "路灯坏了", category="城乡建设")
    orders.act(s, order_id=same_again.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    orders.act(s, order_id=same_again.id, action="return", actor=DISPATCHER, params={"reason": "缺材料"})
    orders.act(s, order_id=same_again.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    filled = _order(s, "无分类的工单")
    service.set_category(s, order_id=filled.id, category_id=org["cat_build"], actor=DISPATCHER)
    s.flush()

    out = tmp_path / "training.csv"
    result = service.export_training(s, out=out)
    assert result == {"corrected": 2, "written": 2, "skipped": 0, "model_category": 0, "confirmed": 0}
    assert out.stat().st_mode & 0o777 == 0o600  # citizens' own words
    rows = {r["id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert set(rows) == {redirected.number, recategorised.number}
    assert rows[redirected.number]["corrected"] == "unit" and rows[redirected.number]["unit_code"] == "T-D01"
    assert rows[recategorised.number]["corrected"] == "category"
    assert rows[recategorised.number]["category"] == "环境保护"
    records, report = classifier.read_labelled_csv(out)
    assert {r.category for r in records} == {"城乡建设", "环境保护"} and report.skipped == []
    event = s.scalars(select(OrderEvent).where(OrderEvent.order_id == recategorised.id).order_by(OrderEvent.id)).all()[
        -1
    ]
    assert event.action == "comment" and event.payload["previous_category_id"] == org["cat_build"]
    assert event.reason == "分类错误" and event.actor_name == "派单员"


def test_training_export_keeps_the_texts_as_nlp_train_reads_them(db_session, org, tmp_path: Path) -> None:
    """The training export is for cityhub to read back (`nlp train`, `dispatch retrain`), not a report: a message
    beginning "-" or "=" is written as it is — the ' the CSVs for people put in front would be learned with it."""
    s = db_session
    order = _order(s, "=河涌发黑发臭，@环保局", title="-河涌发臭", category="城乡建设")
    service.set_category(s, order_id=order.id, category_id=org["cat_env"], actor=DISPATCHER, reason="分类错误")
    s.flush()
    out = tmp_path / "training.csv"
    assert service.export_training(s, out=out)["written"] == 1
    [record], report = classifier.read_labelled_csv(out)
    assert (record.title, record.content, record.category) == ("-河涌发臭", "=河涌发黑发臭，@环保局", "环境保护")
    assert report.skipped == []


def test_training_export_leaves_out_a_category_only_the_classifier_gave(db_session, org, model, tmp_path) -> None:
    """An order the classifier categorised and sent automatically, returned and sent elsewhere by a person: its
    category is the classifier's own guess — on an order it likely got wrong — not a label to learn from. Once a
    person corrects the category, the order is one."""
    s = db_session
    guessed = _order(s, "小区外墙脱落，物业不管")
    confirmed = _order(s, "河涌发黑发臭，物业不管")
    for order in (guessed, confirmed):
        assert service.auto_dispatch(s, order=order).dispatched  # category 城乡建设 set by the classifier
        orders.act(s, order_id=order.id, action="return", actor=DISPATCHER, params={"reason": "非本单位职责"})
    service.set_category(s, order_id=confirmed.id, category_id=org["cat_env"], actor=DISPATCHER, reason="分类错误")
    for order in (guessed, confirmed):
        orders.act(s, order_id=order.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"]})
    s.flush()

    out = tmp_path / "training.csv"
    counts = {"corrected": 2, "written": 1, "skipped": 0, "model_category": 1, "confirmed": 0}
    assert service.export_training(s, out=out) == counts
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["id"], r["category"], r["corrected"]) for r in rows] == [(confirmed.number, "环境保护", "unit;category")]
    assert [r.id for r in service.training_records(s)] == [confirmed.number]


def test_a_hand_dispatch_keeps_the_classifiers_reading_and_a_disagreeing_category_is_a_correction(
    db_session, org, model, tmp_path: Path
) -> None:
    """A dispatcher dispatching by hand from the queue: the dispatch event keeps what the classifier predicted (its
    label, probability, top 3, version, the first suggestion), so the training export tells the dispatcher's
    correction of the classifier (another category: written) from a confirmation (the predicted one: counted)."""
    s = db_session
    corrected = _order(s, "河涌发黑发臭")  # the stub says 城乡建设 for every text
    confirmed = _order(s, "小区外墙脱落")
    shown = _order(s, "路面塌陷")
    service.set_category(s, order_id=corrected.id, category_id=org["cat_env"], actor=DISPATCHER)
    service.set_category(s, order_id=confirmed.id, category_id=org["cat_water"], actor=DISPATCHER)  # 城乡建设/供水
    decision = service.suggest(s, order=shown)  # stored, as the queue shows it
    picks = [service.Pick(corrected.id, org["env"]), service.Pick(confirmed.id, org["water"])]
    assert all(o.dispatched for o in service.dispatch_picked(s, picks, actor=DISPATCHER))
    orders.act(s, order_id=shown.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"]})
    s.flush()

    def dispatch_event(order: Order) -> OrderEvent:
        return s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.action == "dispatch")
        ).one()

    payload = dispatch_event(corrected).payload
    assert payload["prediction"]["label"] == "城乡建设" and payload["prediction"]["probability"] == 0.95
    assert [label for label, _ in payload["prediction"]["top3"]] == ["城乡建设", "环境保护", "交通运输"]
    assert payload["model_version"] == "stub@1" and not payload.get("auto")
    assert dispatch_event(shown).payload["suggested_unit_id"] == decision.shown[0].unit_id == org["housing"]
    assert dispatch_event(shown).payload["prediction"] == decision.prediction

    out = tmp_path / "training.csv"
    counts = service.export_training(s, out=out)
    # ``shown`` went to the unit suggested under the second reading (环境保护), which it took: a correction too.
    assert shown.category_id == org["cat_env"]
    assert counts == {"corrected": 2, "written": 2, "skipped": 0, "model_category": 0, "confirmed": 1}
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["id"], r["category"], r["corrected"], r["predicted_category"]) for r in rows] == [
        (corrected.number, "环境保护", "category", "城乡建设"),
        (shown.number, "环境保护", "category", "城乡建设"),
    ]
    assert float(rows[0]["predicted_probability"]) == 0.95
    # The system's own dispatches (an alarm's order to its sensor's unit) are no person's: nothing recorded.
    system = _order(s, "水浸街")
    orders.act(s, order_id=system.id, action="dispatch", actor=orders.SYSTEM, params={"unit_id": org["water"]})
    assert "prediction" not in (dispatch_event(system).payload or {})


def test_a_hand_dispatch_to_a_suggested_unit_takes_the_reading_it_was_suggested_under(
    db_session, org, model, tmp_path: Path
) -> None:
    """With automatic dispatch off, people dispatch every order: one dispatched to a unit the queue suggested under
    the classifier's reading takes that reading as its category (as automatic dispatch would set it) — the first
    reading's unit its first category, a unit suggested under the second reading that one — audited as the
    dispatcher's, before the dispatch. A unit nothing suggested confirms nothing; a set category stays."""
    s = db_session
    first = _order(s, "路面塌陷")  # the stub reads 城乡建设 0.95, 环境保护 0.03, 交通运输 0.02 for every text
    second = _order(s, "河涌发黑")
    elsewhere = _order(s, "小区外墙脱落")
    set_before = _order(s, "井盖缺失")
    service.set_category(s, order_id=set_before.id, category_id=org["cat_water"], actor=DISPATCHER)
    for order in (first, second, elsewhere, set_before):
        service.suggest(s, order=order)  # stored, as the background dispatcher keeps it for the queue
    suggested = {c.unit_id: c.category for c in service.latest_decision(s, order_id=second.id).shown}
    assert suggested == {org["housing"]: "城乡建设", org["env"]: "环境保护"}
    for order, unit in ((first, "housing"), (second, "env"), (elsewhere, "water"), (set_before, "housing")):
        orders.act(s, order_id=order.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org[unit]})
    s.flush()

    assert (first.category_id, second.category_id) == (org["cat_build"], org["cat_env"])
    assert elsewhere.category_id is None and set_before.category_id == org["cat_water"]
    events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == first.id).order_by(OrderEvent.id)).all()
    assert [e.action for e in events] == ["create", "comment", "dispatch"]
    assert events[1].actor_name == DISPATCHER.name and events[1].payload["category_id"] == org["cat_build"]
    assert events[1].payload.get("previous_category_id") is None
    # No decision kept (the background dispatcher off): the queue showed one made afresh, and so is this one.
    unstored = _order(s, "路面塌陷了")
    read_before = model.read
    orders.act(s, order_id=unstored.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    assert unstored.category_id == org["cat_build"]
    assert model.read == read_before + 1  # one reading: the event's payload and the decision made afresh share it
    # The first reading confirmed (nothing to learn from); the second reading taken corrects the first: a label.
    counts = service.export_training(s, out=tmp_path / "training.csv")
    assert counts["confirmed"] == 3 and counts["written"] == 1  # ``set_before`` agrees at the first level too
    assert [r.id for r in service.training_records(s)] == [second.number]


def test_category_changes_only_before_dispatch(db_session, org) -> None:
    order = _order(db_session, "外墙脱落")
    version = order.version
    service.set_category(db_session, order_id=order.id, category_id=org["cat_build"], actor=DISPATCHER)
    assert order.category_id == org["cat_build"] and order.version == version + 1
    orders.act(db_session, order_id=order.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    from cityhub.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="only before dispatch"):
        service.set_category(db_session, order_id=order.id, category_id=org["cat_env"], actor=DISPATCHER)


def test_a_dispatcher_sets_the_place_before_dispatch_and_the_suggestions_follow(db_session, org, model) -> None:
    from cityhub.errors import ValidationFailed

    # Read from the text, wrongly: the message names the other street.
    order = _order(db_session, "京溪街道那边的人说，我家楼上天天噪音，睡不着")
    assert (order.street_id, order.place_source) == (org["other_street"], "text")  # placed at intake
    assert service.suggest(db_session, order=order).place == Place(org["other_street"], None, "text")
    version = order.version
    service.set_place(db_session, order_id=order.id, unit_id=org["community"], actor=DISPATCHER, reason="来电核实")
    assert (order.street_id, order.community_id, order.version) == (org["street"], org["community"], version + 1)
    event = orders.history(db_session, order_id=order.id)[-1]
    assert (
        event.action == "comment"
        and event.reason == "来电核实"
        and event.payload["text"] == "place set to 望岗社区居委会"
    )
    assert (event.payload["street_id"], event.payload["community_id"]) == (org["street"], org["community"])
    assert (event.payload["place_source"], event.payload["previous_place_source"]) == ("dispatcher", "text")
    decision = service.suggest(db_session, order=order)
    assert decision.place.source == "dispatcher" and decision.candidates[0].unit_id == org["community"]
    # A street alone clears the community; the same place again changes nothing.
    service.set_place(db_session, order_id=order.id, unit_id=org["other_street"], actor=DISPATCHER)
    assert (order.street_id, order.community_id) == (org["other_street"], None)
    event = orders.history(db_session, order_id=order.id)[-1]
    assert event.payload["text"] == "place set to 京溪街道 (street only)"
    assert (event.payload["previous_street_id"], event.payload["previous_community_id"]) == (
        org["street"],
        org["community"],
    )
    version = order.version
    service.set_place(db_session, order_id=order.id, unit_id=org["other_street"], actor=DISPATCHER)
    assert order.version == version
    with pytest.raises(ValidationFailed, match="not an active street or community"):
        service.set_place(db_session, order_id=order.id, unit_id=org["housing"], actor=DISPATCHER)
    orders.act(db_session, order_id=order.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["housing"]})
    with pytest.raises(ValidationFailed, match="only before dispatch"):
        service.set_place(db_session, order_id=order.id, unit_id=org["street"], actor=DISPATCHER)


def test_rule_validation_and_derived_tier(db_session, org) -> None:
    from cityhub.errors import ValidationFailed

    local = service.create_rule(
        db_session, data=RuleCreate(name="街道", target_kind=TargetKind.LOCAL_STREET, keywords=["占道"])
    )
    assert local.tier == RuleTier.STREET
    to_community = service.create_rule(db_session, data=RuleCreate(name="c", target_unit_id=org["community"]))
    assert to_community.tier == RuleTier.COMMUNITY
    with pytest.raises(ValidationFailed, match="names no unit"):
        service.create_rule(
            db_session,
            data=RuleCreate(name="x", target_kind=TargetKind.LOCAL_COMMUNITY, target_unit_id=org["housing"]),
        )
    with pytest.raises(ValidationFailed, match="district, street or community"):
        service.create_rule(db_session, data=RuleCreate(name="x", target_unit_id=org["env"], place_unit_id=org["env"]))
    # The order's own community is at the community tier: a form that says otherwise is refused, not stored.
    with pytest.raises(ValidationFailed, match="target local_community is at tier community, not department"):
        service.create_rule(
            db_session,
            data=RuleCreate(name="x", target_kind=TargetKind.LOCAL_COMMUNITY, tier=RuleTier.DEPARTMENT),
        )
    with pytest.raises(ValidationFailed, match="target local_street is at tier street, not community"):
        service.update_rule(db_session, rule_id=local.id, data=RuleUpdate(tier=RuleTier.COMMUNITY))
    # Turned into a local rule without naming a tier: it takes that target's tier.
    moved = service.update_rule(
        db_session, rule_id=to_community.id, data=RuleUpdate(target_kind=TargetKind.LOCAL_STREET, target_unit_id=None)
    )
    assert moved.tier == RuleTier.STREET
    # Keywords that are all blank are not "no condition": such a rule would match every order.
    for blank in (["", " "], "、", " , "):
        with pytest.raises(ValueError, match="keywords are all blank"):
            RuleCreate(name="x", keywords=blank, target_unit_id=org["env"])
    assert RuleCreate(name="x", keywords=[], target_unit_id=org["env"]).keywords == []
    assert RuleCreate(name="x", keywords="", target_unit_id=org["env"]).keywords == []  # an empty form field


def test_seed_default_rules_is_idempotent(db_session) -> None:
    from cityhub.org.service import seed_baiyun
    from cityhub.workorders.categories import seed_default_taxonomy

    seed_baiyun(db_session)
    seed_default_taxonomy(db_session)
    first = service.seed_default_rules(db_session)
    assert first["created"] == first["total"] > 30
    rules = service.list_rules(db_session)
    assert [r.tier for r in rules[:3]] == [RuleTier.COMMUNITY] * 3  # ranking order: local matters first
    edited = rules[-1]
    edited.priority = 7
    again = service.seed_default_rules(db_session)
    assert again == {"created": 0, "total": first["total"]}
    assert db_session.get(DispatchRule, edited.id).priority == 7


def test_rule_edits_count_from_the_next_decision(db_session, org) -> None:
    """Active rules are cached per process; an edit — through the service or a plain UPDATE, as another process
    would commit it — is seen by the next decision."""
    from sqlalchemy import update

    from cityhub.dispatch.schemas import RuleUpdate

    order = _order(db_session, "我家停水三天了")

    def top_unit() -> int | None:
        candidates = service.suggest(db_session, order=order, store=False).candidates
        return candidates[0].unit_id if candidates else None

    assert top_unit() == org["water"]
    rule = db_session.scalars(select(DispatchRule).where(DispatchRule.name == "停水 → 供水")).one()
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(target_unit_id=org["housing"]))
    assert top_unit() == org["housing"]
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(active=False))
    assert top_unit() != org["housing"]
    db_session.execute(
        update(DispatchRule).where(DispatchRule.id == rule.id).values(active=True, target_unit_id=org["env"])
    )
    db_session.commit()
    assert top_unit() == org["env"]
    service.delete_rule(db_session, rule_id=rule.id)
    assert top_unit() != org["env"]


def test_the_queue_lists_the_most_urgent_first_then_the_oldest(db_session, org, model) -> None:
    """特急, then 紧急, then the rest, each oldest first: oldest first alone left a 特急 order on page 2 behind a page
    of ordinary ones."""
    from datetime import timedelta

    start = utcnow() - timedelta(hours=5)
    made = [
        _order(db_session, content, urgency=urgency, created_at=start + timedelta(minutes=i))
        for i, (content, urgency) in enumerate(
            [
                ("路灯不亮", "normal"),
                ("井盖缺失有人掉下去了", "critical"),
                ("我家停水三天了", "urgent"),
                ("楼道堆放杂物", "normal"),
                ("燃气泄漏味道很重", "critical"),
            ]
        )
    ]
    db_session.commit()
    rows, _ = service.queue(db_session, limit=50)
    listed = [o.id for o, _ in rows if o.id in {m.id for m in made}]
    assert listed == [made[1].id, made[4].id, made[2].id, made[0].id, made[3].id]
    first, more = service.queue(db_session, limit=2)
    assert [o.id for o, _ in first] == [made[1].id, made[4].id] and more


def test_the_queue_shows_no_decision_made_before_the_rules_or_thresholds_changed(db_session, org, model) -> None:
    """A stored decision is the queue's while nothing it was made from has changed: not only the order, but the
    rules, the thresholds and the rules' validity windows too (a deactivated rule's unit must not stay suggested)."""
    from datetime import timedelta

    service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.99)
    order = _order(db_session, "我家停水三天了")
    service.suggest(db_session, order=order)  # stored, as the dispatcher's page or the background dispatcher does
    db_session.commit()

    def shown() -> service.DispatchDecision:
        rows, _ = service.queue(db_session)
        return next(d for o, d in rows if o.id == order.id)

    assert shown().candidates[0].unit_id == org["water"]
    rule = db_session.scalars(select(DispatchRule).where(DispatchRule.name == "停水 → 供水")).one()
    service.update_rule(db_session, rule_id=rule.id, data=RuleUpdate(active=False))
    db_session.commit()
    assert org["water"] not in [c.unit_id for c in shown().candidates]

    service.suggest(db_session, order=order)
    db_session.commit()
    service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.9)
    db_session.commit()
    assert shown().reason.startswith("category 城乡建设 p=0.95 ≥ threshold 0.90")
    service.suggest(db_session, order=order)
    db_session.commit()
    service.set_threshold(db_session, category_id=org["cat_build"], threshold=0.98)
    db_session.commit()
    assert shown().reason == "category 城乡建设 p=0.95 < threshold 0.98"
    service.suggest(db_session, order=order)
    db_session.commit()
    service.delete_threshold(db_session, category_id=org["cat_build"])  # back to the default, 0.90
    db_session.commit()
    assert shown().reason.startswith("category 城乡建设 p=0.95 ≥ threshold 0.90")

    # A rule that starts to count after the decision was stored.
    service.update_rule(
        db_session, rule_id=rule.id, data=RuleUpdate(active=True, valid_from=utcnow() + timedelta(seconds=1))
    )
    db_session.commit()
    service.suggest(db_session, order=order)
    db_session.commit()
    assert org["water"] not in [c.unit_id for c in shown().candidates]
    later = utcnow() + timedelta(seconds=2)
    rows, _ = service.queue(db_session, now=later)
    assert next(d for o, d in rows if o.id == order.id).candidates[0].unit_id == org["water"]


def test_model_status_and_warm_up(app_db, monkeypatch, tmp_path) -> None:
    assert service.model_status() == "off"
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(tmp_path / "no-model"))
    get_settings.cache_clear()
    try:
        assert service.model_status() == "missing"
        service.warm_up()  # logs and goes on: the server still starts
        from app_helpers import shared_app

        with TestClient(shared_app()) as c:
            health = c.get("/healthz").json()
            assert health["dispatch_model"] == "missing" and health["status"] == "degraded"
            assert any("configured model is not found" in p for p in health["problems"])
    finally:
        get_settings.cache_clear()


def test_an_order_the_classifier_hardly_knows_waits_for_a_dispatcher(db_session, org, model) -> None:
    model.evidence = 1  # "测试", "你好", gibberish: the probability is the members' priors, not a reading
    order = _order(db_session, "测试测试")
    decision = service.auto_dispatch(db_session, order=order)
    assert not decision.auto and not decision.dispatched and order.state == State.RECEIVED
    assert decision.reason == "little known text: 1 known phrases < 3; category 城乡建设 p=0.95"
    assert decision.prediction["evidence"] == 1
    assert [c.unit_id for c in decision.candidates][:1] == [org["housing"]]  # still suggested
    assert order.category_id is None  # the reading was not written to the order
    queued = [d for o, d in service.queue(db_session)[0] if o.id == order.id]
    assert queued and queued[0].reason == decision.reason
    model.evidence = 3
    assert service.auto_dispatch(db_session, order=order).dispatched


@pytest.fixture
def fresh_models(monkeypatch):  # type: ignore[no-untyped-def]
    """The process's classifier cache emptied for the test (and restored after it)."""
    monkeypatch.setattr(service, "_models", {})
    monkeypatch.setattr(service, "_loading", set())
    monkeypatch.setattr(service, "_failed", {})
    monkeypatch.setattr(service, "_unreadable", {})
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _retrain(directory: Path, *, seed: int) -> None:
    """Retrain the tiny classifier into ``directory``'s ``clf``, the live model's directory."""
    meta = directory / "clf" / classifier.META_FILE
    before = meta.stat().st_mtime_ns
    train_classifier(directory, seed=seed)
    if meta.stat().st_mtime_ns == before:  # a coarse clock: make the change visible, as a later write would
        os.utime(meta, ns=(before + 1_000_000, before + 1_000_000))


def _join_reloads() -> None:
    import threading

    for thread in threading.enumerate():
        if thread.name == "cityhub-model-reload":
            thread.join(10)


def test_a_retrained_model_loads_beside_the_one_that_keeps_deciding(fresh_models, tmp_path) -> None:
    import threading

    path = train_classifier(tmp_path, seed=1)
    fresh_models.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(path))
    get_settings.cache_clear()
    first = service.load_model()
    assert service.model_status() == "loaded" and service.load_model() is first

    # Retrained into the same directory: nothing waits for the new artefact; the old model answers meanwhile.
    release = threading.Event()
    real_read = service._read_model

    def slow_read(p: str):  # type: ignore[no-untyped-def]
        assert release.wait(10)
        return real_read(p)

    fresh_models.setattr(service, "_read_model", slow_read)
    _retrain(tmp_path, seed=2)
    assert service.load_model() is first
    assert service.model_status() == "reloading"
    assert service.load_model() is first and len(service._loading) == 1  # one load, however many callers
    release.set()
    _join_reloads()
    second = service.load_model()
    assert second is not first and service.model_status() == "loaded"
    assert second[0].meta["created_at"] == classifier.load(path).meta["created_at"]

    # A broken retrained artefact never stops the model that works; it is tried again later, not at every call.
    _retrain(tmp_path, seed=3)
    (path / classifier.MODEL_FILE).write_bytes(b"not a model")
    loads: list[str] = []

    def counted_read(p: str):  # type: ignore[no-untyped-def]
        loads.append(p)
        return real_read(p)

    fresh_models.setattr(service, "_read_model", counted_read)
    for _ in range(3):
        assert service.load_model() is second
        _join_reloads()
    assert len(loads) == 1 and service.model_status() == "reload failed"
    fresh_models.setattr(service, "RELOAD_RETRY_S", 0.0)
    _retrain(tmp_path, seed=3)  # mended
    assert service.load_model() is second
    _join_reloads()
    assert len(loads) == 2 and service.load_model() not in (first, second) and service.model_status() == "loaded"

    # A process that makes no decision (a quiet server asked by /healthz) still switches: asking starts the load.
    gate = threading.Event()

    def gated_read(p: str):  # type: ignore[no-untyped-def]
        assert gate.wait(10)
        return counted_read(p)

    fresh_models.setattr(service, "_read_model", gated_read)
    _retrain(tmp_path, seed=4)
    assert service.model_status() == "reloading" and len(service._loading) == 1
    gate.set()
    _join_reloads()
    assert service.model_status() == "loaded" and len(loads) == 3


def test_an_unreadable_model_is_reported_and_tried_again_a_minute_later(fresh_models, tmp_path) -> None:
    import shutil

    broken = tmp_path / "broken"
    good = train_classifier(tmp_path / "good", seed=1)
    shutil.copytree(good, broken)
    (broken / classifier.MODEL_FILE).write_bytes(b"\x1f\x8b truncated")  # a copy cut short
    fresh_models.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(broken))
    get_settings.cache_clear()
    reads: list[str] = []
    real_read = service._read_model

    def counted_read(path: str):  # type: ignore[no-untyped-def]
        reads.append(path)
        return real_read(path)

    fresh_models.setattr(service, "_read_model", counted_read)
    for _ in range(3):
        with pytest.raises(ValidationFailed, match=r"broken cannot be read \("):
            service.load_model()
    assert len(reads) == 1  # not read again at every decision
    assert service.model_status() == "unreadable"
    fresh_models.setattr(service, "RELOAD_RETRY_S", 0.0)
    shutil.copy(good / classifier.MODEL_FILE, broken / classifier.MODEL_FILE)
    assert service.load_model() is not None and len(reads) == 2
    assert service.model_status() == "loaded"


def test_another_model_directory_is_loaded_at_once(fresh_models, tmp_path) -> None:
    one = train_classifier(tmp_path / "one", seed=1)
    two = train_classifier(tmp_path / "two", seed=2)
    fresh_models.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(one))
    get_settings.cache_clear()
    first = service.load_model()[0]
    fresh_models.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(two))
    get_settings.cache_clear()
    assert service.model_status() == "not loaded"
    second = service.load_model()[0]  # a changed configuration, not a retrain: the configured model answers
    assert second is not first and second.meta["created_at"] == classifier.load(two).meta["created_at"]


# --- the background dispatcher (cityhub.dispatch.background) ----------------------------------------------------


@pytest.fixture
def in_background(app_db, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CITYHUB_DISPATCH_AUTO", "1")  # in the background: the default
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _submitted(content: str) -> int:
    with session_scope() as s:
        order = submit(s, data={"channel": "web", "content": content}).order
        assert order.state == State.RECEIVED
        return order.id


def _trail(order_id: int) -> list[str]:
    with session_scope() as s:
        return [e.action for e in orders.history(s, order_id=order_id)]


def test_intake_leaves_the_decision_to_the_background_dispatcher(in_background, org, model) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")
    assert _trail(order_id) == ["create"]  # the request that created it decided nothing
    with session_scope() as s:
        assert background.status(s).orders == 1 and s.get(DispatchSuggestion, order_id) is None
    assert background.run_once() == {"dispatched": 1}
    with session_scope() as s:
        order = orders.require_order(s, order_id=order_id)
        assert order.state == State.DISPATCHED and order.lead_unit_id == org["housing"]
        assert order.category_id == org["cat_build"] and order.version == 3
        trail = orders.history(s, order_id=order_id)
        assert [e.action for e in trail] == ["create", "comment", "dispatch"]
        assert trail[2].actor_name == "auto-dispatch" and trail[2].payload["auto"] is True
        assert service.latest_decision(s, order_id=order_id).dispatched
        assert background.status(s).as_dict()["orders"] == 0
    assert background.run_once() == {}  # decided once


def test_an_imported_spreadsheet_goes_to_the_background_dispatcher(in_background, org, model, tmp_path) -> None:
    """``dispatch``: the import's new received orders are decided like appeals from the API; replied rows, history
    and an import without it are not queued."""
    from cityhub.intake.importer import import_orders

    sheet = tmp_path / "信箱.csv"
    sheet.write_text(
        "留言编号,留言主题,留言详情,留言时间,答复意见\n"
        "m1,外墙脱落,小区3栋外墙瓷砖脱落，物业不管,2026-11-30 09:00:00,\n"
        "m2,路灯,门口路灯坏了,2026-11-30 10:00:00,已修复\n",
        encoding="utf-8",
    )
    with session_scope() as s:
        report = import_orders(s, path=sheet, dispatch=True, actor=orders.Actor(name="operator"))
        assert (report.imported, report.queued, report.summary()["queued_for_dispatch"]) == (2, 1, 1)
        live = s.scalars(select(Order).where(Order.external_id == "m1")).one()
        assert background.waiting(s, [live.id]) == {live.id}
    assert background.run_once() == {"dispatched": 1}
    with session_scope() as s:
        order = orders.require_order(s, order_id=live.id)
        assert order.state == State.DISPATCHED and order.lead_unit_id == org["housing"]
        trail = orders.history(s, order_id=live.id)
        assert [(e.action, e.actor_name) for e in trail] == [
            ("create", "operator"),
            ("comment", "auto-dispatch"),
            ("dispatch", "auto-dispatch"),
        ]
    other = tmp_path / "other.csv"
    other.write_text("留言编号,留言详情,留言时间\nm3,垃圾没人清,2026-11-30 11:00:00\n", encoding="utf-8")
    with session_scope() as s:
        assert import_orders(s, path=other).queued == 0  # without dispatch: waits for a dispatcher
        assert import_orders(s, path=other, dispatch=True, channel="web", as_history=True).queued == 0
        assert background.status(s).orders == 0


def test_appeals_arriving_during_a_large_import_are_decided_before_its_rows(in_background, org, model, tmp_path):  # type: ignore[no-untyped-def]
    """An import's orders queue behind intake's: a hotline appeal received after the import is decided first."""
    from cityhub.intake.importer import import_orders

    sheet = tmp_path / "many.csv"
    rows = "".join(f"b{i},第{i}栋外墙瓷砖脱落,2026-11-30 09:00:00\n" for i in range(5))
    sheet.write_text("留言编号,留言详情,留言时间\n" + rows, encoding="utf-8")
    with session_scope() as s:
        assert import_orders(s, path=sheet, dispatch=True).queued == 5
    live = _submitted("小区外墙脱落，物业不管")  # queued after the import's rows

    assert background.run_once(limit=1) == {"dispatched": 1}
    with session_scope() as s:
        assert orders.require_order(s, order_id=live).state == State.DISPATCHED
        waiting = background.status(s).as_dict()
    assert (waiting["orders"], waiting["bulk_orders"], waiting["oldest_wait_s"]) == (5, 5, None)
    assert waiting["bulk_oldest_wait_s"] >= 0  # a rising wait of the imported rows alarms no one


WALL = "小区3栋外墙瓷砖大面积脱落，砸坏了楼下停的车，物业一直不管，请尽快处理"


def test_a_problem_split_off_an_appeal_is_decided_as_a_new_appeal(in_background, org, model) -> None:
    """…at the appeal's place, and not held back as a "possible duplicate" of the appeal it came from."""
    with session_scope() as s:
        appeal = {"channel": "hotline", "address": "嘉禾街道望岗社区幸福路8号", "street_code": "T-JD"}
        order_id = submit(s, data={**appeal, "content": f"{WALL}；另外门口路灯也坏了"}).order.id
    assert background.run_once() == {"dispatched": 1}
    with session_scope() as s:
        orders.act(s, order_id=order_id, action=Action.SPLIT, params={"content": WALL})
        part_id = s.scalars(select(Order.id).where(Order.split_from_id == order_id)).one()
        assert background.status(s).orders == 1  # queued for the background dispatcher, as intake queues an appeal
    assert background.run_once() == {"dispatched": 1}
    with session_scope() as s:
        part = orders.require_order(s, order_id=part_id)
        assert part.state == State.DISPATCHED and part.lead_unit_id == org["housing"]
        assert [e.action for e in orders.history(s, order_id=part_id)] == ["create", "comment", "dispatch"]


def test_background_decision_below_the_threshold_waits_in_the_queue(in_background, org, model) -> None:
    model.top3 = [("城乡建设", 0.55), ("环境保护", 0.40), ("交通运输", 0.05)]
    order_id = _submitted("外墙脱落还是垃圾问题")
    assert background.run_once() == {"queued": 1}
    with session_scope() as s:
        assert orders.require_order(s, order_id=order_id).state == State.RECEIVED
        decision = service.latest_decision(s, order_id=order_id)
        assert decision is not None and not decision.dispatched and len(decision.candidates) >= 1
        assert background.status(s).orders == 0
    assert order_id in [o.id for o in _queue_orders()]


def _queue_orders():  # type: ignore[no-untyped-def]
    with session_scope() as s:
        return [order for order, _decision in service.queue(s)[0]]


def test_an_order_taken_by_hand_first_is_left_alone(in_background, org, model) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")
    with session_scope() as s:
        orders.act(s, order_id=order_id, action=Action.DISPATCH, actor=DISPATCHER, params={"unit_id": org["water"]})
    assert background.run_once() == {"skipped": 1}
    assert _trail(order_id) == ["create", "dispatch"]
    with session_scope() as s:
        assert orders.require_order(s, order_id=order_id).lead_unit_id == org["water"]
        assert background.status(s).orders == 0


def test_the_background_dispatcher_holds_a_repeat_of_an_open_order_too(in_background, org, model, monkeypatch) -> None:
    from cityhub.intake.dedupe import get_dedupe_settings

    monkeypatch.setenv("CITYHUB_DEDUPE_AUTO_MERGE", "false")
    get_dedupe_settings.cache_clear()
    try:
        text = "望岗大街3号楼外墙瓷砖脱落，砸到停在楼下的车，物业一直不管，请尽快处理"
        appeal = {"channel": "hotline", "appeal_type": "complaint", "content": text, "community_code": "T-SQ"}
        with session_scope() as s:
            first = submit(s, data=appeal).order.id
        assert background.run_once() == {"dispatched": 1}
        with session_scope() as s:
            again = submit(s, data=appeal).order.id
        assert background.run_once() == {"queued": 1}
        with session_scope() as s:
            decision = service.latest_decision(s, order_id=again)
            number = orders.require_order(s, order_id=first).number
            assert decision is not None and decision.reason.startswith(f"possible duplicate of open order {number}")
    finally:
        get_dedupe_settings.cache_clear()


def test_a_failed_decision_leaves_the_order_received(in_background, org, model) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")
    with session_scope() as s:
        target = service.suggest(s, order=orders.require_order(s, order_id=order_id), store=False)
        assert target.auto
        s.get(Unit, target.candidates[0].unit_id).active = False  # deactivated after its rule was written
    assert background.run_once() == {"failed": 1}
    assert _trail(order_id) == ["create"]
    with session_scope() as s:
        assert orders.require_order(s, order_id=order_id).state == State.RECEIVED
        assert background.status(s).orders == 0  # waits in the dispatcher's queue, not for another try


def test_without_its_model_the_dispatcher_suggests_by_rules_and_dispatches_nothing(
    in_background, org, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(tmp_path / "no-model"))
    get_settings.cache_clear()
    with session_scope() as s:  # a rule that dispatches on its own where no classifier is configured
        rule = RuleCreate(name="停水 (urgent)", priority=200, keywords=["停水"], target_unit_id=org["water"])
        service.create_rule(s, data=rule)
    order_id = _submitted("小区停水两天了，物业不管")
    assert background.run_once() == {"queued": 1}
    assert _trail(order_id) == ["create"]
    with session_scope() as s:
        rows, _ = service.queue(s)
        decision = dict((o.id, d) for o, d in rows)[order_id]
        assert not decision.auto and decision.candidates and decision.prediction is None
        assert decision.reason.startswith("classifier unavailable: nothing is dispatched automatically; rule #")
        assert orders.require_order(s, order_id=order_id).state == State.RECEIVED


def test_an_order_another_dispatcher_claimed_meanwhile_is_not_decided_twice(
    in_background, org, model, monkeypatch
) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")
    decide = service.auto_dispatch

    def racing(session, **kwargs):  # type: ignore[no-untyped-def]
        with session_scope() as other:  # the other dispatcher's claim commits first
            other.execute(delete(DispatchBacklog).where(DispatchBacklog.order_id == order_id))
        return decide(session, **kwargs)

    monkeypatch.setattr(service, "auto_dispatch", racing)
    assert background.run_once() == {"taken": 1}
    assert _trail(order_id) == ["create"]  # this dispatcher's decision was rolled back
    with session_scope() as s:
        assert orders.require_order(s, order_id=order_id).state == State.RECEIVED
        assert s.get(DispatchSuggestion, order_id) is None


def _due_now(order_id: int) -> DispatchBacklog:
    """The order's backlog row, made due at once (as if its pause had passed)."""
    with session_scope() as s:
        row = s.get(DispatchBacklog, order_id)
        assert row is not None and row.retry_at is not None and row.retry_at > utcnow()
        row.retry_at = utcnow()
        s.flush()
        s.expunge(row)
        return row


def test_a_database_fault_keeps_the_order_in_the_backlog(in_background, org, model, monkeypatch) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")
    other_id = _submitted("楼顶漏水，物业不管")
    decide = service.auto_dispatch

    def broken(session, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["order"].id == order_id:
            raise OSError("disk gone")
        return decide(session, **kwargs)

    monkeypatch.setattr(service, "auto_dispatch", broken)
    assert background.run_once() == {"error": 1, "dispatched": 1}  # the others go on
    assert background.run_once() == {}  # the failed one waits before its next try
    assert _due_now(order_id).attempts == 1
    monkeypatch.setattr(service, "auto_dispatch", decide)  # the fault is over: the next try decides
    assert background.run_once() == {"dispatched": 1}
    assert _trail(order_id) == _trail(other_id) == ["create", "comment", "dispatch"]


def test_an_order_that_keeps_failing_is_left_to_the_queue(in_background, org, model, monkeypatch) -> None:
    order_id = _submitted("小区外墙脱落，物业不管")

    def broken(session, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("always")

    monkeypatch.setattr(service, "auto_dispatch", broken)
    for attempt in range(1, background.MAX_ATTEMPTS):
        assert background.run_once() == {"error": 1}
        assert _due_now(order_id).attempts == attempt
    assert background.run_once() == {"error": 1}
    with session_scope() as s:
        assert background.status(s).orders == 0  # given up: no more tries, no more log lines
        assert orders.require_order(s, order_id=order_id).state == State.RECEIVED
    assert order_id in [o.id for o in _queue_orders()]


def test_a_round_decides_many_orders_on_several_threads_once_each(in_background, org, model) -> None:
    ids = [_submitted(f"小区外墙脱落，物业不管 第{i}栋") for i in range(12)]
    with ThreadPoolExecutor(2) as pool:
        assert background.run_once(pool=pool) == {"dispatched": 12}
        assert background.run_once(pool=pool) == {}
    for order_id in ids:
        assert _trail(order_id) == ["create", "comment", "dispatch"]


def test_worker_once_drains_the_backlog(in_background, org, model) -> None:
    from typer.testing import CliRunner

    from cityhub.cli import _mount, app

    ids = [_submitted("小区外墙脱落，物业不管"), _submitted("楼顶漏水，物业不管")]
    _mount()
    result = CliRunner().invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    for order_id in ids:
        assert _trail(order_id) == ["create", "comment", "dispatch"]
    with session_scope() as s:
        assert background.status(s).orders == 0


# --- duplicates left to the background dispatcher (CITYHUB_DEDUPE_IN_BACKGROUND) ---------------------------------

LEAK = "望岗社区幸福路12号楼下水管爆裂，水流满地，请尽快派人维修"


def _deferred(content: str = LEAK) -> int:
    """Created as the API and Open311 create: duplicates left to the dispatcher."""
    with session_scope() as s:
        data = {"channel": "app", "content": content, "community_code": "T-SQ"}
        result = submit(s, data=data, similar=False, defer_duplicates=True)
        assert result.order.state == State.RECEIVED and result.duplicates == []
        return result.order.id


def test_the_dispatcher_merges_a_duplicate_the_api_left_to_it(in_background, org, model) -> None:
    first = _deferred()
    assert background.run_once() == {"dispatched": 1}
    again = _deferred()
    assert _trail(again) == ["create"]  # the creating request looked for nothing
    with session_scope() as s:
        assert s.get(DispatchBacklog, again).check_duplicates
    assert background.run_once() == {"merged": 1}
    with session_scope() as s:
        order = orders.require_order(s, order_id=again)
        assert order.state == State.MERGED and order.master_order_id == first
        merge = orders.history(s, order_id=again)[-1]
        assert merge.action == "merge" and merge.actor_name == background.MERGE_ACTOR_NAME
        assert s.get(DispatchSuggestion, again) is None  # merged, not dispatched
        assert background.status(s).orders == 0


def test_of_two_copies_checked_after_both_arrived_the_later_merges(in_background, org, model) -> None:
    first, second = _deferred(), _deferred()
    assert background.run_once() == {"dispatched": 1, "merged": 1}
    with session_scope() as s:
        assert orders.require_order(s, order_id=first).state == State.DISPATCHED
        assert orders.require_order(s, order_id=second).master_order_id == first


def test_duplicates_are_checked_at_once_when_not_left_to_the_dispatcher(in_background, org, model, monkeypatch) -> None:
    first = _deferred()
    background.run_once()
    with session_scope() as s:  # an operator's intake, which shows what it finds
        result = submit(s, data={"channel": "hotline", "content": LEAK, "community_code": "T-SQ"})
        assert result.order.state == State.MERGED and result.order.master_order_id == first
    monkeypatch.setenv("CITYHUB_DEDUPE_IN_BACKGROUND", "false")
    from cityhub.intake.dedupe import get_dedupe_settings

    get_dedupe_settings.cache_clear()
    with session_scope() as s:
        data = {"channel": "app", "content": LEAK, "community_code": "T-SQ"}
        result = submit(s, data=data, similar=False, defer_duplicates=True)
        assert result.order.state == State.MERGED and result.order.master_order_id == first
        assert s.get(DispatchBacklog, result.order.id) is None


def test_an_order_created_over_the_api_is_merged_by_the_dispatcher(in_background, org, model) -> None:
    from app_helpers import shared_app

    with session_scope() as s:
        admin = User(username="bg-admin", full_name="管理员", role=Role.ADMIN, unit_id=org["district"])
        s.add(admin)
        s.flush()
        token = create_token(s, user_id=admin.id, name="t")[1]
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        _api_copies_are_merged(client)


def _api_copies_are_merged(client: TestClient) -> None:
    body = {"channel": "app", "content": LEAK, "community_code": "T-SQ"}
    first = client.post("/api/v1/orders", json=body)
    assert first.status_code == 201 and first.json()["state"] == "received"
    background.run_once()
    again = client.post("/api/v1/orders", json=body)
    assert again.status_code == 201 and again.json()["state"] == "received"
    assert background.run_once() == {"merged": 1}
    merged = client.get(f"/api/v1/orders/{again.json()['id']}").json()
    assert merged["state"] == "merged" and merged["master_order_id"] == first.json()["id"]


def test_without_automatic_dispatch_the_dispatcher_keeps_its_decision_and_sends_nothing(app_db, org, model) -> None:
    """Automatic dispatch off (the default): the background dispatcher checks for duplicates and decides for each
    new order — the operator's too — keeping the decision for the queue (its category filter finds the order by the
    category only the classifier read), sending nothing; the order waits for a dispatcher."""
    assert not get_settings().dispatch_auto and background.suggests() and not background.decides()
    first = _deferred()
    assert background.run_once() == {"suggested": 1}  # no earlier duplicate: decided, not sent
    again = _deferred()
    assert background.run_once() == {"merged": 1}
    typed = _submitted("小区外墙脱落，物业不管")  # the operator's intake queues it too
    with session_scope() as s:
        assert s.get(DispatchBacklog, typed) is not None
    assert background.run_once() == {"suggested": 1}
    with session_scope() as s:
        for order_id in (first, typed):
            order = orders.require_order(s, order_id=order_id)
            assert order.state == State.RECEIVED and order.lead_unit_id is None and order.category_id is None
            kept = s.get(DispatchSuggestion, order_id)
            assert kept is not None and not kept.dispatched and kept.candidates
            read = kept.place["category_id"]
            assert read is not None and service.queue_categories(s).get(read, 0) >= 1
            assert order_id in set(s.scalars(select(Order.id).where(service.decided_category(s, read))))
        assert orders.require_order(s, order_id=again).master_order_id == first
    assert _trail(first) == ["create", "merged_in"] and _trail(typed) == ["create"]  # nothing sent, nothing filled in


def test_the_dispatcher_records_its_heartbeat_among_the_jobs(in_background, org, model) -> None:
    from cityhub.main import status_summary

    order_id = _submitted("小区外墙脱落，物业不管")
    _thread, stop = background.start_thread()
    try:
        wait = 0
        while (
            _trail(order_id) != ["create", "comment", "dispatch"] or background.JOB_NAME not in status_summary()["jobs"]
        ):
            assert wait < 200, "the dispatcher neither decided nor recorded its heartbeat"
            stop.wait(0.05)
            wait += 1
    finally:
        stop.set()
        _thread.join(timeout=10)
    beat = status_summary()["jobs"][background.JOB_NAME]
    state = beat["last_result"]
    assert state["decides"] is True and state["dispatch_model"] == service.model_status()
    assert state["since_start"] == {"dispatched": 1} and state["checks_duplicates"] is background.checks_duplicates()
    assert state["pid"] == os.getpid() and beat["last_finished_at"] is not None
    # This host's own row says the same (with two hosts, JOB_NAME holds whichever beat last).
    import socket

    assert state["host"] == socket.gethostname()
    assert status_summary()["jobs"][background.host_job_name()]["last_result"] == state
    # The public probe and status page say that a dispatcher beats, not on which machine or in which process.
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    with TestClient(shared_app()) as client:
        probe = client.get("/healthz")
        page = client.get("/", headers={"Accept": "text/html"}).text
    public = probe.json()["jobs"]
    assert public[f"{background.JOB_NAME}@1"]["last_result"]["since_start"] == {"dispatched": 1}
    assert (
        "pid" not in public[background.JOB_NAME]["last_result"]
        and "host" not in public[background.JOB_NAME]["last_result"]
    )
    assert f"@{socket.gethostname()}" not in probe.text + page and '"host"' not in probe.text
    assert f"{background.JOB_NAME}@1" in page


# --- retraining from the corrections (cityhub dispatch retrain) ---------------------------------------------------

_BASE_WORDS = {
    "城乡建设": ["外墙", "脱落", "物业", "电梯", "漏水", "违建", "井盖", "路灯"],
    "交通运输": ["公交车", "红绿灯", "停车场", "斑马线", "出租车", "地铁站", "违停", "公交站"],
}
_FILLER = ["请问", "您好", "小区", "附近", "希望", "尽快", "处理", "反映", "每天"]


def _base_csv(path: Path, *, contradictions: int = 0) -> Path:
    """Synthetic labelled messages of two categories; ``contradictions`` copies of one text with alternating labels
    (no model can get them all right, so its cross-validated macro F1 stays below 1)."""
    import random

    rng = random.Random(3)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "title", "content", "created_at", "category"])
        for label, words in _BASE_WORDS.items():
            for i in range(30):
                text = "".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(_FILLER) for _ in range(10))
                writer.writerow([f"{label}{i}", "", text, "", label])
        for i in range(contradictions):
            writer.writerow([f"x{i}", "", "外墙公交车附近反映外墙公交车", "", list(_BASE_WORDS)[i % 2]])
        writer.writerow(["bad", "", "", "", "城乡建设"])  # no text: reported, not trained on
    return path


def _live_model(directory: Path, base: Path, *, macro_f1: float) -> Path:
    """A live model trained on ``base``, its CV report saying ``macro_f1`` (what the guard compares with)."""
    import json

    records, _ = classifier.read_labelled_csv(base)
    config = classifier.ClassifierConfig(folds=3, char_ngrams=(1, 2), min_df=1)
    target = Path(classifier.train(records, config=config).save(directory / "live"))
    meta_path = target / classifier.META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["evaluation"]["all"]["macro_f1"] = macro_f1
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return target


def _retrain_cli(*args: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from cityhub.cli import _mount, app

    _mount()
    return CliRunner().invoke(app, ["dispatch", "retrain", *args])


def test_retrain_adds_the_corrections_and_promotes_a_model_that_is_not_worse(app_db, db_session, org, tmp_path):
    import json

    from cityhub.workorders.models import JobRun

    _corrected_orders(db_session, org)
    db_session.commit()
    base = _base_csv(tmp_path / "base.csv")
    live = _live_model(tmp_path, base, macro_f1=0.5)
    before = classifier.load(live).meta["created_at"]

    result = _retrain_cli("--data", str(base), "--model", str(live), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["promoted"] is True and out["live_macro_f1"] == 0.5 and out["candidate_macro_f1"] > 0.5
    # The re-dispatched order (城乡建设) is learned; the re-categorised one (环境保护) names a category the base data
    # lacks: left out and counted. The base file's row without text is reported.
    assert out["base_rows"] == 60 and out["corrections"] == 1 and out["corrections_left_out"] == {"环境保护": 1}
    assert [row["id"] for row in out["skipped_rows"]] == ["bad"]
    promoted = classifier.load(live)
    assert promoted.meta["retrained"] == {"base_rows": 60, "corrections": 1}
    assert promoted.meta["training_data"]["n"] == 61 and promoted.meta["created_at"] >= before
    assert promoted.config.char_ngrams == (1, 2) and promoted.config.min_df == 1  # the live model's configuration
    assert promoted.predict(["公交车 红绿灯 坏了"])[0].label == "交通运输"
    with session_scope() as s:
        run = s.get(JobRun, "classifier-retrain")
        assert run is not None and run.last_result["promoted"] is True and run.last_result["corrections"] == 1


def test_retrain_keeps_a_better_live_model_unless_forced(app_db, db_session, org, tmp_path) -> None:
    _corrected_orders(db_session, org)
    db_session.commit()
    base = _base_csv(tmp_path / "base.csv", contradictions=6)
    live = _live_model(tmp_path, base, macro_f1=1.0)
    files = {f.name: f.read_bytes() for f in live.iterdir()}

    kept = _retrain_cli("--data", str(base), "--model", str(live), "--tolerance", "0")
    assert kept.exit_code == 0, kept.output
    assert "not promoted" in kept.stdout and "< live 1.0000 − tolerance 0.0" in kept.stdout
    assert {f.name: f.read_bytes() for f in live.iterdir()} == files  # the live model untouched
    rejected = live.with_name("live.rejected")
    assert classifier.load(rejected).meta["retrained"]["corrections"] == 1  # the candidate, for inspection

    forced = _retrain_cli("--data", str(base), "--model", str(live), "--tolerance", "0", "--force")
    assert forced.exit_code == 0 and "promoted into" in forced.stdout and "forced" in forced.stdout
    assert classifier.load(live).meta["retrained"]["corrections"] == 1
    assert not rejected.exists()  # the earlier rejected candidate is gone with the promotion


def test_retrain_keeps_a_live_model_that_knows_a_category_the_candidate_cannot_learn(app_db, tmp_path) -> None:
    import json

    base = _base_csv(tmp_path / "base.csv")
    lake = ["湖边钓鱼的人越来越多", "河涌发黑发臭有垃圾漂浮", "工厂夜里偷排污水", "垃圾焚烧厂冒黑烟呛人"]
    with base.open("a", encoding="utf-8", newline="") as fh:
        for i, text in enumerate(lake):
            csv.writer(fh).writerow([f"env{i}", "", text, "", "环境保护"])
    live = _live_model(tmp_path, base, macro_f1=0.5)
    assert "环境保护" in classifier.load(live).labels
    shrunk = tmp_path / "shrunk.csv"  # the same base, with two of the four 环境保护 messages
    shrunk.write_text("".join(base.read_text(encoding="utf-8").splitlines(keepends=True)[:-2]), encoding="utf-8")

    result = _retrain_cli("--data", str(shrunk), "--model", str(live), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["promoted"] is False and out["categories_left_out"] == {"环境保护": 2}
    assert "the candidate does not know 环境保护, which the live model predicts" in out["reason"]
    assert "环境保护" in classifier.load(live).labels  # the live model untouched


def test_retrain_refuses_bad_input_with_one_line(app_db, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CITYHUB_DISPATCH_MODEL_PATH", raising=False)
    get_settings.cache_clear()
    base = _base_csv(tmp_path / "base.csv")
    no_model = _retrain_cli("--data", str(base))
    assert no_model.exit_code == 1 and "give --model or set CITYHUB_DISPATCH_MODEL_PATH" in no_model.output
    missing = _retrain_cli("--data", str(tmp_path / "nope.csv"), "--model", str(tmp_path / "m"))
    assert missing.exit_code == 1 and "nope.csv" in missing.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / classifier.META_FILE).write_text("{", encoding="utf-8")
    refused = _retrain_cli("--data", str(base), "--model", str(broken))
    assert refused.exit_code == 1 and "not a classifier model" in refused.output  # before the minute of training
    no_encoder = _retrain_cli("--data", str(base), "--model", str(tmp_path / "m"), "--embed-cache", str(tmp_path / "c"))
    assert no_encoder.exit_code == 1 and "--embed-cache applies to a live model with a sentence encoder" in (
        no_encoder.output
    )
    assert len(no_encoder.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    # Each failed run is recorded among the job runs (a failing weekly retrain shows on the status page).
    with session_scope() as session:
        run = session.get(JobRun, "classifier-retrain")
        assert run is not None and run.failures == 3 and "--embed-cache applies" in (run.last_error or "")


def test_retrain_with_a_holdout_scores_both_models_on_the_same_rows(app_db, db_session, org, tmp_path) -> None:
    import json

    _corrected_orders(db_session, org)
    db_session.commit()
    base = _base_csv(tmp_path / "base.csv")
    live = _live_model(tmp_path, base, macro_f1=1.0)  # a CV figure the candidate cannot beat: the hold-out decides
    rows = list(csv.DictReader(base.open(encoding="utf-8-sig")))
    held = [r for r in rows if r["content"]][:10]
    holdout = tmp_path / "holdout.csv"
    with holdout.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(held)
    result = _retrain_cli("--data", str(base), "--model", str(live), "--holdout", str(holdout), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["guard"] == "holdout" and out["holdout_rows"] == 10
    assert out["holdout_excluded"] >= 10 and out["base_rows"] == 60 - out["holdout_excluded"]  # never trained on
    live_f1, new_f1 = out["live_holdout_macro_f1"], out["candidate_holdout_macro_f1"]
    assert live_f1 is not None and new_f1 is not None
    assert out["promoted"] is (new_f1 >= live_f1 - 0.01) and "hold-out macro F1" in out["reason"]
    text = _retrain_cli("--data", str(base), "--model", str(live), "--holdout", str(holdout), "--force")
    assert text.exit_code == 0 and "hold-out: 10 rows" in text.stdout

    empty = tmp_path / "empty.csv"
    empty.write_text("id,title,content,created_at,category\n", encoding="utf-8")
    refused = _retrain_cli("--data", str(base), "--model", str(live), "--holdout", str(empty))
    assert refused.exit_code == 1 and "no usable labelled rows to hold out" in refused.output


def test_outcomes_count_automatic_and_hand_dispatches_and_what_the_first_unit_kept(db_session, org, model) -> None:
    from cityhub.analytics.kpi import parse_period
    from cityhub.dispatch.outcomes import outcomes

    kept_auto = _order(db_session, "小区外墙脱落，物业不管")
    back_auto = _order(db_session, "楼道墙皮掉落")
    assert service.auto_dispatch(db_session, order=kept_auto).dispatched
    assert service.auto_dispatch(db_session, order=back_auto).dispatched
    orders.act(db_session, order_id=back_auto.id, action=Action.RETURN, params={"reason": "不属于我单位"})
    orders.act(
        db_session, order_id=back_auto.id, action=Action.DISPATCH, actor=DISPATCHER, params={"unit_id": org["env"]}
    )
    by_hand = _order(db_session, "河涌发臭", category_id=org["cat_env"])
    orders.act(
        db_session, order_id=by_hand.id, action=Action.DISPATCH, actor=DISPATCHER, params={"unit_id": org["env"]}
    )
    moved = _order(db_session, "路边垃圾堆放")
    orders.act(
        db_session, order_id=moved.id, action=Action.DISPATCH, actor=DISPATCHER, params={"unit_id": org["street"]}
    )
    orders.act(
        db_session,
        order_id=moved.id,
        action=Action.TRANSFER,
        actor=DISPATCHER,
        params={"unit_id": org["env"], "reason": "属环保"},
    )
    _order(db_session, "还没派出的诉求")  # not dispatched: not counted
    today = utcnow().astimezone(get_settings().tz).date()
    result = outcomes(db_session, period=parse_period(today.isoformat())).as_dict()
    assert result["dispatched"] == 4 and result["automatic_share"] == 0.5
    assert result["automatic"] == {"dispatched": 2, "kept": 1, "kept_share": 0.5}  # the re-dispatch is not a first
    assert result["manual"] == {"dispatched": 2, "kept": 1, "kept_share": 0.5}
    by_category = {c["category"]: c for c in result["by_category"]}
    assert by_category["城乡建设"]["automatic"]["dispatched"] == 2 and by_category["环境保护"]["manual"]["kept"] == 1
    assert result["by_category"][-1]["category"] is None  # the one without a category comes last
    # A period before any of it counts nothing.
    assert outcomes(db_session, period=parse_period("2020-01")).as_dict()["automatic_share"] is None


def test_outcomes_over_the_api_and_the_cli(client) -> None:
    from typer.testing import CliRunner

    from cityhub.dispatch.cli import app as dispatch_cli

    made = client.post("/api/v1/orders", json={"channel": "hotline", "content": "小区外墙脱落"}).json()
    sent = client.post(f"/api/v1/orders/{made['id']}/actions/dispatch", json={"unit_id": client.ids["unit"]})
    assert sent.status_code == 200, sent.text
    today = utcnow().astimezone(get_settings().tz).date().isoformat()
    got = client.get("/api/v1/dispatch/outcomes", params={"period": today}, headers=client.as_dispatcher)
    assert got.status_code == 200, got.text
    assert got.json()["manual"] == {"dispatched": 1, "kept": 1, "kept_share": 1.0} and got.json()["period"] == today
    assert (
        client.get("/api/v1/dispatch/outcomes", params={"period": today}, headers=client.as_handler).status_code == 403
    )
    bad = client.get("/api/v1/dispatch/outcomes", params={"period": "2026-13"})
    assert bad.status_code == 422 and bad.json()["details"]["field"] == "period"
    shown = CliRunner().invoke(dispatch_cli, ["outcomes", "--period", today, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["dispatched"] == 1
    table = CliRunner().invoke(dispatch_cli, ["outcomes", "--period", today])
    assert "1 orders first dispatched, 0.0% automatically" in table.output and "1/1 kept (100.0%)" in table.output
    refused = CliRunner().invoke(dispatch_cli, ["outcomes", "--period", "last week"])
    assert refused.exit_code != 0 and "bad period 'last week'" in str(refused.exception)  # main() prints it


def test_rules_and_thresholds_are_changed_and_removed_from_the_command_line(app_db, db_session, org, cli_run) -> None:
    """``dispatch rules set`` changes only the options given, ``dispatch thresholds remove`` lets the ancestor's or
    the default threshold apply again — both in the configuration log, as the API's and the page's edits are."""
    from cityhub import auditlog

    rule = db_session.scalars(select(DispatchRule).where(DispatchRule.name == "停水 → 供水")).one()
    code, out, err = cli_run("dispatch", "rules", "set", str(rule.id), "--inactive", "--priority", "70")
    assert (code, out) == (0, f"rule {rule.id} changed (department, priority 70, inactive)\n"), err
    code, out, err = cli_run("dispatch", "rules", "set", str(rule.id), "--local", "street", "--keywords", "停水、断水")
    assert code == 0, err
    db_session.expire_all()
    changed = db_session.get(DispatchRule, rule.id)
    assert (changed.active, changed.priority, changed.target_kind, changed.target_unit_id, changed.tier) == (
        False,
        70,
        TargetKind.LOCAL_STREET,
        None,
        RuleTier.STREET,
    )
    assert changed.keywords == ["停水", "断水"] and changed.name == "停水 → 供水"
    for args, message in (
        ([str(rule.id)], "error: nothing to change: give at least one option"),
        (["999999", "--active"], "error: dispatch rule 999999 not found"),
        ([str(rule.id), "--tier", "planet"], "error: tier: Input should be"),
        ([str(rule.id), "--unit", "NOPE"], "error: unknown unit code NOPE"),
    ):
        code, out, err = cli_run("dispatch", "rules", "set", *args)
        assert code != 0 and out == "" and err.startswith(message) and err.count("\n") == 1, (args, err)

    assert cli_run("dispatch", "thresholds", "set", "城乡建设", "0.97")[0] == 0
    code, out, err = cli_run("dispatch", "thresholds", "remove", "城乡建设")
    assert (code, out) == (0, "threshold of 城乡建设 removed (0.900 applies)\n"), err
    assert service.threshold_for(db_session, category_id=org["cat_build"]) == get_settings().dispatch_threshold
    code, _, err = cli_run("dispatch", "thresholds", "remove", "城乡建设")
    assert code != 0 and err.startswith("error: no threshold for category")
    logged = [
        (e.area, e.action)
        for e in db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id))
        if e.actor == "cli"
    ]
    assert logged == [("dispatch_rule", "update")] * 2 + [
        ("dispatch_threshold", "create"),
        ("dispatch_threshold", "delete"),
    ]


def test_dispatch_run_decides_the_others_and_exits_by_the_worst_failure(
    app_db, db_session, org, model, cli_run, monkeypatch
) -> None:
    """``dispatch run`` decides every received order in its own transaction: one whose decision fails stays received
    and is named on stderr, the others are decided, and the command exits non-zero — 2 when a service it needs failed,
    1 when an order refused — with the counts on stdout."""
    from cityhub.errors import StorageUnavailable

    made = [_order(db_session, text) for text in ("小区外墙脱落，物业不管", "外墙瓷砖掉落", "楼道外墙开裂")]
    db_session.commit()
    numbers = [o.number for o in made]
    real = service.auto_dispatch
    failing: dict[str, Exception] = {numbers[1]: StorageUnavailable("the file store cannot be written")}

    def auto_dispatch(session, *, order, **kw):  # type: ignore[no-untyped-def]
        if order.number in failing:
            raise failing[order.number]
        return real(session, order=order, **kw)

    monkeypatch.setattr(service, "auto_dispatch", auto_dispatch)
    code, out, err = cli_run("dispatch", "run")
    assert (code, out) == (2, "orders 3: dispatched 2, queued 0, failed 1\n"), err
    assert err.splitlines() == [
        f"order {numbers[1]}: the file store cannot be written",
        "error: 1 of 3 orders not decided (each named above); they stay received",
    ]
    db_session.expire_all()
    states = [db_session.get(Order, o.id).state for o in made]
    assert states == [State.DISPATCHED, State.RECEIVED, State.DISPATCHED]

    failing[numbers[1]] = ValidationFailed("unknown or inactive unit 7")  # a refusal, not a service failing
    code, out, err = cli_run("dispatch", "run")
    assert (code, out) == (1, "orders 1: dispatched 0, queued 0, failed 1\n"), err
    del failing[numbers[1]]
    code, out, err = cli_run("dispatch", "run")
    assert (code, out, err) == (0, "orders 1: dispatched 1, queued 0, failed 0\n", "")


def test_a_dispatch_back_to_the_unit_that_returned_it_needs_a_reason_and_the_trail_says_so(db_session, org) -> None:
    """退单 then 派回: the unit's latest return sent the order to the queue; a dispatcher sending it straight back to
    that unit — the order page's, the API's, 批量派单's unit for all — says why, and the dispatch event is marked so
    (``back_to_returner``): the unit reads why when it signs for it again. Another unit takes no reason."""
    s = db_session
    env_staff = orders.Actor(name="环境经办", unit_id=org["env"], role=Role.HANDLER.value)
    single, bulk, elsewhere = (_order(s, f"河涌发黑发臭 {i}") for i in range(3))
    for order in (single, bulk, elsewhere):
        orders.act(s, order_id=order.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"]})
        orders.act(s, order_id=order.id, action="return", actor=env_staff, params={"reason": "非本单位职责"})
    s.flush()

    with pytest.raises(ValidationFailed) as refused:
        orders.act(s, order_id=single.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"]})
    assert refused.value.details["field"] == "reason" and single.state == State.RETURNED
    orders.act(
        s, order_id=single.id, action="dispatch", actor=DISPATCHER, params={"unit_id": org["env"], "reason": "核实属实"}
    )
    last = orders.history(s, order_id=single.id)[-1]
    assert (last.action, last.reason, last.payload.get("back_to_returner")) == ("dispatch", "核实属实", True)

    [unsaid] = service.dispatch_picked(s, [service.Pick(bulk.id, org["env"])], actor=DISPATCHER)
    assert not unsaid.dispatched and unsaid.refusal == service.Refusal.BACK
    picks = [service.Pick(bulk.id, org["env"], reason="经核实属该单位"), service.Pick(elsewhere.id, org["water"])]
    said, other = service.dispatch_picked(s, picks, actor=DISPATCHER)
    assert said.dispatched and said.back and other.dispatched and not other.back
    assert orders.history(s, order_id=bulk.id)[-1].payload.get("back_to_returner") is True
    assert "back_to_returner" not in (orders.history(s, order_id=elsewhere.id)[-1].payload or {})
