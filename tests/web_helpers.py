"""Shared by the web UI tests (``tests/test_web.py``, ``tests/browser/``, ``tests/integration/test_demo_extras.py``).

- **The small world** the workbench tests work in (:func:`build_world`): 白云区 with two streets, three level-1
  categories, one account per role (``op``, ``disp``, ``hand_a`` of 景泰街道, ``hand_b`` of 京溪街道, ``sup``,
  ``lead``; password :data:`PASSWORD`) and the routing rule 环境保护 → the order's own street; the settings it
  runs under (:func:`world_env`) and a real, tiny category classifier trained on synthetic messages
  (:func:`train_classifier`), loaded through ``CITYHUB_DISPATCH_MODEL_PATH`` like in production.
- **Forms** as a browser posts them: :func:`hidden` reads a hidden field of a page, :func:`intake_form` fills the
  intake form (the session's CSRF token, the hotline channel, an appeal type, then the given fields).

Importable as ``web_helpers`` because ``tests/`` (the directory of the root ``conftest.py``) is on ``sys.path``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cityhub.auth import service as auth
from cityhub.dispatch import service as dispatch
from cityhub.dispatch.rules import TargetKind
from cityhub.dispatch.schemas import RuleCreate
from cityhub.nlp import classifier
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.org.schemas import UserCreate
from cityhub.workorders.models import Category

PASSWORD = "correct-horse-battery"
TOPICS = {
    "环境保护": ["噪音", "污水", "排放", "扬尘", "河道", "废气", "油烟", "垃圾"],
    "交通运输": ["公交车", "红绿灯", "停车场", "车辆违停", "地铁站", "斑马线", "路口", "出租车"],
    "住房保障": ["公积金", "廉租房", "物业", "房产证", "租房", "保障房", "电梯", "漏水"],
}
FILLER = ["请问", "您好", "小区", "附近", "希望", "尽快", "处理", "反映", "问题", "每天"]
STREETS = {"W-JT": "景泰街道", "W-JX": "京溪街道"}
# username → (role, street code or None for the district, full name)
ACCOUNTS = {
    "op": (Role.OPERATOR, None, "王话务"),
    "disp": (Role.DISPATCHER, None, "黄派单"),
    "hand_a": (Role.HANDLER, "W-JT", "李承办"),
    "hand_b": (Role.HANDLER, "W-JX", "赵承办"),
    "sup": (Role.SUPERVISOR, None, "陈督办"),
    "lead": (Role.LEADER, None, "刘领导"),
    "cit": (Role.CITIZEN, None, "张市民"),
    "adm": (Role.ADMIN, None, "周管理"),
}


# --------------------------------------------------------------------------------------------------- world


def square(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A unit's boundary as GeoJSON: the rectangle between two longitudes and two latitudes."""
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


def message(rng: random.Random, label: str, n: int = 12) -> str:
    """A synthetic appeal of category ``label``: about half its topic words, the rest filler."""
    return "".join(rng.choice(TOPICS[label]) if rng.random() < 0.5 else rng.choice(FILLER) for _ in range(n))


def train_classifier(directory: Path, *, seed: int = 7) -> Path:
    """Train the tiny classifier (30 messages per category) and save it under ``directory``; returns its path."""
    rng = random.Random(seed)
    records = [
        classifier.LabelledOrder(id=f"{label}{i}", title="", content=message(rng, label), category=label)
        for label in TOPICS
        for i in range(30)
    ]
    model = classifier.train(records, config=classifier.ClassifierConfig(folds=3, char_ngrams=(1, 2), min_df=1))
    return Path(model.save(directory / "clf"))


def world_env(model_dir: Path) -> dict[str, str]:
    """Settings of a test run in the world: plain-http cookies, the tiny classifier, and no automatic merging of
    duplicates (the test orders share their text; merging is tested in test_dedupe). Argon2 is cheap in every test
    (conftest)."""
    return {
        "CITYHUB_SESSION_COOKIE_SECURE": "false",
        "CITYHUB_DISPATCH_MODEL_PATH": str(model_dir),
        "CITYHUB_DEDUPE_AUTO_MERGE": "false",
    }


def use_world_env(app_db: str, tmp_path: Path, monkeypatch: Any) -> dict[str, str]:
    """Point this process at a browser test's server: the world's settings (:func:`world_env`), the test's database
    and its own files directory, the engine reset to them; returns them, for the server's process."""
    from cityhub.db import reset_engine

    env = {"CITYHUB_DATABASE_URL": app_db, **world_env(tmp_path / "no-model"), "CITYHUB_FILES_DIR": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_engine()
    return env


def module_database(template: Path, directory: Path) -> str:
    """A database of a module's own (one server for all its tests): a copy of the migrated, empty ``template`` (the
    ``migrated_sqlite_template`` fixture) in ``directory``, by SQLite's backup API; returns its URL."""
    import sqlite3
    from contextlib import closing

    target = directory / "module.db"
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


@contextmanager
def pointed_at(env: dict[str, str]) -> Iterator[None]:
    """This process's settings and engine pointed at ``env`` (a module's database and settings) for the block: what
    a module-scoped fixture uses where a test's ``monkeypatch`` cannot."""
    import pytest

    from cityhub.db import reset_engine

    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        reset_engine()
        try:
            yield
        finally:
            reset_engine()  # while the environment still names the module's database


def small_world(tmp_path: Path, monkeypatch: Any) -> World:
    """The world (:func:`build_world`) in this test's database under its settings (:func:`world_env`, no trained
    classifier): the ``org`` fixture of the web tests that need no model."""
    from cityhub.db import reset_engine, session_scope

    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        return build_world(s)


def select_of(page: str, select_id: str) -> str:
    """The markup of the page's ``<select id="select_id">``, its options with it."""
    found = re.search(rf'<select id="{select_id}".*?</select>', page, flags=re.S)
    assert found is not None, select_id
    return found.group(0)


def actor_of(s: Session, username: str) -> Any:
    """The account ``username`` as the order service's actor (``Actor.of_user``)."""
    from sqlalchemy import select

    from cityhub.org.models import User
    from cityhub.workorders.service import Actor

    return Actor.of_user(s.scalars(select(User).where(User.username == username)).one())


def stored_order(order_id: int) -> Any:
    """The order as stored now, detached from its session (its columns read; not its relations)."""
    from cityhub.db import session_scope
    from cityhub.workorders.models import Order

    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        s.expunge(order)
        return order


def act_on(client: Any, order_id: int, action: str, **data: Any) -> Any:
    """Post one of the order page's actions as ``client``'s user, at the order's current version; not followed."""
    from cityhub.db import session_scope
    from cityhub.workorders.models import Order

    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        version = order.version
    return client.post(
        f"/orders/{order_id}/act/{action}",
        data={"csrf_token": client.cookies["cityhub_csrf"], "version": str(version), **data},
        follow_redirects=False,
    )


@dataclass(frozen=True)
class World:
    district: int
    streets: dict[str, int]  # code → id
    cats: dict[str, int]  # category name → id

    @property
    def street_a(self) -> int:
        return self.streets["W-JT"]

    @property
    def street_b(self) -> int:
        return self.streets["W-JX"]


def build_world(s: Session) -> World:
    """Create the district, its streets, the categories, one account per role and the 环境保护 routing rule."""
    district = Unit(code="W-QU", name="白云区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    streets = {
        code: Unit(code=code, name=name, tier=UnitTier.STREET, parent_id=district.id) for code, name in STREETS.items()
    }
    s.add_all(streets.values())
    s.flush()
    cats = {name: Category(code=f"W{i}", name=name, level=1, path=name) for i, name in enumerate(TOPICS)}
    s.add_all(cats.values())
    s.flush()
    for username, (role, street, name) in ACCOUNTS.items():
        unit_id = streets[street].id if street else None if role == Role.CITIZEN else district.id
        auth.create_account(
            s, data=UserCreate(username=username, full_name=name, role=role, unit_id=unit_id), password=PASSWORD
        )
    # Environmental problems go to the street the order is in (小事不出村, 中事不出镇).
    dispatch.create_rule(
        s,
        data=RuleCreate(
            name="环境保护 → 本街道", priority=40, category_id=cats["环境保护"].id, target_kind=TargetKind.LOCAL_STREET
        ),
    )
    return World(
        district=district.id,
        streets={code: unit.id for code, unit in streets.items()},
        cats={name: c.id for name, c in cats.items()},
    )


# --------------------------------------------------------------------------------------------------- forms


def jpeg_photo() -> bytes:
    """A small JPEG photo (64 × 48), as a phone's camera sends one with an appeal."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 150, 90)).save(out, format="JPEG")
    return out.getvalue()


def hidden(html: str, name: str = "csrf_token") -> str:
    """The value of the hidden input ``name`` in a page (the login form's CSRF token by default)."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} in the page"
    return match.group(1)


def intake_form(client: Any, *, appeal_type: str = "complaint", **fields: str) -> dict[str, str]:
    """The intake form as the signed-in ``client`` (a TestClient) posts it: its session's CSRF token, the hotline
    channel and ``appeal_type``, then ``fields`` (title, content, citizen_name, …; they may override the rest)."""
    return {
        "csrf_token": client.cookies["cityhub_csrf"],
        "channel": "hotline",
        "appeal_type": appeal_type,
        **fields,
    }


def enter_holidays_ahead() -> None:
    """Enter a year's worth of weekday holidays (the first ``MIN_WEEKDAY_HOLIDAYS`` weekdays of January) for each
    year about to hold deadlines that the built-in holiday calendar does not know (in December, the next one), so
    that a test of ``/healthz`` is about what it tests, on any date."""
    from datetime import date, timedelta

    from cityhub.config import get_settings
    from cityhub.db import session_scope, utcnow
    from cityhub.workorders.calendar import MIN_WEEKDAY_HOLIDAYS, set_day, years_without_holidays

    with session_scope() as s:
        for year in years_without_holidays(s, today=utcnow().astimezone(get_settings().tz).date()):
            days = (date(year, 1, 1) + timedelta(days=n) for n in range(31))
            for day in [d for d in days if d.weekday() < 5][:MIN_WEEKDAY_HOLIDAYS]:
                set_day(s, day=day, is_workday=False, name="测试假日")


def login(username: str, password: str = PASSWORD) -> Any:
    """A TestClient on a new app, signed in through the login form as ``username``."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": hidden(page.text), "username": username, "password": password},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def sign_in(page: Any, login_url: str, username: str, password: str = PASSWORD) -> Any:
    """A browser page (Playwright) signed in through the login form at ``login_url``; returns the page."""
    page.goto(login_url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def png(colour: str = "red") -> bytes:
    """A small PNG photo (8 × 6, one colour: different colours, different files)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, "PNG")
    return out.getvalue()


# A small document a file field takes.
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
