"""Knowledge base on both backends: CRUD, expiry, imports, seed from replies, instant answers, reply checks, API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from cityhub.db import utcnow
from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.knowledge import service
from cityhub.knowledge.models import ReplyCheck
from cityhub.knowledge.schemas import EntryCreate, EntryUpdate
from cityhub.org.models import Role
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.schemas import OrderCreate

GJJ = {
    "question": "离职后住房公积金怎么提取",
    "answer": "账户封存满6个月后凭身份证到公积金中心办理。",
    "keywords": "公积金,提取",
}
HUKOU = {"question": "新生儿如何上户口", "answer": "凭出生医学证明到户籍地派出所办理。", "keywords": ["户口"]}


def _entry(session, **extra):
    return service.create_entry(session, data=EntryCreate.model_validate({**GJJ, **extra}))


def test_crud_versions_and_deactivation(db_session):
    entry = _entry(db_session)
    assert entry.active and entry.version == 1 and entry.keywords == ["公积金", "提取"]
    changed = service.update_entry(db_session, entry_id=entry.id, data=EntryUpdate(answer="新的答复", version=1))
    assert changed.answer == "新的答复" and changed.version == 2
    with pytest.raises(Conflict):
        service.update_entry(db_session, entry_id=entry.id, data=EntryUpdate(answer="x", version=1))
    with pytest.raises(ValidationFailed):
        service.update_entry(db_session, entry_id=entry.id, data=EntryUpdate(category_id=987654))
    service.deactivate_entry(db_session, entry_id=entry.id)
    assert service.list_entries(db_session)[0] == []
    assert [e.id for e in service.list_entries(db_session, active=None)[0]] == [entry.id]
    assert service.suggest(db_session, text="公积金怎么提取") == []
    with pytest.raises(NotFound):
        service.require_entry(db_session, entry_id=987654)


def test_list_finds_every_word_latin_letters_in_either_case(db_session):
    entry = _entry(db_session, question="ETC卡如何办理公积金提取", keywords=["公积金"])
    _entry(db_session, **HUKOU)
    for q in ("etc 公积金", "Etc卡", "提取 ETC"):
        assert [e.id for e in service.list_entries(db_session, q=q)[0]] == [entry.id], q
    assert service.list_entries(db_session, q="ETC 户口")[0] == []
    assert service.list_entries(db_session, q="%")[0] == [] and service.list_entries(db_session, q="_")[0] == []


def test_suggest_ranks_and_follows_changes_and_expiry(db_session):
    gjj = _entry(db_session)
    hukou = service.create_entry(db_session, data=EntryCreate.model_validate(HUKOU))
    top = service.suggest(db_session, text="孩子出生了怎么办户口")
    assert top[0].entry.id == hukou.id
    assert service.suggest(db_session, text="辞职后公积金能取出来吗")[0].entry.id == gjj.id
    # an edit moves the revision: the index is rebuilt and sees the new wording
    service.update_entry(
        db_session, entry_id=gjj.id, data=EntryUpdate(question="灵活就业人员养老保险缴费", keywords=[])
    )
    assert all(s.entry.id != gjj.id for s in service.suggest(db_session, text="公积金提取"))
    expiring = _entry(db_session, valid_until=utcnow() + timedelta(hours=1))
    assert service.suggest(db_session, text="公积金提取")[0].entry.id == expiring.id
    later = utcnow() + timedelta(hours=2)
    assert all(s.entry.id != expiring.id for s in service.suggest(db_session, text="公积金提取", now=later))


def test_import_csv_creates_updates_and_rejects(db_session, tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text(
        "question,answer,category,keywords,valid_until\n"
        "公租房申请条件,连续缴纳社保满1年,,公租房、申请,2030-12-31\n"
        "空答复,,,,\n"
        "户口迁移,到派出所办理,没有这个分类,,\n"
        "老年卡,到社区办理,,老年卡,not-a-date\n",
        encoding="utf-8",
    )
    report = service.import_entries(db_session, path=path)
    assert (report.rows, report.created) == (4, 1)
    assert {r["field"] for r in report.rejected} == {"answer", "category", "valid_until"}
    [entry] = service.list_entries(db_session)[0]
    assert entry.keywords == ["公租房", "申请"] and entry.valid_until is not None
    path.write_text("question,answer\n公租房申请条件,连续缴纳社保满2年\n", encoding="utf-8")
    again = service.import_entries(db_session, path=path)
    assert (again.created, again.updated) == (0, 1)
    assert service.require_entry(db_session, entry_id=entry.id).answer == "连续缴纳社保满2年"


def test_reimporting_a_file_without_an_optional_column_keeps_that_field_an_empty_cell_clears_it(db_session, tmp_path):
    """A file of questions and answers alone cleared the keywords, category and validity of every entry it updated:
    a column the file lacks now leaves its field as it is; an empty cell in a column it has still clears it."""
    from cityhub.workorders.models import Category

    db_session.add(Category(code="KB-H1", name="住房保障", level=1, path="住房保障"))
    db_session.flush()
    path = tmp_path / "kb.csv"
    path.write_text(
        "question,answer,category,keywords,valid_until\n"
        "公租房申请条件,连续缴纳社保满1年,住房保障,公租房、申请,2030-12-31\n"
        "老年卡怎么办,到社区办理,住房保障,老年卡,2030-12-31\n",
        encoding="utf-8",
    )
    assert service.import_entries(db_session, path=path).created == 2
    before = {e.question: (e.category_id, e.keywords, e.valid_until) for e in service.list_entries(db_session)[0]}
    assert all(category is not None and keywords and until for category, keywords, until in before.values())

    path.write_text("question,answer\n公租房申请条件,连续缴纳社保满2年\n老年卡怎么办,到社区办理\n", encoding="utf-8")
    again = service.import_entries(db_session, path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    after = {e.question: (e.category_id, e.keywords, e.valid_until) for e in service.list_entries(db_session)[0]}
    assert after == before
    assert {e.answer for e in service.list_entries(db_session)[0]} == {"连续缴纳社保满2年", "到社区办理"}

    # Only the keywords column, its cell empty on one row: that row's keywords cleared, the rest kept.
    path.write_text(
        "question,answer,keywords\n公租房申请条件,连续缴纳社保满2年,\n老年卡怎么办,到社区办理,老年卡、优待\n",
        encoding="utf-8",
    )
    assert service.import_entries(db_session, path=path).updated == 2
    entries = {e.question: e for e in service.list_entries(db_session)[0]}
    assert entries["公租房申请条件"].keywords == [] and entries["老年卡怎么办"].keywords == ["老年卡", "优待"]
    assert all((e.category_id, e.valid_until) == before[q][0::2] for q, e in entries.items())

    # A new entry from such a file has none of them.
    path.write_text("question,answer\n居住证如何办理,到派出所办理\n", encoding="utf-8")
    assert service.import_entries(db_session, path=path).created == 1
    new = next(e for e in service.list_entries(db_session)[0] if e.question == "居住证如何办理")
    assert (new.category_id, new.keywords, new.valid_until) == (None, [], None)


def test_import_reads_an_excel_workbook(db_session, tmp_path):
    """Entries from a workbook: a date cell for valid_until, a bad row reported by its sheet row."""
    from datetime import datetime

    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["question", "answer", "keywords", "valid_until"])
    sheet.append(["公租房申请条件", "连续缴纳社保满1年", "公租房、申请", datetime(2030, 12, 31)])
    sheet.append(["空答复", None, None, None])
    path = tmp_path / "kb.xlsx"
    workbook.save(path)
    report = service.import_entries(db_session, path=path)
    assert (report.rows, report.created) == (2, 1)
    assert [(r["row"], r["field"]) for r in report.rejected] == [(3, "answer")]
    [entry] = service.list_entries(db_session)[0]
    assert entry.keywords == ["公租房", "申请"] and entry.valid_until is not None
    assert entry.valid_until.year == 2030


def test_seed_from_replies_strips_boilerplate_and_skips_forwarding(db_session, tmp_path):
    path = tmp_path / "f4.csv"
    path.write_text(
        "留言编号,留言用户,留言主题,留言时间,留言详情,答复意见,答复时间\n"
        "101,u1,咨询公积金提取,2019/4/1 9:00:00,离职后公积金怎么提取？,"
        '"网友“UU0081”您好！您的留言已收悉。现将有关情况回复如下：'
        '离职后账户封存满6个月可申请提取。感谢您对我们工作的支持、理解与监督！2019年4月8日",2019/4/8 10:00:00\n'
        "102,u2,路灯不亮,2019/4/2 9:00:00,小区路灯坏了,"
        "网友：您好！您反映的问题已转交市城管局调查核处。2019年4月3日,2019/4/3 9:00:00\n"
        "103,u3,噪音,2019/4/2 9:00:00,夜间施工,网友：您好！留言已收悉,2019/4/3 9:00:00\n",
        encoding="utf-8",
    )
    report = service.seed_from_replies(db_session, path=path)
    assert report.created == 1
    assert report.skipped == {"forwarding_only": 1, "boilerplate_only": 1}
    [entry] = service.list_entries(db_session)[0]
    assert entry.source == "import:f4:101"
    assert entry.answer == "离职后账户封存满6个月可申请提取。"
    assert entry.question.startswith("咨询公积金提取")
    assert service.seed_from_replies(db_session, path=path).unchanged == 1  # idempotent

    # The same messages without their detail: the entry keeps the question its subject and detail made.
    path.write_text(
        "留言编号,留言主题,答复意见\n"
        "101,咨询公积金提取,网友：您好！离职后账户封存满6个月可申请提取，到公积金中心办理。2019年4月8日\n",
        encoding="utf-8",
    )
    assert service.seed_from_replies(db_session, path=path).updated == 1
    [again] = service.list_entries(db_session)[0]
    assert again.question == entry.question and "离职后公积金怎么提取" in again.question
    assert again.answer.startswith("离职后账户封存满6个月可申请提取，到公积金中心办理")


def _consultation(**extra):
    return OrderCreate.model_validate({"channel": "hotline", "appeal_type": "consultation", **extra})


def test_only_entries_that_name_the_matter_are_offered_for_an_instant_answer(db_session):
    card = service.create_entry(
        db_session,
        data=EntryCreate.model_validate(
            {
                "question": "社保卡坏了或者芯片失效怎么办？",
                "answer": "携带身份证到社保服务网点换卡。",
                "keywords": ["社保卡"],
            }
        ),
    )
    # 路灯坏了 shares 坏 and 了 with the card entry: the search lists it, the one-click answer does not.
    assert [s.entry.id for s in service.suggest(db_session, text="路灯坏了")] == [card.id]
    assert service.instant_answer_candidates(db_session, data=_consultation(content="路灯坏了")) == []
    offered = service.instant_answer_candidates(db_session, data=_consultation(content="我的社保卡坏了怎么办"))
    assert [s.entry.id for s in offered] == [card.id] and "社保卡" in offered[0].matched


def test_a_one_click_answer_needs_the_appeal_to_name_the_entrys_matter_not_a_word_any_matter_has(db_session):
    def entry(question: str, keywords: list[str]) -> int:
        data = EntryCreate.model_validate({"question": question, "answer": "按规定办理。", "keywords": keywords})
        return service.create_entry(db_session, data=data).id

    permit = entry("居住证怎么办理？需要什么材料？", ["居住证", "办理", "居住登记"])
    licence = entry("营业执照怎么办理？", ["营业执照", "注册公司", "个体户"])
    estate = entry("小区物业不作为去哪里投诉？", ["物业", "投诉", "物业不作为"])
    id_card = entry("身份证丢了怎么补办？", ["身份证", "补办"])

    def offered(text: str) -> list[int]:
        return [s.entry.id for s in service.instant_answer_candidates(db_session, data=_consultation(content=text))]

    # Sharing 材料, 公司, 小区 or 投诉 says nothing of what the appeal is about: the search may list such an entry,
    # the one-click answer does not offer it.
    assert permit in [s.entry.id for s in service.suggest(db_session, text="社保断缴了怎么补缴？需要什么材料？")]
    assert offered("社保断缴了怎么补缴？需要什么材料？") == []
    assert offered("公司拖欠工资三个月了怎么办？") == []
    assert offered("小区门口路灯不亮了，去哪里投诉？") == []
    # Nor what is done with a matter: every card is 补办 (the 身份证 answer for a lost 社保卡 closed the call wrongly).
    assert id_card not in offered("社保卡丢了怎么补办？")
    # Naming the matter in the entry's own words, even where the segmenter splits them (注册 / 公司), is enough.
    assert offered("我想注册公司，要去哪里办？")[:1] == [licence]
    assert offered("外地人办居住证要带什么？")[:1] == [permit]
    assert offered("我们小区物业不作为，能去哪里反映？")[:1] == [estate]
    assert offered("身份证丢了，怎么补办？")[:1] == [id_card]


def test_instant_answer_closes_the_order_and_records_the_entry(db_session):
    entry = _entry(db_session)
    data = _consultation(content="我离职了，公积金怎么取出来？")
    candidates = service.instant_answer_candidates(db_session, data=data)
    assert candidates and candidates[0].entry.id == entry.id
    complaint = _consultation(content="公积金中心态度差", appeal_type="complaint")
    assert service.instant_answer_candidates(db_session, data=complaint) == []
    order = service.answer_instantly(db_session, data=data, entry_id=entry.id)
    assert order.state == State.CLOSED_RESOLVED and order.instant_answered and order.reply_text == entry.answer
    event = next(e for e in orders.history(db_session, order_id=order.id) if e.action == "instant_answer")
    assert event.payload["kb_entry_id"] == entry.id
    service.deactivate_entry(db_session, entry_id=entry.id)
    with pytest.raises(ValidationFailed):
        service.answer_instantly(db_session, data=_consultation(content="公积金"), entry_id=entry.id)


def test_an_instant_answer_counts_under_its_entrys_category_unless_the_operator_chose_one(db_session):
    from cityhub.workorders.models import Category

    housing = Category(code="KB-C1", name="住房公积金", level=1, path="住房公积金")
    labour = Category(code="KB-C2", name="劳动和社会保障", level=1, path="劳动和社会保障")
    db_session.add_all([housing, labour])
    db_session.flush()
    entry = _entry(db_session, category_id=housing.id)
    ask = "我离职了，公积金怎么取出来？"
    assert service.answer_instantly(db_session, data=_consultation(content=ask), entry_id=entry.id).category_id == (
        housing.id
    )
    chosen = _consultation(content=ask, category_id=labour.id)
    assert service.answer_instantly(db_session, data=chosen, entry_id=entry.id).category_id == labour.id

    # 秒回 later, from the page of a consultation received before: the same, the category set audited.
    waiting, _ = orders.create_order(db_session, data=_consultation(content=ask))
    answered = service.answer_order(db_session, order_id=waiting.id, entry_id=entry.id, answer=None)
    assert answered.state == State.CLOSED_RESOLVED and answered.reply_text == entry.answer
    assert answered.category_id == housing.id
    trail = [(e.action, (e.payload or {}).get("category_id")) for e in orders.history(db_session, order_id=waiting.id)]
    assert trail[-2:] == [("instant_answer", None), ("comment", housing.id)]
    service.deactivate_entry(db_session, entry_id=entry.id)
    other, _ = orders.create_order(db_session, data=_consultation(content=ask))
    with pytest.raises(ValidationFailed):
        service.answer_order(db_session, order_id=other.id, entry_id=entry.id)


def _replied_order(session, reply: str):
    from cityhub.org.models import Unit, UnitTier

    unit = Unit(code=f"KB-{utcnow().timestamp()}", name="住建局", tier=UnitTier.DEPARTMENT)
    session.add(unit)
    session.flush()
    order, _ = orders.create_order(
        session,
        data=OrderCreate(
            channel="web",
            appeal_type="complaint",
            title="A市某小区路灯不亮",
            content="小区路灯坏了一个月，什么时候修？",
        ),
    )
    for action, params in (
        (Action.DISPATCH, {"unit_id": unit.id}),
        (Action.ACCEPT, {}),
        (Action.REPLY, {"text": reply}),
    ):
        orders.act(session, order_id=order.id, action=action, params=params)
    return order


def test_check_reply_flags_weak_replies_for_the_supervisor(db_session):
    weak = _replied_order(db_session, "网友：您好！您反映的问题已转交相关单位调查处理。")
    good = _replied_order(db_session, "经现场核查，该小区路灯线路老化，已于3月12日更换线路并修复，路灯恢复照明。")
    assert service.check_pending_replies(db_session) == {"checked": 2, "weak": 1}
    flagged, _ = service.weak_replies(db_session)
    assert [o.id for o, _ in flagged] == [weak.id]
    comments = [e for e in orders.history(db_session, order_id=weak.id) if e.action == "comment"]
    assert comments and comments[0].payload["weak_reply"] is True
    assert not [e for e in orders.history(db_session, order_id=good.id) if e.action == "comment"]
    check = db_session.get(ReplyCheck, good.id)
    assert check is not None and not check.weak and check.timeliness == 1.0
    assert service.check_pending_replies(db_session) == {"checked": 0, "weak": 0}


def test_a_score_of_an_earlier_scorer_is_scored_again_and_a_weak_reply_flagged_once(db_session, monkeypatch):
    from cityhub.nlp import reply_quality

    weak = _replied_order(db_session, "网友：您好！您反映的问题已转交相关单位调查处理。")
    good = _replied_order(db_session, "经现场核查，该小区路灯线路老化，已于3月12日更换线路并修复，路灯恢复照明。")
    assert service.check_pending_replies(db_session) == {"checked": 2, "weak": 1}
    # stored by the scorer before (an older release's rows have no version at all)
    db_session.get(ReplyCheck, good.id).scorer = None
    db_session.get(ReplyCheck, good.id).overall = 0.0
    db_session.commit()
    assert service.unchecked_replies(db_session) == 1
    assert service.check_pending_replies(db_session) == {"checked": 1, "weak": 0}
    assert db_session.get(ReplyCheck, good.id).overall > reply_quality.WEAK_THRESHOLD
    # an upgrade of the scorer scores every reply under review again; the weak one is not flagged a second time
    monkeypatch.setattr(reply_quality, "SCORER_VERSION", reply_quality.SCORER_VERSION + 1)
    assert service.unchecked_replies(db_session) == 2
    assert service.check_pending_replies(db_session) == {"checked": 2, "weak": 1}
    assert {c.scorer for c in db_session.scalars(select(ReplyCheck))} == {reply_quality.SCORER_VERSION}
    comments = [e for e in orders.history(db_session, order_id=weak.id) if e.action == "comment"]
    assert len(comments) == 1
    assert service.check_pending_replies(db_session) == {"checked": 0, "weak": 0}


def test_api_lists_weak_replies_worst_first_a_page_at_a_time(client):
    from cityhub.db import session_scope

    with session_scope() as s:
        weak = [_replied_order(s, "网友：您好！您反映的问题已转交相关单位调查处理。").id for _ in range(2)]
        _replied_order(s, "经现场核查，该小区路灯线路老化，已于3月12日更换线路并修复，路灯恢复照明。")
        assert service.check_pending_replies(s) == {"checked": 3, "weak": 2}
    first = client.get("/api/v1/kb/weak-replies", params={"limit": 1}).json()
    assert first["has_more"] is True and first["limit"] == 1 and len(first["items"]) == 1
    second = client.get("/api/v1/kb/weak-replies", params={"limit": 1, "offset": 1}).json()
    assert second["has_more"] is False
    listed = [first["items"][0], second["items"][0]]
    assert sorted(i["order_id"] for i in listed) == sorted(weak)
    assert all(i["state"] == "replied" and i["quality"]["weak"] for i in listed)
    assert listed[0]["quality"]["overall"] <= listed[1]["quality"]["overall"]
    closed = client.get("/api/v1/kb/weak-replies", params={"state": "closed_resolved"}).json()
    assert closed["items"] == [] and closed["has_more"] is False
    assert client.get("/api/v1/kb/weak-replies", params={"state": "nonsense"}).status_code == 422


def test_a_reply_changed_by_another_process_meanwhile_is_left_for_the_next_check(app_db, db_session, monkeypatch):
    """Another process (the placing job, a supervisor) moves one order's version between the listing and the
    check: that order is skipped and checked next time; the others are kept, not undone with it."""
    from cityhub.db import session_scope
    from cityhub.workorders.models import Order

    first = _replied_order(db_session, "网友：您好！您反映的问题已转交相关单位调查处理。")
    second = _replied_order(db_session, "网友：您好！您反映的问题已转交相关单位。")
    db_session.commit()
    real = service.check_reply
    raced: list[int] = []

    def racing(session, *, order, force=False):
        if not raced:
            raced.append(order.id)
            with session_scope() as other:  # a write of its own, committed while this check works
                other.get(Order, order.id).version += 1
        return real(session, order=order, force=force)

    monkeypatch.setattr(service, "check_reply", racing)
    assert service.check_pending_replies(db_session) == {"checked": 1, "weak": 1, "skipped": 1}
    assert db_session.get(ReplyCheck, second.id if raced == [first.id] else first.id) is not None
    monkeypatch.setattr(service, "check_reply", real)
    assert service.check_pending_replies(db_session) == {"checked": 1, "weak": 1}  # the next run takes it


@pytest.fixture
def client(admin_client):
    return admin_client


def test_api_entries_suggest_instant_answer_and_reply_quality(client):
    created = client.post("/api/v1/kb/entries", json=GJJ)
    assert created.status_code == 201, created.text
    entry = created.json()
    client.post("/api/v1/kb/entries", json=HUKOU)
    assert client.get(f"/api/v1/kb/entries/{entry['id']}").json()["question"] == GJJ["question"]
    for body, field in (  # text no database stores, wherever it is: 422 naming it, nothing kept
        ({"question": "q1", "answer": "a", "keywords": ["\ud800"]}, "keywords.0"),
        ({"question": "q1", "answer": "a", "keywords": ["公积金", "离\x00职"]}, "keywords.1"),
        ({"question": "q1\x00", "answer": "a"}, "question"),
        ({"question": "q1", "answer": "a\x00"}, "answer"),
    ):
        raw = json.dumps(body)  # ASCII-escaped: the lone surrogate is sent as JSON writes it
        refused = client.post("/api/v1/kb/entries", content=raw, headers={"Content-Type": "application/json"})
        assert refused.status_code == 422 and refused.json()["details"]["field"] == field, refused.text
    assert not [e for e in client.get("/api/v1/kb/entries").json()["items"] if e["question"].startswith("q1")]
    for field in ("keywords", "active", "question"):  # never empty: refused, not an integrity error
        nulled = client.patch(f"/api/v1/kb/entries/{entry['id']}", json={field: None})
        assert nulled.status_code == 422 and nulled.json()["details"]["field"] == field, nulled.text
    patched = client.patch(f"/api/v1/kb/entries/{entry['id']}", json={"keywords": "公积金、离职", "version": 1})
    assert patched.status_code == 200 and patched.json()["keywords"] == ["公积金", "离职"]
    stale = client.patch(f"/api/v1/kb/entries/{entry['id']}", json={"answer": "x", "version": 1})
    assert stale.status_code == 409
    hits = client.post("/api/v1/kb/suggest", json={"text": "离职了公积金怎么取"}).json()
    assert hits[0]["entry"]["id"] == entry["id"] and hits[0]["why"]
    assert client.post("/api/v1/kb/suggest", json={"text": ""}).status_code == 422
    done = client.post(
        "/api/v1/kb/instant-answer",
        json={"order": {"channel": "hotline", "content": "公积金怎么取"}, "entry_id": entry["id"]},
    )
    assert done.status_code == 201, done.text
    order = done.json()["order"]
    assert order["state"] == "closed_resolved" and order["instant_answered"]
    # An appeal received before (same channel and external id) is not claimed as answered instantly.
    first = {"channel": "hotline", "content": "居住证怎么续签", "external_id": "ia-2"}
    assert client.post("/api/v1/orders", json=first).status_code == 201
    again = client.post("/api/v1/kb/instant-answer", json={"order": first, "entry_id": entry["id"]})
    assert again.status_code == 409 and "was not answered instantly" in again.json()["message"]
    # 秒回 is for consultations on every path: a complaint goes to a unit.
    complaint = {"channel": "hotline", "appeal_type": "complaint", "content": "公积金中心窗口态度差"}
    refused = client.post("/api/v1/kb/instant-answer", json={"order": complaint, "entry_id": entry["id"]})
    assert refused.status_code == 422 and "only consultations" in refused.json()["message"]
    filed = client.post("/api/v1/orders", json=complaint).json()
    assert "instant_answer" not in client.get(f"/api/v1/orders/{filed['id']}/actions").json()
    closing = client.post(f"/api/v1/orders/{filed['id']}/actions/instant_answer", json={"answer": "已知悉"})
    assert closing.status_code == 409 and "only consultations are answered instantly" in closing.json()["message"]
    assert client.get(f"/api/v1/orders/{filed['id']}").json()["state"] == "received"
    # The life-cycle action names the entry it answers from: its answer and category taken, the entry checked.
    routed = client.post(f"/api/v1/orders/{filed['id']}/actions/urge", json={"kb_entry_id": entry["id"]})
    assert routed.status_code == 422 and "only by instant_answer" in routed.json()["message"]
    asked = client.post("/api/v1/orders", json={"channel": "web", "content": "离职后公积金怎么提取"}).json()
    later = client.post(f"/api/v1/orders/{asked['id']}/actions/instant_answer", json={"kb_entry_id": entry["id"]})
    assert later.status_code == 200, later.text
    assert later.json()["state"] == "closed_resolved" and later.json()["reply_text"] == GJJ["answer"]
    trail = client.get(f"/api/v1/orders/{asked['id']}/events").json()
    assert [e["payload"].get("kb_entry_id") for e in trail if e["action"] == "instant_answer"] == [entry["id"]]
    quality = client.get(f"/api/v1/orders/{order['id']}/reply-quality")
    assert quality.status_code == 200 and 0 <= quality.json()["overall"] <= 1
    # Read again, the stored score comes back; POST scores the reply anew (a GET never writes one over).
    assert (
        client.get(f"/api/v1/orders/{order['id']}/reply-quality").json()["checked_at"] == quality.json()["checked_at"]
    )
    rescored = client.post(f"/api/v1/orders/{order['id']}/reply-quality")
    assert rescored.status_code == 200 and rescored.json()["checked_at"] > quality.json()["checked_at"]
    assert client.post("/api/v1/orders/987654/reply-quality").status_code == 404
    assert client.get("/api/v1/kb/weak-replies").status_code == 200
    assert client.delete(f"/api/v1/kb/entries/{entry['id']}").json()["active"] is False
    waiting = client.post("/api/v1/orders", json={"channel": "web", "content": "公积金提取要带什么"}).json()
    retired = client.post(f"/api/v1/orders/{waiting['id']}/actions/instant_answer", json={"kb_entry_id": entry["id"]})
    assert retired.status_code == 422 and "inactive or expired" in retired.json()["message"]
    assert client.get(f"/api/v1/orders/{waiting['id']}").json()["state"] == "received"
    assert [e["id"] for e in client.get("/api/v1/kb/entries").json()["items"]] != [entry["id"]]
    assert client.get("/api/v1/kb/entries/987654").status_code == 404
    anonymous = client.post("/api/v1/kb/suggest", json={"text": "公积金"}, headers={"Authorization": ""})
    assert anonymous.status_code == 401


def _bearer(client, role, username):
    """Another caller of the same app: a user of ``role`` with a bearer token."""
    from fastapi.testclient import TestClient

    from cityhub.auth.service import create_token
    from cityhub.db import session_scope
    from cityhub.org.models import Unit, User

    with session_scope() as s:
        unit_id = None if role == Role.CITIZEN else s.scalars(select(Unit.id).limit(1)).one()
        user = User(username=username, full_name=username, role=role, unit_id=unit_id)
        s.add(user)
        s.flush()
        _, token = create_token(s, user_id=user.id, name="test")
    other = TestClient(client.app, raise_server_exceptions=False)
    other.headers["Authorization"] = f"Bearer {token}"
    return other


def test_deactivated_entries_are_seen_only_by_those_who_keep_the_knowledge_base(client):
    kept = client.post("/api/v1/kb/entries", json={**GJJ, "public": True}).json()  # a citizen reads public ones
    gone = client.post("/api/v1/kb/entries", json=HUKOU).json()
    assert client.delete(f"/api/v1/kb/entries/{gone['id']}").json()["active"] is False
    citizen = _bearer(client, Role.CITIZEN, "kb-citizen")
    handler = _bearer(client, Role.HANDLER, "kb-handler")
    operator = _bearer(client, Role.OPERATOR, "kb-operator")  # operators hold kb:manage

    def listed(caller, query):
        response = caller.get(f"/api/v1/kb/entries{query}")
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["items"]]

    for caller in (citizen, handler):
        assert listed(caller, "?active=false") == []
        assert listed(caller, "") == [kept["id"]]
        missing = caller.get(f"/api/v1/kb/entries/{gone['id']}")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert caller.get(f"/api/v1/kb/entries/{kept['id']}").status_code == 200
    for keeper in (client, operator):
        assert listed(keeper, "?active=false") == [gone["id"]]
        assert keeper.get(f"/api/v1/kb/entries/{gone['id']}").json()["active"] is False


def test_a_citizen_reads_over_the_api_only_the_entries_fit_for_the_public(client):
    """A citizen with an API token read every entry, those seeded from replies to other citizens too (naming people
    and places): now the public ones alone, as on the appeal form; staff read all of them."""
    private = client.post("/api/v1/kb/entries", json=GJJ).json()
    public = client.post("/api/v1/kb/entries", json={**HUKOU, "public": True}).json()
    citizen = _bearer(client, Role.CITIZEN, "kb-public-citizen")
    handler = _bearer(client, Role.HANDLER, "kb-public-handler")
    assert [e["id"] for e in citizen.get("/api/v1/kb/entries").json()["items"]] == [public["id"]]
    assert citizen.get(f"/api/v1/kb/entries/{private['id']}").status_code == 404
    assert citizen.get(f"/api/v1/kb/entries/{public['id']}").json()["public"] is True
    assert citizen.post("/api/v1/kb/suggest", json={"text": "离职了公积金怎么取"}).json() == []
    hits = citizen.post("/api/v1/kb/suggest", json={"text": "孩子出生了怎么上户口"}).json()
    assert [h["entry"]["id"] for h in hits] == [public["id"]]
    assert {e["id"] for e in handler.get("/api/v1/kb/entries").json()["items"]} == {private["id"], public["id"]}
    assert (
        handler.post("/api/v1/kb/suggest", json={"text": "离职了公积金怎么取"}).json()[0]["entry"]["id"]
        == private["id"]
    )


def test_cli_add_refuses_a_bad_entry_with_one_line_naming_the_field(app_db, cli_run):
    """``kb add`` with a blank question or an over-long answer: one line naming the field, no traceback."""
    for args, field in (
        (["--question", "", "--answer", "凭身份证办理"], "question"),
        (["--question", "公积金怎么提取", "--answer", "   "], "answer"),
        (["--question", "公积金怎么提取", "--answer", "长" * 20001], "answer"),
    ):
        code, out, err = cli_run("kb", "add", *args)
        assert code != 0 and out == ""
        assert err.startswith(f"error: {field}: ") and err.count("\n") == 1, err
    code, out, err = cli_run("kb", "add", "--question", "公积金怎么提取", "--answer", "凭身份证办理")
    assert code == 0 and json.loads(out)["version"] == 1, err
