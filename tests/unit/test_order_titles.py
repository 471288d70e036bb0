"""The title an appeal gets from its content when it gives none (intake, the order import, a split-off part)."""

from __future__ import annotations

import pytest

from cityhub.workorders.models import Channel
from cityhub.workorders.schemas import TITLE_FROM_CONTENT_CHARS, OrderCreate, title_from_content


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("路灯不亮。", "路灯不亮"),  # short: whole, without its stop
        ("  井盖\n缺失  ", "井盖 缺失"),  # on one line
        # long: up to the last sentence end within the limit, else the last clause end
        (
            "小区楼下餐馆油烟排放严重，噪音扰民，晚上睡不着。希望相关部门尽快处理",
            "小区楼下餐馆油烟排放严重，噪音扰民，晚上睡不着",
        ),
        (
            "我家楼下的路灯坏了一周了，晚上很黑，老人出门不方便，请尽快修理",
            "我家楼下的路灯坏了一周了，晚上很黑，老人出门不方便",
        ),
        # no stop at all: cut at the limit, marked as cut
        (
            "工地夜间施工噪音很大并且渣土车在运输过程中沿途撒漏泥土施工时掉下来的东西砸坏车辆",
            "工地夜间施工噪音很大并且渣土车在运输过程中沿途撒漏泥土施工时…",
        ),
        # a stop too early would leave a fragment: cut at the limit instead
        (
            "噪音！工地夜间施工噪音很大并且渣土车在运输过程中沿途撒漏泥土掉下来的东西砸坏车辆",
            "噪音！工地夜间施工噪音很大并且渣土车在运输过程中沿途撒漏泥土…",
        ),
        ("!!!", "!!!"),
    ],
)
def test_a_title_from_content_ends_where_a_sentence_or_clause_does(content: str, title: str) -> None:
    assert title_from_content(content) == title
    assert len(title_from_content(content)) <= TITLE_FROM_CONTENT_CHARS + 1


def test_an_appeal_without_a_title_is_titled_from_its_content_and_one_with_a_title_keeps_it() -> None:
    content = "我家楼下的路灯坏了一周了，晚上很黑，老人出门不方便，请尽快修理"
    assert (
        OrderCreate(channel=Channel.WEB, content=content).title == "我家楼下的路灯坏了一周了，晚上很黑，老人出门不方便"
    )
    assert OrderCreate(channel=Channel.WEB, title="路灯坏了", content=content).title == "路灯坏了"
