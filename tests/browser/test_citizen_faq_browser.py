"""常见问题解答 on a phone (390 × 844): a citizen typing 社保卡丢了怎么补办 on 我要反映 reads the public answer as they
type — the page not widened, a long answer folded and unfolded, never the entry kept for staff — and 这解决了我的问题
takes them home saying nothing was submitted.

Needs Debian's ``chromium`` at /usr/bin/chromium and ``playwright`` (the dev extra); skipped with the reason
otherwise. SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cityhub.db import session_scope
from cityhub.knowledge import service as kb
from cityhub.knowledge.schemas import EntryCreate
from cityhub.workorders.models import Order
from process_helpers import BROWSER_SIDE, PHONES, served_app
from web_helpers import build_world, sign_in, use_world_env

pytestmark = pytest.mark.sqlite_only(BROWSER_SIDE)

PUBLIC_ANSWER = (
    "社保卡丢失后请先挂失：拨打12333或通过手机银行办理临时挂失。"
    "补卡可携带本人身份证到社保卡服务网点或合作银行网点申请，也可在线申请后选择邮寄。"
    "新卡启用后原卡作废，医保个人账户余额自动转入新卡。"
    "具体网点和办理时限以当地人社部门公布为准，如有疑问可拨打12345热线咨询。"
    "补卡期间看病购药可使用电子社保卡或医保电子凭证结算，不影响医保待遇。"
)


@pytest.fixture
def server(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = use_world_env(app_db, tmp_path, monkeypatch)
    with session_scope() as s:
        build_world(s)
        kb.create_entry(
            s,
            data=EntryCreate(
                question="社保卡丢了怎么补办",
                answer="张先生您好，您在云景路12号丢失的社保卡已挂失，请到景泰街道社保窗口补办。",
                keywords=["社保卡", "补办"],
            ),
        )
        kb.create_entry(
            s,
            data=EntryCreate(
                question="社保卡丢失后如何补卡", answer=PUBLIC_ANSWER, keywords=["社保卡", "补卡", "挂失"], public=True
            ),
        )
    with served_app(env, tmp_path / "serve.log") as base:
        yield base


def test_a_citizen_on_a_phone_reads_the_public_answer_while_typing_and_may_file_nothing(
    server: str, browser: Any
) -> None:
    phone = PHONES[0]
    page = browser.new_context(locale="zh-CN", viewport=phone, is_mobile=True, has_touch=True).new_page()
    page.set_default_timeout(20_000)
    sign_in(page, f"{server}/login", "cit")
    page.goto(f"{server}/intake")
    page.fill("#f-content", "我的社保卡丢了怎么补办")
    faq = page.locator('[data-testid="faq"]')
    faq.wait_for(state="attached")
    # below the whole form on a phone: a link under the question says so and leads there
    skip = page.get_by_test_id("skip-faq")
    skip.wait_for(state="visible")
    # reached by Tab, it is outlined as every focused control is (was the faint default)
    skip.focus()
    outline = skip.evaluate(
        "e => e.matches(':focus-visible') && getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth"
    )
    assert outline == "solid 3px", outline
    skip.click()
    assert faq.is_visible() and faq.evaluate("e => e.getBoundingClientRect().top < innerHeight")
    assert "常见问题解答" in faq.inner_text() and "社保卡丢失后如何补卡" in faq.inner_text()
    assert "张先生" not in page.content() and "秒回" not in faq.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
    box = faq.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= phone["width"]
    # a long answer: its first sentences shown, the rest a tap away
    more = faq.locator("details.faq-more")
    rest = more.locator("p")
    assert not rest.is_visible()
    more.locator("summary").click()
    assert rest.is_visible() and "不影响医保待遇" in rest.inner_text()
    solved = faq.get_by_role("button", name="这解决了我的问题")
    solved_box = solved.bounding_box()
    assert solved_box is not None and solved_box["x"] + solved_box["width"] <= phone["width"]
    solved.click()
    page.wait_for_url(f"{server}/orders")  # 我的诉求
    assert "很高兴答复解决了您的问题" in page.content()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0
