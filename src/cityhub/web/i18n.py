"""Message catalogues of the web UI (zh-CN first, en) and the ``t()`` the templates call.

Catalogues are flat JSON files in ``locales/`` (``key → text`` with ``{name}`` placeholders; ``{name|one|other}`` is
the word that agrees with the count ``name`` — ``{n} {n|order|orders}`` reads "1 order", "2 orders", as English
needs and Chinese does not; ``static/map.js`` reads the same form). A parameter that counts things — named in
:data:`COUNT_PARAMS`, a whole number — is written with the language's digit grouping (``num.group``: 3,006 orders),
as the ``count`` filter writes a figure standing alone; other parameters — years, ids, codes, order numbers, limits
read from a message — as they are. A key missing from
a catalogue falls back to zh-CN, then to the key itself, so a forgotten translation shows up on the page instead
of breaking it. The language comes from the ``cityhub_lang`` cookie (the user's switch), else zh-CN — or, when
``CITYHUB_UI_LANGUAGE_FROM_BROWSER`` is on, the browser's Accept-Language before the zh-CN default.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from cityhub.masking import MARKS

if TYPE_CHECKING:
    from cityhub.localnames import EnglishNames

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "zh-CN"
LANGUAGES = ("zh-CN", "en")
ENGLISH = "en"
LANGUAGE_COOKIE = "cityhub_lang"
# {name|one|other}: the word agreeing with the count ``name`` (one for 1, other for any other number).
PLURAL = re.compile(r"\{(\w+)\|([^{}|]*)\|([^{}|]*)\}")
_LOCALES = Path(__file__).parent / "locales"
# The parameters of the catalogues' messages that are counts of things (orders, rows, alarms, callers …), in every
# message that names them: written grouped (:func:`count_text`) when whole numbers. A year (``year``), an id
# (``id``), an order's ``number``, a code, a limit or a duration is never named so; a count given as text (a limit
# a refusal's words hold) stays as it is.
COUNT_PARAMS = frozenset(
    {"n", "count", "total", "m", "hits", "shown", "auto", "overdue", "orders", "size", "duplicates", "similar", "kb"}
    | {"calls", "errors", "matched", "universe", "merged", "cancelled"}
    # The 专报's (``analytics.reports.LABELS``): a finding's orders now, in the previous period and the increase.
    | {"now", "earlier", "delta"}
)


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    """The messages of ``lang`` (an unknown language gets the default's)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    data: dict[str, str] = json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def translate(lang: str, key: str, default: str | None = None, **params: Any) -> str:
    """The text of ``key`` in ``lang`` with ``params`` filled in."""
    text = catalogue(lang).get(key)
    if text is None and lang != DEFAULT_LANGUAGE:
        text = catalogue(DEFAULT_LANGUAGE).get(key)
    if text is None:
        text = default if default is not None else key
    if params:
        try:
            return filled(lang, text, params)
        except (KeyError, IndexError, ValueError):
            log.warning("message %r of %s does not fit its parameters %s", key, lang, sorted(params))
    return text


def filled(lang: str, text: str, params: Mapping[str, Any]) -> str:
    """``text`` (a message of ``lang``'s) with ``params`` filled in: its words agreeing with their counts
    (:func:`agreeing`), each count :data:`COUNT_PARAMS` names grouped as ``lang`` writes it (:func:`count_text`).
    The one filling of the web UI's messages (:func:`translate`) and the 专报's (``analytics.reports.say``); raises
    KeyError, IndexError or ValueError when ``text`` does not fit ``params``."""
    text = agreeing(text, params)
    params = {k: count_text(lang, v) if k in COUNT_PARAMS else v for k, v in params.items()}
    if any(isinstance(value, Markup) for value in params.values()):
        # A parameter that is markup already (a time kept whole by the `when` filter): the message is escaped,
        # the markup kept.
        text = Markup(escape(text))
    return text.format_map(params)


def count_text(lang: str, value: Any) -> Any:
    """A count as ``lang`` writes it, its digits grouped by thousands with the catalogue's ``num.group`` (3,006);
    anything but a whole number (a bool, text, a fraction) as it is."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    return f"{value:,}".replace(",", translate(lang, "num.group"))


def decimal_text(lang: str, value: Any, digits: int = 1) -> Any:
    """A figure with ``digits`` decimals (a daily average, 1234.5) grouped as :func:`count_text` groups a count
    (1,234.5); anything but a number (None, text, a bool) as it is."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    return f"{value:,.{digits}f}".replace(",", translate(lang, "num.group"))


def agreeing(text: str, params: Mapping[str, Any]) -> str:
    """``text`` with each ``{name|one|other}`` replaced by the word agreeing with ``params[name]``."""

    def word(match: re.Match[str]) -> str:
        name, one, other = match.groups()
        return one if str(params.get(name)) == "1" else other

    return PLURAL.sub(word, text) if "|" in text else text


_MASK_MARK = re.compile("|".join(re.escape(mark) for mark in MARKS))


def word_marks(lang: str, value: Any) -> Any:
    """``value`` with the marks masking wrote in place of what it hides ([电话], [门牌号] …) worded in ``lang``
    (``mask.*``): scrubbed text keeps them as written in the database and the API; a page or a report shows them in
    its reader's language. Anything but text as it is."""
    if not isinstance(value, str) or "[" not in value or lang == DEFAULT_LANGUAGE:
        return value
    worded = _MASK_MARK.sub(lambda m: translate(lang, f"mask.{MARKS[m.group(0)]}"), value)
    return Markup(worded) if isinstance(value, Markup) else worded


def citizen_key(key: str) -> str:
    """The key a citizen reads for ``key``: ``<key>.citizen`` where the catalogue words it for them (诉求 where staff
    read 工单, "appeal" for "order"), else ``key`` itself."""
    theirs = f"{key}.citizen"
    return theirs if theirs in catalogue(DEFAULT_LANGUAGE) else key


class Translator:
    """``t(key, **params)`` bound to one language; ``t.label(kind, value)`` names an enum value; ``t.unit_name`` and
    ``t.category_name`` say a unit's and a category's name in it. ``names``: where an English reader's names come
    from (``web.support.translator``: the request's database session), called once, when a name is first asked."""

    def __init__(self, lang: str, names: Callable[[], EnglishNames | None] | None = None) -> None:
        self.lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        self._names_from = names
        self._names: EnglishNames | None = None

    def __call__(self, key: str, default: str | None = None, **params: Any) -> str:
        return translate(self.lang, key, default, **params)

    def theirs(self, key: str, citizen: bool, **params: Any) -> str:
        """``t(key)``, to the appealing citizen (``citizen``) in their own words where the catalogue has them
        (:func:`citizen_key`): their 诉求 {number} where staff read 工单 {number}."""
        return translate(self.lang, citizen_key(key) if citizen else key, **params)

    # The language's punctuation around names and lists, for the templates (zh-CN "原因：…", "甲、乙", "单位（街道）";
    # en "Reason: …", "A, B", "unit (street)"): t.colon, t.sep, t.lp and t.rp.
    @property
    def colon(self) -> str:
        return translate(self.lang, "punct.colon")

    @property
    def sep(self) -> str:
        return translate(self.lang, "punct.sep")

    @property
    def lp(self) -> str:
        return translate(self.lang, "punct.lp")

    @property
    def rp(self) -> str:
        return translate(self.lang, "punct.rp")

    def count(self, value: Any) -> Any:
        """A figure standing alone (a dashboard's tile, the one map's indicator) as :func:`count_text` writes it."""
        return count_text(self.lang, value)

    def listed(self, text: Any) -> Any:
        """A list the product itself wrote with 、 between its items — a hot topic's key phrases (限值、报警、责任), the
        keywords a routing rule matched — with this language's separator between them (限值, 报警, 责任); anything
        but text as it is."""
        if not isinstance(text, str) or "、" not in text:
            return text
        listed = self.sep.join(text.split("、"))
        return Markup(listed) if isinstance(text, Markup) else listed

    def label(self, kind: str, value: Any) -> str:
        """``t.label("state", "received")`` → 已受理; an unknown value is shown as it is."""
        if value is None:
            return "—"
        raw = getattr(value, "value", value)
        return translate(self.lang, f"{kind}.{raw}", str(raw))

    def state_name(self, state: Any, citizen: bool = False) -> str:
        """An order's state as its reader is told it: staff the workflow's word (已回访, 挂起); the appealing
        citizen, where the staff's word means nothing to them, their own (``citizen_state.*``: 已评价, 暂缓办理,
        已合并办理) — the state itself as the citizen reads it (``State.as_citizen_reads``) is the caller's."""
        if state is None:
            return "—"
        staff = self.label("state", state)
        return translate(self.lang, f"citizen_state.{getattr(state, 'value', state)}", staff) if citizen else staff

    def _english(self) -> EnglishNames | None:
        if self.lang != ENGLISH:
            return None
        if self._names is None and self._names_from is not None:
            self._names, self._names_from = self._names_from(), None  # asked once: None stays None
        return self._names

    def unit_name(self, name: Any) -> Any:
        """A unit's name (or short name) as this reader reads it: in English its English name where one is set
        (:mod:`cityhub.localnames`), else the Chinese name; anything but text (a missing name) as it is."""
        names = self._english() if isinstance(name, str) and name else None
        return names.unit(name) if names is not None else name

    def place_names(self, places: Any) -> list[Any]:
        """The places a hot topic names (its streets and communities by their Chinese names, the roads and estates
        its appeals name) as this reader reads them: the units' in English where :meth:`unit_name` has one, the rest
        as written; a text as one place, nothing (None) an empty list."""
        if isinstance(places, str):
            return [self.unit_name(places)]
        return [self.unit_name(place) for place in places or ()]

    def category_name(self, name_or_path: Any) -> Any:
        """A category's name or path (城乡建设/住房保障) as this reader reads it: in English each part by its English
        name where one is set (:mod:`cityhub.localnames`), else in Chinese; anything but text as it is."""
        names = self._english() if isinstance(name_or_path, str) and name_or_path else None
        return names.category(name_or_path) if names is not None else name_or_path

    def named(self, kind: str) -> dict[str, str]:
        """Every value of ``kind`` the catalogues name, with its name in this language (``metric`` → {"depth":
        "积水深度", …}): for a field that takes codes beyond an enum's, offered by name."""
        prefix = f"{kind}."
        codes = {k[len(prefix) :] for k in catalogue(DEFAULT_LANGUAGE) if k.startswith(prefix)}
        return {code: self.label(kind, code) for code in sorted(codes)}


def negotiate(cookie: str | None, accept_language: str | None, *, from_browser: bool = True) -> str:
    """The UI language: the cookie's choice, else (``from_browser``) the best Accept-Language match, else zh-CN."""
    if cookie in LANGUAGES:
        return cookie
    if not from_browser:
        return DEFAULT_LANGUAGE
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = "zh-CN" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang is None or quality <= 0:
            continue
        candidate = (quality, -position, lang)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best else DEFAULT_LANGUAGE
