"""``demo seed`` makes the demo usable: demo logins, a classifier, 秒回 entries, routing rules and hot topics.

Runs the real CLI and the real web app on both backends, with a small seed (300 orders) and cheap Argon2. The
classifier is written under the test's own directory (``CITYHUB_DISPATCH_MODEL_PATH``), never beside the shared
session database, so no other test finds it.

The full seed (orders, a classifier trained on them, sensors, hot topics: ~20 s) runs once per backend per test
process (``seeded_demo``); each test that starts from it gets its own copy of the database and of the classifier.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app_helpers import shared_app
from cityhub import migrate
from cityhub.analytics.models import AssessmentExemption, HotTopic, HotTopicModelState
from cityhub.auth import passwords
from cityhub.auth import service as auth
from cityhub.db import reset_engine, session_factory, session_scope
from cityhub.demo import corpus
from cityhub.demo.cli import app as demo_app
from cityhub.demo.extras import (
    DEFAULT_DEMO_PASSWORD,
    KB_CSV,
    STAFF_WORK,
    citizens_appeals,
    demo_notices,
    prepare_demo,
    set_demo_passwords,
    staff_work,
    track_example,
)
from cityhub.demo.sensors import RULES
from cityhub.dispatch import service as dispatch
from cityhub.dispatch.models import DispatchRule
from cityhub.errors import PermissionDenied
from cityhub.knowledge import service as kb
from cityhub.knowledge.models import KnowledgeEntry, ReplyCheck
from cityhub.org.models import Unit, User
from cityhub.org.service import BAIYUN_USERS, read_csv_table
from cityhub.workorders import calendar as workcal
from cityhub.workorders.categories import find_category
from cityhub.workorders.lifecycle import OPEN_STATES
from cityhub.workorders.models import Order, OrderAssist, OrderEvent
from web_helpers import hidden, intake_form

SEED = ["demo", "seed", "--orders", "300", "--seed", "3", "--years", "1", "--end", "2025-03-31"]
NAMED = [values["username"] for _, values in read_csv_table(BAIYUN_USERS).rows]
# The seeded databases on PostgreSQL, named as conftest's: one set per xdist worker, on a server they may share.
PG_PREFIX = "cityhub_test_demo" + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)


@pytest.fixture
def demo_env(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings of a demo run against the test database; yields the classifier's directory."""
    model = tmp_path / "model"
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "demo")
    monkeypatch.delenv("CITYHUB_DEMO_PASSWORD", raising=False)
    monkeypatch.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(model))
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the test client speaks plain http
    reset_engine()
    yield model
    reset_engine()


def _cli(*args: str) -> Any:
    cli = typer.Typer()
    cli.add_typer(demo_app, name="demo")  # mounted as in `cityhub demo …`
    return CliRunner().invoke(cli, list(args))


@dataclass(frozen=True)
class Seeded:
    """What ``demo seed`` (SEED, with the extras) printed, and where it left its database and classifier."""

    exit_code: int
    output: str
    url: str
    model: Path


class _SeededDemos:
    """One full ``demo seed`` per backend, made on first use in this test process (a migrated database of its own,
    never the shared session database), kept as the original the tests copy."""

    def __init__(self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp = tmp
        self._seeded: dict[str, Seeded] = {}

    def pg(self) -> Any:
        return self._request.getfixturevalue("pg_server")  # conftest's PgServer

    def get(self, backend: str) -> Seeded:
        if backend not in self._seeded:
            root = self._tmp.mktemp(f"demo-seeded-{backend}")
            if backend == "sqlite":
                url = f"sqlite:///{root / 'demo.db'}"
            else:
                url = self.pg().create_database(f"{PG_PREFIX}_seeded")  # left for the cluster (or the next run) to drop
            migrate.upgrade(url)
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("CITYHUB_DATABASE_URL", url)
                mp.setenv("CITYHUB_DISPATCH_MODEL_PATH", str(root / "model"))
                reset_engine()
                try:
                    result = _cli(*SEED)
                finally:
                    reset_engine()
            self._seeded[backend] = Seeded(result.exit_code, result.output, url, root / "model")
        return self._seeded[backend]


@pytest.fixture(scope="session")
def _seeded_demos(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> _SeededDemos:
    return _SeededDemos(request, tmp_path_factory)


_copies = itertools.count(1)


@pytest.fixture
def seeded_demo(
    demo_env: Path, db_backend: str, _seeded_demos: _SeededDemos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Seeded]:
    """The settings of ``demo_env`` over the test's own copy of a database ``demo seed`` (SEED, extras and all) wrote,
    with its own copy of the classifier in ``demo_env``; yields what that seed printed. As if the test had run the
    seed itself, without the ~20 s it takes."""
    seeded = _seeded_demos.get(db_backend)
    copy_name = None
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'demo.db'}"
        original = sqlite3.connect(make_url(seeded.url).database or "")
        target = sqlite3.connect(make_url(url).database or "")
        try:
            original.backup(target)  # the whole database, whatever its write-ahead log still holds
        finally:
            target.close()
            original.close()
    else:
        copy_name = f"{PG_PREFIX}_{next(_copies)}"
        url = _seeded_demos.pg().copy_database(copy_name, make_url(seeded.url).database or "")
    if seeded.model.exists():
        shutil.copytree(seeded.model, demo_env)  # modification times kept, as the seed left them
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    reset_engine()
    try:
        yield seeded
    finally:
        reset_engine()
        if copy_name is not None:
            _seeded_demos.pg().drop_database(copy_name)


def _snapshot(model: Path) -> dict[str, Any]:
    """Everything the extras write, in a comparable form."""
    with session_scope() as s:
        return {
            "orders": s.scalar(select(func.count()).select_from(Order)),
            "hashes": dict(s.execute(select(User.username, User.password_hash)).all()),
            "kb": sorted(s.execute(select(KnowledgeEntry.id, KnowledgeEntry.version, KnowledgeEntry.answer)).all()),
            "rules": sorted(s.execute(select(DispatchRule.id, DispatchRule.seed_key)).all()),
            "topics": sorted(s.execute(select(HotTopic.id, HotTopic.size, HotTopic.heat)).all()),
            "topic_state": s.execute(select(HotTopicModelState.id, HotTopicModelState.updated_at)).all(),
            "model": (model / "model.json").stat().st_mtime_ns,
        }


def test_seed_twice_sets_everything_up_once(demo_env: Path, seeded_demo: Seeded) -> None:
    first = seeded_demo  # the first seed (SEED) into an empty database
    assert first.exit_code == 0, first.output
    assert "300 inserted" in first.output and "classifier: trained on" in first.output
    assert f"password {DEFAULT_DEMO_PASSWORD}" in first.output and "operator" in first.output
    # The extras' minute of silence is announced before it, and their last line says where it went: the three
    # slowest steps.
    announced = first.output.find("demo extras: logins, routing rules, knowledge base, sensors, classifier")
    assert 0 <= announced < first.output.find("knowledge base: "), first.output
    assert re.search(r"demo extras: [\d.]+ s \([a-z ]+ [\d.]+ s, [a-z ]+ [\d.]+ s, [a-z ]+ [\d.]+ s\)\n", first.output)
    monitoring = rf"monitoring: \d+ sensors, {len(RULES)} alarm rules, \d+ readings; \d+ alarms raised"
    assert re.search(monitoring, first.output)
    # A dozen appeals just received through intake wait in the dispatcher's queue (automatic dispatch is off by
    # default), placed from their addresses, each with the classifier's prediction and suggested units.
    assert "new appeals: 12 received, waiting in the dispatcher's queue" in first.output
    with session_scope() as s:
        new = s.scalars(select(Order).where(Order.external_id.like("demo-new-%"))).all()
        assert len(new) == 12 and {o.state.value for o in new} == {"received"}
        assert sum(o.street_id is not None for o in new) >= 10
        waiting = {o.id: d for o, d in dispatch.queue(s, limit=100)[0]}
        assert {o.id for o in new} <= set(waiting)
        assert all(waiting[o.id].prediction is not None and waiting[o.id].candidates for o in new)
    # The demo citizens have appeals of their own to follow: each one answered (theirs to rate), placed by intake.
    assert "citizens' own appeals: 4 filed" in first.output
    with session_scope() as s:
        for username in ("citizen", "citizen2"):
            user = s.scalar(select(User).where(User.username == username))
            own = s.scalars(select(Order).where(Order.citizen_user_id == user.id)).all()
            assert len(own) == 2 and all(o.street_id is not None for o in own), username
            assert "replied" in {o.state.value for o in own}, username
    assert f"staff's work in hand: {len(STAFF_WORK)} appeals" in first.output
    # 考核核减: a few units' requests, some waiting for the supervisor, some decided.
    assert "assessment exemptions (考核核减):" in first.output
    with session_scope() as s:
        states = s.scalars(select(AssessmentExemption.state)).all()
        assert "pending" in states and "approved" in states, states
    # Every open order placed in a street or community has a point there: the one map showed half of them nowhere.
    with session_scope() as s:
        codes = dict(s.execute(select(Unit.id, Unit.code)).all())
        placed = s.scalars(
            select(Order).where(Order.state.in_(sorted(OPEN_STATES)), Order.street_id.is_not(None))
        ).all()
        assert len(placed) >= 20
        for o in placed:
            assert o.lat is not None and o.lng is not None, (o.external_id, o.title)
            if o.channel.value in ("sensor", "video_ai"):
                continue  # at the sensor or camera that saw it
            street, community = corpus.places_by_code()[codes[o.community_id or o.street_id]]
            at, spread = (
                ((community.lat, community.lng), corpus.COMMUNITY_SPREAD)
                if community is not None
                else ((street.lat, street.lng), corpus.STREET_SPREAD)
            )
            reach = 2 * spread * street.radius + 0.002
            assert abs(o.lat - at[0]) <= reach and abs(o.lng - at[1]) <= reach, (o.external_id, o.title)
    kb_rows = sum(1 for _ in read_csv_table(KB_CSV).rows)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(KnowledgeEntry)) == kb_rows
        assert s.scalar(select(func.count()).select_from(DispatchRule).where(DispatchRule.seed_key.is_not(None)))
        assert s.scalar(select(func.count()).select_from(HotTopic))
        no_password = s.scalars(select(User.username).where(User.password_hash.is_(None))).all()
        assert not set(NAMED) & set(no_password)
    before = _snapshot(demo_env)

    second = _cli(*SEED)
    assert second.exit_code == 0, second.output
    assert "already seeded" in second.output and "0 set now" in second.output
    assert "0 entries imported" in second.output and "routing rules: already seeded" in second.output
    assert "monitoring: already seeded" in second.output and "new appeals:" not in second.output
    assert "citizens' own appeals" not in second.output and "staff's work in hand" not in second.output
    assert "assessment exemptions" not in second.output
    assert "(already there)" in second.output and "(mined now)" not in second.output
    assert _snapshot(demo_env) == before


def test_later_edits_survive_a_reseed(demo_env: Path, seeded_demo: Seeded) -> None:
    factory = session_factory()
    assert seeded_demo.exit_code == 0, seeded_demo.output
    with session_scope() as s:
        entry = s.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).first()
        assert entry is not None
        entry.answer = "管理员改写过的答复。"
        rule = s.scalars(select(DispatchRule).order_by(DispatchRule.id)).first()
        assert rule is not None
        s.delete(rule)
        entry_id, rule_id = entry.id, rule.id
    again = prepare_demo(factory, model_dir=demo_env)
    assert (again.kb_created, again.rules_created, again.passwords_set, again.model_trained) == (0, 0, 0, False)
    with session_scope() as s:
        assert s.get(KnowledgeEntry, entry_id).answer == "管理员改写过的答复。"  # type: ignore[union-attr]
        assert s.get(DispatchRule, rule_id) is None


def test_demo_passwords_only_for_users_without_one_and_only_in_demo(
    demo_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub.demo.service import seed_demo

    seed_demo(session_factory(), orders=0)  # organisation and users only
    own = "my-own-password-42"
    with session_scope() as s:
        auth.set_password(s, username="operator2", password=own)

    # Production: the command refuses with one line, and the service sets nothing.
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "production")
    monkeypatch.setenv("CITYHUB_SECRET_KEY", "a-real-secret-for-this-test-0123456789")
    reset_engine()
    refused = _cli(*SEED)
    assert refused.exit_code != 0
    assert "CITYHUB_ENVIRONMENT=demo" in refused.output and len(refused.output.strip().splitlines()) == 1
    with session_scope() as s, pytest.raises(PermissionDenied):
        set_demo_passwords(s, password=DEFAULT_DEMO_PASSWORD)
    with pytest.raises(PermissionDenied):
        prepare_demo(session_factory(), model_dir=demo_env)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.password_hash.is_not(None))) == 1

    # Demo, with the password from the environment: everyone else gets it, operator2 keeps their own.
    monkeypatch.setenv("CITYHUB_ENVIRONMENT", "demo")
    monkeypatch.setenv("CITYHUB_DEMO_PASSWORD", "env-demo-pass-77")
    reset_engine()
    with session_scope() as s:
        count = s.scalar(select(func.count()).select_from(User))
        assert set_demo_passwords(s, password="env-demo-pass-77") == count - 1
        users = {u.username: u for u in s.scalars(select(User))}
        assert passwords.verify_password(users["operator2"].password_hash, own)
        assert not passwords.verify_password(users["operator2"].password_hash, "env-demo-pass-77")
        assert passwords.verify_password(users["leader"].password_hash, "env-demo-pass-77")
        assert set_demo_passwords(s, password="another-pass-99") == 0  # nobody is without one any more
    # The report names where the password came from whatever was seeded: no orders (300, and a classifier trained on
    # them, cost ~20 s and change nothing of it).
    report = _cli("demo", "seed", "--orders", "0")
    assert report.exit_code == 0, report.output
    assert "password (CITYHUB_DEMO_PASSWORD)" in report.output and "env-demo-pass-77" not in report.output


def test_the_demo_logins_name_each_users_unit_in_full_as_the_readme_does(demo_env: Path) -> None:
    """`demo seed`'s table of logins named units by their short names (白云, 三元里) where the README's table says
    白云区, 三元里街道: each login's unit is its full name, the README's table the same."""
    from cityhub.demo.extras import demo_logins
    from cityhub.demo.service import seed_demo

    seed_demo(session_factory(), orders=0)  # organisation and users only
    with session_scope() as s:
        set_demo_passwords(s, password=DEFAULT_DEMO_PASSWORD)
        logins, _ = demo_logins(s)
        full = {u.username: u.unit.name if u.unit is not None else "" for u in s.scalars(select(User))}
    shown = {login.username: login.unit for login in logins}
    assert shown["admin"] == "白云区" and shown["street_dispatcher"] == "三元里街道"
    assert shown == {name: full[name] for name in shown}
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    documented = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                documented[name] = "" if cells[2] == "—" else cells[2]
    assert {name: documented.get(name) for name in shown} == shown


def test_a_demo_user_logs_in_and_intake_gets_suggestions_and_an_instant_answer(seeded_demo: Seeded) -> None:
    assert seeded_demo.exit_code == 0, seeded_demo.output
    client = TestClient(shared_app(), raise_server_exceptions=False)
    page = client.get("/login")
    wrong = client.post(
        "/login", data={"csrf_token": hidden(page.text), "username": "operator", "password": "not-the-demo-one"}
    )
    assert wrong.status_code == 401
    good = client.post(
        "/login",
        data={"csrf_token": hidden(wrong.text), "username": "operator", "password": DEFAULT_DEMO_PASSWORD},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/intake"
    form = intake_form(
        client,
        appeal_type="consultation",
        title="社保卡丢了怎么办",
        content="您好，我的社保卡不小心丢了，想问一下在哪里补办，需要带什么？",
    )
    with session_scope() as s:
        seeded = s.scalar(select(func.count()).select_from(Order))
    panel = client.post("/intake/assist", data=form)
    assert panel.status_code == 200
    assert "社保卡丢失了怎么补办？" in panel.text  # the demo knowledge base's entry, offered for 秒回
    top3 = re.findall(r"<li><span>(\S+) <small>\d+%</small>", panel.text)
    assert len(top3) == 3  # the demo classifier's suggestions
    with session_scope() as s:
        assert all(find_category(s, name_or_path=label) is not None for label in top3)
        # Looking things up creates nothing (the 300 seeded orders, and those the demo's sensor alarms opened).
        assert s.scalar(select(func.count()).select_from(Order)) == seeded > 300
    # A complaint the demo's orders are about is classified into its category.
    complaint = {"appeal_type": "complaint", "title": "工地夜间施工噪音", "content": "楼下工地半夜还在施工，噪音很大"}
    noise = client.post("/intake/assist", data={**form, **complaint})
    assert re.findall(r"<li><span>(\S+) <small>\d+%</small>", noise.text)[0] == "环境保护/环境污染/噪音污染"


def test_the_demo_staff_have_work_in_hand(demo_env: Path) -> None:
    """The generated history leaves few open orders, scattered over ~450 units: without the staff's own cases the
    named handlers' first page (their open orders) was empty and the supervisor had nothing overdue to urge."""
    assert _cli(*SEED, "--no-extras").exit_code == 0
    with session_scope() as s:
        assert staff_work(s) == len(STAFF_WORK)
        assert staff_work(s) == 0  # once
        set_demo_passwords(s, password=DEFAULT_DEMO_PASSWORD)
        cases = {o.external_id: o for o in s.scalars(select(Order).where(Order.external_id.like("demo-staff-%"))).all()}
        assert len(cases) == len(STAFF_WORK)
        units = {u.code: u.id for u in s.scalars(select(Unit))}
        for case in STAFF_WORK:
            order = cases[f"demo-staff-{case.key}"]
            assert order.category_id is not None and order.street_id is not None, case.key
            # taken as a call is: with the caller's name and phone (the callback desk's number to call); a grid
            # inspector's report without
            assert (order.citizen_phone is not None) == (case.channel != "grid"), case.key
            assert (order.citizen_name is not None) == (case.channel != "grid"), case.key
            if case.reach == "received":
                assert order.state.value == "received" and order.street_id == units["440111002"]
                continue
            assert order.lead_unit_id == units[case.unit], case.key
        by_key = {key.removeprefix("demo-staff-"): o for key, o in cases.items()}
        # What the supervisor's filters find: not accepted in time, near the deadline, overdue, an extension to decide.
        assert by_key["vendors"].state.value == "dispatched" and not by_key["vendors"].accept_overdue
        assert by_key["shed"].state.value == "dispatched" and by_key["shed"].accept_overdue
        assert by_key["bbq"].sla_status.value == "warning"
        assert by_key["billboard"].sla_status.value == "overdue"
        assert by_key["rooftop"].extension_pending and by_key["rooftop"].sla_status.value == "ok"
        # 三元里街道's own dispatcher finds the appeal placed in the street.
        street_scope = Order.street_id == units["440111002"]
        assert by_key["stairwell"].id in {o.id for o, _ in dispatch.queue(s, limit=100, scope=street_scope)[0]}
        # Two answers for the callback desk; the reply check (run at seed time) finds the forwarding note weak.
        assert {by_key[k].state.value for k in ("drain", "bins")} == {"replied"}
        assert kb.check_pending_replies(s)["weak"] >= 1
        weak = {o.external_id for o in s.scalars(select(Order).join(ReplyCheck).where(ReplyCheck.weak.is_(True)))}
        assert "demo-staff-drain" in weak and "demo-staff-bins" not in weak
        # One order the street works with the urban-management bureau's help (协办), waiting for the bureau to accept.
        awning = by_key["awning"]
        assert awning.state.value == "in_progress" and awning.lead_unit_id == units["440111002"]
        helping = s.scalars(select(OrderAssist).where(OrderAssist.order_id == awning.id)).all()
        assert [(a.unit_id, a.status.value) for a in helping] == [(units["440111-D02"], "dispatched")]
        awning_number = awning.number
        drain, bins = by_key["drain"].number, by_key["bins"].number
        example = track_example(s)
    client = TestClient(shared_app(), raise_server_exceptions=False)
    # The bureau's handler: its five and the street's order it is asked to assist on (本单位协办).
    for username, expected in (("handler", 6), ("dept_handler", 2), ("enterprise_handler", 1)):
        page = client.get("/login")
        login = client.post(
            "/login",
            data={"csrf_token": hidden(page.text), "username": username, "password": DEFAULT_DEMO_PASSWORD},
        )
        assert login.status_code == 200 and "/orders" in str(login.url), username
        numbers = set(re.findall(r"BY\d{8}-\d{6}", login.text))
        assert len(numbers) == expected, (username, numbers)
        client.cookies.clear()
    # The supervisor's 答复审核 holds the weak answer, to send back.
    page = client.get("/login")
    data = {"csrf_token": hidden(page.text), "username": "supervisor", "password": DEFAULT_DEMO_PASSWORD}
    assert client.post("/login", data=data).status_code == 200
    reviews = client.get("/reviews").text
    assert drain in reviews and bins not in reviews
    # The 协办 tab (open orders with an assisting unit) is not empty.
    assert awning_number in client.get("/orders", params={"with_assist": "1"}).text
    if example is not None:  # a replied order with a phone: the progress lookup shows it and lets the caller rate
        number, phone = example
        found = client.post("/api/v1/track", json={"number": number, "phone": phone})
        assert found.status_code == 200 and found.json()["can_rate"] is True


def test_the_demo_staffs_bells_are_not_empty(demo_env: Path) -> None:
    """The staff's steps wrote notices (消息) as they went — the handlers told of the orders sent to them, the
    supervisor of the extension asked for — and demo_notices adds a supervisor's 催办 for the handler, once."""
    from cityhub.notify.models import UserNotice
    from cityhub.org.models import User

    assert _cli(*SEED, "--no-extras").exit_code == 0
    with session_scope() as s:
        assert staff_work(s) == len(STAFF_WORK)
        assert demo_notices(s) >= 1
        assert demo_notices(s) == 0  # once
        kinds: dict[str, set[str]] = {}
        for username, kind in s.execute(
            select(User.username, UserNotice.kind).join(User, User.id == UserNotice.user_id)
        ):
            kinds.setdefault(username, set()).add(kind)
    assert {"dispatched", "urged", "assist_requested"} <= kinds["handler"]
    assert "dispatched" in kinds["dept_handler"] and "dispatched" in kinds["enterprise_handler"]
    assert "extension_requested" in kinds["supervisor"]


def test_the_demo_staff_act_in_working_time(demo_env: Path) -> None:
    """The citizens' appeals were dispatched and accepted in the evening and replied at night (a fixed number of
    hours back from whenever the seed ran); every staff step now falls in working time."""
    assert _cli(*SEED, "--no-extras").exit_code == 0
    with session_scope() as s:
        assert citizens_appeals(s) == 4 and staff_work(s) == len(STAFF_WORK)
        cal = workcal.load_calendar(s)
        staff_steps = s.scalars(
            select(OrderEvent)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(
                Order.citizen_user_id.is_not(None) | Order.external_id.like("demo-staff-%"),
                OrderEvent.action.in_(["dispatch", "accept", "start", "reply", "request_extension"]),
            )
        ).all()
        assert len(staff_steps) >= 4 + len(STAFF_WORK)

        def working(at: datetime) -> bool:  # in working time, or at its end (18:00 sharp)
            return cal.is_work_time(at) or cal.is_work_time(at - timedelta(seconds=1))

        assert not [(e.action, e.at) for e in staff_steps if not working(e.at)]
