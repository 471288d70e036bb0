"""Small lexicons for the city brain: population groups (人群) and place mentions (地点) in order texts.

Both extractors are plain regular expressions and dictionaries, so they run on millions of orders without a
model. Place extraction is deliberately conservative: it returns named estates, villages, streets, roads,
schools … ("丽发新城", "泉塘街道", "金鼎村") and the anonymised administrative codes of the competition data
("A市", "A1区", "A7县"), not every noun ending in 路.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from cityhub.nlp.text import nfkc

# Group → surface forms. Order matters only for display; the first form is the canonical label.
GROUPS: dict[str, tuple[str, ...]] = {
    "老年人": ("老年人", "老人", "老龄", "高龄", "退休人员", "退休职工", "离退休", "空巢老人", "养老"),
    "儿童": ("儿童", "小孩", "孩子", "幼儿", "婴儿", "未成年", "留守儿童"),
    "学生": ("学生", "小学生", "中学生", "高中生", "大学生", "毕业生", "考生", "新生"),
    "家长": ("家长", "父母"),
    "教师": ("教师", "老师", "代课教师", "班主任"),
    "业主": ("业主", "购房者", "房主", "买房人"),
    "租户": ("租户", "租客", "承租人", "房客", "公租房"),
    "居民": ("居民", "住户", "市民", "群众"),
    "村民": ("村民", "农民", "农户", "果农", "菜农", "种植户", "养殖户"),
    "外来务工人员": ("外来务工", "农民工", "务工人员", "打工者", "民工"),
    "职工": ("职工", "员工", "工人", "劳动者", "合同工", "临时工", "协警", "辅警"),
    "企业": ("企业", "公司", "厂家", "工厂", "个体户", "创业者"),
    "商户": ("商户", "商家", "店主", "摊贩", "摊主", "门面", "经营户"),
    "患者": ("患者", "病人", "病患", "孕妇", "产妇"),
    "残疾人": ("残疾人", "残疾", "残障", "盲人", "聋哑"),
    "司机": ("司机", "驾驶员", "车主", "网约车", "出租车司机", "货车司机", "的哥"),
    "快递外卖员": ("快递员", "外卖员", "骑手", "送餐员"),
    "退役军人": ("退役军人", "退伍军人", "复员军人", "军属", "烈属"),
    "低保困难户": ("低保", "贫困户", "困难户", "特困", "五保户", "建档立卡"),
    "医护人员": ("医生", "护士", "医护人员", "医务人员"),
    "拆迁户": ("拆迁户", "被拆迁", "安置户", "征地农民", "失地农民"),
}

_GROUP_FORMS: list[tuple[str, str]] = sorted(
    ((form, group) for group, forms in GROUPS.items() for form in forms), key=lambda p: -len(p[0])
)
_GROUP_RE = re.compile("|".join(re.escape(form) for form, _ in _GROUP_FORMS))
_GROUP_OF = dict(_GROUP_FORMS)


def extract_groups(text: str) -> list[str]:
    """Population groups mentioned in ``text``, canonical labels in order of first mention, no repeats."""
    seen: dict[str, None] = {}
    for m in _GROUP_RE.finditer(text or ""):
        seen.setdefault(_GROUP_OF[m.group(0)], None)
    return list(seen)


# Anonymised administrative codes of the competition data: A市, A1区, A7县, C5市 …
ADMIN_CODE_RE = re.compile(r"(?<![A-Za-z0-9])([A-La-l]\d{0,2}(?:市|区|县))")

# Place suffixes, longest first so that 街道 wins over 街 and 小区 over 区.
_SUFFIXES = (
    "街道办事处",
    "街道办",
    "居委会",
    "村委会",
    "外国语学校",
    "实验学校",
    "产业园",
    "工业园",
    "开发区",
    "步行街",
    "农贸市场",
    "购物中心",
    # stations: of the metro, trains and coaches (客村地铁站, 广州火车站); not 站 alone (垃圾站, 搅拌站, 收费站)
    "地铁站",
    "高铁站",
    "火车站",
    "汽车站",
    "客运站",
    "公交站",
    # bridges, interchanges and tunnels (金沙洲大桥, 区庄立交, 珠江隧道): see _BRIDGES
    "立交桥",
    "高架桥",
    "大桥",
    "立交",
    "隧道",
    "码头",
    "商场",
    "街道",
    "社区",
    "小区",
    "花园",
    "家园",
    "公寓",
    "新城",
    "新村",
    "大道",
    "广场",
    "大厦",
    "学校",
    "小学",
    "中学",
    "幼儿园",
    "医院",
    "公园",
    "市场",
    "山庄",
    "雅苑",
    "华苑",
    "花苑",
    "学苑",
    "名苑",
    "之城",
    "苑",
    "桥",
    "站",  # only a metro station's (地铁客村站): see _METRO_STATION
    "村",
    "镇",
    "乡",
    "路",
    "街",
    "巷",
    "湾",
    "府",
    "城",
)
_SUFFIX_RE = re.compile("|".join(re.escape(s) for s in _SUFFIXES))
# Characters that cannot be inside a place name: they end the name on its left.
_STOP_CHARS = frozenset(
    "的在了是我你他她它们和与及或对向于到从把被给这那该此每个为有无也都就还又很请问吗呢吧啊么没不系而像想买套走"
    # prepositions, modal verbs and adverbs of a sentence around a place (送至医院, 由泉源路, 才得知永福小区; not 要 nor
    # 去, which names hold: 高要区, 去汇社区)
    "至往由离让才并已等能"
)
# Words that often precede a place name without being part of it.
_STOP_WORDS = (
    "投诉",
    "反映",
    "举报",
    "关于",
    "咨询",
    "建议",
    "要求",
    "希望",
    "请求",
    "导致",
    "现在",
    "目前",
    "整个",
    "影响",
    "附近",
    "位于",
    "地处",
    "座落",
    "坐落",
    "居住",
    "住在",
    "解决",
    "处理",
    "问题",
    "旁边",
    "一个",
    "所有",
    "严重",
    "商品房",
    "楼盘",
    "周边",
    "进入",
    "通往",
    "前往",
    "去往",
    "开往",
    "到达",
    "直达",
    "经过",
    "沿线",
    "位置",
    "地方",
    "区域",
    "市民",
    "业主",
    "居民",
    "村民",
    "本人",
    "家住",
    "品房",
    "靠近",
    "临近",
    "紧邻",
    # times of day and week (周一钟落潭二横路 → 钟落潭二横路)
    "周一",
    "周二",
    "周三",
    "周四",
    "周五",
    "周六",
    "周日",
    "周末",
    "每天",
    "每晚",
    "今天",
    "昨天",
    "晚上",
    "早上",
    "凌晨",
    "上午",
    "下午",
    "中午",
    "平时",
    "经常",
    # a time of day or a period in front of the place (晚六点以后雅居大道, 下班高峰期雅居大道 → 雅居大道)
    "以后",
    "之后",
    "以前",
    "之前",
    "期间",
    "时段",
    "高峰期",
    "夜间",
    "夜里",
    "深夜",
    "半夜",
    "三更",
    "傍晚",
    "晚间",
    "清晨",
    "早晨",
    "下班",
    "上班",
    "放学",
    "上学",
    "施工",
    "[0-9一二三四五六七八九十两]{1,3}点(?:半|多)?",  # (not 点钟: 八点钟落潭 is 八点 + 钟落潭 as often)
    # conjunctions and adverbs (所以, 既然, 尽快 …) and verbs whose object a place is (出售小区, 入读幼儿园, 取缔市场)
    *("所以", "因为", "既然", "如果", "但是", "可以", "能够", "尽快", "非法", "强行", "如今", "以来", "按照"),
    *("通过", "发现", "得知", "听闻", "出售", "收取", "征收", "退出", "干扰", "入读", "就读", "招生", "通知"),
    *("安排", "购置", "取缔", "执法", "指导", "统计", "驶入", "住进", "打开", "叫停", "查处", "推脱", "住院"),
    *("变成", "抱怨", "领导", "加上", "今年", "去年", "明年", "多年", "近年"),
    "[0-9]{1,4}[年月日]",  # a date (2019年, 5月22日小学 → nothing)
    # verbs of living, building and going (租住江高镇 → 江高镇, 增建学校 → nothing)
    "租住",
    "租房",
    "搬到",
    "来到",
    "路过",
    "增建",
    "修建",
    "兴建",
    "扩建",
    "一所",
    "一间",
    "一条",
    "这所",
    "这条",
)
_STOP_WORD_RE = re.compile("|".join(_STOP_WORDS))
# Whole mentions that are ordinary words, not names.
_GENERIC = frozenset(
    [
        "十字路",
        "铁路",
        "公路",
        "马路",
        "道路",
        "线路",
        "公交线路",
        "国际",
        "城区",
        "旧城",
        "县城",
        "市区",
        "农村",
        "乡村",
        "山村",
        "城乡",
        "城市",
        "全市",
        "全省",
        "全村",
        "全镇",
        "安置小区",
        "老小区",
        "新小区",
        "二期小区",
        "一期小区",
        "三期小区",
        "老旧小区",
        "农贸市场",
        "菜市场",
        "超市场",
        "学校",
        "小学",
        "中学",
        "医院",
        "广场",
        "公园",
        "街道",
        "社区",
        "小区",
        "村里",
        "同村",
        "本村",
        "外国语学校",
        "实验学校",
        "民办学校",
        "公办学校",
        "私立学校",
        "人民医院",
        "中心医院",
        "银行",
        "长株潭城",
        "住宅小区",
        "必经之路",
        "配套幼儿园",
        "小区配套幼儿园",
        "快速路",
        "全体村",
        "断头路",
        "主干路",
        "小路",
        "大路",
        "天桥",
        "人行天桥",
        "过街天桥",
        "立交桥",
        "高架桥",
        "大桥",
        "立交",
        "隧道",
        "码头",
        "商场",
        "地铁站",
        "火车站",
        "高铁站",
        "汽车站",
        "客运站",
        "公交站",
        "大型商场",
        "综合市场",
        "上级医院",
        "下属医院",
        "公办幼儿园",
        "私立幼儿园",
        "民办幼儿园",
        "高速路",
        "城镇",
        "乡镇",
    ]
)
# Mentions ending in these are ordinary words or offices, whatever precedes them (过马路, 人民政府), among them the
# everyday words that end in 路 without naming a road (司机故意绕路, 学生上学要走路, 找不到出路, 商家跑路).
_GENERIC_ENDINGS = (
    "铁路",
    "马路",
    "政府",
    "公路",
    "道路",
    "线路",
    "下坡路",
    # (not 顺路, 远路, 电路, 近路: 丰顺路, 致远路, 供电路 are roads)
    *("绕路", "走路", "修路", "让路", "带路", "问路", "迷路", "拦路", "挡路", "堵路", "封路", "赶路"),
    *("过路", "半路", "出路", "退路", "思路", "套路", "网路", "上路"),
    "跑路",  # 商家跑路, 老板卷款跑路: absconded
    "农村",
    "中小学",
    # where roads meet and distances (民政局交叉路口, 一里多里路, 两三公里路)
    *("交叉路", "叉路", "岔路", "公里路", "里多里路"),
    # footbridges and tunnels of no name (新建一座人行天桥, 修建铁路隧道)
    *("人行天桥", "过街天桥", "铁路桥", "铁路隧道", "地铁隧道"),
)
# 路 followed by these is the start of an everyday word (路灯, 路面, 路况), not the end of a road's name; a road and its
# lights are written 东风路路灯.
_ROAD_WORDS_AFTER = frozenset("灯面况程")

# One-character suffixes that also start ordinary words (城南, 府前, 街口): a suffix only at a name's end.
_WEAK_SUFFIXES = frozenset("城府湾街巷乡")
# Bridges and interchanges: a name's end too (高桥镇, 桥头村, 桥梁 are no bridges) — or followed by where under or
# beside it a problem is (金沙洲大桥底, 区庄立交下面, 海印桥边).
_BRIDGES = frozenset({"桥", "大桥", "立交", "立交桥", "高架桥"})
_BESIDE_BRIDGE = frozenset("下底上边旁侧洞墩")
_NAME_CHAR_RE = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
# A metro station named after 地铁 (地铁客村站, 地铁3号线体育西站): its name, whatever suffix is inside it (客村's 村).
_METRO_STATION = re.compile(
    "地铁(?:[0-9一二三四五六七八九十]{1,2}号线)?([^\\W\\d_站" + "".join(sorted(_STOP_CHARS)) + "]{2,6}?)站"
)
_MAX_NAME = 7  # characters kept left of the suffix
_HOUSE_NUMBER_RE = re.compile(r"[0-9]+[号栋幢座]")
# The number of a bus route at the end of what precedes 路: latin letters and digits, one digit at least.
_ROUTE_RE = re.compile(r"[A-Za-z0-9]*[0-9][A-Za-z0-9]*$")


def _normalise(text: str) -> str:
    return nfkc(text or "")


def _admin_codes(normalised: str) -> list[str]:
    seen: dict[str, None] = {}
    for m in ADMIN_CODE_RE.finditer(normalised):
        seen.setdefault(m.group(1).upper(), None)
    return list(seen)


def extract_places(text: str, *, admin: bool = True) -> list[str]:
    """Place mentions in ``text``: administrative codes first (when ``admin``), then named places.

    A named place is a suffix (小区, 村, 街道, 路, 广场, 大桥, 立交, 隧道, 地铁站, 码头, 商场 …) with up to seven name
    characters on its left, cut at punctuation, administrative codes, function characters (的, 在, 要, 至 …), common
    verbs and adverbs (投诉, 反映, 通过, 尽快 …), dates and house numbers. A bridge or interchange ends a name, or is
    followed by what lies under or beside it (金沙洲大桥底); a metro station is named after 地铁 or before 地铁站
    (地铁客村站, 客村地铁站 → 客村站, 客村地铁站). A mention that is an ordinary word (铁路, 安置小区, 人行天桥, 火车站)
    or has fewer than two name characters is dropped.
    """
    text = _normalise(text)
    seen: dict[str, None] = {}
    if admin:
        for code in _admin_codes(text):  # already normalised
            seen.setdefault(code, None)
    # Administrative codes become boundaries so that "A市伊景园" yields 伊景园, not 市伊景园.
    body = ADMIN_CODE_RE.sub("|", text)
    boundary = 0
    stations = {m.end(): m.start(1) for m in _METRO_STATION.finditer(body)}  # 站's position → its name's start
    inside = {i for end, start in stations.items() for i in range(start, end - 1)}
    for m in _SUFFIX_RE.finditer(body):
        if m.start() in inside:
            continue  # 客村 of 地铁客村站: the station's name
        if m.group(0) == "站":
            if m.end() in stations:
                seen.setdefault(body[stations[m.end()] : m.end()], None)
                boundary = m.end()
            continue
        after = body[m.end() : m.end() + 2]
        if m.group(0) == "路" and after[:1] in _ROAD_WORDS_AFTER:
            continue  # 门口路灯, 路面, 路况: the word 路灯, not a road named 门口
        weak_end = after[:1] == "路" and after[1:] in _ROAD_WORDS_AFTER  # 金石街路灯: the street, then 路灯
        if m.group(0) in _WEAK_SUFFIXES and after and _NAME_CHAR_RE.match(after[0]) and not weak_end:
            continue
        if m.group(0) in _BRIDGES and after and _NAME_CHAR_RE.match(after[0]) and after[0] not in _BESIDE_BRIDGE:
            continue
        start = m.start()
        left = start
        # A name never reaches into the previous mention: 泉塘街道尖山社区 gives 泉塘街道 and 尖山社区.
        while left > boundary and start - left < _MAX_NAME:
            ch = body[left - 1]
            if not _NAME_CHAR_RE.match(ch) or ch in _STOP_CHARS:
                break
            left -= 1
        name = body[left:start]
        stops = list(_STOP_WORD_RE.finditer(name))
        if stops:
            name = name[stops[-1].end() :]
        # A district, county or city name ends before the place: 白云区嘉禾街望岗社区 → 嘉禾街望岗社区, not 云区….
        # (the rightmost such end that leaves a name of two characters: 番禺区市桥街 → 市桥街)
        ends = [i for i, ch in enumerate(name) if ch in "区县市" and i > 0]
        if ends and ends[-1] == len(name) - 1:
            continue  # 增城区 + 镇(龙村): a district's name and the first character of the next place
        cut = next((i for i in reversed(ends) if len(name) - i - 1 >= 2), None)
        if cut is not None:
            name = name[cut + 1 :]
        route = _ROUTE_RE.search(name) if m.group(0) == "路" and name[-1:].isascii() else None
        if route is not None:
            # A bus route (205路, W125路; 公交公司将28路 → 28路): route numbers tell problems on different lines apart.
            seen.setdefault(route.group().upper() + "路", None)
            boundary = m.end()
            continue
        # Leading digits/latin letters are usually house numbers or codes, not part of the name; so is a house or
        # building number in front of it (88号东风路, 3栋幸福花园 → 东风路, 幸福花园).
        name = _HOUSE_NUMBER_RE.split(name)[-1].lstrip("0123456789")
        if len(name) < 2:
            continue
        if m.group(0) == "村" and name.endswith("组"):
            continue  # 模占湾组村民: a villagers' group, then the word 村民
        mention = name + m.group(0)
        boundary = m.end()
        if mention in _GENERIC or name in _GENERIC or mention.endswith(_GENERIC_ENDINGS):
            continue
        seen.setdefault(mention, None)
    return list(seen)


# A place name the extractor may have taken a few characters too many in front of: a counted place this long (or
# longer) that ends another absorbs it (see fold_place_variants).
FOLD_MIN_CHARS = 4
FOLD_MAX_FRONT = 3


def place_folds(counts: Mapping[str, int]) -> dict[str, str]:
    """Which counted places are forms of another that carry a few characters of the sentence in front of its name —
    以后钟落潭二横路 and 八点钟落潭二横路 beside 钟落潭二横路, where a time or a word the stop lists do not know ran
    into the name — each mapped to the name it folds into: a counted place of at least ``FOLD_MIN_CHARS`` characters
    that ends the longer one after at most ``FOLD_MAX_FRONT`` characters and is named at least as often. Longer forms
    fold first, so a chain ends at the shortest; a short name (新村 in 飞鹅新村) or a rarer one (机场路 once beside
    白云机场路 often) is never the one kept."""
    work = dict(counts)
    into: dict[str, str] = {}
    for place in sorted(work, key=len, reverse=True):
        n = work[place]
        for front in range(1, min(FOLD_MAX_FRONT, len(place) - FOLD_MIN_CHARS) + 1):
            shorter = place[front:]
            if work.get(shorter, 0) >= n:
                work[shorter] += n
                del work[place]
                into[place] = shorter
                break

    def final(place: str) -> str:
        while place in into:
            place = into[place]
        return place

    return {place: final(place) for place in into}


def fold_place_variants(counts: Counter[str]) -> None:
    """Fold, in place, the counts of the forms :func:`place_folds` finds into the names they are forms of."""
    for variant, name in place_folds(counts).items():
        counts[name] += counts.pop(variant)
