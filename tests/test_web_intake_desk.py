"""A 12345 hotline operator's intake desk (受理), over the real app on both backends: what the suggestions beside the
form tell the operator while a call is taken.

The organisation and accounts are the small world of ``web_helpers`` (op: the hotline's operator).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from cityhub.db import reset_engine, session_scope
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from cityhub.web.i18n import LANGUAGE_COOKIE
from web_helpers import build_world, intake_form, login, world_env


@pytest.fixture
def org(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    for key, value in world_env(tmp_path / "no-model").items():
        monkeypatch.setenv(key, value)
    reset_engine()
    with session_scope() as s:
        world = build_world(s)
        return {"streets": world.streets}


def _text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def test_each_instant_answer_says_which_of_the_callers_words_it_matched(org: dict[str, Any]) -> None:
    """秒回 closes the order with one click: each answer offered says the caller's words naming its matter (its
    keywords found in the question, one inside another said once), so the operator sees why it is offered — and
    which of two alike answers the one about 离职 — before answering with it."""
    with session_scope() as s:
        general = kb.create_entry(
            s,
            data=EntryCreate(
                question="住房公积金怎么提取？",
                answer="购房、租房等情形可申请提取住房公积金。",
                keywords=["公积金", "提取", "住房公积金", "材料"],
            ),
        ).id
        leaving = kb.create_entry(
            s,
            data=EntryCreate(
                question="离职了公积金能取出来吗？",
                answer="离职后满足条件可销户提取。",
                keywords=["公积金", "离职", "销户"],
            ),
        ).id
    client = login("op")
    form = intake_form(client, appeal_type="consultation", content="请问离职后住房公积金怎么提取，需要什么材料")
    panel = client.post("/intake/assist", data=form)
    assert panel.status_code == 200
    why = {
        entry: _text(m.group(1))
        for entry in (general, leaving)
        if (m := re.search(rf'data-testid="kb-why-{entry}">(.*?)</small>', panel.text))
    }
    assert why == {general: "匹配词：提取、住房公积金", leaving: "匹配词：公积金、离职"}
    english = login("op")
    english.cookies.set(LANGUAGE_COOKIE, "en")
    asked = intake_form(english, appeal_type="consultation", content=form["content"])
    panel = english.post("/intake/assist", data=asked)
    assert f'data-testid="kb-why-{leaving}">Matched words: 公积金, 离职</small>' in panel.text
