"""Reply quality (答复质量): relevance, completeness, explanation of the basis, timeliness.

A pure, rule-based scorer with no trained weights, so that it carries over to replies it never saw:

- **relevance** (相关性): how much of the appeal's key terms and places the reply's *substance* takes up.
  The substance is the reply without greetings, acknowledgements (留言已收悉), forwarding notes (已转交…),
  courtesy sign-offs and dates, and without the appeal's title quoted back verbatim — echoing the title
  does not show that the matter was dealt with.
- **completeness** (完整性): the appeal is split into its points (questions, 是否/能否/怎么/何时/多少…,
  requests, enumerated items); each point counts as addressed when its own key terms recur in the reply.

In both, a matter named in other words counts as named (水浸 ↔ 积水, 违章搭建 ↔ 违法建设, 遛狗 ↔ 养犬:
:data:`MATTERS`, groups of words of one everyday matter), and the appeal's *context* — where and when (places: the
lexicon's place mentions and rjieba's ``ns``; times and durations: 一个多星期, 三天, 每天晚上, rjieba's ``t`` and
``m``) — counts when the reply repeats it and is never demanded: a reply that refers back to it (该处路灯已修复,
该路段, 上述问题) answers the matter as well as one restating 松柏东街 and 一个多星期.
- **basis** (可解释性): citations of policy and law (《…》, 第X条, 根据/依据/按照…规定, 〔2019〕12号) and facts
  (figures with units, dates, named departments, actions taken such as 经核实 / 已责令 / 已完成, and any other
  action told as done: 已补装井盖并设置警示标志, 积水已退 — not acknowledging or forwarding the message).
- **timeliness** (及时性): working days between the appeal and the reply, on the Chinese working calendar.

``weak`` is set when the overall score falls below :data:`WEAK_THRESHOLD` or a hard rule fails (empty reply,
forwarding note only, boilerplate only, the appeal copied back, reply unrelated to the appeal). Thresholds are module
constants, chosen on the distribution of real replies (bench/bench_reply_quality.py, bench/results/reply_quality.md).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from cityhub.analytics.lexicon import extract_places
from cityhub.nlp.text import cut, tag
from cityhub.workorders.calendar import WorkCalendar

# --- thresholds (documented in bench/results/reply_quality.md) ------------------------------------------------

# The scorer's version, stored with each check: bumped whenever a change to this module can change a score, so the
# stored checks of replies still under review are scored again by the reply-check job after an upgrade.
# 2: the appeal's places and times are context (2026-12-05); 3: places are the lexicon's place mentions.
# 4: a reply about something else (unrelated) is capped as the other hard rules are, and every overall score below the
# cut says so (low_overall), whatever else made the reply weak (2026-12-06); 5: the lexicon's place mentions take
# bridges, stations, piers and malls, and fewer sentence fragments (2026-12-06); 6: the matter named in other words
# counts (MATTERS), and a request only to deal with the matter (请核实处理) is no point of its own (2026-12-06);
# 7: an action told with 已 and any verb is a fact (completed_actions: 已补装井盖, 积水已退), and a promise to answer
# later (如有回复，将第一时间告知) is courtesy, not substance, 2026-12-06; 8: an action told with the perfective 了
# (补装了井盖, 路灯修好了) is a fact too (2026-12-07).
SCORER_VERSION = 8
WEIGHTS = {"relevance": 0.35, "completeness": 0.25, "basis": 0.25, "timeliness": 0.15}
WEAK_THRESHOLD = 0.35
HARD_FAIL_CAP = 0.2  # the highest overall score of a reply a hard rule fails
MIN_RELEVANCE = 0.05  # below this the reply is about something else (hard rule)
LOW_RELEVANCE = 0.25  # below this the supervisor is told, without failing the reply
MIN_SUBSTANCE_CHARS = 12  # fewer CJK/alphanumeric characters of substance = boilerplate only
# A reply whose substance is at least this share the appeal's own words (character bigrams) copies the appeal back
# instead of answering it (hard rule); a real answer restates the matter and adds what was done.
COPIED_SHARE = 0.85
# Timeliness: working days → score, piecewise linear between these points.
TIMELINESS_POINTS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (5.0, 1.0), (15.0, 0.6), (30.0, 0.2), (60.0, 0.0))
# A point of the appeal counts as addressed at this share of its key terms found in the reply.
POINT_ADDRESSED = 0.4
POINT_PARTIAL = 0.2

# --- text clean-up --------------------------------------------------------------------------------------------

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_WS = re.compile(r"[\s\u3000\xa0]+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|\n")
_HANDLE = r"(?:[“\"「『][^”\"」』]{0,30}[”\"」』])"
_GREETING = re.compile(
    rf"^\s*(?:尊敬的)?\s*(?:{_HANDLE}|[A-Z0-9]*UU\d+)?\s*(?:网友|网民|市民|朋友|同志|先生|女士)?\s*"
    rf"(?:{_HANDLE}|UU\d+)?\s*(?:网友|网民)?[:：,，\s]*(?:您|你)好[!！。.,，：:\s]*"
)
_ACK = re.compile(
    r"(?:留言|来信|来邮|来函|函件|帖文|帖子|网帖|问题|意见|诉求|情况|咨询|信件|邮件|建议)[^。！!？?]{0,16}(?:已|均)?(?:收悉|收到|获悉|悉知)"
    r"|^[^。！!？?]{0,6}收悉"
)
_INTRO = re.compile(
    r"(?:现将|现就|现对|现作|现)?[^。！!：:]{0,20}?(?:情况|问题|事项|结果)?(?:回复|答复|说明|汇报|报告)如下[:：]?"
)
_FORWARD = re.compile(
    r"(?:已|将|予以|我们已|我办已|现已|并已|按程序)?(?:转交|转至|转由|转给|转送|转办|转相关|转有关|交办|已转|转[^\s。，,]{1,12}(?:调查|核实|处理|办理|核处))"
)
_COURTESY = re.compile(
    r"感谢|谢谢|欢迎|敬请|祝您|祝你|特此回复|此复|请耐心等待|如有疑问|如有其他|继续关注|关心和支持|理解和支持|支持与理解|"
    r"关心、监督|支持、理解|给您带来的不便|深表歉意|深感歉意|如有相关情况|及时反馈|后续回复|"
    # a promise to answer later is no answer: 如有回复，将第一时间在网上告知; 待调查处理有相关结果后，再向您回复
    r"如有回复|待[^。，,；;]{0,20}(?:结果|清楚|完毕|落实)后|再(?:向您|给您|与您|予以)?(?:回复|答复|告知|反馈)|"
    r"第一时间[^。，,；;]{0,10}(?:告知|回复|答复|反馈)|留下[^。，,；;]{0,6}联系(?:方式|电话)"
)
_DATE = r"(?:(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2})"
_SIGNOFF = re.compile(
    rf"[{_CJK}A-Za-z0-9]{{0,24}}?(?:办|局|室|委|政府|中心|大队|公司|街道|办事处|管委会)?\s*{_DATE}\s*$"
)
_DATE_BEFORE_NEW_REPLY = re.compile(rf"({_DATE})(?=\s*(?:尊敬|网友|网民|[“\"]|您|你|[A-Z0-9]{{0,3}}UU))")
_DATE_ONLY = re.compile(rf"^\s*{_DATE}\s*$")
_TITLE_QUOTE = re.compile(r"[“\"「《]([^”\"」》]{4,80})[”\"」》]")
_SIGNIFICANT = re.compile(rf"[{_CJK}A-Za-z0-9]")


def normalize(text: str | None) -> str:
    """Light clean-up: Excel artefacts removed, every kind of space run to one space (no NFKC: it rewrites 〔〕)."""
    if not text:
        return ""
    text = text.replace("_x000D_", "\n").replace("\r", "\n")
    text = "\n".join(_WS.sub(" ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n+", "\n", text).strip()


def sentences(text: str) -> list[str]:
    """Split on sentence-ending punctuation and line breaks; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _significant_len(text: str) -> int:
    return len(_SIGNIFICANT.findall(text))


def _is_forwarding(sentence: str) -> bool:
    return bool(_FORWARD.search(sentence)) and _significant_len(_strip_forward_clauses(sentence)) < 8


def _strip_forward_clauses(sentence: str) -> str:
    # The forwarding note itself and its tail ("…调查处理", "…核实、办复") carry no answer.
    parts = re.split(r"[，,]", sentence)
    kept = [p for p in parts if not _FORWARD.search(p) and not _COURTESY.search(p) and not _ACK.search(p)]
    return "，".join(kept)


@dataclass(frozen=True)
class ReplyParts:
    """A reply cut into what answers (``substance``) and what does not."""

    substance: str
    boilerplate: list[str] = field(default_factory=list)
    forwarding: list[str] = field(default_factory=list)

    @property
    def forwarding_only(self) -> bool:
        return bool(self.forwarding) and _significant_len(self.substance) < MIN_SUBSTANCE_CHARS


def split_reply(reply: str | None) -> ReplyParts:
    """Separate greetings, acknowledgements, forwarding notes, courtesy lines and dates from the answer."""
    # Replies are often several replies run together ("…2019年7月12日网友：你好，…已转交…"): a date followed by
    # a new greeting or acknowledgement ends a sentence.
    text = _DATE_BEFORE_NEW_REPLY.sub(r"\1\n", normalize(reply))
    kept: list[str] = []
    boiler: list[str] = []
    forwarding: list[str] = []
    for raw in sentences(text):
        s = raw
        # Greetings and intro formulas are prefixes: the answer often follows in the same sentence.
        for _ in range(3):
            before = s
            s = _GREETING.sub("", s, count=1)
            m = _INTRO.search(s)
            if m and m.start() < 30:
                s = s[m.end() :]
            if s == before:
                break
        s = _SIGNOFF.sub("", s).strip()
        if not s or _DATE_ONLY.match(s):
            if raw.strip():
                boiler.append(raw)
            continue
        if _is_forwarding(s):
            forwarding.append(raw)
            continue
        if _ACK.search(s) and _significant_len(_ACK.sub("", s)) < 10:
            boiler.append(raw)
            continue
        if _COURTESY.search(s) and _significant_len(s) < 40 and not _has_fact(s):
            boiler.append(raw)
            continue
        if _significant_len(s) < 3:
            boiler.append(raw)
            continue
        kept.append(s)
    return ReplyParts(substance="".join(kept).strip(), boilerplate=boiler, forwarding=forwarding)


# --- key terms --------------------------------------------------------------------------------------------------

_STOPWORDS_TEXT = """
问题 反映 情况 您好 你好 领导 请问 谢谢 希望 我们 你们 他们 她们 它们 这个 那个 这里
那里 什么 怎么 怎样 如何 是否 能否 可否 可以 没有 一个 现在 已经 进行 相关 部门 有关
工作 政府 市民 网友 网民 留言 回复 答复 要求 请求 建议 关于 因为 所以 但是 而且 还是
就是 这样 那样 自己 大家 时候 目前 今年 去年 明年 可能 应该 需要 这些 那些 为什么
为何 多少 何时 书记 市长 县长 区长 尊敬 感谢 解决 处理 一直 非常 特别 严重 不是 不能
不会 还有 以及 或者 如果 虽然 然后 这种 那种 一些 很多 许多 每天 每年 知道 觉得 认为
表示 本人 家里 东西 事情 问一下 一下 能不能 可不可以 是不是 有没有 为了 对于 由于 通过
根据 按照 依据 正在 将会 予以 及时 积极 认真 高度 重视 负责 规定 老百姓 百姓 群众
人民 帮助 帮忙 恳请 呼吁 麻烦 您们 谢谢您 感谢您 支持 理解 监督 关心 关注 反应 反馈
以上 如下
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_TERM_OK = re.compile(rf"^[{_CJK}A-Za-z0-9]{{2,}}$")


def key_terms(text: str) -> dict[str, float]:
    """Content words of ``text`` (rjieba) with a weight growing with frequency and length."""
    counts: dict[str, int] = {}
    for w in cut(text):
        w = w.strip()
        if not _TERM_OK.match(w) or w in STOPWORDS or w.isdigit():
            continue
        counts[w] = counts.get(w, 0) + 1
    return {w: (1.0 + math.log(c)) * min(len(w), 4) / 2.0 for w, c in counts.items()}


def places(text: str) -> set[str]:
    """The place mentions of ``text`` (:func:`cityhub.analytics.lexicon.extract_places`, administrative codes
    included): the places a relevant reply may name again."""
    return set(extract_places(text))


# A time or duration written out (一个多星期, 三天, 每天晚上, 半个月, 近两年): when the matter happens,
# not the matter itself.
_TIME_TERM = re.compile(
    r"^(?:每|整|近|这|前|上|下|最近|[\d一二两三四五六七八九十百千几半多来个余]+)*"
    r"(?:天|日|晚|夜|周|星期|礼拜|月|年|小时|钟头|分钟|点|早上|晚上|早晨|凌晨|夜里|夜间|深夜|半夜|上午|下午|中午|白天|傍晚)+"
    r"(?:[\d一二两三四五六七八九十半多来个余]+|左右|以来|之久|以上)*$"
)
_CONTEXT_TAGS = frozenset({"ns", "t", "m"})


def context_terms(text: str) -> frozenset[str]:
    """The key terms of ``text`` that say where or when rather than what: words inside a place mention
    (:func:`cityhub.analytics.lexicon.extract_places`), place names, time words, numerals and durations (rjieba's
    ``ns``, ``t``, ``m``; 一个多星期, 每天晚上). A reply need not repeat them."""
    mentions = extract_places(text)
    found: set[str] = set()
    for w, pos in tag(text):
        w = w.strip()
        if not _TERM_OK.match(w):
            continue
        if pos in _CONTEXT_TAGS or _TIME_TERM.match(w) or any(w in m for m in mentions):
            found.add(w)
    return frozenset(found)


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


# Words of one matter (同一事项的不同说法). A reply naming the appeal's matter in other words — 水浸 answered by 积水,
# 违章搭建 by 违法建设 and 拆除, 遛狗不牵绳 by 养犬 — takes it up as much as one repeating the appeal's word: an
# appeal's key term inside a word of a group counts as taken up when the reply uses any word of the same group. Everyday
# subjects of a 12345 hotline, written from the work (not read off any file); a group holds only words that name its
# matter wherever they occur (no 问题, 处理, 卫生 alone).
MATTERS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "违建 违章建筑 违章搭建 违法建设 违法建筑 违规搭建 私搭乱建 乱搭乱建 乱搭建 搭建 加建 扩建 加盖 僭建 拆违 拆除",
        "水浸 水浸街 积水 内涝 水淹 浸水 水涝 抽排 排涝 水浸问题 水深",
        "狗 犬 宠物 养狗 遛狗 养犬 犬只 犬吠 狗叫",
        "噪音 噪声 扰民 吵闹 喧哗 音响 分贝 夜间施工",
        "沙井 污水 下水道 化粪池 管网 排水管 排污 冒水 疏通 清疏 清掏 渠道 臭水",
        "路灯 照明 灯不亮 亮灯 灯杆 灯具",
        "黑车 非法营运 非法载客 拉客 摩的 无证营运",
        "停电 断电 供电 电压 跳闸 用电 电力 电网",
        "停水 水压 供水 自来水 用水 水管爆裂 爆管",
        "占道 占道经营 出店经营 乱摆卖 摆摊 摆卖 摊档 摊贩 小贩 流动商贩",
        "垃圾 清运 环卫 保洁 垃圾桶 垃圾站 清扫 垃圾堆",
        "押金 房东 租客 租房 租赁 出租屋 房租 租金",
        "欠薪 拖欠工资 工资 薪酬 劳动报酬 劳动监察 讨薪 劳动仲裁",
        "社保 养老保险 医保 医疗保险 参保 社会保险 社保卡 转移接续 养老金",
        "公交 公交车 公交站 巴士 班次 过站不停 公交线路 公交公司 公交企业",
        "乱停 违停 违章停车 乱停放 乱停乱放 占道停车 违法停车 拖移",
        "油烟 异味 臭味 刺鼻 废气 气味 烟味 恶臭 废气收集",
        "假冒 伪劣 假货 退款 退货 消费者 消费纠纷 商家",
        "树木 大树 树枝 修剪 倒伏 绿化 砍伐 枯树 绿地",
        "坑洼 路面 坑槽 路面破损 修补 铺装 井盖",
        "电梯 困人 维保 电梯故障",
        "学位 入学 招生 积分入学 转学 插班 学籍",
        "物业 物业公司 物业费 业委会 业主委员会 物业服务",
        "燃气 煤气 天然气 漏气 气瓶 液化气",
        "工地 泥头车 渣土 扬尘 余泥",
        "蚊虫 蚊子 蟑螂 老鼠 灭鼠 消杀 病媒",
        "拆迁 征收 征地 补偿 安置 回迁",
        "停车位 车位 停车场 停车费 泊位",
    )
)


def matter_words(appeal: str, reply: str) -> tuple[str, ...]:
    """The words of :data:`MATTERS` the appeal uses, of each group the reply names too (in the same words or
    others): an appeal's key term inside one of them is taken up by the reply."""
    found: list[str] = []
    for group in MATTERS:
        used = [w for w in group if w in appeal]
        if used and any(w in reply for w in group):
            found.extend(used)
    return tuple(found)


def _term_hit(term: str, reply: str, reply_bigrams: set[str]) -> float:
    """1 when the term occurs in the reply; partial credit when most of its character bigrams do."""
    if term in reply:
        return 1.0
    grams = _bigrams(term)
    if len(grams) < 2:
        return 0.0
    share = len(grams & reply_bigrams) / len(grams)
    return 0.5 * share if share >= 0.5 else 0.0


def _coverage(
    terms: dict[str, float],
    reply: str,
    reply_bigrams: set[str],
    context: frozenset[str] = frozenset(),
    matter: tuple[str, ...] = (),
) -> float:
    """Weighted share of ``terms`` the reply takes up; a ``context`` term counts when the reply repeats it, never
    against it (half-repeated is left out too, so that a shorter reply never covers more); a term inside one of the
    ``matter`` words (:func:`matter_words`) is taken up."""
    total = hit = 0.0
    for t, w in terms.items():
        h = _term_hit(t, reply, reply_bigrams)
        if h < 1.0 and any(t in m or m in t for m in matter):
            h = 1.0
        if t in context and h < 1.0:
            continue
        total += w
        hit += w * h
    return hit / total if total > 0 else 0.0


# --- appeal points ------------------------------------------------------------------------------------------------

_QUESTION_CUES = re.compile(
    r"是否|能否|可否|能不能|可不可以|是不是|有没有|会不会|怎么|怎样|如何|何时|什么时候|多少|多久|哪里|哪些|哪个|为什么|为何|"
    r"什么|吗[？?。！!]?$|呢[？?。]?$"
)
_REQUEST_CUES = re.compile(r"请求|希望|要求|建议|恳请|请问|呼吁|请.{0,6}(?:解决|处理|查处|核实|调查|整改|回复|答复)")
_ENUM_SPLIT = re.compile(
    r"(?=(?:^|(?<=[\s。；;：:！!？?]))(?:\d{1,2}\s*[、.．)）]|[（(]\s*[一二三四五六七八九十\d]{1,2}\s*[)）]|"
    r"[一二三四五六七八九十]{1,2}\s*[、是]|第[一二三四五六七八九十]{1,2}\s*[，,、]))"
)
MAX_POINTS = 8


# Words that ask for the matter to be dealt with, not what about: a request of only these (请有关部门核实处理,
# 希望尽快处理) is no point of its own — the appeal's matter is, which any reply taking it up answers.
_HANDLING_TEXT = """
核实 核查 调查 查处 查实 彻查 调查处理 核实处理 尽快 尽早 及早 早日 赶紧 马上 立即 整改 落实 处置 跟进 督促
协调 办理 管管 管一管 重视 过问
"""
HANDLING_WORDS = frozenset(_HANDLING_TEXT.split())


def appeal_points(title: str, content: str) -> list[str]:
    """The points an appeal raises: questions, requests and enumerated items (the title if none is found); a request
    of only :data:`HANDLING_WORDS` is not one."""
    text = normalize(content)
    pieces: list[str] = []
    for s in sentences(text):
        pieces += [p.strip() for p in _ENUM_SPLIT.split(s) if p and p.strip()]
    points: list[str] = []
    for p in pieces:
        is_enum = bool(re.match(r"^(?:\d{1,2}\s*[、.．)）]|[（(]|[一二三四五六七八九十]{1,2}\s*[、是]|第)", p))
        asked = "？" in p or "?" in p or _QUESTION_CUES.search(p) or _REQUEST_CUES.search(p) or is_enum
        if asked and not set(key_terms(p)) <= HANDLING_WORDS:
            points.append(p)
    seen: set[str] = set()
    unique = [p for p in points if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]
    if not unique:
        fallback = normalize(title) or (sentences(text)[0] if text else "")
        return [fallback] if fallback else []
    if len(unique) > MAX_POINTS:
        # Long appeals: keep the points carrying the most content words, in their original order.
        ranked = sorted(range(len(unique)), key=lambda i: -sum(key_terms(unique[i]).values()))[:MAX_POINTS]
        unique = [unique[i] for i in sorted(ranked)]
    return unique


# --- basis --------------------------------------------------------------------------------------------------------

_DOC_TITLE = re.compile(r"《([^》]{2,60})》")
_PLATFORM = re.compile(r"问政|留言板|平台|网站|报$|日报|晚报")
_ARTICLE = re.compile(r"第[一二三四五六七八九十百零\d]+条")
_BY_RULE = re.compile(
    r"(?:根据|依据|按照|依照|参照|遵照|按)[^。；;！!？?]{0,40}?"
    r"(?:规定|政策|办法|条例|法律|法规|[^办]法|通知|意见|文件|标准|细则|方案|规划|精神|程序|合同|协议|要求|批复)"
)
_DOC_NO = re.compile(r"[〔\[【(（]\s*(?:19|20)\d{2}\s*[〕\]】)）]\s*\d+\s*号|\d+\s*号文")
_NUMBER_UNIT = re.compile(
    r"\d+(?:\.\d+)?\s*(?:万元|亿元|元|平方米|平米|㎡|公里|千米|米|亩|户|人|名|个|所|辆|天|个工作日|工作日|%|％|吨|处|次|套|栋|间|台|条|家)"
)
_FACT_DATE = re.compile(r"(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月|\d{1,2}\s*月\s*\d{1,2}\s*日")
_DEPARTMENT = re.compile(
    rf"[{_CJK}A-Z0-9]{{1,12}}?(?:局|委员会|办公室|中心|大队|支队|中队|派出所|街道办|办事处|镇政府|乡政府|人民政府|管委会|"
    r"指挥部|法院|检察院|公司|站|所)"
)
_ACTION = re.compile(
    r"经(?:调查|核实|核查|了解|查|研究|现场|实地|协调|测量|检测)|"
    r"已(?:经)?(?:完成|责令|安排|处理|整改|解决|修复|清理|查处|督促|约谈|立案|下发|启动|开工|纳入|拆除|办理|落实|联系|"
    r"协调|组织|派|对|将|于|签订|发放|到位|恢复)|"
    r"现场(?:查看|核查|检查|勘察|处置)|实地(?:查看|核查|走访)|下一步|将于|计划于|责令|立案|处罚|罚款|整改|约谈"
)


# Verbs after 已 that tell of the message, not of the matter: acknowledging it (已收悉, 已受理), passing it on (已转交,
# 已移交: a forwarding note), or noting it down — none of them is something done about the matter.
_NOT_DONE_TEXT = """
收悉 收到 收 受理 知悉 获悉 阅 阅悉 悉 交 交由 转 转交 转办 转至 转给 转送 转达 转发
移交 移送 交办 记录 登记 备案 上报 报送 回复 答复
"""
_NOT_DONE = frozenset(_NOT_DONE_TEXT.split())
# 已转市…, 已交由…: rjieba may join such a verb to what follows (single characters but 转 only whole: 已收集, 已交付)
_NOT_DONE_PREFIXES = tuple(sorted(w for w in _NOT_DONE if len(w) > 1 or w == "转"))
_DONE_MARKS = ("已经", "已")
# Verbs that 了 follows without telling of anything done about the matter: the citizen's own acts as a reply restates
# them (您反映了), what the message caused or met (带来了不便, 引起了), being and having, and perceiving.
_PERFECTIVE_NOT_ACTIONS_TEXT = """
反映 反应 提出 提到 提供 咨询 投诉 举报 建议 询问 关注 留言 来信 来电 致电 拨打 说 讲 问 写 发
带来 造成 引起 给 给予 有 是 成 为 到 来 去 多 少 好 久 晚 早 对 错 懂 完
看到 看 听到 感到 受到 遇到 得到 碰到 见到 想到 注意到 了解到 获知 明白 理解 知道 认为 觉得 发现
"""
_PERFECTIVE_NOT_ACTIONS = frozenset(_PERFECTIVE_NOT_ACTIONS_TEXT.split())
_PERFECTIVE = "了"
_JOINED = frozenset({"并", "并已", "并且", "同时", "和", "及", "且"})
_FUNCTION_TAGS = ("d", "p", "r", "m", "t", "q", "f", "u", "c", "z", "e", "y", "o")
_NOT_VERB_TAGS = (*_FUNCTION_TAGS, "n", "s", "x")  # 局里了, 今天了: a noun before a sentence's final 了
_CLAUSE_END = frozenset("，,。；;！!？?：:、\n")


def completed_actions(text: str) -> list[str]:
    """Things done about the matter told in the completed aspect that :data:`_ACTION`'s list of the usual verbs
    (已责令, 已完成) does not hold: 已 (已经) and the first word of content after it — 已补装井盖, 积水已退, 已上门劝导,
    已第一时间清运 — and the verbs joined to it (已补装井盖并设置警示标志 tells two). Without them a terse reply
    saying what was done read as stating no fact. A clause that acknowledges, forwards or notes the message down
    (:data:`_NOT_DONE`: 已收悉, 已将您的诉求转交) tells of the message, not of the matter. rjieba's parts of speech
    of such replies are unreliable (清运 a noun, 处理完毕 an idiom), so any word of content counts as the action, not
    only a verb. Actions told with the perfective 了 instead (补装了井盖) count too: :func:`_perfective_actions`."""
    pieces = tag(text)
    said = "".join(w for w, _ in pieces)  # the text as segmented, so that the pieces' offsets are its own
    starts = list(itertools.accumulate((len(w) for w, _ in pieces), initial=0))
    known = [m.span() for m in _ACTION.finditer(said)]
    found: list[str] = []
    for i, (word, pos) in enumerate(pieces):
        mark = next((m for m in _DONE_MARKS if word.startswith(m)), None)
        if mark is None or any(a <= starts[i] < b for a, b in known):
            continue
        end = next((j for j in range(i + 1, len(pieces)) if pieces[j][0] in _CLAUSE_END), len(pieces))
        clause = [w for w, _ in pieces[i:end]]
        if any(w in _NOT_DONE or w[len(mark) :] in _NOT_DONE for w in clause) or (
            pieces[i + 1][0] if word == mark and i + 1 < end else word[len(mark) :]
        ).startswith(_NOT_DONE_PREFIXES):  # 已转市有关部门: rjieba joined the verb to its object
            continue
        if word != mark:  # 已补装, 已退: rjieba kept the mark on the word
            if pos.startswith(_FUNCTION_TAGS):  # 已于, 已被
                continue
            found.append(word)
            action_end = i
        else:  # 已 | 上门 | 劝导: the first word of content within three
            content = [j for j in range(i + 1, min(end, i + 4)) if not pieces[j][1].startswith(_FUNCTION_TAGS)]
            if not content:
                continue
            action_end = content[0]
            found.append(said[starts[i] : starts[action_end + 1]])
        for j in range(action_end + 1, min(end, action_end + 5)):  # 并设置警示标志: a verb joined to the action
            if pieces[j][0] in _JOINED and j + 1 < end and pieces[j + 1][1].startswith("v"):
                found.append(pieces[j][0] + pieces[j + 1][0])
                break
    found += _perfective_actions(pieces, starts, known)
    return list(dict.fromkeys(found))


def _perfective_actions(pieces: list[tuple[str, str]], starts: list[int], known: list[tuple[int, int]]) -> list[str]:
    """Things done told with the perfective 了 instead of 已: 补装了井盖, 清理了垃圾并设置了警示牌, 路灯修好了. The
    word before 了 is the action unless it is a function word or a noun, a single character, a verb of the message
    or of the citizen (:data:`_NOT_DONE`, :data:`_PERFECTIVE_NOT_ACTIONS`: 收到了, 您反映了, 带来了不便), or
    already told with 已 in the same clause (已处理了 is one action)."""
    found: list[str] = []
    for i in range(len(pieces) - 1):
        word, pos = pieces[i]
        if pieces[i + 1][0] != _PERFECTIVE or len(word) < 2 or pos.startswith(_NOT_VERB_TAGS):
            continue
        if word in _NOT_DONE or word.startswith(_NOT_DONE_PREFIXES) or word in _PERFECTIVE_NOT_ACTIONS:
            continue
        if any(a <= starts[i] < b for a, b in known):
            continue
        clause_start = next((j + 1 for j in range(i - 1, -1, -1) if pieces[j][0] in _CLAUSE_END), 0)
        if any(w.startswith(_DONE_MARKS) for w, _ in pieces[clause_start:i]):
            continue
        found.append(word + _PERFECTIVE)
    return found


def _has_fact(sentence: str) -> bool:
    return bool(
        _NUMBER_UNIT.search(sentence)
        or _ACTION.search(sentence)
        or _FACT_DATE.search(sentence)
        or completed_actions(sentence)
    )


@dataclass(frozen=True)
class BasisEvidence:
    citations: list[str]
    facts: list[str]

    @property
    def policy_score(self) -> float:
        return 1.0 - math.exp(-len(self.citations))

    @property
    def fact_score(self) -> float:
        return 1.0 - math.exp(-len(self.facts) / 3.0)


def basis_evidence(text: str) -> BasisEvidence:
    """Citations of policy/law/documents and fact statements found in ``text`` (distinct strings)."""
    citations: list[str] = []
    for m in _DOC_TITLE.finditer(text):
        if not _PLATFORM.search(m.group(1)):
            citations.append(m.group(0))
    for rx in (_ARTICLE, _BY_RULE, _DOC_NO):
        citations += [m.group(0) for m in rx.finditer(text)]
    facts: list[str] = []
    for rx in (_NUMBER_UNIT, _FACT_DATE, _ACTION):
        facts += [m.group(0) for m in rx.finditer(text)]
    facts += completed_actions(text)
    departments = list(dict.fromkeys(m.group(0) for m in _DEPARTMENT.finditer(text)))[:3]
    facts += departments
    return BasisEvidence(citations=list(dict.fromkeys(citations)), facts=list(dict.fromkeys(facts)))


def basis_score(text: str) -> float:
    """Policy citations and facts: either alone can explain a reply; both together explain it best."""
    ev = basis_evidence(text)
    policy, facts = ev.policy_score, ev.fact_score
    return min(1.0, max(policy, 0.8 * facts) + 0.2 * min(policy, facts))


# --- timeliness ---------------------------------------------------------------------------------------------------


def timeliness_score(working_days: float) -> float:
    """Score of a reply given after ``working_days`` (see :data:`TIMELINESS_POINTS`)."""
    pts = TIMELINESS_POINTS
    if working_days <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if working_days <= x1:
            return y0 + (y1 - y0) * (working_days - x0) / (x1 - x0)
    return pts[-1][1]


@lru_cache(maxsize=1)
def _default_calendar() -> WorkCalendar:
    from cityhub.config import get_settings
    from cityhub.workorders.calendar import parse_working_hours, shared_calendar

    settings = get_settings()
    return shared_calendar(settings.tz, parse_working_hours(settings.working_hours))


def working_days_between(asked_at: datetime, replied_at: datetime, calendar: WorkCalendar | None = None) -> float:
    cal = calendar or _default_calendar()
    if replied_at <= asked_at:
        return 0.0
    return cal.work_seconds_between(asked_at, replied_at) / cal.day_seconds


# --- the score ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyQuality:
    relevance: float
    completeness: float
    basis: float
    timeliness: float | None  # None when either time is unknown; overall then uses the other three
    overall: float
    weak: bool
    reasons: list[str]
    points: int = 0
    points_addressed: float = 0.0
    working_days: float | None = None
    substance_chars: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("relevance", "completeness", "basis", "timeliness", "overall", "points_addressed", "working_days"):
            if data[key] is not None:
                data[key] = round(float(data[key]), 4)
        return data


def relevance_score(
    title: str,
    content: str,
    substance: str,
    context: frozenset[str] | None = None,
    matter: tuple[str, ...] | None = None,
) -> float:
    """Share of the appeal's weighted key terms (title counted twice) and places taken up by the reply; the
    appeal's places and times (``context``, :func:`context_terms` when not given) raise it when repeated and
    never lower it when not; its matter named in other words (``matter``, :func:`matter_words`) is taken up."""
    if not substance:
        return 0.0
    if context is None:
        context = context_terms(f"{title}\n{content}")
    if matter is None:
        matter = matter_words(f"{title}\n{content}", substance)
    terms = key_terms(content)
    for t, w in key_terms(title).items():
        terms[t] = terms.get(t, 0.0) + 2.0 * w
    top = dict(sorted(terms.items(), key=lambda kv: -kv[1])[:30])
    grams = _bigrams(substance)
    cov = _coverage(top, substance, grams, context, matter)
    alone = min(1.0, cov * 1.6)
    appeal_places = places(f"{title}\n{content}")
    if not appeal_places:
        return alone
    place_share = sum(_term_hit(p, substance, grams) for p in appeal_places) / len(appeal_places)
    return max(alone, min(1.0, 0.75 * cov * 1.6 + 0.25 * place_share))


def completeness_score(
    title: str,
    content: str,
    substance: str,
    context: frozenset[str] | None = None,
    matter: tuple[str, ...] | None = None,
) -> tuple[float, int, float]:
    """(score, number of points, points addressed) — each point addressed, half-addressed or not; a point's places
    and times (``context``) are not asked of the reply, its matter may be named in other words (``matter``)."""
    points = appeal_points(title, content)
    if not points:
        return (1.0 if substance else 0.0), 0, 0.0
    if context is None:
        context = context_terms(f"{title}\n{content}")
    if matter is None:
        matter = matter_words(f"{title}\n{content}", substance)
    grams = _bigrams(substance)
    addressed = 0.0
    counted = 0
    for p in points:
        terms = key_terms(p)
        if not terms:
            continue
        counted += 1
        share = _coverage(terms, substance, grams, context, matter)
        addressed += 1.0 if share >= POINT_ADDRESSED else 0.5 if share >= POINT_PARTIAL else 0.0
    if counted == 0:
        return (1.0 if substance else 0.0), 0, 0.0
    return addressed / counted, counted, addressed


def copied_share(title: str, content: str, substance: str) -> float:
    """The share of the reply's character bigrams (letters and digits, punctuation left out) that the appeal has;
    0 for a reply too short to tell."""
    reply = _bigrams("".join(_SIGNIFICANT.findall(substance)))
    if len(reply) < MIN_SUBSTANCE_CHARS:
        return 0.0
    appeal = _bigrams("".join(_SIGNIFICANT.findall(title + content)))
    return len(reply & appeal) / len(reply)


def _without_title(substance: str, title: str) -> str:
    """The reply without the appeal's title quoted back (“关于‘<title>’的问题”)."""
    t = normalize(title)
    if len(t) >= 4 and t in substance:
        substance = substance.replace(t, "")
    return substance


def score_reply(
    appeal_title: str,
    appeal_text: str,
    reply_text: str | None,
    *,
    asked_at: datetime | None = None,
    replied_at: datetime | None = None,
    calendar: WorkCalendar | None = None,
) -> ReplyQuality:
    """Score one reply to one appeal; every sub-score is in [0, 1]."""
    title = normalize(appeal_title)
    content = normalize(appeal_text)
    parts = split_reply(reply_text)
    substance = _without_title(parts.substance, title)
    reasons: list[str] = []
    hard_fail = False

    if not normalize(reply_text):
        reasons.append("empty: 答复为空")
        hard_fail = True
    elif parts.forwarding_only:
        reasons.append("forwarding_only: 仅有转办说明，没有实质答复")
        hard_fail = True
    elif _significant_len(parts.substance) < MIN_SUBSTANCE_CHARS:
        reasons.append("boilerplate_only: 只有问候、收悉或致谢套话")
        hard_fail = True

    if not hard_fail and copied_share(title, content, substance) >= COPIED_SHARE:
        reasons.append("copied: 答复大段照抄诉求内容，未说明处理情况")
        hard_fail = True

    context = context_terms(f"{title}\n{content}")
    matter = matter_words(f"{title}\n{content}", substance)
    relevance = relevance_score(title, content, substance, context, matter)
    completeness, n_points, addressed = completeness_score(title, content, substance, context, matter)
    basis = basis_score(parts.substance)
    days: float | None = None
    timeliness: float | None = None
    if asked_at is not None and replied_at is not None:
        days = working_days_between(asked_at, replied_at, calendar)
        timeliness = timeliness_score(days)

    scores = {"relevance": relevance, "completeness": completeness, "basis": basis}
    if timeliness is not None:
        scores["timeliness"] = timeliness
    overall = sum(WEIGHTS[k] * v for k, v in scores.items()) / sum(WEIGHTS[k] for k in scores)

    if not hard_fail:
        if relevance < MIN_RELEVANCE:
            reasons.append(f"unrelated: 答复与诉求关联度低 ({relevance:.2f})")
            hard_fail = True
        elif relevance < LOW_RELEVANCE:
            reasons.append(f"low_relevance: 答复未充分回应诉求要点 ({relevance:.2f})")
        if n_points and addressed < n_points:
            reasons.append(f"incomplete: 诉求 {n_points} 个要点中约 {addressed:g} 个得到回应")
        if basis < 0.3:
            reasons.append("no_basis: 未说明政策依据或核查事实")
    if days is not None and timeliness is not None and timeliness < 0.6:
        reasons.append(f"late: 答复用时 {days:.1f} 个工作日")
    if hard_fail:  # every hard rule, the unrelated reply's too, caps the overall score below the cut
        overall = min(overall, HARD_FAIL_CAP)
    weak = hard_fail or overall < WEAK_THRESHOLD
    if overall < WEAK_THRESHOLD:
        # Said of every score below the cut: first, or after the hard rule that failed (always the first finding).
        reasons.insert(1 if hard_fail else 0, f"low_overall: 综合得分 {overall:.2f} 低于 {WEAK_THRESHOLD:.2f}")
    return ReplyQuality(
        relevance=_clip(relevance),
        completeness=_clip(completeness),
        basis=_clip(basis),
        timeliness=None if timeliness is None else _clip(timeliness),
        overall=_clip(overall),
        weak=weak,
        reasons=reasons,
        points=n_points,
        points_addressed=addressed,
        working_days=days,
        substance_chars=_significant_len(parts.substance),
    )


# The note a weak reply's check leaves in the order's trail for the supervisors, before its findings.
WEAK_REPLY_NOTE = "答复质量偏弱，请督办员审核："
# Each finding is stored as "code: explanation" (the explanation in Chinese, its figures in it); the web UI words it in
# the reader's language from the code and the figures these patterns read back (``web.machine_text``).
FINDING_FIGURES: dict[str, tuple[tuple[str, ...], re.Pattern[str] | None]] = {
    "empty": ((), None),
    "forwarding_only": ((), None),
    "boilerplate_only": ((), None),
    "copied": ((), None),
    "unrelated": (("score",), re.compile(r"\(([\d.]+)\)$")),
    "low_relevance": (("score",), re.compile(r"\(([\d.]+)\)$")),
    "incomplete": (("points", "addressed"), re.compile(r"(\d+) 个要点中约 ([\d.]+) 个")),
    "no_basis": ((), None),
    "late": (("days",), re.compile(r"用时 ([\d.]+) 个工作日")),
    "low_overall": (("overall", "threshold"), re.compile(r"综合得分 ([\d.]+) 低于 ([\d.]+)")),
}


def _clip(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else float(x)
