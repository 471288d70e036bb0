"""The danger words of a caller's account (涉及人身财产安全, ``intake.service.safety_words``): said, denied before the
word (没有煤气味), or said to be over after it (煤气味没有了, 火已经灭了) — the intake desk's 特急 suggestion."""

from __future__ import annotations

import pytest

from cityhub.intake.service import safety_words

# Over: the danger the word names is said to be gone right after it — no 特急 suggested for it.
OVER = {
    "煤气味没有了，想问一下燃气公司什么时候来检查": [],
    "昨晚楼道有煤气味，今天煤气味已经没有了": [],
    "昨晚楼道有煤气味，今天已经没有了": [],
    "煤气味没了，就是想让物业查一下管道": [],
    "煤气味都没了": [],
    "煤气味已经散了，开窗通风了": [],
    "刚才有煤气味，现在已经散了": [],
    "煤气味消失了，请燃气公司上门看看": [],
    "已经没有煤气味了": [],
    "楼下饭店着火了，火已经灭了，想投诉他们消防通道堵塞": [],
    "着火了，火灭了，现在都是烟味": [],
    "小区垃圾房起火，现在明火已经扑灭了": [],
    "昨天的火灾已被扑灭，楼道墙面熏黑了没人清理": [],
    "楼道漏电已经修好了，但电箱门还是开着": [],
    "家里漏气，已经修好了，燃气公司收费不合理": [],
    "电梯里有人被困，人已经救出来了，要求查电梯维保": [],
    "燃气味现在基本消散了": [],
}

# Still there: the danger stands (or the caller asks, or it came back) — 特急 suggested.
STILL = {
    "煤气味越来越大，老人在家": ["煤气味"],
    "厨房着火了": ["着火"],
    "着火了，火还没灭": ["着火"],
    "煤气味还没散，一直很浓": ["煤气味"],
    "煤气味没有散，请尽快来人": ["煤气味"],
    "着火了，请尽快扑灭": ["着火"],
    "煤气味没了吗？我刚回家闻不出来": ["煤气味"],
    "煤气味散了又来了": ["煤气味"],
    "火灭了，又烧起来了": [],  # no danger word: 火 alone is none
    "起火了，火势很大": ["起火"],
    "漏气了，一直在响": ["漏气"],
    "电梯里有人被困，已经半个小时了": ["被困"],
    "着火了，已经烧了半小时": ["着火"],
    "煤气味好大": ["煤气味"],
    "燃气泄漏了好几天没人管": ["燃气泄漏"],
    "煤气味没有了，但是厨房着火了": ["着火"],
    "刚才煤气味很大，现在煤气味没有了": ["煤气味"],  # said once as a danger: still pointed out, the operator judges
}


@pytest.mark.parametrize("text", sorted(OVER))
def test_a_danger_said_to_be_over_is_not_pointed_out(text: str) -> None:
    assert safety_words(text) == OVER[text]


@pytest.mark.parametrize("text", sorted(STILL))
def test_a_danger_still_there_is_pointed_out(text: str) -> None:
    assert safety_words(text) == STILL[text]


def test_over_in_the_content_after_the_word_in_the_title() -> None:
    assert safety_words("煤气味", "煤气味已经散了") == []
    assert safety_words("着火", "火还没灭") == ["着火"]
