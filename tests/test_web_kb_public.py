"""常见问题解答: a citizen typing a question on the web appeal form reads the knowledge base's public answers, in their
words, before they file it — never an entry kept for staff, never a score or the desk's words — and may say one solved
their problem instead of filing; the operators' 秒回 still offers every entry; the keepers mark entries public on
知识库.

The organisation and accounts are the small world of ``web_helpers`` (cit: a citizen, op: an operator, sup: a
supervisor keeping the knowledge base).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cityhub.db import session_scope
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from cityhub.workorders.models import Order
from web_helpers import hidden, intake_form, login, small_world

PRIVATE_ANSWER = "张先生您好，您在云景路12号丢失的社保卡已为您挂失，请到景泰街道社保窗口补办。"
# Long enough to be folded after its first sentences.
PUBLIC_ANSWER = (
    "社保卡丢失后请先挂失：拨打12333或通过手机银行办理临时挂失。"
    "补卡可携带本人身份证到社保卡服务网点或合作银行网点申请，也可在线申请后选择邮寄。"
    "新卡启用后原卡作废，医保个人账户余额自动转入新卡。"
    "具体网点和办理时限以当地人社部门公布为准，如有疑问可拨打12345热线咨询，工作人员会为您解答。"
    "补卡期间看病购药可使用电子社保卡或医保电子凭证结算，不影响医保待遇。"
)


@pytest.fixture
def entries(app_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    small_world(tmp_path, monkeypatch)
    with session_scope() as s:
        private = kb.create_entry(
            s,
            data=EntryCreate(question="社保卡丢了怎么补办", answer=PRIVATE_ANSWER, keywords=["社保卡", "补办"]),
        )
        public = kb.create_entry(
            s,
            data=EntryCreate(
                question="社保卡丢失后如何补卡", answer=PUBLIC_ANSWER, keywords=["社保卡", "补卡", "挂失"], public=True
            ),
        )
        return {"private": private.id, "public": public.id}


ASKED = {"title": "社保卡丢了", "content": "我的社保卡丢了怎么补办"}


def _orders() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def _faq(html: str) -> str:
    found = re.search(r'<section data-testid="faq".*?</section>', html, flags=re.S)
    return found.group(0) if found else ""


def test_a_citizen_reads_the_public_answers_in_their_words_and_never_a_staff_entry(entries: dict[str, int]) -> None:
    citizen = login("cit")
    panel = citizen.post("/intake/assist", data=intake_form(citizen, appeal_type="", **ASKED)).text
    faq = _faq(panel)
    assert "常见问题解答" in faq and "这些答复也许能解决您的问题" in faq
    assert "社保卡丢失后如何补卡" in faq
    # the whole answer: its first sentences shown, the rest folded under 展开全文
    lead, rest = re.search(r'<p class="pre">(.*?)</p>.*?<p class="pre">(.*?)</p>', faq, flags=re.S).groups()  # type: ignore[union-attr]
    assert "展开全文" in faq and lead + rest == PUBLIC_ANSWER and lead.endswith("。")
    assert "如果这些答复没有解决您的问题，请继续填写并提交" in faq
    assert f'name="solved_entry_id" value="{entries["public"]}"' in faq
    # never the entry kept for staff, nor a score, matched words or the desk's words
    assert "社保卡丢了怎么补办" not in panel and PRIVATE_ANSWER not in panel
    assert "提交前请先看看</h2>" in panel  # the panel's heading in their words too
    for staff_words in ("秒回", "选用", "相似度", "匹配词", "知识库", "智能辅助", "instant_entry_id"):
        assert staff_words not in panel, staff_words
    assert "常见问题解答 1 条" in panel  # the screen reader's one-line summary
    # The same without JavaScript: 查询建议 posts the form and the page comes back with the answers.
    page = citizen.post(
        "/intake", data=intake_form(citizen, appeal_type="consultation", preview="1", **ASKED), follow_redirects=False
    )
    assert page.status_code == 200 and "社保卡丢失后如何补卡" in _faq(page.text)
    # A complaint asks the centre to act: no answers offered.
    complaint = citizen.post("/intake/assist", data=intake_form(citizen, appeal_type="complaint", **ASKED)).text
    assert 'data-testid="faq"' not in complaint and "社保卡丢失后如何补卡" not in complaint
    # Staff are unaffected: the desk's 秒回 offers every entry, public or not, and no citizen's section.
    operator = login("op")
    desk = operator.post("/intake/assist", data=intake_form(operator, appeal_type="consultation", **ASKED)).text
    assert (
        f'data-testid="kb-answer-{entries["private"]}"' in desk
        and f'data-testid="kb-answer-{entries["public"]}"' in desk
    )
    assert 'data-testid="faq"' not in desk and "solved_entry_id" not in desk


def test_this_solved_my_problem_files_nothing_and_counts_the_answer(entries: dict[str, int]) -> None:
    citizen = login("cit")
    said = citizen.post(
        "/intake",
        data=intake_form(citizen, appeal_type="", solved_entry_id=str(entries["public"]), **ASKED),
        follow_redirects=False,
    )
    assert said.status_code == 303 and said.headers["location"] == "/orders"  # 我的诉求
    assert "很高兴答复解决了您的问题" in citizen.get("/orders").text
    assert _orders() == 0
    with session_scope() as s:
        assert kb.require_entry(s, entry_id=entries["public"]).self_served == 1
    # A staff entry is no citizen's answer; an operator says nothing of the kind.
    refused = citizen.post(
        "/intake",
        data=intake_form(citizen, appeal_type="", solved_entry_id=str(entries["private"]), **ASKED),
        follow_redirects=False,
    )
    operator = login("op")
    desk = operator.post(
        "/intake", data=intake_form(operator, solved_entry_id=str(entries["public"]), **ASKED), follow_redirects=False
    )
    assert refused.status_code == 404 and desk.status_code == 403
    with session_scope() as s:
        assert kb.require_entry(s, entry_id=entries["private"]).self_served == 0
        assert kb.require_entry(s, entry_id=entries["public"]).self_served == 1
    assert _orders() == 0
    # The keepers read how often it served on 知识库.
    listed = login("sup").get("/kb").text
    assert "市民自助 1 次" in listed


def test_the_keepers_mark_an_entry_public_and_find_the_public_ones(entries: dict[str, int]) -> None:
    keeper = login("sup")
    page = keeper.get("/kb").text
    assert 'name="public"' in page and "市民填写咨询时可以看到这条问答" in page
    rows = re.findall(r'data-entry="(\d+)"(.*?)</tr>', page, flags=re.S)
    assert [int(i) for i, row in rows if 'data-testid="kb-public-badge"' in row] == [entries["public"]]
    only = keeper.get("/kb", params={"public": "1"}).text
    assert f'data-entry="{entries["public"]}"' in only and f'data-entry="{entries["private"]}"' not in only
    made = keeper.post(
        "/kb",
        data={"csrf_token": hidden(page), "question": "狗证怎么办", "answer": "到派出所办理。", "public": "1"},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    edit = keeper.get(f"/kb/{entries['private']}").text
    form: dict[str, Any] = {
        "csrf_token": hidden(edit),
        "question": "社保卡丢了怎么补办",
        "answer": PRIVATE_ANSWER,
        "version": "1",
        "active": "1",
        "public": "1",
    }
    assert keeper.post(f"/kb/{entries['private']}", data=form, follow_redirects=False).status_code == 303
    with session_scope() as s:
        public = {e.question: e.public for e in kb.list_entries(s)[0]}
    assert public == {"狗证怎么办": True, "社保卡丢失后如何补卡": True, "社保卡丢了怎么补办": True}
