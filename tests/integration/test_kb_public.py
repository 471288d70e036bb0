"""Knowledge entries fit for the public (向市民公开) on both backends: the flag through the service, the configuration
log, the API, the command line and the imports; the answers a citizen is offered (常见问题解答) only among the public
entries, ranked as the operators' 秒回 ranks theirs, which still see every entry; 这解决了我的问题 counted."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cityhub import auditlog
from cityhub.errors import NotFound
from cityhub.knowledge import service
from cityhub.knowledge.schemas import EntryCreate, EntryUpdate
from cityhub.workorders.schemas import OrderCreate

# A reply to one citizen (names a person and a place) and the general answer to the same question.
PRIVATE = {
    "question": "社保卡丢了怎么补办",
    "answer": "张先生您好，您在云景路12号丢失的社保卡已为您挂失，请到景泰街道社保窗口补办。",
    "keywords": "社保卡,补办,丢失",
}
PUBLIC = {
    "question": "社保卡丢失后如何补卡",
    "answer": "社保卡丢失请先拨打12333挂失，再携带身份证到社保卡服务网点或合作银行补卡。",
    "keywords": "社保卡,补卡,挂失",
    "public": True,
}


def _asked(appeal_type: str = "consultation", text: str = "我的社保卡丢了怎么补办") -> OrderCreate:
    return OrderCreate.model_validate({"channel": "web", "appeal_type": appeal_type, "content": text})


def test_a_citizen_is_offered_only_public_entries_ranked_among_them_staff_every_entry(db_session):
    private = service.create_entry(db_session, data=EntryCreate.model_validate(PRIVATE))
    public = service.create_entry(db_session, data=EntryCreate.model_validate(PUBLIC))
    assert (private.public, public.public) == (False, True)  # not public unless said

    # The operators' 秒回 ranks both, the private entry (its question the citizen's words) first.
    staff = service.instant_answer_candidates(db_session, data=_asked(), limit=3)
    assert [s.entry.id for s in staff][:2] == [private.id, public.id]
    # A citizen: the public one alone, even with room for one only (ranked among the public entries, not filtered
    # after: the private entry takes no place).
    assert [s.entry.id for s in service.self_help_answers(db_session, data=_asked(), limit=1)] == [public.id]
    assert [s.entry.id for s in service.suggest(db_session, text="社保卡丢了", public_only=True)] == [public.id]
    # A plea for help too; a complaint, a report, a suggestion or praise asks the centre to act: no answers.
    assert [s.entry.id for s in service.self_help_answers(db_session, data=_asked("help"))] == [public.id]
    for kind in ("complaint", "report", "suggestion", "praise"):
        assert service.self_help_answers(db_session, data=_asked(kind)) == [], kind
    # A public entry retired is offered to nobody; made private, to staff alone.
    service.update_entry(db_session, entry_id=public.id, data=EntryUpdate(public=False))
    assert service.self_help_answers(db_session, data=_asked()) == []
    assert public.id in [s.entry.id for s in service.instant_answer_candidates(db_session, data=_asked())]
    service.update_entry(db_session, entry_id=private.id, data=EntryUpdate(public=True))
    service.deactivate_entry(db_session, entry_id=private.id)
    assert service.self_help_answers(db_session, data=_asked()) == []


def test_the_flag_is_logged_listed_and_a_citizens_solved_problem_counted(db_session):
    entry = service.create_entry(db_session, data=EntryCreate.model_validate(PRIVATE))
    service.update_entry(db_session, entry_id=entry.id, data=EntryUpdate(public=True, version=1))
    log = list(db_session.scalars(select(auditlog.LogEntry).order_by(auditlog.LogEntry.id)))
    assert log[0].changes["public"] == [None, False] and log[1].changes == {"public": [False, True]}
    assert [e.id for e in service.list_entries(db_session, public=True)[0]] == [entry.id]
    assert service.list_entries(db_session, public=False)[0] == []

    version = entry.version
    assert service.count_self_served(db_session, entry_id=entry.id).self_served == 1
    assert service.count_self_served(db_session, entry_id=entry.id).self_served == 2
    # Not an edit: the keepers' version guard and the configuration log are untouched.
    assert entry.version == version
    assert len(list(db_session.scalars(select(auditlog.LogEntry)))) == 2
    service.update_entry(db_session, entry_id=entry.id, data=EntryUpdate(public=False, version=version))
    with pytest.raises(NotFound):  # a staff entry is no citizen's answer
        service.count_self_served(db_session, entry_id=entry.id)


def test_import_reads_the_public_column_and_the_seed_from_replies_is_never_public(db_session, tmp_path):
    path = tmp_path / "kb.csv"
    path.write_text(
        "question,answer,public\n"
        "公租房申请条件,连续缴纳社保满1年,是\n"
        "老年卡怎么办,到社区办理,否\n"
        "居住证怎么办,到来穗站办理,1\n"
        "户口迁移,到派出所办理,0\n"
        "医保转移,到医保窗口办理,TRUE\n"
        "新生儿入户,到派出所办理,false\n"
        "狗证怎么办,到派出所办理,\n"
        "公积金提取,到公积金中心办理,公开\n",
        encoding="utf-8",
    )
    report = service.import_entries(db_session, path=path)
    assert report.created == 7
    assert [(r["row"], r["field"]) for r in report.rejected] == [(9, "public")]
    assert "公开" in report.rejected[0]["reason"]
    public = {e.question: e.public for e in service.list_entries(db_session)[0]}
    assert public == {
        "公租房申请条件": True,
        "老年卡怎么办": False,
        "居住证怎么办": True,
        "户口迁移": False,
        "医保转移": True,
        "新生儿入户": False,
        "狗证怎么办": False,
    }
    # A file without the column leaves the flag; an empty cell of one it has makes the entry staff-only.
    path.write_text("question,answer\n公租房申请条件,连续缴纳社保满2年\n", encoding="utf-8")
    assert service.import_entries(db_session, path=path).updated == 1
    path.write_text("question,answer,public\n公租房申请条件,连续缴纳社保满2年,\n", encoding="utf-8")
    assert service.import_entries(db_session, path=path).updated == 1
    assert not service.list_entries(db_session, q="公租房")[0][0].public

    seed = tmp_path / "f4.csv"
    seed.write_text(
        "留言编号,留言主题,留言详情,答复意见\n"
        "101,咨询公积金提取,离职后公积金怎么提取？,离职后账户封存满6个月可申请提取，携带身份证到公积金中心办理。\n",
        encoding="utf-8",
    )
    assert service.seed_from_replies(db_session, path=seed).created == 1
    seeded = service.get_entry_by_source(db_session, source="import:f4:101")
    assert seeded is not None and seeded.public is False


def test_the_demos_illustrative_entries_are_public():
    """The demo's entries are written for everyone (its seed imports them: ``demo.extras``), unlike a reply's."""
    from cityhub.demo.extras import KB_CSV
    from cityhub.org.service import read_table, yes_or_no

    table = read_table(KB_CSV)
    assert len(table.rows) > 30 and all(yes_or_no(values["public"], blank=False) for _, values in table.rows)


def test_api_and_command_line_set_and_read_the_flag(admin_client, app_db, cli_run, tmp_path):
    client = admin_client
    plain = client.post("/api/v1/kb/entries", json={"question": "老年卡怎么办", "answer": "到社区办理。"}).json()
    assert (plain["public"], plain["self_served"]) == (False, 0)
    made = client.post(
        "/api/v1/kb/entries", json={"question": "居住证怎么办", "answer": "到来穗站办理。", "public": True}
    )
    assert made.status_code == 201 and made.json()["public"] is True
    patched = client.patch(f"/api/v1/kb/entries/{plain['id']}", json={"public": True, "version": 1})
    assert patched.status_code == 200 and patched.json()["public"] is True
    refused = client.patch(f"/api/v1/kb/entries/{plain['id']}", json={"public": None})
    assert refused.status_code == 422 and "public" in refused.text
    assert client.get(f"/api/v1/kb/entries/{plain['id']}").json()["public"] is True

    code, out, err = cli_run("kb", "add", "--question", "医保怎么转移", "--answer", "到医保窗口办理。", "--public")
    assert code == 0, err
    shown = json.loads(out)["id"]
    code, out, err = cli_run("kb", "add", "--question", "张先生的医保", "--answer", "已为张先生办理。")
    assert code == 0, err
    staff_only = json.loads(out)["id"]
    code, out, _ = cli_run("kb", "list", "--public")
    listed = {int(line.split("\t")[0]) for line in out.splitlines()}
    assert code == 0 and shown in listed and staff_only not in listed
    assert client.get(f"/api/v1/kb/entries/{staff_only}").json()["public"] is False
    # 预览: what a citizen asking reads (the public entries naming its matter), and what the desk's 秒回 ranks
    code, out, err = cli_run("kb", "suggest", "医保怎么转移", "--public")
    assert code == 0 and f"#{shown} " in out and f"#{staff_only} " not in out, err
    code, out, _ = cli_run("kb", "suggest", "张先生的医保", "--public")
    assert code == 0 and f"#{staff_only} " not in out
    code, out, _ = cli_run("kb", "suggest", "张先生的医保")
    assert code == 0 and f"#{staff_only} " in out

    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer,public\n狗证怎么办,到派出所办理,是\n门牌怎么办,到社区办理,maybe\n", encoding="utf-8"
    )
    code, out, err = cli_run("kb", "import", str(path))
    assert code == 0 and "rejected: faq.csv: row 3: public: " in err and "maybe" in err
    assert json.loads(out)["created"] == 1
    assert [e["public"] for e in client.get("/api/v1/kb/entries", params={"q": "狗证"}).json()["items"]] == [True]
