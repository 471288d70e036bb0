"""Masking and anonymising of citizens' personal data: the one place that says how an order is shown to whoever
need not see who appealed — masked read models (leaders, assisting and other units), webhooks, the public Open311
feed and the data-sharing API.

- :func:`mask_name`, :func:`mask_phone`: the personal fields, masked (张**, 138****5678).
- :func:`scrub_text`: free text (titles, contents, replies) with resident ID numbers, e-mail addresses, mobile and
  landline numbers, building/unit/room numbers, the given known values (the citizen's name and phone) and full
  names the text introduces (我叫王小明，/ 联系人：张伟 / 业主高红晓，) replaced by placeholders. Matching runs on a
  normalised copy of the text — NFKC (full-width digits and punctuation) with Chinese numerals read as digits
  (一三九…, 幺, 〇/零) — so ``１３９１２３４５６７８``, ``139.1234.5678`` and ``一三九八七六五四三二一`` are all phone
  numbers; what is replaced is cut from the text as written, so the rest keeps its own characters. Road names and
  street names stay, so the text still says where.
- :func:`scrub_values`: every string of a JSON value (an order's ``attributes``) through :func:`scrub_text`.
- :func:`coarsen_address`: an address down to its road or compound; :func:`coarsen_coordinate`: two decimals.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from cityhub.jsonvalues import map_strings


def mask_phone(phone: str | None) -> str | None:
    """138****5678 for mobile numbers; keep only the last 4 digits of anything else."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def mask_name(name: str | None) -> str | None:
    """张** for Chinese names (surname kept), J*** for others."""
    if not name:
        return name
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


# --- free text ------------------------------------------------------------------------------------------------

# Chinese numerals as people read phone numbers out (幺 for 1), and the financial forms; 十 and 百 are not digits
# of a phone number but do count in house numbers (十二栋), where the patterns take them as they are.
_CHINESE_DIGITS = {
    **dict.fromkeys("〇○零", "0"),
    **dict.fromkeys("一幺壹", "1"),
    **dict.fromkeys("二贰", "2"),
    **dict.fromkeys("三叁", "3"),
    **dict.fromkeys("四肆", "4"),
    **dict.fromkeys("五伍", "5"),
    **dict.fromkeys("六陆", "6"),
    **dict.fromkeys("七柒", "7"),
    **dict.fromkeys("八捌", "8"),
    **dict.fromkeys("九玖", "9"),
}
# What people put between the digits of a number (after NFKC: full-width forms are ASCII already).
_SEP = r"[ \t.\-_·•/—–]"
_ID_NUMBER = re.compile(
    rf"(?<![0-9A-Za-z])(?:[0-9]{{6}}{_SEP}?[0-9]{{8}}{_SEP}?[0-9]{{3}}[0-9Xx]|[0-9]{{15}})(?![0-9A-Za-z])"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MOBILE = re.compile(
    rf"(?<![0-9])(?:\(?(?:\+|00)?86\)?{_SEP}{{0,2}})?1{_SEP}{{0,2}}[3-9](?:{_SEP}{{0,2}}[0-9]){{9}}(?![0-9])"
)
# A landline: local number of 7 or 8 digits (in one piece or 3/4 + 4), with or without the area code; service
# numbers 400/800. A number glued to letters is something else (an order number such as BY20261122-000123).
_LANDLINE = re.compile(
    rf"(?<![0-9A-Za-z])(?:(?:\(0[0-9]{{2,3}}\)|0[0-9]{{2,3}}){_SEP}{{0,2}})?[2-9][0-9]{{2,3}}{_SEP}?[0-9]{{4}}"
    rf"(?![0-9])|(?<![0-9A-Za-z])[48]00{_SEP}?[0-9]{{3}}{_SEP}?[0-9]{{4}}(?![0-9])"
)
# The head of a mobile or ID number cut off by the end of the text (a title is the content's first 30 characters).
_CUT_NUMBER = re.compile(rf"(?<![0-9A-Za-z])(?:1{_SEP}?[3-9](?:{_SEP}?[0-9]){{3,8}}|[0-9]{{10,17}})$")
# House numbers: a road's door number (云景路12号), buildings, units, rooms and floors after them (5栋1203室,
# 3单元502, 12号楼, A座). A floor alone (三楼) is kept, and so is a 号 that is a day (10月3号) or a metro line.
_N = r"[0-9十百]{1,6}"
_NUM = rf"(?:[A-Za-z]?{_N}(?:-{_N})?[A-Za-z]?|[A-Za-z])"
_NEXT = rf"{_NUM}\s*(?:号楼|号院|号房|号|栋|幢|座|单元|室|房|户|层|楼)"
_ROAD_NUMBER = (
    rf"(?<=[路街道巷弄里村东西南北中段])\s*{_N}(?:-{_N})?\s*号"
    rf"(?![线院楼]|\s*(?:[早晚]|[上下中]午|凌晨|那天|当天|开始|以来))"
    rf"|(?<![0-9A-Za-z十百]){_N}(?:-{_N})?号(?={_SEP}?{_NEXT})"
)
_FIRST = rf"(?<![0-9A-Za-z十百]){_NUM}\s*(?:号楼|号院|号房|栋|幢|座(?![桥山城位])|单元|室)"
_HOUSE = re.compile(
    rf"(?:(?:{_ROAD_NUMBER})(?:{_SEP}?{_NEXT})*|{_FIRST}(?:{_SEP}?{_NEXT})*)"
    rf"(?:{_SEP}?{_NUM}(?![0-9十百]|\s*[年月日号元岁个次天人米分秒点时]))?"
)
# A person's full name where the text introduces one (我叫王小明，/ 本人李雪梅反映 / 联系人：张伟): a common surname and
# one or two characters, between a cue and a stop (punctuation, the end, or words that follow a name — 电话, 反映 …).
# Names a text does not introduce are not found (no name recognition): 王先生 stays, as it names no one in full.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭"
    "陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐"
    "易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管"
    "柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬"
    "边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_DOUBLE_SURNAMES = "欧阳|司马|上官|诸葛|东方|皇甫|令狐|慕容|尉迟|长孙|夏侯|公孙|司徒|端木|独孤|南宫|宇文|闻人"
_NAME_CUE = (
    r"(?:我叫|我是|本人(?:是|叫)?|联系人(?:是|为)?|姓名(?:是|为)?|名叫|来电人|投诉人|反映人|报案人|举报人|申请人|当事人"
    r"|求助人|诉求人)\s*[:：]?\s*"
)
_NAME_STOP = r"(?=[\s，,。.、；;：:！!？?（()）\]】]|$|电话|手机|联系|反映|投诉|来电|身份证|住在|家住|现住|称|表示)"
_FULL_NAME = rf"(?P<name>(?:{_DOUBLE_SURNAMES}|[{_SURNAMES}])[\u4e00-\u9fff]{{1,2}}?)"
_NAMED = re.compile(rf"{_NAME_CUE}{_FULL_NAME}{_NAME_STOP}")
# Who someone is, often followed by their name (业主高红晓，村民刘胤，) but as often by an ordinary word
# (居民安全，家长和学生，业主房款，): what follows counts as a name only where the word segmenter does not read it as
# words (:func:`_reads_as_name`). With the cues 举报人, 申请人, 当事人 … and the stops 称, 表示 added, the board's 9,943
# messages with replies or topics have 367 names hidden instead of 230 (a few ordinary words among them: 房内).
# Third parties by their relation or role (邻居, 老婆, 孩子, 老板, 法定代表人 …) as well: on the board's 21,961 distinct
# titles, messages and replies, 475 names hidden instead of 362; of the 110 more, one read as a name and was not
# (妇女儿童, now ruled out), and a surname with 总 is a title (肖总). Where the name runs straight into what the person
# did (_ROLE_STOP): 484, the one word among the 10 more (钱财, which the segmenter tags as a name) ruled out.
_ROLE_CUE = (
    r"(?:市民|居民|村民|业主|住户|租户|家长|邻居|房东|店主|老板|经理|负责人|法人|法定代表人|包工头|工头|同事|朋友|亲戚"
    r"|老公|老婆|丈夫|妻子|爱人|配偶|儿子|(?<!妇)女儿|父亲|母亲|爸爸|妈妈|孩子)\s*[:：]?\s*"
)
# After such a word the name may run straight into what the person did (物业经理陈国强不处理, 房东李明拒不退押金).
_ROLE_STOP = rf"(?:{_NAME_STOP}|(?=不|拒|说|一直|多次|经常|要求|私自|擅自|强行|却|也|还|已经|没有|未))"
_ROLE_NAMED = re.compile(rf"{_ROLE_CUE}{_FULL_NAME}{_ROLE_STOP}")
# Parts of speech (jieba's tags) that no part of a name has: conjunctions, prepositions, adverbs, pronouns, particles,
# verbs and adjectives (家长和学生, 居民向政府, 业主时的, 业主麻烦).
_NOT_IN_NAMES = ("c", "p", "d", "r", "u", "v", "a")
# A surname with a title names no one in full (王先生, 李女士), nor does an already anonymised name (吴某).
_TITLES = ("先生", "女士", "小姐", "某", "总")
# What follows a cue and starts like a surname but is no name: what someone is (我是车主，我是江西人，) or what is
# theirs (本人成绩，本人申请，). On the board's 10,460 real messages the rule hides 230 names; some words here are
# what it took for names there before.
_NOT_NAMES = frozenset(
    {
        "党员",
        "司机",
        "商户",
        "商家",
        "房东",
        "房客",
        "车主",
        "车友",
        "业主",
        "单亲",
        "高龄",
        "高三",
        "高中生",
        "安保",
        "保安",
        "路人",
        "文员",
        "农民",
        "农户",
        "农民工",
        "管理员",
        "华侨",
        "宗亲",
        "平民",
        "师范生",
        "应届生",
        "成绩",
        "申请",
        "费用",
        "党费",
        "房屋",
        "于今年",
        "向您",
        "解释",
        "申诉",
        "曾经",
        "曾在",
        "于是",
        "于年",
        "孙子",
        "谢谢",
        "许可",
        "钱财",
    }
)
# What identifies a person by itself (an ID number, an e-mail address, a phone number); a house number does not.
# An account someone is reached by, where the text names it (微信号：abc_123, QQ 12345678): the account goes, the word
# naming it stays. WeChat ids are 6–20 letters, digits, - and _ starting with a letter; QQ numbers 5–11 digits.
_ACCOUNT = re.compile(
    r"(?:微信号?|[vVwW][xX]|[qQ]{2}号?|Q号)\s*(?:是|为|[:：])?\s*"
    r"(?P<account>(?<![-_A-Za-z0-9])(?:[A-Za-z][-_A-Za-z0-9]{5,19}|[0-9]{5,11}))(?![-_A-Za-z0-9])"
)
_PERSON_PATTERNS = (
    (_ID_NUMBER, "[身份证号]"),
    (_EMAIL, "[邮箱]"),
    (_MOBILE, "[电话]"),
    (_LANDLINE, "[电话]"),
    (_CUT_NUMBER, "[电话]"),
)
_PATTERNS = (*_PERSON_PATTERNS, (_HOUSE, "[门牌号]"))
KNOWN = "[已隐去]"
# Every mark the scrubbing writes in place of what it hides, by the name the web UI's catalogue words it under
# (``mask.<name>``): the stored and API text keeps the marks as written; a page shows them in the reader's language.
MARKS = {
    "[身份证号]": "id_number",
    "[邮箱]": "email",
    "[电话]": "phone",
    "[门牌号]": "house_number",
    KNOWN: "withheld",
    "[账号]": "account",
}


@lru_cache(maxsize=8192)
def _char_form(ch: str) -> str:
    return _CHINESE_DIGITS.get(ch) or unicodedata.normalize("NFKC", ch)


def _matching_form(text: str) -> tuple[str, list[int]]:
    """The text as the patterns read it, and for each of its characters the index of the one it came from."""
    if text.isascii():
        return text, list(range(len(text)))
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        form = ch if ch.isascii() else _char_form(ch)
        parts.append(form)
        origin.extend([i] * len(form))
    return "".join(parts), origin


def names_a_person(text: str | None) -> bool:
    """Whether ``text`` holds an ID number, e-mail address, phone number or a named WeChat/QQ account as
    :func:`scrub_text` recognises them (a search for one asks who filed which appeal)."""
    if not text:
        return False
    form = _matching_form(text)[0]
    return any(pattern.search(form) for pattern, _label in _PERSON_PATTERNS) or bool(_ACCOUNT.search(form))


# A number of a building, entrance, flat or house (12栋, 3单元, 1203房, 123号; not a metro line, 3号线) in a search.
_DOOR_IN_QUERY = re.compile(r"[0-9]+\s*(?:号(?!线)|栋|幢|座|单元|室|房)")


def names_a_door(text: str | None) -> bool:
    """Whether a search ``text`` holds a house, building or flat number: what :func:`scrub_text` hides as
    ``[门牌号]`` (a search for one asks whose door it is)."""
    return bool(text) and bool(_DOOR_IN_QUERY.search(_matching_form(text or "")[0]))


def _plainly_no_name(name: str) -> bool:
    """A word of ``_NOT_NAMES``, or where someone is from (江西人, 石井人)."""
    return name in _NOT_NAMES or name.endswith("人")


def _reads_as_name(name: str, after: str) -> bool:
    """Whether ``name``, found after a word saying who someone is (业主, 村民 …) and followed by ``after``, is a
    person's name as the word segmenter reads it: not an ordinary word of two or more characters (安全, 房款 — a
    name it knows, 陈云, is tagged ``nr…``), no piece of it a part of speech names lack (和, 向, 的), not a title."""
    from cityhub.nlp.text import tag

    if _plainly_no_name(name) or name.endswith(_TITLES):
        return False
    pieces = tag(name + after)
    first, first_tag = pieces[0]
    if len(first) >= 2 and name.startswith(first) and not first_tag.startswith("nr"):
        return False
    read = 0
    for piece, piece_tag in pieces:
        if read >= len(name):
            break
        if piece_tag.startswith(_NOT_IN_NAMES):
            return False
        read += len(piece)
    return True


def scrub_text(text: str | None, *, known: Iterable[str | None] = ()) -> str | None:
    """Replace ID numbers, e-mails, phone numbers, house numbers and the given known values (name, phone) with
    placeholders; see the module's docstring for how numbers are recognised."""
    if not text:
        return text
    form, origin = _matching_form(text)
    spans: list[tuple[int, int, str]] = []

    def take(start: int, end: int, label: str) -> None:
        nonlocal form
        if end > start:
            spans.append((origin[start], origin[end - 1] + 1, label))
            form = form[:start] + "\x00" * (end - start) + form[end:]  # later patterns do not see it again

    for value in known:
        needle = _matching_form(value.strip())[0] if value else ""
        if len(needle) >= 2:
            at = form.find(needle)
            while at >= 0:
                take(at, at + len(needle), KNOWN)
                at = form.find(needle, at + len(needle))
    for match in list(_NAMED.finditer(form)):
        if not _plainly_no_name(match.group("name")):
            take(match.start("name"), match.end("name"), KNOWN)
    for match in list(_ROLE_NAMED.finditer(form)):
        if _reads_as_name(match.group("name"), form[match.end("name") : match.end("name") + 1]):
            take(match.start("name"), match.end("name"), KNOWN)
    for match in list(_ACCOUNT.finditer(form)):
        take(match.start("account"), match.end("account"), "[账号]")
    for pattern, label in _PATTERNS:
        for match in list(pattern.finditer(form)):
            take(match.start(), match.end(), label)
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for start, end, label in sorted(spans):
        if start < position:  # characters NFKC expanded can make neighbours overlap in the original
            continue
        out.append(text[position:start])
        out.append(label)
        position = end
    out.append(text[position:])
    return "".join(out)


# --- places ---------------------------------------------------------------------------------------------------

# An address is cut before its first house-number-like digits (12号, 3栋, 501室 …).
_HOUSE_NUMBER = re.compile(r"[\d０-９一二三四五六七八九十百]+\s*(?:号|栋|幢|座|单元|室|楼|层|弄|巷|#|-|之)|\d")
COORDINATE_DECIMALS = 2  # about 1 km: enough for maps of districts, not to find a door


def scrub_values(value: Any, *, known: Iterable[str | None] = ()) -> Any:
    """A JSON value (an order's channel ``attributes``: an Open311 client's e-mail, an imported file's extra
    columns) with every string in it through :func:`scrub_text`."""
    return map_strings(value, lambda text: scrub_text(text, known=known))


def coarsen_address(address: str | None) -> str | None:
    """Keep an address down to its road or compound: ``同和街蟾蜍石东路12号3栋`` → ``同和街蟾蜍石东路``."""
    if not address:
        return None
    match = _HOUSE_NUMBER.search(address)
    head = address[: match.start()] if match else address
    head = head.rstrip(" ,，、-—(（")
    return head or None


def coarsen_coordinate(value: float | None) -> float | None:
    """A latitude or longitude rounded to :data:`COORDINATE_DECIMALS` decimals."""
    return round(value, COORDINATE_DECIMALS) if value is not None else None
