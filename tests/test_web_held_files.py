"""已保留的附件: the files chosen on a web form that is refused are held for it (``workorders.held``) and attached when
it is sent again, without being chosen again — a handler's 答复 with photos, the intake form (hotline, citizen,
inspector), the order page's 上传附件."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cityhub.auth import service as auth
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import Role, User
from cityhub.org.schemas import UserCreate
from cityhub.workorders import held
from cityhub.workorders import service as orders
from cityhub.workorders.models import Attachment, Order
from web_helpers import PASSWORD, PDF, build_world, hidden, login, png


@pytest.fixture
def world(app_db: str, store: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The web tests' district, an inspector of street A, and one order in street A accepted by its handler."""
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    with session_scope() as s:
        w = build_world(s)
        auth.create_account(
            s,
            data=UserCreate(username="insp", full_name="网格员甲", role=Role.INSPECTOR, unit_id=w.street_a),
            password=PASSWORD,
        )
        order = submit(s, data={"channel": "hotline", "content": "小区门口井盖破损", "street_code": "W-JT"}).order
        s.flush()
        orders.act(s, order_id=order.id, action="dispatch", params={"unit_id": w.street_a})
        orders.act(s, order_id=order.id, action="accept", params={})
        return {"order": order.id, "street_a": w.street_a}


def _tokens(html: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="held" value="([^"]+)">', html)


def _held_dirs(store: Path) -> list[Path]:
    return sorted(p for p in (store / held.FOLDER).glob("*/*") if p.is_dir())


def _content_store(store: Path) -> list[Path]:
    """The files of the store proper (what attachments hold), not the holding area's."""
    return sorted(
        p
        for p in store.rglob("*")
        if p.is_file() and not p.name.startswith(".") and held.FOLDER not in p.relative_to(store).parts
    )


def _user_id(username: str) -> int:
    with session_scope() as s:
        return s.scalars(select(User.id).where(User.username == username)).one()


def _attachments(order_id: int) -> list[str]:
    with session_scope() as s:
        return sorted(a.filename for a in s.get_one(Order, order_id).attachments)


def _reply(client: Any, order_id: int, page: str, text: str, *, parts=(), **extra: Any) -> Any:
    with session_scope() as s:
        version = s.get_one(Order, order_id).version
    return client.post(
        f"/orders/{order_id}/act/reply",
        data={"csrf_token": hidden(page), "version": str(version), "text": text, **extra},
        files=[("files", part) for part in parts] or None,
        follow_redirects=False,
    )


def test_a_handlers_reply_refused_keeps_its_photos_and_sent_again_attaches_them(world, store) -> None:
    client = login("hand_a")
    order_id = world["order"]
    page = client.get(f"/orders/{order_id}").text
    # No words: refused at the text — the photos are held for the form (已保留的附件), not to be chosen again.
    refused = _reply(client, order_id, page, "", parts=[("修复后.png", png(), "image/png"), ("验收单.pdf", PDF, "a/b")])
    assert refused.status_code == 422
    assert 'data-testid="files-not-kept"' not in refused.text
    listing = re.search(r'<fieldset class="held-files".*?</fieldset>', refused.text, re.S)
    assert listing is not None and "已保留的附件" in listing.group(0)
    assert "修复后.png" in listing.group(0) and "验收单.pdf" in listing.group(0)
    assert f"（{len(png())} B）" in listing.group(0)  # its size
    assert listing.group(0).count('name="held_remove"') == 2  # each with its 移除 box
    assert listing.group(0).count('data-testid="held-thumb"') == 1  # a thumbnail for the photo only
    tokens = _tokens(refused.text)
    assert len(tokens) == 2 and _attachments(order_id) == [] and _content_store(store) == []
    assert len(_held_dirs(store)) == 2
    # The thumbnail is the sender's: a JPEG for them, nothing for another user.
    thumb = client.get(f"/held/{tokens[0]}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert login("hand_b").get(f"/held/{tokens[0]}/thumb").status_code == 404
    # Sent again with the words, nothing chosen again but one more photo: all three attached, in one audited upload.
    done = _reply(
        client,
        order_id,
        refused.text,
        "已更换井盖，现场已恢复通行。",
        parts=[("远景.png", png("navy"), "image/png")],
        held=tokens,
    )
    assert done.status_code == 303, done.text
    assert _attachments(order_id) == ["修复后.png", "远景.png", "验收单.pdf"]
    with session_scope() as s:
        trail = [(e.action, (e.payload or {}).get("attachments")) for e in orders.history(s, order_id=order_id)]
        rows = s.scalars(select(Attachment).where(Attachment.order_id == order_id)).all()
        assert {r.uploaded_by_id for r in rows} == {_user_id("hand_a")}
    assert trail[-2][0] == "reply" and trail[-1][0] == "comment"
    assert sorted(a["filename"] for a in trail[-1][1]) == ["修复后.png", "远景.png", "验收单.pdf"]
    assert _held_dirs(store) == []  # attached: let go at once


def test_a_held_file_ticked_to_remove_is_not_attached(world, store) -> None:
    client = login("hand_a")
    order_id = world["order"]
    page = client.get(f"/orders/{order_id}").text
    refused = _reply(
        client, order_id, page, "", parts=[("错拍.png", png(), "image/png"), ("修复后.png", png("teal"), "image/png")]
    )
    wrong, right = _tokens(refused.text)
    done = _reply(client, order_id, refused.text, "已修复。", held=[wrong, right], held_remove=[wrong])
    assert done.status_code == 303, done.text
    assert _attachments(order_id) == ["修复后.png"]
    assert _held_dirs(store) == []


def test_held_and_new_files_keep_to_the_count_limit(world, store, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_FILES_MAX_COUNT", "2")
    client = login("hand_a")
    order_id = world["order"]
    page = client.get(f"/orders/{order_id}").text
    refused = _reply(
        client, order_id, page, "", parts=[("1.png", png(), "image/png"), ("2.png", png("teal"), "image/png")]
    )
    tokens = _tokens(refused.text)
    assert len(tokens) == 2
    more = _reply(client, order_id, refused.text, "已修复。", parts=[("3.png", png("navy"), "image/png")], held=tokens)
    assert more.status_code == 422 and "一次最多上传 2 个文件" in more.text
    assert _attachments(order_id) == []
    # The two held stay held; the third, past the limit, is named to be chosen again.
    assert sorted(_tokens(more.text)) == sorted(tokens)
    assert 'data-testid="files-not-kept"' in more.text and "3.png" in more.text


@pytest.mark.parametrize("username", ["op", "cit", "insp"])
def test_an_appeal_or_report_refused_keeps_its_photo_for_the_next_submit(world, store, username) -> None:
    client = login(username)
    form = client.get("/intake").text
    appeal = {"csrf_token": hidden(form), "appeal_type": "complaint", "content": "路口井盖缺失，夜间很危险"}
    refused = client.post(
        "/intake", data={**appeal, "citizen_phone": "12ab"}, files=[("files", ("井盖.png", png(), "image/png"))]
    )
    assert refused.status_code == 422 and "电话号码只能包含数字" in refused.text
    assert 'data-testid="held-files"' in refused.text and "井盖.png" in refused.text
    assert 'data-testid="files-not-kept"' not in refused.text
    tokens = _tokens(refused.text)
    assert len(tokens) == 1
    done = client.post("/intake", data={**appeal, "held": tokens}, follow_redirects=False)
    assert done.status_code == 303, done.text
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.content == appeal["content"])).one()
        assert [a.filename for a in order.attachments] == ["井盖.png"]
    assert _held_dirs(store) == []


def test_another_users_token_is_never_attached(world, store) -> None:
    operator = login("op")
    form = operator.get("/intake").text
    refused = operator.post(
        "/intake",
        data={"csrf_token": hidden(form), "appeal_type": "help", "content": "路灯不亮", "citizen_phone": "x"},
        files=[("files", ("身份证.png", png(), "image/png"))],
    )
    (token,) = _tokens(refused.text)
    # A citizen sending the operator's token (a forged form): refused with a note, nothing filed, nothing attached.
    citizen = login("cit")
    appeal = {"csrf_token": hidden(citizen.get("/intake").text), "appeal_type": "complaint", "content": "路灯不亮一周"}
    taken = citizen.post("/intake", data={**appeal, "held": token}, follow_redirects=False)
    assert taken.status_code == 422
    assert 'data-testid="held-note"' in taken.text and "无法找到" in taken.text
    assert "身份证.png" not in taken.text and token not in taken.text
    with session_scope() as s:
        assert s.scalars(select(Order).where(Order.content == appeal["content"])).all() == []
    assert citizen.get(f"/held/{token}/thumb").status_code == 404
    assert len(_held_dirs(store)) == 1  # still the operator's
    # On the handler's reply alike.
    handler = login("hand_a")
    page = handler.get(f"/orders/{world['order']}").text
    reply = _reply(handler, world["order"], page, "已修复。", held=[token])
    assert reply.status_code == 422 and "无法找到" in reply.text
    assert _attachments(world["order"]) == []
    # Sent again as the page gave it back (the token gone), the citizen's appeal is filed, without the file.
    again = citizen.post("/intake", data={**appeal, "csrf_token": hidden(taken.text)}, follow_redirects=False)
    assert again.status_code == 303, again.text
    with session_scope() as s:
        assert s.scalars(select(Order).where(Order.content == appeal["content"])).one().attachments == []


def _age(store: Path, token: str, hours: float) -> None:
    """Make the held file ``token`` look ``hours`` old (its sidecar's time)."""
    (meta,) = (store / held.FOLDER).glob(f"*/{token}/meta.json")
    data = json.loads(meta.read_text(encoding="utf-8"))
    data["created"] = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
    meta.write_text(json.dumps(data), encoding="utf-8")


def test_an_expired_held_file_is_not_attached_and_said(world, store) -> None:
    client = login("hand_a")
    order_id = world["order"]
    page = client.get(f"/orders/{order_id}").text
    refused = _reply(client, order_id, page, "", parts=[("修复后.png", png(), "image/png")])
    (token,) = _tokens(refused.text)
    _age(store, token, 25)  # past CITYHUB_FILES_HELD_HOURS (24)
    late = _reply(client, order_id, refused.text, "已修复。", held=[token])
    assert late.status_code == 422
    assert 'data-testid="held-note"' in late.text and "超过 24 小时" in late.text
    assert ">已修复。</textarea>" in late.text  # what was typed stays
    assert _attachments(order_id) == [] and token not in late.text
    with session_scope() as s:
        assert s.get_one(Order, order_id).state.value == "accepted"
    done = _reply(client, order_id, late.text, "已修复。", parts=[("修复后.png", png(), "image/png")])
    assert done.status_code == 303 and _attachments(order_id) == ["修复后.png"]


def test_the_order_pages_upload_refused_keeps_its_files(world, store) -> None:
    client = login("op")
    order_id = world["order"]
    page = client.get(f"/orders/{order_id}").text
    refused = client.post(
        f"/orders/{order_id}/attachments",
        data={"csrf_token": hidden(page), "note": "长" * 2001},
        files=[("files", ("来电记录.pdf", PDF, "application/pdf"))],
    )
    assert refused.status_code == 422 and 'data-testid="held-files"' in refused.text
    (token,) = _tokens(refused.text)
    done = client.post(
        f"/orders/{order_id}/attachments",
        data={"csrf_token": hidden(page), "note": "来电记录", "held": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert _attachments(order_id) == ["来电记录.pdf"] and _held_dirs(store) == []


def test_the_files_prune_job_deletes_expired_held_files_only(world, store) -> None:
    from cityhub.jobs import run_job

    client = login("hand_a")
    page = client.get(f"/orders/{world['order']}").text
    refused = _reply(
        client, world["order"], page, "", parts=[("旧.png", png(), "image/png"), ("新.png", png("teal"), "image/png")]
    )
    old, new = _tokens(refused.text)
    _age(store, old, 25)
    result = run_job("files-prune")
    assert result["held"] == 1
    assert [p.name for p in _held_dirs(store)] == [new]
    assert run_job("files-prune")["held"] == 0


def test_a_users_holding_area_keeps_a_bounded_number_of_files(world, store, monkeypatch) -> None:
    # Forms refused again and again (or a script doing it) hold at most 3 × CITYHUB_FILES_MAX_COUNT files a user:
    # the oldest go first, never those just held.
    monkeypatch.setenv("CITYHUB_FILES_MAX_COUNT", "1")
    client = login("hand_a")
    page = client.get(f"/orders/{world['order']}").text
    tokens = []
    for i in range(5):
        refused = _reply(client, world["order"], page, "", parts=[(f"{i}.png", png(), "image/png")])
        (token,) = _tokens(refused.text)
        tokens.append(token)
    assert sorted(p.name for p in _held_dirs(store)) == sorted(tokens[-3:])
    # The one just held is kept even when the others are newer than it.
    _age(store, tokens[-1], -1)
    refused = _reply(client, world["order"], page, "", parts=[("5.png", png(), "image/png")])
    (newest,) = _tokens(refused.text)
    assert newest in [p.name for p in _held_dirs(store)] and len(_held_dirs(store)) == 3
    # Another user's area is their own.
    other = login("op")
    form = other.get("/intake").text
    other.post(
        "/intake",
        data={"csrf_token": hidden(form), "appeal_type": "help", "content": "路灯不亮", "citizen_phone": "x"},
        files=[("files", ("op.png", png(), "image/png"))],
    )
    assert len(_held_dirs(store)) == 4
