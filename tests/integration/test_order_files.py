"""Files attached to orders and kept by cityhub (附件上传), on both backends: through the API, the order page and the
CLI — checked by content, stored once, served to whoever may read the order, audited, published only as a photo a
supervisor published (公开) for Open311's media_url."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.intake.service import submit
from cityhub.org.models import User
from cityhub.workorders import files
from cityhub.workorders import service as orders
from cityhub.workorders.cli import app as cli_app
from cityhub.workorders.models import Attachment, Order, OrderEvent
from web_helpers import PDF, build_world, hidden, login, png

HTML = b"<html><script>alert(1)</script></html>"


@pytest.fixture
def world(app_db: str, store: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The web tests' district (one account per role) and one order in street A."""
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the test client speaks plain http
    with session_scope() as s:
        w = build_world(s)
        order = submit(s, data={"channel": "hotline", "content": "小区门口井盖破损", "street_code": "W-JT"}).order
        s.flush()
        tokens = {}
        for username in ("adm", "op", "hand_b", "cit", "lead", "sup", "disp"):
            user = s.scalars(select(User).where(User.username == username)).one()
            tokens[username] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
        return {"order": order.id, "number": order.number, "street_a": w.street_a, "tokens": tokens}


def _api(world: dict[str, Any]) -> Any:
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    return TestClient(shared_app(), raise_server_exceptions=False)


def _upload(client: Any, world: dict[str, Any], parts: list[tuple[str, bytes, str]], who: str = "op", **form: Any):
    return client.post(
        f"/api/v1/orders/{world['order']}/attachments",
        files=[("files", (name, data, claimed)) for name, data, claimed in parts],
        data=form,
        headers=world["tokens"][who],
    )


def _stored(root: Path) -> list[Path]:
    """The files kept in the store (not its own: the lock, a write in progress; nor the files a refused form's page
    holds for it, 已保留的附件, which no order holds: :func:`_held`)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "held" not in p.relative_to(root).parts[:1]
    )


def _held(root: Path) -> list[str]:
    """The names of the files held for refused forms (workorders.held), from their sidecars."""
    return sorted(json.loads(p.read_text(encoding="utf-8"))["filename"] for p in root.glob("held/*/*/meta.json"))


def test_files_are_checked_by_content_kept_once_served_and_audited(world, store) -> None:
    client = _api(world)
    photo = png()
    answer = _upload(
        client,
        world,
        [("井盖.png", photo, "text/html"), ("../../材料.pdf", PDF, "image/png"), ("again.png", photo, "image/png")],
        note="现场照片和市民来信",
    )
    assert answer.status_code == 201, answer.text
    made = answer.json()
    # The type is the content's, never the client's claim; the name loses its folders; the same photo kept once.
    assert [(a["filename"], a["content_type"], a["size"]) for a in made] == [
        ("井盖.png", "image/png", len(photo)),
        ("材料.pdf", "application/pdf", len(PDF)),
        ("again.png", "image/png", len(photo)),
    ]
    assert all(a["uploaded_by"] == "王话务" and len(a["sha256"]) == 64 for a in made)
    assert len(_stored(store)) == 2
    assert all(a["url"] == f"/api/v1/orders/{world['order']}/attachments/{a['id']}/content" for a in made)

    read = client.get(f"/api/v1/orders/{world['order']}", headers=world["tokens"]["lead"]).json()
    assert [a["id"] for a in read["attachments"]] == [a["id"] for a in made]

    shown = client.get(made[0]["url"], headers=world["tokens"]["adm"])
    assert shown.status_code == 200 and shown.content == photo
    assert shown.headers["content-type"] == "image/png"
    assert shown.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''%E4%BA%95%E7%9B%96.png" in shown.headers["content-disposition"]
    assert shown.headers["content-security-policy"].startswith("sandbox;")
    assert shown.headers["x-content-type-options"] == "nosniff"
    pdf = client.get(made[1]["url"], headers=world["tokens"]["adm"])
    assert pdf.content == PDF and pdf.headers["content-disposition"].startswith("attachment;")

    with session_scope() as s:
        trail = select(OrderEvent).where(OrderEvent.order_id == world["order"]).order_by(OrderEvent.id)
        event = s.scalars(trail).all()[-1]
        assert event.action == "comment" and event.actor_name == "王话务"
        assert event.payload["text"] == "现场照片和市民来信"
        assert [f["filename"] for f in event.payload["attachments"]] == ["井盖.png", "材料.pdf", "again.png"]


@pytest.mark.parametrize(
    ("parts", "env", "problem", "says"),
    [
        ([("ok.png", None, "image/png"), ("photo.jpg", HTML, "image/jpeg")], {}, "kind", "file 2 (photo.jpg)"),
        ([("empty.png", b"", "image/png")], {}, "empty", "file 1 (empty.png): the file is empty"),
        ([("big.pdf", PDF + b"x" * 2000, "application/pdf")], {"CITYHUB_FILES_MAX_MB": "0.001"}, "too_large", "1 MB"),
        ([(f"{i}.png", None, "image/png") for i in range(3)], {"CITYHUB_FILES_MAX_COUNT": "2"}, "too_many", "most 2"),
    ],
)
def test_one_bad_file_refuses_the_upload_by_name_and_attaches_nothing(
    world, store, monkeypatch, parts, env, problem, says
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = _api(world)
    answer = _upload(client, world, [(n, d if d is not None else png(), c) for n, d, c in parts])
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["details"]["field"] == "files" and body["details"]["problem"] == problem
    assert says in body["message"]
    assert _stored(store) == []
    with session_scope() as s:
        assert s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).all() == []
        assert s.get(Order, world["order"]).version == 1  # no event either


def test_an_uploads_note_and_version_are_checked_naming_them(world, store) -> None:
    client = _api(world)
    nul = _upload(client, world, [("a.png", png(), "image/png")], note="整改\x00前")
    assert nul.status_code == 422 and nul.json()["details"]["field"] == "note", nul.text
    negative = _upload(client, world, [("a.png", png(), "image/png")], version="-5")
    assert negative.status_code == 422 and negative.json()["details"]["errors"][0]["field"] == "version", negative.text
    assert _stored(store) == []


def test_a_file_name_keeps_no_invisible_direction_controls(world, store) -> None:
    """A right-to-left override shows "\u202egnp.exe" as "exe.png": the name is kept without it."""
    answer = _upload(
        _api(world), world, [("\u202egnp.exe", png(), "image/png"), ("图\u2066片\u200f.png", png(), "image/png")]
    )
    assert answer.status_code == 201, answer.text
    assert [a["filename"] for a in answer.json()] == ["gnp.exe", "图片.png"]


def test_who_may_attach_and_read_the_files(world, store) -> None:
    client = _api(world)
    made = _upload(client, world, [("a.png", png(), "image/png")]).json()
    url = made[0]["url"]
    # A handler of another street does not see the order: 404, for the upload and the file alike.
    assert _upload(client, world, [("b.png", png(), "image/png")], who="hand_b").status_code == 404
    assert client.get(url, headers=world["tokens"]["hand_b"]).status_code == 404
    # A citizen adds files only to their own appeals: another's is not there for them.
    assert _upload(client, world, [("b.png", png(), "image/png")], who="cit").status_code == 404
    # Another order's id in the path, or a link attachment, is not a stored file.
    other = url.replace(f"/orders/{world['order']}/", f"/orders/{world['order'] + 999}/")
    assert client.get(other, headers=world["tokens"]["adm"]).status_code == 404
    # A file gone from the store (a database restored without its files): 404 saying so.
    for path in _stored(store):
        path.unlink()
    gone = client.get(url, headers=world["tokens"]["adm"])
    assert gone.status_code == 404 and "missing from the file store" in gone.json()["message"]
    # A stale version is refused like any other action on the order.
    stale = _upload(client, world, [("c.png", png("blue"), "image/png")], version="1")
    assert stale.status_code == 409


def test_a_citizen_reads_what_came_with_the_appeal_not_the_staffs_files(world, store) -> None:
    client = _api(world)
    with session_scope() as s:
        citizen = s.scalars(select(User).where(User.username == "cit")).one()
        citizen_id, citizen_name = citizen.id, citizen.full_name
        own = submit(
            s,
            data={
                "channel": "web",
                "content": "路灯不亮",
                "citizen_user_id": citizen.id,
                "attachments": [{"filename": "lamp.jpg", "url": "https://pics.example.org/lamp.jpg"}],
            },
        ).order
        s.flush()
        world = {**world, "order": own.id}
    staff = _upload(client, world, [("work.png", png(), "image/png")], who="adm").json()
    read = client.get(f"/api/v1/orders/{own.id}", headers=world["tokens"]["cit"]).json()
    assert [a["filename"] for a in read["attachments"]] == ["lamp.jpg"]
    assert client.get(staff[0]["url"], headers=world["tokens"]["cit"]).status_code == 404
    # 补充材料: the citizen adds a photo to their open appeal; it is theirs (shown to them, removable by them) …
    added = _upload(client, world, [("more.png", png("blue"), "image/png")], who="cit", note="夜里拍的")
    assert added.status_code == 201, added.text
    [more] = added.json()
    assert more["uploaded_by"] is None
    read = client.get(f"/api/v1/orders/{own.id}", headers=world["tokens"]["cit"]).json()
    assert [a["filename"] for a in read["attachments"]] == ["lamp.jpg", "more.png"]
    assert client.get(more["url"], headers=world["tokens"]["cit"]).status_code == 200
    trail = client.get(f"/api/v1/orders/{own.id}/events", headers=world["tokens"]["adm"]).json()
    comment = [e for e in trail if e["action"] == "comment"][-1]
    assert comment["actor_id"] == citizen_id
    assert comment["payload"]["text"] == "夜里拍的" and comment["payload"]["attachments"][0]["filename"] == "more.png"
    # Their own trail keeps it (staff's comments stay out of it).
    theirs = client.get(f"/api/v1/orders/{own.id}/events", headers=world["tokens"]["cit"]).json()
    assert [e["payload"]["attachments"][0]["filename"] for e in theirs if e["action"] == "comment"] == ["more.png"]
    removed = client.delete(
        more["url"].removesuffix("/content"), params={"reason": "拍错了"}, headers=world["tokens"]["cit"]
    )
    assert removed.status_code == 204
    # Who reads the order masked sees that the citizen did it, not their name.
    masked = client.get(f"/api/v1/orders/{own.id}/events", headers=world["tokens"]["lead"]).json()
    assert {e["actor_name"] for e in masked if e["actor_id"] == citizen_id} == {"citizen"}
    assert citizen_name not in json.dumps(masked, ensure_ascii=False)
    # … until the appeal is closed.
    with session_scope() as s:
        orders.act(s, order_id=own.id, action="cancel", params={"reason": "重复"})
    late = _upload(client, world, [("late.png", png("red"), "image/png")], who="cit")
    assert late.status_code == 409 and "can no longer be added" in late.json()["message"]


def test_a_citizens_order_page_lists_their_files_without_the_staffs_hint_and_file_types(world, store) -> None:
    """The citizen's own page: a file's name and size, not its MIME type (image/png says nothing to them), and none
    of the staff's hint about linked attachments opening their source systems; staff read both as before."""
    client = _api(world)
    with session_scope() as s:
        citizen = s.scalars(select(User).where(User.username == "cit")).one()
        own = submit(s, data={"channel": "web", "content": "路灯不亮", "citizen_user_id": citizen.id}).order
        s.flush()
        world = {**world, "order": own.id}
    photo = png("blue")
    assert _upload(client, world, [("more.png", photo, "image/png")], who="cit").status_code == 201
    theirs = login("cit").get(f"/orders/{own.id}")
    files_cell = re.search(r'data-testid="attachments">(.*?)</td>', theirs.text, flags=re.S).group(1)  # type: ignore[union-attr]
    # its size, no type (the link's name ends saying it opens a new tab, to a screen reader)
    opens = '<span class="visually-hidden">（在新标签页打开）</span>'
    assert f"more.png{opens}</a> <small>（{len(photo)} B）</small>" in files_cell, files_cell
    assert "image/png" not in theirs.text and "链接附件" not in theirs.text
    staff = login("sup").get(f"/orders/{own.id}").text
    assert "image/png" in staff and "链接附件在新窗口打开来源系统" in staff


def test_open311_never_publishes_a_stored_file(world, store) -> None:
    client = _api(world)
    _upload(client, world, [("a.png", png(), "image/png")])
    got = client.get(f"/open311/v2/requests/{world['number']}.json")
    assert got.status_code == 200, got.text
    assert got.json()[0]["media_url"] is None


def _exif_photo() -> bytes:
    """A JPEG carrying its device and GPS position in its EXIF."""
    taken = io.BytesIO()
    image = Image.new("RGB", (40, 30), "grey")
    exif = image.getexif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (23.0, 10.0, 30.0), 3: "E", 4: (113.0, 16.0, 5.0)}
    image.save(taken, "JPEG", exif=exif)
    return taken.getvalue()


def _publication_events(order_id: int) -> list[tuple[str, str, str, Any]]:
    with session_scope() as s:
        events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
        return [
            (key, e.actor_name, e.payload[key][0]["filename"], e.at)
            for e in events
            for key in ("published_attachments", "withdrawn_attachments")
            if e.payload and key in e.payload
        ]


def test_a_supervisor_publishes_a_photo_for_open311_and_withdraws_it(world, store) -> None:
    client = _api(world)
    (photo,) = _upload(client, world, [("井盖.jpg", _exif_photo(), "image/jpeg")], who="op").json()
    base = f"/api/v1/orders/{world['order']}/attachments/{photo['id']}"
    request = f"/open311/v2/requests/{world['number']}.json"
    assert client.get(request).json()[0]["media_url"] is None
    with session_scope() as s:
        version = s.get(Order, world["order"]).version
    # Neither the operator who attached it, the dispatcher, a handler nor a leader moderates the order's files.
    for who in ("op", "disp", "hand_b", "lead", "cit"):
        refused = client.post(f"{base}/publish", headers=world["tokens"][who])
        assert refused.status_code == 403, (who, refused.text)
        assert refused.json()["details"]["permission"] == "attachments:remove"
    assert client.get(request).json()[0]["media_url"] is None

    done = client.post(f"{base}/publish", headers=world["tokens"]["sup"])
    assert done.status_code == 200, done.text
    assert done.json()["id"] == photo["id"] and done.json()["published_at"] is not None
    read = client.get(f"/api/v1/orders/{world['order']}", headers=world["tokens"]["adm"]).json()
    assert read["attachments"][0]["published_at"] == done.json()["published_at"]
    # Open311 links its public address, absolute, by a token that does not say which attachment it is.
    (public,) = client.get(request).json()
    media_url = public["media_url"]
    token = media_url.rsplit("/", 1)[1]
    assert media_url.startswith("http://testserver/open311/v2/media/") and len(token) >= 32
    assert not token.isdigit() and photo["sha256"][:8] not in token
    listed = client.get("/open311/v2/requests.json", params={"service_request_id": world["number"]}).json()
    assert listed[0]["media_url"] == media_url
    assert f"<media_url>{media_url}</media_url>" in client.get(request.replace(".json", ".xml")).text
    # Served to anyone, no key: an upright JPEG without its EXIF (no device, no GPS position).
    served = client.get(media_url)
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "public, max-age=300"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert not Image.open(io.BytesIO(served.content)).getexif() and b"PhoneMaker" not in served.content
    # Publishing again changes nothing (no second entry); the order's version stays (a handler is not refused).
    again = client.post(f"{base}/publish", headers=world["tokens"]["adm"])
    assert again.status_code == 200 and again.json()["published_at"] == done.json()["published_at"]
    with session_scope() as s:
        assert s.get(Order, world["order"]).version == version

    withdrawn = client.post(f"{base}/withdraw", headers=world["tokens"]["sup"])
    assert withdrawn.status_code == 200 and withdrawn.json()["published_at"] is None
    gone = client.get(media_url)
    assert gone.status_code == 404 and gone.json()[0]["code"] == 404
    assert client.get(request).json()[0]["media_url"] is None
    # Published again, it has a new address: the withdrawn one stays gone.
    client.post(f"{base}/publish", headers=world["tokens"]["sup"])
    renewed = client.get(request).json()[0]["media_url"]
    assert renewed != media_url and client.get(renewed).status_code == 200
    assert client.get(media_url).status_code == 404

    steps = _publication_events(world["order"])
    assert [(key, actor, name) for key, actor, name, _at in steps] == [
        ("published_attachments", "陈督办", "井盖.jpg"),
        ("withdrawn_attachments", "陈督办", "井盖.jpg"),
        ("published_attachments", "陈督办", "井盖.jpg"),
    ]
    assert all(at is not None for *_, at in steps)
    # The public updates feed shows the photo's present publication, with its address, not the moderation's steps.
    updates = client.get("/open311/v2/servicerequestupdates.json", params={"service_request_id": world["number"]})
    assert "attachment" not in updates.text
    assert [u["media_url"] for u in updates.json() if u["media_url"]] == [renewed]


def test_a_published_photo_carries_none_of_the_uploads_comments_not_even_from_a_copy_made_before(world, store) -> None:
    """A JPEG's comment (COM) and a GIF's say what the camera or the sender wrote — a name, a phone number: the public
    copy is the picture alone, whether it is made at publication or was made before, for a masked reader."""
    client = _api(world)
    said = io.BytesIO()
    Image.new("RGB", (40, 30), "grey").save(said, "JPEG", comment=b"Zhang San 13800000000")
    drawn = io.BytesIO()
    Image.new("P", (40, 30)).save(drawn, "GIF", comment=b"Li Si 13900000000")
    jpeg, gif = _upload(
        client, world, [("a.jpg", said.getvalue(), "image/jpeg"), ("b.gif", drawn.getvalue(), "image/gif")], who="op"
    ).json()
    base = f"/api/v1/orders/{world['order']}/attachments"
    # A copy made by an earlier version, which kept the comment, is already in the store.
    stale = store / "previews" / jpeg["sha256"][:2] / f"{jpeg['sha256']}.jpg"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(said.getvalue())
    for photo in (jpeg, gif):
        assert client.post(f"{base}/{photo['id']}/publish", headers=world["tokens"]["sup"]).status_code == 200
    with session_scope() as s:
        tokens = [s.get(Attachment, p["id"]).public_token for p in (jpeg, gif)]
    for token in tokens:
        served = client.get(f"/open311/v2/media/{token}")
        assert served.status_code == 200
        assert b"1380000" not in served.content and b"1390000" not in served.content
        assert "comment" not in Image.open(io.BytesIO(served.content)).info
    # A masked reader's copy of the GIF, made now, carries no comment either.
    masked = client.get(f"{base}/{gif['id']}/content", params={"preview": 1}, headers=world["tokens"]["lead"])
    assert masked.status_code == 200 and b"1390000" not in masked.content
    # Nor do the JPEG's thumbnail and the leader's copy, though an earlier version kept copies that carried it.
    for folder in ("thumbs", "previews"):
        kept = store / folder / jpeg["sha256"][:2] / f"{jpeg['sha256']}.jpg"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(said.getvalue())
    for params, who in (({"thumb": 1}, "adm"), ({}, "lead")):
        copy = client.get(f"{base}/{jpeg['id']}/content", params=params, headers=world["tokens"][who])
        assert copy.status_code == 200 and b"1380000" not in copy.content, (params, who)


def test_a_photo_published_on_a_cameras_order_is_its_media_url_not_withheld_with_the_snapshot(world, store) -> None:
    """A video-AI order's snapshot link (the district's own video platform) is never published; a photo of the work
    staff published on that order is, though the snapshot came first."""
    client = _api(world)
    with session_scope() as s:
        camera = submit(
            s,
            data={
                "channel": "video_ai",
                "content": "路口有占道经营",
                "street_code": "W-JT",
                "attachments": [{"filename": "snap.jpg", "url": "http://10.20.1.5/snap/1.jpg"}],
            },
        ).order
        s.flush()
        world = {**world, "order": camera.id, "number": camera.number}
    (photo,) = _upload(client, world, [("现场.png", png(), "image/png")], who="op").json()
    request = f"/open311/v2/requests/{world['number']}.json"
    assert client.get(request).json()[0]["media_url"] is None
    done = client.post(
        f"/api/v1/orders/{world['order']}/attachments/{photo['id']}/publish", headers=world["tokens"]["sup"]
    )
    assert done.status_code == 200, done.text
    media_url = client.get(request).json()[0]["media_url"]
    assert media_url is not None and "10.20.1.5" not in media_url and "/open311/v2/media/" in media_url
    assert client.get(media_url).status_code == 200


def test_only_photos_are_published(world, store) -> None:
    client = _api(world)
    letter, photo = _upload(
        client, world, [("来信.pdf", PDF, "application/pdf"), ("a.png", png(), "image/png")], who="op"
    ).json()
    base = f"/api/v1/orders/{world['order']}/attachments"
    refused = client.post(f"{base}/{letter['id']}/publish", headers=world["tokens"]["sup"])
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        f"only photos can be published; attachment {letter['id']} (来信.pdf) is application/pdf"
    )
    with session_scope() as s:
        link = submit(
            s,
            data={
                "channel": "web",
                "content": "路灯不亮",
                "street_code": "W-JT",
                "attachments": [{"filename": "lamp.jpg", "url": "https://pics.example.org/lamp.jpg"}],
            },
        ).order
        s.flush()
        link_id, link_order = link.attachments[0].id, link.id
    as_link = client.post(f"/api/v1/orders/{link_order}/attachments/{link_id}/publish", headers=world["tokens"]["sup"])
    assert as_link.status_code == 422 and "is a link" in as_link.json()["message"]
    # Another order's attachment is not found through this order.
    other = client.post(
        f"/api/v1/orders/{link_order}/attachments/{photo['id']}/publish", headers=world["tokens"]["sup"]
    )
    assert other.status_code == 404
    assert client.get("/open311/v2/media/not-a-token").status_code == 404
    assert _publication_events(world["order"]) == []


def test_the_order_page_publishes_and_withdraws_a_photo(world, store) -> None:
    client = _api(world)
    with session_scope() as s:
        citizen = s.scalars(select(User).where(User.username == "cit")).one()
        own = submit(s, data={"channel": "web", "content": "路灯不亮", "citizen_user_id": citizen.id}).order
        s.flush()
        world = {**world, "order": own.id}
    (photo,) = _upload(client, world, [("灯.png", png(), "image/png")], who="cit").json()  # the citizen's own
    (letter,) = _upload(client, world, [("来信.pdf", PDF, "application/pdf")], who="op").json()
    page_url = f"/orders/{own.id}"
    lead = login("lead").get(page_url).text
    assert f'data-testid="publish-{photo["id"]}"' not in lead
    sup = login("sup")
    page = sup.get(page_url)
    assert (
        f'data-testid="publish-{photo["id"]}"' in page.text and f'data-testid="publish-{letter["id"]}"' not in page.text
    )
    assert ">公开</button>" in page.text
    token = hidden(page.text)
    done = sup.post(f"/orders/{own.id}/attachments/{photo['id']}/publish", data={"csrf_token": token})
    assert done.status_code == 200 and "已公开照片：灯.png" in done.text
    assert f'data-testid="published-{photo["id"]}"' in done.text and ">撤回公开</button>" in done.text
    assert 'data-testid="event-published"' in done.text and "公开附件 #" in done.text
    refused = sup.post(f"/orders/{own.id}/attachments/{letter['id']}/publish", data={"csrf_token": token})
    assert refused.status_code == 422 and "只有照片可以公开" in refused.text
    # The citizen's page says their photo is public, and offers them nothing to do about it.
    theirs = login("cit").get(page_url).text
    assert f'data-testid="published-{photo["id"]}"' in theirs and "已公开" in theirs
    assert f'data-testid="withdraw-{photo["id"]}"' not in theirs
    # A role without the permission is refused the post itself.
    lead_client = login("lead")
    lead_page = lead_client.get(page_url).text
    forbidden = lead_client.post(
        f"/orders/{own.id}/attachments/{photo['id']}/withdraw", data={"csrf_token": hidden(lead_page)}
    )
    assert forbidden.status_code == 403
    back = sup.post(f"/orders/{own.id}/attachments/{photo['id']}/withdraw", data={"csrf_token": token})
    assert back.status_code == 200 and "已撤回公开：灯.png" in back.text
    assert f'data-testid="published-{photo["id"]}"' not in back.text and "撤回公开附件 #" in back.text
    assert [key for key, *_ in _publication_events(own.id)] == ["published_attachments", "withdrawn_attachments"]


def test_the_cli_attaches_files_and_names_the_one_it_refuses(world, store, tmp_path) -> None:
    photo = tmp_path / "现场.png"
    photo.write_bytes(png())
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    runner = CliRunner()
    done = runner.invoke(cli_app, ["attach", world["number"], str(photo), "--note", "整改后"])
    assert done.exit_code == 0, done.output
    line = json.loads(done.output.strip())
    assert line["filename"] == "现场.png" and line["uploaded_by"] == "cli"
    refused = runner.invoke(cli_app, ["attach", world["number"], str(photo), str(script)])
    assert refused.exit_code != 0
    assert "file 2 (run.sh): not a kind of file taken" in refused.output
    missing = runner.invoke(cli_app, ["attach", world["number"], str(tmp_path / "nope.jpg")])
    assert missing.exit_code != 0 and "cannot read" in missing.output
    with session_scope() as s:
        assert len(s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).all()) == 1


def test_the_order_page_uploads_files_and_names_a_refused_one(world, store) -> None:
    client = login("op")
    page = client.get(f"/orders/{world['order']}")
    assert 'data-testid="action-attach"' in page.text and 'enctype="multipart/form-data"' in page.text
    token = hidden(page.text)
    refused = client.post(
        f"/orders/{world['order']}/attachments",
        data={"csrf_token": token, "note": "整改前"},
        files=[("files", ("photo.jpg", HTML, "image/jpeg"))],
    )
    assert refused.status_code == 422
    assert "文件“photo.jpg”不是可接收的类型" in refused.text and 'value="整改前"' in refused.text
    done = client.post(
        f"/orders/{world['order']}/attachments",
        data={"csrf_token": token, "note": "整改前"},
        files=[("files", ("井盖.png", png(), "image/png")), ("files", ("", b"", "application/octet-stream"))],
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    shown = client.get(f"/orders/{world['order']}")
    assert "已上传 1 个附件" in shown.text and "井盖.png" in shown.text and "附件：井盖.png" in shown.text
    assert f"（image/png · {len(png())} B）" in shown.text and "Bytes" not in shown.text  # its size, in no language
    with session_scope() as s:
        row = s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).one()
    assert f'href="{files.content_path(row)}"' in shown.text
    assert client.get(files.content_path(row)).content == png()  # the session cookie reads it, as the page links it
    # Without the session's CSRF token nothing is attached.
    forged = client.post(
        f"/orders/{world['order']}/attachments",
        data={"csrf_token": "forged"},
        files=[("files", ("x.png", png(), "image/png"))],
    )
    assert forged.status_code == 403


def test_the_intake_form_takes_the_appeals_files_and_refuses_the_appeal_for_a_bad_one(world, store) -> None:
    client = login("cit")
    token = hidden(client.get("/intake").text)
    appeal = {"csrf_token": token, "appeal_type": "complaint", "content": "小区门口路灯坏了一周"}
    refused = client.post(
        "/intake",
        data=appeal,
        files=[("files", ("路灯.png", png(), "image/png")), ("files", ("说明.doc", HTML, "application/msword"))],
    )
    assert refused.status_code == 422
    assert "文件“说明.doc”不是可接收的类型" in refused.text and "请重新选择要上传的文件" in refused.text
    assert "小区门口路灯坏了一周" in refused.text  # what was typed stays in the form
    with session_scope() as s:
        assert s.scalars(select(Order).where(Order.content == appeal["content"])).all() == []
    assert _stored(store) == []
    done = client.post("/intake", data=appeal, files=[("files", ("路灯.png", png(), "image/png"))])
    assert done.status_code == 200 and "路灯.png" in done.text
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.content == appeal["content"])).one()
        (row,) = order.attachments
        assert row.uploaded_by is None  # the citizen's own, given with the appeal
        order_id, url = order.id, row.url
    # The citizen reads it with the appeal, and opens it.
    read = _api(world).get(f"/api/v1/orders/{order_id}", headers=world["tokens"]["cit"]).json()
    assert [a["filename"] for a in read["attachments"]] == ["路灯.png"]
    assert client.get(url).content == png()
    # From their appeal's page they add more (补充材料) while it is open; once closed the form is gone.
    staff = login("op")
    assert 'data-testid="supplemented"' not in staff.get("/orders").text  # what came with the appeal is no addition
    page = client.get(f"/orders/{order_id}").text
    assert 'data-testid="action-attach"' in page and "补充材料" in page
    added = client.post(
        f"/orders/{order_id}/attachments",
        data={"csrf_token": hidden(page)},
        files=[("files", ("晚上.png", png("navy"), "image/png"))],
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    assert "晚上.png" in client.get(f"/orders/{order_id}").text
    listed = staff.get("/orders").text  # the staff's list marks the order
    row = re.search(rf'<a href="/orders/{order_id}">.*?</tr>', listed, re.S)
    assert row is not None and 'data-testid="supplemented"' in row.group(0)
    queue = login("adm").get("/queue").text  # and the dispatcher's queue, while it waits there
    entry = re.search(rf'<a href="/orders/{order_id}">.*?</h2>[^<]*(<span[^>]*>)?', queue, re.S)  # the title's heading
    assert entry is not None and 'data-testid="supplemented"' in entry.group(0)

    def marked(who, page: str = "/orders") -> bool:
        row = re.search(rf'<a href="/orders/{order_id}">.*?</tr>', who.get(page).text, re.S)
        return row is not None and 'data-testid="supplemented"' in row.group(0)

    # Marked for each reader until they open the order: the operator has looked, the administrator not yet.
    assert staff.get(f"/orders/{order_id}").status_code == 200
    assert not marked(staff) and marked(login("adm"))
    assert staff.get(f"/orders/{order_id}").status_code == 200  # looking again changes nothing
    assert not marked(staff)
    again = client.post(
        f"/orders/{order_id}/attachments",
        data={"csrf_token": hidden(client.get(f"/orders/{order_id}").text)},
        files=[("files", ("第二天.png", png("teal"), "image/png"))],
        follow_redirects=False,
    )
    assert again.status_code == 303 and marked(staff)  # a later addition is new to them again
    with session_scope() as s:
        orders.act(s, order_id=order_id, action="cancel", params={"reason": "重复"})
    assert 'data-testid="action-attach"' not in client.get(f"/orders/{order_id}").text


def test_a_refused_intake_or_upload_keeps_the_form_and_says_at_the_file_field_to_choose_again(
    world, store, monkeypatch
) -> None:
    monkeypatch.setenv("CITYHUB_FILES_MAX_COUNT", "2")
    client = login("cit")
    token = hidden(client.get("/intake").text)
    appeal = {"csrf_token": token, "appeal_type": "complaint", "content": "小区门口垃圾堆积一周无人清运"}
    photos = [("files", (f"{i}.png", png(), "image/png")) for i in range(3)]
    # A gallery's selection past the limit: said at the file field, the appeal kept (it was a bare 400 in English,
    # everything typed lost).
    many = client.post("/intake", data={**appeal, "address": "云景路88号"}, files=photos)
    assert many.status_code == 422, many.text
    assert 'data-testid="field-error-files"' in many.text and "一次最多上传 2 个文件" in many.text
    assert "小区门口垃圾堆积一周无人清运</textarea>" in many.text and 'value="云景路88号"' in many.text
    # 查询建议 (the suggestions without the form sent) answers with the page too: its files are held for it.
    preview = client.post("/intake", data={**appeal, "preview": "1"}, files=photos[:1])
    assert preview.status_code == 200 and 'data-testid="held-files"' in preview.text and "0.png" in preview.text
    assert "小区门口垃圾堆积一周无人清运</textarea>" in preview.text
    # Too many with another problem: both said in one round.
    both = client.post("/intake", data={**appeal, "citizen_phone": "12ab"}, files=photos)
    assert "电话号码只能包含数字" in both.text and "一次最多上传 2 个文件" in both.text
    with session_scope() as s:
        assert s.scalars(select(Order).where(Order.content == appeal["content"])).all() == []
    # The order page's upload (补充材料) alike: the note kept, the number said at the field.
    staff = login("op")
    page = staff.get(f"/orders/{world['order']}").text
    upload = staff.post(
        f"/orders/{world['order']}/attachments", data={"csrf_token": hidden(page), "note": "整改前"}, files=photos
    )
    assert upload.status_code == 422, upload.text
    assert "一次最多上传 2 个文件" in upload.text and 'value="整改前"' in upload.text
    assert _stored(store) == []


def test_an_appeal_refused_for_another_field_keeps_its_files_for_it(world, store) -> None:
    # A page cannot give a file input its files back: a report refused for its phone came back with the photo gone
    # and not a word about it, and was sent again without it; then named to be chosen again; now they are held for
    # the form (已保留的附件, tests/test_web_held_files.py), to be sent with it.
    client = login("op")
    token = hidden(client.get("/intake").text)
    appeal = {"csrf_token": token, "appeal_type": "help", "content": "路口井盖缺失", "citizen_phone": "abc"}
    photos = [("files", ("井盖.png", png(), "image/png")), ("files", ("远景.png", png("navy"), "image/png"))]
    refused = client.post("/intake", data=appeal, files=photos)
    assert refused.status_code == 422
    kept = re.search(r'<fieldset class="held-files" id="f-files-held".*?</fieldset>', refused.text, re.S)
    assert kept is not None and "井盖.png" in kept.group(0) and "远景.png" in kept.group(0), kept
    assert 'data-testid="files-not-kept"' not in refused.text
    assert "路口井盖缺失" in refused.text and _stored(store) == [] and _held(store) == ["井盖.png", "远景.png"]
    # A file that would be refused too is named by its problem at once, not among files to choose again.
    bad = client.post("/intake", data=appeal, files=[("files", ("说明.doc", HTML, "application/msword"))])
    assert bad.status_code == 422 and 'data-testid="files-not-kept"' not in bad.text
    assert "文件“说明.doc”不是可接收的类型" in bad.text and "请重新选择要上传的文件" in bad.text
    # Nothing chosen, nothing said.
    assert 'data-testid="files-not-kept"' not in client.post("/intake", data=appeal).text


def test_a_handler_replies_with_the_photos_of_the_work_in_one_form(world, store) -> None:
    # 答复 took words only: the photos were a second form, sent first, the reply written after the page came back.
    with session_scope() as s:
        orders.act(s, order_id=world["order"], action="dispatch", params={"unit_id": world["street_a"]})
        orders.act(s, order_id=world["order"], action="accept", params={})
    client = login("hand_a")
    page = client.get(f"/orders/{world['order']}").text
    form = re.search(r'<details[^>]*data-testid="action-reply">.*?</details>', page, re.S)
    assert form and 'enctype="multipart/form-data"' in form.group(0) and 'id="reply-files"' in form.group(0), form

    def reply(text: str, *parts: tuple[str, bytes, str]) -> Any:
        with session_scope() as s:
            version = s.get_one(Order, world["order"]).version
        return client.post(
            f"/orders/{world['order']}/act/reply",
            data={"csrf_token": hidden(page), "version": str(version), "text": text},
            files=[("files", part) for part in parts],
            follow_redirects=False,
        )

    def state() -> tuple[str, list[str]]:
        with session_scope() as s:
            order = s.get_one(Order, world["order"])
            return order.state.value, [a.filename for a in order.attachments]

    # No words: refused at the text, the photo held for the form (已保留的附件); a bad file: refused by name. Nothing
    # attached.
    blank = reply("", ("修复后.png", png(), "image/png"))
    assert blank.status_code == 422 and 'data-testid="held-files"' in blank.text and "修复后.png" in blank.text
    bad = reply("已修复", ("修复后.jpg", HTML, "image/jpeg"))
    assert bad.status_code == 422 and "文件“修复后.jpg”不是可接收的类型" in bad.text
    assert ">已修复</textarea>" in bad.text  # the reply typed stays
    assert state() == ("accepted", []) and _stored(store) == []
    done = reply("已更换井盖，现场已恢复通行。", ("修复后.png", png(), "image/png"))
    assert done.status_code == 303, done.text
    assert state() == ("replied", ["修复后.png"])
    with session_scope() as s:
        trail = [(e.action, (e.payload or {}).get("attachments")) for e in orders.history(s, order_id=world["order"])]
        (row,) = s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).all()
        assert row.uploaded_by_id is not None  # the handler's, not the citizen's
    assert trail[-2][0] == "reply" and trail[-1][0] == "comment" and trail[-1][1], trail
    assert "修复后.png" in client.get(f"/orders/{world['order']}").text


def test_an_attachment_is_removed_by_its_uploader_or_a_supervisor_with_a_reason(world, store) -> None:
    client = _api(world)
    (mine,) = _upload(client, world, [("错传.png", png(), "image/png")], who="op").json()
    (kept,) = _upload(client, world, [("kept.png", png("blue"), "image/png")], who="adm").json()
    (twin,) = _upload(client, world, [("same.png", png(), "image/png")], who="adm").json()  # the same bytes
    base = f"/api/v1/orders/{world['order']}/attachments"
    # Another's file: the operator may not; without a reason nobody may.
    refused = client.delete(f"{base}/{kept['id']}", params={"reason": "不需要"}, headers=world["tokens"]["op"])
    assert refused.status_code == 403
    assert client.delete(f"{base}/{mine['id']}", headers=world["tokens"]["op"]).status_code == 422
    # The uploader removes their own; the file stays while another attachment holds the same bytes.
    done = client.delete(f"{base}/{mine['id']}", params={"reason": "传错了工单"}, headers=world["tokens"]["op"])
    assert done.status_code == 204, done.text
    assert files.path_of(mine["sha256"]).is_file()
    assert client.get(mine["url"], headers=world["tokens"]["adm"]).status_code == 404
    # An administrator removes the twin: now no attachment holds those bytes, and the file leaves the store.
    gone = client.delete(f"{base}/{twin['id']}", params={"reason": "含身份证号"}, headers=world["tokens"]["adm"])
    assert gone.status_code == 204
    assert not files.path_of(mine["sha256"]).exists() and files.path_of(kept["sha256"]).is_file()
    with session_scope() as s:
        events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == world["order"]).order_by(OrderEvent.id))
        removals = [
            (e.actor_name, e.reason, e.payload["removed_attachments"][0]["filename"])
            for e in events
            if e.payload and "removed_attachments" in e.payload
        ]
        assert [a.filename for a in s.scalars(select(Attachment).where(Attachment.order_id == world["order"]))] == [
            "kept.png"
        ]
    assert removals == [("王话务", "传错了工单", "错传.png"), ("周管理", "含身份证号", "same.png")]


def test_the_same_bytes_attached_while_their_other_attachment_is_removed_keep_their_file(
    world, store, monkeypatch
) -> None:
    """The same photo attached to another order while its attachment to this one is removed: a removal that commits
    between the upload's storing the file (here: finding it stored already) and the upload's commit deletes the file
    as held by nothing committed; the upload, once committed, puts it back."""
    from cityhub.workorders.service import Actor

    client = _api(world)
    with session_scope() as s:
        appeal = {"channel": "hotline", "content": "公园门口路灯整晚不亮", "street_code": "W-JT"}
        other = submit(s, data=appeal).order
        s.flush()
        other_id = other.id
    (old,) = _upload(client, {**world, "order": other_id}, [("first.png", png(), "image/png")], who="adm").json()
    real_store = files.store
    interleaved: list[bool] = []

    def store_then_a_removal_commits(item: Any, settings: Any = None) -> Path:
        path = real_store(item, settings)
        if not interleaved:
            interleaved.append(True)
            with session_scope() as s:
                files.remove(
                    s,
                    order_id=other_id,
                    attachment_id=old["id"],
                    actor=Actor(name="周管理"),
                    reason="传错了",
                    may_remove_any=True,
                )
            assert not path.exists()  # the removal deleted it: no committed attachment held those bytes
        return path

    monkeypatch.setattr(files, "store", store_then_a_removal_commits)
    made = _upload(client, world, [("again.png", png(), "image/png")], who="op")
    assert made.status_code == 201, made.text
    (new,) = made.json()
    assert interleaved and new["sha256"] == old["sha256"]
    assert files.path_of(new["sha256"]).is_file()
    assert client.get(new["url"], headers=world["tokens"]["op"]).status_code == 200


def test_a_removal_keeps_the_file_when_the_same_bytes_were_attached_before_it_committed(app_db, world, store) -> None:
    """The other order of events: a removal finds no other attachment of its bytes, then another order's upload of
    them commits, then the removal commits. Asked again after its commit, the removal keeps the file. (SQLite's
    writers take turns: the upload could not commit inside the removal's transaction there.)"""
    from cityhub.workorders.service import Actor

    if app_db.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time")
    client = _api(world)
    (old,) = _upload(client, world, [("first.png", png("olive"), "image/png")], who="adm").json()
    with session_scope() as s:
        other = submit(s, data={"channel": "hotline", "content": "公园门口路灯整晚不亮", "street_code": "W-JT"}).order
        s.flush()
        other_id = other.id
    with session_scope() as s:
        files.remove(
            s, order_id=world["order"], attachment_id=old["id"], actor=Actor(name="x"), reason="r", may_remove_any=True
        )
        made = _upload(client, {**world, "order": other_id}, [("again.png", png("olive"), "image/png")], who="adm")
        assert made.status_code == 201, made.text
    (new,) = made.json()
    assert new["sha256"] == old["sha256"] and files.path_of(new["sha256"]).is_file()
    assert client.get(new["url"], headers=world["tokens"]["adm"]).status_code == 200


def test_a_removal_that_rolls_back_keeps_the_file(world, store) -> None:
    from cityhub.workorders.service import Actor

    (row,) = _upload(_api(world), world, [("a.png", png(), "image/png")], who="adm").json()
    with session_scope() as s:
        files.remove(
            s, order_id=world["order"], attachment_id=row["id"], actor=Actor(name="x"), reason="r", may_remove_any=True
        )
        s.rollback()
    assert files.path_of(row["sha256"]).is_file()
    with session_scope() as s:  # a later commit of the same kind of session does not delete it either
        s.get(Order, world["order"])
    assert files.path_of(row["sha256"]).is_file()


def test_the_order_page_removes_an_attachment_with_a_reason(world, store) -> None:
    _upload(_api(world), world, [("wrong.png", png(), "image/png")], who="op")
    with session_scope() as s:
        row_id = s.scalars(select(Attachment.id).where(Attachment.order_id == world["order"])).one()
    lead = login("lead")  # a leader neither attached it nor may remove others' files: offered nothing
    assert f'data-testid="remove-attachment-{row_id}"' not in lead.get(f"/orders/{world['order']}").text
    client = login("sup")
    page = client.get(f"/orders/{world['order']}")
    assert f'data-testid="remove-attachment-{row_id}"' in page.text
    token = hidden(page.text)
    action = f"/orders/{world['order']}/attachments/{row_id}/remove"
    assert 'name="reason" maxlength="500" required' in page.text  # the service's limit, stopped in the browser
    missing = client.post(action, data={"csrf_token": token, "reason": " "})
    assert missing.status_code == 422 and "请填写移除附件的原因" in missing.text
    too_long = client.post(action, data={"csrf_token": token, "reason": "拍" * 501})
    assert too_long.status_code == 422 and "移除原因不能超过 500 个字" in too_long.text
    done = client.post(action, data={"csrf_token": token, "reason": "拍到了路人面部"})
    assert done.status_code == 200 and "已移除附件：wrong.png" in done.text and "拍到了路人面部" in done.text
    with session_scope() as s:
        assert s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).all() == []


def test_a_store_that_cannot_be_written_refuses_uploads_and_degrades_health(world, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(blocker / "files"))  # a file stands where a directory must be made
    client = _api(world)
    answer = _upload(client, world, [("a.png", png(), "image/png")])
    assert answer.status_code == 503
    assert answer.json()["code"] == "storage_unavailable" and "nothing was attached" in answer.json()["message"]
    with session_scope() as s:
        assert s.scalars(select(Attachment).where(Attachment.order_id == world["order"])).all() == []
    health = client.get("/healthz").json()
    assert health["status"] == "degraded"
    assert any(p.startswith("file store: its directory cannot be made") for p in health["problems"])
    assert str(blocker) not in json.dumps(health)  # the public probe names no path


def test_an_iphone_heic_photo_is_viewed_as_a_jpeg_copy_and_kept_as_sent(world, store) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    client = _api(world)
    heic = io.BytesIO()
    Image.new("RGB", (1200, 800), "green").save(heic, "HEIF")
    made = _upload(client, world, [("IMG_0001.HEIC", heic.getvalue(), "image/heic")])
    assert made.status_code == 201, made.text
    [photo] = made.json()
    assert photo["content_type"] == "image/heic"
    # Kept as sent and downloaded as such (browsers do not show HEIC) by whoever reads the order in full …
    original = client.get(photo["url"], headers=world["tokens"]["adm"])
    assert original.content == heic.getvalue() and original.headers["content-disposition"].startswith("attachment")
    # … and looked at as JPEG copies: the thumbnail, the preview, and what a masked reader opens.
    for params, token, longest in (({"thumb": "1"}, "adm", 320), ({"preview": "1"}, "adm", 1200), ({}, "lead", 1200)):
        copy = client.get(photo["url"], params=params, headers=world["tokens"][token])
        assert copy.status_code == 200 and copy.headers["content-type"] == "image/jpeg", (params, token)
        assert max(Image.open(io.BytesIO(copy.content)).size) == longest
        assert copy.headers["content-disposition"].startswith('inline; filename="IMG_0001.jpg"')
    page = login("op").get(f"/orders/{world['order']}").text
    assert f'href="{photo["url"]}?preview=1"' in page and f'src="{photo["url"]}?thumb=1"' in page


def test_a_photo_has_an_upright_thumbnail_and_a_broken_one_falls_back_to_the_file(world, store) -> None:
    client = _api(world)
    big = io.BytesIO()
    image = Image.new("RGB", (1600, 900), "white")
    exif = image.getexif()
    exif[0x0112] = 6  # taken with the phone turned: to be shown rotated 90°
    image.save(big, "JPEG", exif=exif)
    broken = png()[:40] + b"\x00" * 60  # a PNG's signature and header, then nothing that decodes
    made = _upload(client, world, [("cam.jpg", big.getvalue(), "image/jpeg"), ("bad.png", broken, "image/png")])
    assert made.status_code == 201, made.text
    cam, bad = made.json()
    thumb = client.get(cam["url"], params={"thumb": "true"}, headers=world["tokens"]["lead"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    small = Image.open(io.BytesIO(thumb.content))
    assert small.size == (180, 320)  # upright: the 1600×900 landscape frame turned to portrait, 320 px long
    assert len(thumb.content) < len(big.getvalue())
    assert (store / "thumbs-v2" / cam["sha256"][:2] / f"{cam['sha256']}.jpg").is_file()  # made once, kept
    fallback = client.get(bad["url"], params={"thumb": "true"}, headers=world["tokens"]["adm"])
    assert fallback.status_code == 200 and fallback.content == broken
    # Who reads the order masked gets no copy of what cannot be decoded (and so cleaned of its EXIF).
    assert client.get(bad["url"], params={"thumb": "true"}, headers=world["tokens"]["lead"]).status_code == 403
    # The order page shows the photos as thumbnails linking to the files.
    page = login("op").get(f"/orders/{world['order']}").text
    assert f'src="{cam["url"]}?thumb=1"' in page and f'src="{bad["url"]}?thumb=1"' in page
    # Removing the photo takes its thumbnail too.
    removed = client.delete(
        f"{cam['url'].removesuffix('/content')}", params={"reason": "x"}, headers=world["tokens"]["adm"]
    )
    assert removed.status_code == 204
    assert not (store / "thumbs-v2" / cam["sha256"][:2] / f"{cam['sha256']}.jpg").exists()


def test_a_webhook_receiver_learns_of_the_orders_files(world, store) -> None:
    from cityhub.notify.service import order_snapshot

    (made,) = _upload(_api(world), world, [("井盖.png", png(), "image/png")]).json()
    with session_scope() as s:
        block = order_snapshot(s, world["order"])
    (sent,) = block["attachments"]
    assert sent == {k: made[k] for k in ("id", "filename", "content_type", "size", "url")}
    assert sent["filename"] == "井盖.png" and sent["url"].endswith("/content")


def test_an_appeal_merged_at_intake_takes_its_files_to_the_master_too(world, store) -> None:
    text = "景泰街道云景路1号门口的井盖破损下陷，行人经过很危险，请尽快派人维修更换井盖"
    with session_scope() as s:
        master = submit(s, data={"channel": "hotline", "content": text, "address": "景泰街道云景路1号"}).order
        s.flush()
        master_id, version, updated = master.id, master.version, master.updated_at
    client = login("op")
    token = hidden(client.get("/intake").text)
    form = {"csrf_token": token, "appeal_type": "complaint", "content": text, "address": "景泰街道云景路1号"}
    done = client.post("/intake", data=form, files=[("files", ("井盖.png", png(), "image/png"))])
    assert done.status_code == 200, done.text
    with session_scope() as s:
        merged = s.scalars(select(Order).where(Order.content == text, Order.id != master_id)).one()
        assert merged.state.value == "merged" and merged.master_order_id == master_id
        assert [(a.filename, a.uploaded_by) for a in merged.attachments] == [("井盖.png", None)]
        on_master = s.get(Order, master_id).attachments
        assert [(a.filename, a.uploaded_by, a.sha256) for a in on_master] == [
            ("井盖.png", "王话务", merged.attachments[0].sha256)
        ]
        # Beside the master: a handler acting on it with the version they read is not refused for this.
        kept = s.get(Order, master_id)
        assert (kept.version, kept.updated_at) == (version, updated)
        events = s.scalars(select(OrderEvent).where(OrderEvent.order_id == master_id).order_by(OrderEvent.id)).all()
        note = events[-1]
        assert (note.action, note.from_state, note.to_state, note.actor_name) == (
            "comment",
            kept.state.value,
            kept.state.value,
            "王话务",
        )
        assert note.payload["text"] == f"files of merged appeal {merged.number}"
        assert [a["filename"] for a in note.payload["attachments"]] == ["井盖.png"]
    assert len(_stored(store)) == 1


def test_a_masked_reader_opens_photos_without_their_exif_and_no_documents(world, store) -> None:
    client = _api(world)
    taken = io.BytesIO()
    image = Image.new("RGB", (3000, 2000), "grey")
    exif = image.getexif()
    exif[0x0112] = 6  # turned
    exif[0x010F] = "PhoneMaker"  # the device
    exif[0x8825] = {1: "N", 2: (23.0, 10.0, 30.0), 3: "E", 4: (113.0, 16.0, 5.0)}  # where: the GPS block
    image.save(taken, "JPEG", exif=exif)
    parts = [("家门口.jpg", taken.getvalue(), "image/jpeg"), ("来信.pdf", PDF, "application/pdf")]
    photo, letter = _upload(client, world, parts).json()
    # Those who read the appeal's personal data open the original, EXIF and all.
    original = client.get(photo["url"], headers=world["tokens"]["adm"])
    assert original.content == taken.getvalue()
    assert Image.open(io.BytesIO(original.content)).getexif().get_ifd(0x8825)
    # A leader (masked) gets an upright copy without EXIF, at most 2048 px, and not the letter.
    copy = client.get(photo["url"], headers=world["tokens"]["lead"])
    assert copy.status_code == 200 and copy.headers["content-type"] == "image/jpeg"
    shown = Image.open(io.BytesIO(copy.content))
    assert shown.size == (1365, 2048) and not shown.getexif()
    refused = client.get(letter["url"], headers=world["tokens"]["lead"])
    assert refused.status_code == 403 and "personal data" in refused.json()["message"]
    # The leader's page lists the letter without a link to it.
    page = login("lead").get(f"/orders/{world['order']}").text
    assert f'href="{letter["url"]}"' not in page and "来信.pdf" in page
    assert f'href="{photo["url"]}"' in page


def test_pruning_deletes_only_what_no_attachment_holds_and_was_not_touched_lately(world, store) -> None:
    import os
    import time

    client = _api(world)
    (kept,) = _upload(client, world, [("kept.png", png(), "image/png")]).json()
    client.get(kept["url"], params={"thumb": "true"}, headers=world["tokens"]["adm"])  # a rendition of a held photo
    orphan = files.path_of("f" * 64)  # a file whose upload's transaction failed
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 1000)
    fresh = files.path_of("e" * 64)  # an upload in flight: written, not committed yet
    fresh.parent.mkdir(parents=True, exist_ok=True)
    fresh.write_bytes(b"y")
    stale_copy = store / "previews-v2" / "ff" / f"{'f' * 64}.jpg"
    stale_copy.parent.mkdir(parents=True, exist_ok=True)
    stale_copy.write_bytes(b"z" * 10)
    # A copy an earlier version kept of the held photo (it kept the upload's comment): never served, deleted.
    superseded = store / "thumbs" / kept["sha256"][:2] / f"{kept['sha256']}.jpg"
    superseded.parent.mkdir(parents=True, exist_ok=True)
    superseded.write_bytes(b"v" * 10)
    partial = orphan.parent / ".upload-abc"
    partial.write_bytes(b"w")
    hour_ago = time.time() - 7200
    for path in (orphan, stale_copy, superseded, partial, files.path_of(kept["sha256"])):
        os.utime(path, (hour_ago, hour_ago))
    from cityhub.cli import _mount, app

    _mount()
    runner = CliRunner()
    counted = runner.invoke(app, ["files", "prune", "--dry-run"])
    assert counted.exit_code == 0, counted.output
    assert "would delete 1 file(s), 2 photo cop(ies), 1 interrupted write(s)" in counted.output
    assert orphan.exists()
    done = runner.invoke(app, ["files", "prune"])
    assert done.exit_code == 0 and "deleted 1 file(s)" in done.output
    assert not orphan.exists() and not stale_copy.exists() and not partial.exists() and not superseded.exists()
    assert fresh.exists() and files.path_of(kept["sha256"]).exists()
    assert (store / "thumbs-v2" / kept["sha256"][:2] / f"{kept['sha256']}.jpg").exists()


def test_the_files_prune_job_runs_with_the_other_jobs(world, store) -> None:
    import os
    import time

    from cityhub import jobs

    orphan = files.path_of("d" * 64)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 10)
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    # "held": the files held for refused forms past CITYHUB_FILES_HELD_HOURS, deleted (none here)
    assert jobs.run_job("files-prune") == {"files": 1, "renditions": 0, "partial": 0, "bytes": 10, "held": 0}
    assert not orphan.exists()
