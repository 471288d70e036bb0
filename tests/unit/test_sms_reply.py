"""The reading of a citizen's reply to the answer's text message (短信回访, ``workorders.sms.read_reply``): the digit
at its start or the words anywhere, full-width forms, the words after it as the reason, order numbers named."""

from __future__ import annotations

import pytest

from cityhub.workorders.sms import Rating, read_reply

NUMBER = "BY20261202-000012"


@pytest.mark.parametrize(
    ("text", "rating", "reason"),
    [
        ("1", Rating.SATISFIED, None),
        ("１", Rating.SATISFIED, None),
        ("1满意", Rating.SATISFIED, None),
        (" 满意。", Rating.SATISFIED, None),
        ("非常满意，谢谢！", Rating.SATISFIED, "谢谢"),
        ("2", Rating.BASICALLY_SATISFIED, None),
        ("基本满意", Rating.BASICALLY_SATISFIED, None),
        ("评价：２ 处理有点慢", Rating.BASICALLY_SATISFIED, "处理有点慢"),
        ("3", Rating.UNSATISFIED, None),
        ("３ 路灯晚上还是不亮", Rating.UNSATISFIED, "路灯晚上还是不亮"),
        ("3不满意路灯没修", Rating.UNSATISFIED, "路灯没修"),
        ("3，还没修好2周了", Rating.UNSATISFIED, "还没修好2周了"),
        ("回复3：没人来", Rating.UNSATISFIED, "没人来"),
        ("不满意，还没修好", Rating.UNSATISFIED, "还没修好"),
        ("对处理结果不太满意 原因：太慢", Rating.UNSATISFIED, "太慢"),
        ("不是很满意", Rating.UNSATISFIED, None),
        ("Ok 3 still broken", None, None),  # a digit not at the start is no rating
        ("1 不满意", None, None),  # which one?
        ("3号楼路灯不亮", None, None),  # a house number
        ("2天了还没修", None, None),  # a count
        ("3.5", None, None),
        ("你好", None, None),
        ("", None, None),
    ],
)
def test_a_reply_is_read(text: str, rating: Rating | None, reason: str | None) -> None:
    reply = read_reply(text)
    assert (reply.rating, reply.reason) == (rating, reason)


def test_the_order_numbers_a_reply_names_are_taken_out_before_the_rating_is_read() -> None:
    named = read_reply(f"工单{NUMBER.lower()}：3 还是不亮", [NUMBER, "BY20261203-000001"])
    assert (named.rating, named.reason, named.named, named.unknown) == (Rating.UNSATISFIED, "还是不亮", (NUMBER,), ())
    other = read_reply("BY20990101-000001 1", [NUMBER])
    assert (other.rating, other.named, other.unknown) == (Rating.SATISFIED, (), ("BY20990101-000001",))


@pytest.mark.parametrize(
    "text", [f"诉求{NUMBER} 3 还是不亮", f"诉求编号：{NUMBER} 3 还是不亮", f"诉求号{NUMBER}，3 还是不亮"]
)
def test_a_number_named_as_the_text_messages_name_it_is_read(text: str) -> None:
    """The text messages ask for the 诉求编号 (they said 工单编号): a reply naming it so is read as one naming 工单 was;
    a 诉求 further on is the citizen's own words."""
    named = read_reply(text, [NUMBER])
    assert (named.rating, named.reason, named.named) == (Rating.UNSATISFIED, "还是不亮", (NUMBER,))
    assert read_reply("3 我的诉求还是没解决").reason == "我的诉求还是没解决"


def test_basically_satisfied_is_a_satisfied_callback() -> None:
    assert [r.satisfied for r in Rating] == [True, True, False]
    assert [r.words for r in Rating] == ["满意", "基本满意", "不满意"]
