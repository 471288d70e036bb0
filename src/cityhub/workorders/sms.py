"""短信回访: the citizen rates an answer by replying to the text message that told them of it — 1 满意, 2 基本满意,
3 不满意, and after the digit, in their words, what is still wrong.

This module is the wording and the reading of such a reply, nothing else (no database): :data:`RATING_PROMPT`, the
sentence the answer's text message ends with (``notify.service.citizen_text``), and :func:`read_reply`, the one
reading of what comes back, which :func:`cityhub.workorders.tracking.rate_by_sms` turns into the callback (回访)
the progress lookup records.

The callback records ``satisfied`` true or false (the assessment's 满意率 counts the trues): 基本满意 is a satisfied
rating — as 12345 centres count 满意 and 基本满意 together —, kept apart only in the event's ``rating``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum


class Rating(StrEnum):
    """The three answers a text message offers (the event's ``rating``)."""

    SATISFIED = "satisfied"  # 1 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 2 基本满意
    UNSATISFIED = "unsatisfied"  # 3 不满意

    @property
    def satisfied(self) -> bool:
        """The callback's ``satisfied``: 满意 and 基本满意 alike."""
        return self != Rating.UNSATISFIED

    @property
    def words(self) -> str:
        return _WORDS[self]


_WORDS = {Rating.SATISFIED: "满意", Rating.BASICALLY_SATISFIED: "基本满意", Rating.UNSATISFIED: "不满意"}
_DIGITS = {"1": Rating.SATISFIED, "2": Rating.BASICALLY_SATISFIED, "3": Rating.UNSATISFIED}

# The answers a text message offers, and how the answer's text message asks for one (a reply that cannot be read, or
# does not say which order, is asked again with the same choices).
CHOICES = "1满意，2基本满意，3不满意（请附原因）"
RATING_PROMPT = f"评价请直接回复本短信：{CHOICES}。"
# The reason a 不满意 without a word of what is wrong is recorded with: the callback needs one from a citizen
# (``workorders.service.act``), and a text message is one reply — asking again would lose most such ratings.
NO_REASON = "短信回复不满意，未说明原因"

# A rating in words, the longer forms first; a negation before 满意 is 不满意 (不太满意, 不是很满意 …).
_RATING_WORDS = re.compile(
    r"(?P<un>(?:很|非常|十分|特别)?不(?:太|大|是很|是太|怎么|很|够)?满意)"
    r"|(?P<basic>基本满意|比较满意|还算满意|基本上满意)"
    r"|(?P<yes>(?:很|非常|十分|特别)?满意)"
)
# A digit of the rating: at the start of the reply, after a word or two saying it is one (回复、评价、我选 …).
_LEAD = r"(?:回复|评价|我选|选择|选|答)"
# Not a digit of a number, an amount or a count (3.5, 3号楼, 2天).
_DIGIT = re.compile(
    rf"^[\W_]*(?:{_LEAD}[\W_]*)*(?P<digit>[123])(?!\d|[.,]\d|[号楼栋层室单月日天点时次个年周分元块件期路街巷])"
)
# What an order number looks like (BY20261202-000012): one the reply names that is not among the phone's orders.
_NUMBER_LIKE = re.compile(r"[A-Z]{1,10}\d{8}-\d{1,10}", re.IGNORECASE)
# Filler around the reason: spaces, punctuation, the words 原因 / 理由 before it.
_EDGES = re.compile(r"^[\W_]*(?:(?:原因|理由)[\W_]*)?|[\W_]+$")


@dataclass(frozen=True)
class Reply:
    """What a citizen's text message says: the rating (None: none could be read), their words after it (``reason``;
    None when there are none), and the order numbers it names — of those it was read against (``named``, as they
    are written there) and any other that looks like one (``unknown``)."""

    rating: Rating | None
    reason: str | None
    named: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def read_reply(text: str, numbers: Collection[str] = ()) -> Reply:
    """Read a citizen's reply to the answer's text message: 1, 2 or 3 (full-width too) at its start, or the words
    满意 / 基本满意 / 不满意 anywhere, whichever comes first; the words after it are the reason. ``numbers``: the order
    numbers the reply may name (the phone's orders), found in any case and taken out before the rating is read. A
    digit followed at once by the words of another rating (``1 不满意``) is read as no rating: which one was meant?"""
    plain = unicodedata.normalize("NFKC", text or "")
    named = []
    for number in sorted({n.upper() for n in numbers if n}, key=len, reverse=True):
        plain, found = re.subn(re.escape(number), " ", plain, flags=re.IGNORECASE)
        if found:
            named.append(number)
    unknown = tuple(dict.fromkeys(n.upper() for n in _NUMBER_LIKE.findall(plain)))
    plain = _NUMBER_LIKE.sub(" ", plain)
    # the number's name before it, as the texts say it (诉求编号, 诉求 at the start) or as a citizen may (工单号); a
    # 诉求 further on is their words (我的诉求没解决)
    plain = re.sub(r"(?:诉求编号|诉求号|工单编号|工单号|工单|编号|^[\W_]*诉求)[:：]?", " ", plain)
    rating, rest = _rating(plain)
    reason = _EDGES.sub("", rest).strip() if rating is not None else ""
    return Reply(rating, reason or None, tuple(named), unknown)


def _rating(plain: str) -> tuple[Rating | None, str]:
    """The rating ``plain`` gives and the text after it."""
    digit = _DIGIT.match(plain)
    words = _RATING_WORDS.search(plain)
    if digit is not None and (words is None or words.start() >= digit.end()):
        rating = _DIGITS[digit["digit"]]
        rest = plain[digit.end() :]
        said = _RATING_WORDS.match(rest.lstrip(" ,.:;!?，。：；！？、"))
        if said is not None:
            if _worded(said) != rating:
                return None, ""
            rest = rest.lstrip(" ,.:;!?，。：；！？、")[said.end() :]
        return rating, rest
    if words is not None:
        return _worded(words), plain[words.end() :]
    return None, ""


def _worded(found: re.Match[str]) -> Rating:
    if found["un"]:
        return Rating.UNSATISFIED
    return Rating.BASICALLY_SATISFIED if found["basic"] else Rating.SATISFIED
