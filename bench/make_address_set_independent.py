"""Build bench/data/addresses_independent.csv and addresses_negative.csv: a second labelled address set.

Written by a separate session as an independent check of `cityhub nlp locate` (2026-12-01), before it looked at
bench/data/addresses_labelled.csv or its generator, so its forms and biases differ: all eleven districts, complaint
sentences, deletion and homophone typos, communities whose name is shared by several streets, names without
suffixes, and lines with no Guangzhou place at all (other cities' addresses, plain complaints).
The resolver was then improved with its failures in view, so it is a development set now, not a held-out one.

    .venv/bin/python bench/make_address_set_independent.py

Labels come only from ../shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv.
Outputs:
  addresses_independent.csv  columns form,text,street_code,community_code,ambiguous,candidates
      ambiguous=1 -> no single right answer; correct iff the resolver says ambiguous=true
                      (candidates lists the possible street codes, '|' separated)
  addresses_negative.csv  columns form,text  (no Guangzhou place; any street returned = false positive)
"""

import collections
import csv
import random
import re
from pathlib import Path

import opencc

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared/data/china_admin_divisions"
DIV = SHARED / "guangzhou/guangzhou_divisions.csv"
NBS_GD = SHARED / "guangdong_streets_nbs_modood.csv"
OUT = ROOT / "bench/data/addresses_independent.csv"
NEG = ROOT / "bench/data/addresses_negative.csv"
rnd = random.Random(20240601)
S2T = opencc.OpenCC("s2t")

# ---------------------------------------------------------------- load divisions
rows = list(csv.DictReader(DIV.open(encoding="utf-8")))
districts = {r["code"]: r["name"] for r in rows if r["level"] == "district"}
streets = {r["code"]: r for r in rows if r["level"] == "street"}
SUF = re.compile(r"(社区)?(居民居委会|居居委会|居委会会|居委委员会|居民委员会|居委会|村民委员会|村委会)$")


class C:  # community
    pass


comms = []
for r in rows:
    if r["level"] != "community":
        continue
    m = SUF.search(r["name"])
    if not m:
        continue  # 生活区 etc.
    c = C()
    c.code, c.full, c.scode = r["code"], r["name"], r["parent_code"]
    c.base = r["name"][: m.start()]
    if "镇" in c.base or len(c.base) < 2:
        continue
    c.kind = "村" if "村" in m.group(0) else "社区"
    c.dcode = c.scode[:6]
    comms.append(c)


def sbase(scode):
    n = streets[scode]["name"]
    return re.sub(r"(街道|镇)$", "", n)


def stype(scode):
    return "镇" if streets[scode]["name"].endswith("镇") else "街道"


def dname(code):
    return districts[code[:6]]


# real streets only (not 水库/林场 units)
real_streets = [s for s in streets if streets[s]["name"].endswith(("街道", "镇"))]
street_base_count = collections.Counter(sbase(s) for s in real_streets)
uniq_streets = [s for s in real_streets if street_base_count[sbase(s)] == 1]

by_base = collections.defaultdict(list)
for c in comms:
    by_base[c.base].append(c)
by_base_kind = collections.defaultdict(list)
for c in comms:
    by_base_kind[(c.base, c.kind)].append(c)
# names that appear anywhere (street bases, community bases, district bases) -> filler must avoid them
all_names = set(by_base) | {sbase(s) for s in real_streets} | {d[:-1] for d in districts.values()}
all_names = {n for n in all_names if len(n) >= 2}


def clean(s):
    return not any(n in s for n in all_names)


def uniq_comm(c):
    """community base unique in whole city (any kind)"""
    return len(by_base[c.base]) == 1 and c.base not in {sbase(s) for s in real_streets}


uniq_comms = [c for c in comms if uniq_comm(c)]
dup_groups = {b: v for b, v in by_base_kind.items() if len({c.scode for c in v}) > 1}


# ---------------------------------------------------------------- helpers
def short_comm(c):
    return c.base + ("村" if c.kind == "村" and not c.base.endswith("村") else ("" if c.kind == "村" else "社区"))


def comm_variant(c):
    if c.kind == "村":
        return rnd.choice([c.base + "村委会", c.base + "村委", c.base + "村民委员会", short_comm(c)])
    return rnd.choice(
        [c.base + "社区居委会", c.base + "居委会", c.base + "居委", c.base + "社区居民委员会", short_comm(c)]
    )


def street_full(s):
    return streets[s]["name"]


def street_short(s):
    # 街 = 街道; towns keep 镇
    return sbase(s) + ("街" if stype(s) == "街道" else "镇")


def street_any(s):
    return rnd.choice([street_full(s), street_short(s)])


def maybe_city(p=0.5):
    return "广州市" if rnd.random() < p else ""


ROAD_SUFFIX = ["路", "大道", "大街", "中路", "北路", "南路", "东路", "西路", "一横路", "二巷", "大道北"]
GENERIC_ROADS = [
    r
    for r in [
        "机场路",
        "广园中路",
        "解放北路",
        "环市东路",
        "科韵路",
        "新港中路",
        "工业大道",
        "沙太路",
        "增槎路",
        "广州大道北",
        "中山大道西",
        "黄埔大道西",
        "东风东路",
        "北京路",
        "江南大道中",
        "南洲路",
        "番禺大道",
        "迎宾路",
        "清河路",
        "新城大道",
        "风神大道",
        "河堤路",
        "滨江路",
        "人民路",
        "建设大马路",
        "天府路",
        "荔湾路",
        "同福中路",
        "宝岗大道",
    ]
    if clean(r)
]


def road_for(s):
    b = sbase(s)
    if rnd.random() < 0.55:
        return b + rnd.choice(ROAD_SUFFIX)
    return rnd.choice(GENERIC_ROADS)


def house():
    return rnd.choice(
        [
            f"{rnd.randint(1, 300)}号",
            f"{rnd.randint(1, 120)}号{rnd.randint(1, 12)}栋{rnd.randint(1, 30)}0{rnd.randint(1, 6)}",
            f"{rnd.randint(1, 99)}号之{rnd.randint(1, 9)}",
            f"{rnd.randint(1, 60)}号大院",
            f"{rnd.randint(2, 88)}号{rnd.choice('ABCDE')}座",
            f"{rnd.randint(1, 30)}巷{rnd.randint(1, 20)}号",
        ]
    )


LANDMARKS = [
    mark
    for mark in [
        "地铁站附近",
        "地铁站B出口",
        "菜市场旁边",
        "派出所对面",
        "公交总站",
        "中心小学门口",
        "卫生服务中心附近",
        "街道办事处旁",
        "邮政局对面",
        "农贸市场",
        "医院附近",
        "公园东门",
        "万达广场后面",
        "华润万家楼上",
        "肯德基旁",
        "加油站旁边",
        "文化广场",
        "汽车站附近",
        "体育中心",
        "第一中学后门",
    ]
    if clean(mark)
]
GENERIC_POI = [
    poi
    for poi in ["南方医院附近", "中山大学附近", "地铁站", "华南理工大学北门", "暨南大学", "烈士陵园", "火车站"]
    if clean(poi)
]

BUILDINGS = [
    b
    for b in [
        "华苑小区",
        "碧桂园",
        "保利花园",
        "万科城",
        "锦绣小区",
        "丽景苑",
        "嘉园",
        "东方明珠小区",
        "城市花园",
        "恒大御景",
        "翡翠绿洲",
        "怡景花园",
        "商业广场",
        "富力城",
    ]
    if clean(b)
]

PROBLEMS = [
    p
    for p in [
        "楼下大排档噪音扰民到凌晨",
        "垃圾堆放多日无人清理",
        "路灯坏了一个多月",
        "有人占道经营",
        "下水道堵塞污水外溢",
        "有违章搭建",
        "工地夜间施工很吵",
        "共享单车乱停放堵路",
        "大树倒伏压到电线",
        "电动车在楼道充电很危险",
        "小区门口积水严重",
        "有人在绿化带种菜",
        "楼顶漏水",
        "停车场乱收费",
        "商铺油烟很大",
        "狗吠扰民",
        "道路坑洼不平",
        "井盖缺失",
        "自来水浑浊",
        "经常停电",
        "凌晨有人放鞭炮",
        "垃圾站臭味很大",
    ]
    if clean(p)
]

SENT_TEMPLATES = [
    "我住在{a}的{b}，楼下{p}，希望尽快处理。",
    "投诉：{a}附近{p}，已经好几天了",
    "你好，我是{a}的居民，{p}，麻烦派人来看看",
    "{p}，地点在{a}，请相关部门处理！",
    "反映{a}一带{p}。",
    "市民来电反映：{a}{h}{p}。诉求：尽快整改。",
    "来电人称其位于{a}的住所{p}，要求核查。",
    "请问{a}这边{p}归谁管？",
    "我家在{a}{h}，最近{p}，打了好几次电话都没人理",
    "【工单】地址：{a}{h}；问题：{p}",
    "{a}那边{p}，你们能不能管一管",
    "本人于{a}经营小店，门口{p}，影响生意",
]


def typo_sub(name):
    """substitute one character in name by a homophone / near character"""
    idx = list(range(len(name)))
    rnd.shuffle(idx)
    for i in idx:
        ch = name[i]
        if ch in HOMO:
            return name[:i] + rnd.choice(HOMO[ch]) + name[i + 1 :]
    i = rnd.randrange(len(name))
    return name[:i] + rnd.choice("的和平安福兴") + name[i + 1 :]


HOMO = {}
HOMOPHONE_ROWS = [
    "东冬",
    "南男楠",
    "新心欣",
    "西希",
    "岗刚港",
    "沙纱砂",
    "园圆元",
    "龙隆笼",
    "山衫珊",
    "大达",
    "石时实",
    "塘堂唐",
    "北背",
    "花华",
    "华花化",
    "金今锦",
    "和禾合",
    "江姜将",
    "湖胡糊",
    "田甜填",
    "海亥",
    "头投",
    "城成程",
    "溪希西",
    "苑院源",
    "岭领令",
    "中钟忠",
    "兴星新",
    "凤风奉",
    "水税",
    "景井警",
    "星兴醒",
    "安鞍按",
    "黄皇璜",
    "联连莲",
    "平坪苹",
    "天添",
    "马码玛",
    "里李理",
    "涌勇永",
    "福富服",
    "德得",
    "云芸运",
    "丰风峰",
    "湾弯",
    "口扣",
    "元园源",
    "河何禾",
    "庄装妆",
    "长常",
    "白百柏",
    "桥乔侨",
    "源元圆",
    "乐勒",
    "荔力丽",
    "珠朱株",
    "永勇泳",
    "埔浦铺",
    "高糕",
    "红宏洪",
    "港岗",
    "横衡恒",
    "富福付",
    "潭谈坛",
    "鹤贺赫",
    "洞东动",
    "明铭名",
    "光广",
    "林临琳",
    "松嵩淞",
    "康糠",
    "京经晶",
    "嘉家佳",
    "禾和荷",
    "同桐铜",
    "棠堂唐",
    "泰太态",
    "均君",
    "井景",
    "门们",
    "归规龟",
    "钟中忠",
    "落洛",
    "人仁",
    "太泰",
    "市是",
    "洲州舟",
    "宝保",
    "穗岁",
    "秀绣",
    "宁凝",
    "贤闲",
    "梅枚玫",
    "锦金景",
    "隆龙",
    "岭令",
    "坑吭",
    "围维",
    "头投",
    "基机",
    "滘窖",
    "涌勇",
    "边编",
    "心欣",
    "角脚",
    "美每",
    "文闻",
    "阳杨洋",
    "翠脆",
    "碧壁",
    "生声",
    "楼搂",
    "桂贵",
    "良粮",
    "夏下",
    "塱朗",
    "地弟",
    "农浓",
    "顺瞬",
    "竹烛",
    "罗萝",
    "泉全",
    "尾伟",
    "官关",
    "约越",
    "环还",
    "侨桥",
    "合和",
    "万晚",
    "青清",
    "紫子",
    "莲连",
    "松颂",
    "汇会",
    "巷象",
    "第弟",
    "场厂",
    "前钱",
    "路鹭",
    "小晓",
    "上尚",
    "下夏",
    "五伍",
    "三叁",
    "二贰",
    "一壹",
    "九久",
    "民敏",
    "居局",
    "区曲",
    "社设",
    "庆青",
    "飞非",
    "凰皇",
    "广光",
    "岳越",
    "瑞锐",
    "凯楷",
    "吉集",
    "昌常",
    "盛胜",
]
for line in HOMOPHONE_ROWS:
    HOMO[line[0]] = list(line[1:])

ALL_STREET_BASES = {sbase(s) for s in real_streets}
ALL_COMM_BASES = set(by_base)


def typo_del(name):
    i = rnd.randrange(len(name))
    return name[:i] + name[i + 1 :]


# ---------------------------------------------------------------- generate
out = []
seen = set()


def add(form, text, scode, ccode="", amb=0, cands=""):
    if text in seen:
        return False
    seen.add(text)
    out.append(dict(form=form, text=text, street_code=scode, community_code=ccode, ambiguous=amb, candidates=cands))
    return True


def sample_comm(pool=None, kind=None):
    pool = pool or comms
    while True:
        c = rnd.choice(pool)
        if kind and c.kind != kind:
            continue
        return c


def spread_comms(n, pool):
    """n communities spread across all districts (round robin over districts)"""
    byd = collections.defaultdict(list)
    for c in pool:
        byd[c.dcode].append(c)
    ds = sorted(byd)
    res = []
    i = 0
    while len(res) < n:
        d = ds[i % len(ds)]
        res.append(rnd.choice(byd[d]))
        i += 1
    return res


def spread_streets(n, pool):
    byd = collections.defaultdict(list)
    for s in pool:
        byd[s[:6]].append(s)
    ds = sorted(byd)
    return [rnd.choice(byd[ds[i % len(ds)]]) for i in range(n)]


# Only use communities whose base is unique within their own street AND whose base+street combo determines them.
# (the name with its street given must determine the community)
def determined_in_street(c):
    return sum(1 for x in by_base[c.base] if x.scode == c.scode) == 1


base_comms = [c for c in comms if determined_in_street(c)]

# 1 full official name with 广州市
for c in spread_comms(33, base_comms):
    add("full_city", f"广州市{dname(c.scode)}{street_full(c.scode)}{c.full}", c.scode, c.code)
# 2 district + street + official community, no city
for c in spread_comms(25, base_comms):
    add("full_nocity", f"{dname(c.scode)}{street_full(c.scode)}{c.full}", c.scode, c.code)
# 3 short forms XX街XX社区 / XX镇XX村 (with district, sometimes city)
for c in spread_comms(33, base_comms):
    add(
        "short_street_comm", f"{maybe_city(0.3)}{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}", c.scode, c.code
    )
# 4 no district: XX街道XX社区居委会 / XX街XX社区 / XX镇XX村委会
for c in spread_comms(33, [c for c in base_comms if street_base_count[sbase(c.scode)] == 1]):
    add("no_district", f"{street_any(c.scode)}{comm_variant(c)}", c.scode, c.code)
# 5 community alone (name unique in the city): "大源村" style
for c in spread_comms(28, uniq_comms):
    add("comm_only", short_comm(c), c.scode, c.code)
# 6 district + community, no street (unique in city)
for c in spread_comms(16, uniq_comms):
    add("district_comm", f"{maybe_city(0.4)}{dname(c.scode)}{comm_variant(c)}", c.scode, c.code)
# 7 street only
for s in spread_streets(28, uniq_streets):
    t = rnd.choice(
        [f"{dname(s)}{street_full(s)}", f"广州市{dname(s)}{street_short(s)}", street_short(s), street_full(s)]
    )
    add("street_only", t, s)
# 8 road/house number with a street named, no community
for s in spread_streets(33, uniq_streets):
    r = road_for(s)
    t = rnd.choice(
        [
            f"{dname(s)}{street_short(s)}{r}{house()}",
            f"{street_short(s)}{r}{house()}",
            f"广州市{dname(s)}{street_full(s)}{r}{house()}",
            f"{r}{house()}（{street_short(s)}）",
        ]
    )
    add("road_street", t, s)
# 9 landmark with a street named
for s in spread_streets(22, uniq_streets):
    lm = rnd.choice(LANDMARKS + GENERIC_POI)
    t = rnd.choice([f"{street_short(s)}{lm}", f"{dname(s)}{street_short(s)}{lm}", f"{street_full(s)}{lm}"])
    add("landmark_street", t, s)
# 10 community + house/building after and before
for c in spread_comms(28, base_comms):
    r = road_for(c.scode)
    t = rnd.choice(
        [
            f"{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}{r}{house()}",
            f"{street_full(c.scode)}{comm_variant(c)}{rnd.choice(BUILDINGS)}{house()}",
            f"{r}{house()}，{street_short(c.scode)}{short_comm(c)}",
            f"{rnd.choice(BUILDINGS)}{house()}（{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}）",
        ]
    )
    add("house_building", t, c.scode, c.code)
# 11 spaces & punctuation
for c in spread_comms(28, base_comms):
    seps = rnd.choice([" ", "  ", "，", "、", ",", " - ", "/", "　"])
    parts = [dname(c.scode), street_any(c.scode), short_comm(c) if rnd.random() < 0.6 else c.full]
    if rnd.random() < 0.4:
        parts.insert(0, "广州市")
    if rnd.random() < 0.4:
        parts.append(road_for(c.scode) + " " + rnd.choice(["旁", "附近", house()]))
    t = seps.join(parts)
    if rnd.random() < 0.3:
        t = rnd.choice(["地址：", "【", "(", " "]) + t + rnd.choice(["", "】", ")", "。", " "])
    add("spaces_punct", t, c.scode, c.code)
# 12 typos in street name (substitution / deletion); context: district and sometimes community
n = 0
for s in spread_streets(200, uniq_streets):
    if n >= 22:
        break
    b = sbase(s)
    tb = typo_sub(b)
    if tb in all_names or tb == b:
        continue
    cs = [c for c in base_comms if c.scode == s]
    if cs and rnd.random() < 0.5:
        c = rnd.choice(cs)
        t = f"{dname(s)}{tb}{stype(s) if rnd.random() < 0.5 else ('街' if stype(s) == '街道' else '镇')}{short_comm(c)}"
        ok = add("typo_street_sub", t, s, c.code)
    else:
        t = f"{dname(s)}{tb}{stype(s)}{road_for(s) if False else ''}{house() if rnd.random() < 0.5 else ''}"
        ok = add("typo_street_sub", t, s)
    n += ok
n = 0
for s in spread_streets(300, [s for s in uniq_streets if len(sbase(s)) >= 3]) + spread_streets(300, uniq_streets):
    if n >= 14:
        break
    b = sbase(s)
    tb = typo_del(b)
    if tb in all_names or len(tb) < 1:
        continue
    cs = [c for c in base_comms if c.scode == s and uniq_comm(c)]
    if len(b) >= 3:
        t = f"{dname(s)}{tb}{stype(s)}"
        ok = add("typo_street_del", t, s)
    elif cs:
        c = rnd.choice(cs)
        t = f"{dname(s)}{tb}{stype(s)}{short_comm(c)}"
        ok = add("typo_street_del", t, s, c.code)
    else:
        ok = False
    n += ok
# 13 typos in community name (street given, so determinable)
n = 0
for c in spread_comms(300, base_comms):
    if n >= 22:
        break
    tb = typo_sub(c.base)
    if tb in all_names or tb == c.base:
        continue
    k = "村" if c.kind == "村" else "社区"
    city, named_street = maybe_city(0.3), street_any(c.scode)
    tail = rnd.choice(["", "居委会" if k == "社区" else "委会"])
    t = f"{city}{dname(c.scode)}{named_street}{tb}{k}{tail}"
    n += add("typo_comm_sub", t, c.scode, c.code)
n = 0
for c in spread_comms(400, [c for c in base_comms if len(c.base) >= 3]):
    if n >= 16:
        break
    tb = typo_del(c.base)
    if tb in all_names:
        continue
    # the deleted form must not be a substring-match of another community in the same street
    if any(tb in x.base for x in comms if x.scode == c.scode and x is not c):
        continue
    k = "村" if c.kind == "村" else "社区"
    t = f"{dname(c.scode)}{street_any(c.scode)}{tb}{k}"
    n += add("typo_comm_del", t, c.scode, c.code)
# 14 traditional characters (converted from several forms)
for c in spread_comms(33, base_comms):
    t = rnd.choice(
        [
            f"广州市{dname(c.scode)}{street_full(c.scode)}{c.full}",
            f"{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}",
            f"{street_short(c.scode)}{short_comm(c)}{road_for(c.scode)}{house()}",
            f"我住在{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}，{rnd.choice(PROBLEMS)}",
        ]
    )
    tt = S2T.convert(t)
    if tt == t:
        continue
    add("traditional", tt, c.scode, c.code)
# 15 sentence-embedded (>=60)
sent_n = 0
pool_c = spread_comms(60, base_comms)
pool_s = spread_streets(40, uniq_streets)
for i in range(100):
    tpl = rnd.choice(SENT_TEMPLATES)
    if i % 5 in (0, 1, 2):
        c = pool_c[i % len(pool_c)]
        a = rnd.choice(
            [
                f"{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}",
                f"{street_short(c.scode)}{short_comm(c)}",
                f"{dname(c.scode)}{street_full(c.scode)}{comm_variant(c)}",
                f"广州{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}",
            ]
        )
        sc, cc = c.scode, c.code
    else:
        s = pool_s[i % len(pool_s)]
        a = rnd.choice(
            [
                f"{dname(s)}{street_short(s)}",
                f"{street_short(s)}{road_for(s)}",
                f"{dname(s)}{street_full(s)}{road_for(s)}",
                f"{street_short(s)}",
            ]
        )
        sc, cc = s, ""
    t = tpl.format(a=a, b=rnd.choice(BUILDINGS), p=rnd.choice(PROBLEMS), h=house())
    sent_n += add("sentence", t, sc, cc)
    if sent_n >= 75:
        break
# 16 duplicate community names: with street given -> determined
groups = sorted(dup_groups.items(), key=lambda kv: kv[0])
rnd.shuffle(groups)
n = 0
for _key, cs in groups:
    if n >= 28:
        break
    c = rnd.choice(cs)
    if not determined_in_street(c):
        continue
    t = rnd.choice(
        [
            f"{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}",
            f"{street_full(c.scode)}{c.full}",
            f"{street_short(c.scode)}{short_comm(c)}{house()}",
        ]
    )
    n += add("dup_comm_with_street", t, c.scode, c.code)
# 17 duplicate community names alone -> ambiguous
n = 0
for (base, kind), cs in groups:
    if n >= 18:
        break
    if base in ALL_STREET_BASES:
        continue
    c = cs[0]
    t = rnd.choice([short_comm(c), short_comm(c) + ("居委会" if kind == "社区" else "委会")])
    n += add("dup_comm_alone", t, "", "", 1, "|".join(sorted({x.scode for x in cs})))
# 18 duplicate community names with district only
n = 0
for (base, _kind), cs in groups:
    if n >= 14:
        break
    dcount = collections.Counter(x.dcode for x in cs)
    c = rnd.choice(cs)
    if base in ALL_STREET_BASES:
        continue
    t = f"{dname(c.scode)}{short_comm(c)}"
    if dcount[c.dcode] == 1:
        n += add("dup_comm_district", t, c.scode, c.code)
    else:
        n += add("dup_comm_district", t, "", "", 1, "|".join(sorted({x.scode for x in cs if x.dcode == c.dcode})))
# 19 ambiguous street name 新塘 (天河区新塘街道 vs 增城区新塘镇) + 白云 (越秀区白云街道 vs 白云区)
xt_th = "440106022"
xt_zc = "440118101"
cs_th = [c for c in comms if c.scode == xt_th]
cs_zc = [c for c in comms if c.scode == xt_zc and uniq_comm(c)]
for i in range(4):
    c = cs_zc[i * 3 % len(cs_zc)]
    add(
        "ambig_street_ctx",
        rnd.choice(
            [
                f"新塘{short_comm(c)}",
                f"新塘镇{short_comm(c)}",
                f"增城新塘{short_comm(c)}",
                f"增城区新塘{road_for(xt_zc)}{house()}",
            ]
        ),
        xt_zc,
        c.code if "路" not in short_comm(c) else "",
    )
for i in range(3):
    c = cs_th[(i * 5 + 1) % len(cs_th)]
    add(
        "ambig_street_ctx",
        rnd.choice([f"天河区新塘{short_comm(c)}", f"天河新塘街{short_comm(c)}", f"新塘街道{short_comm(c)}"]),
        xt_th,
        c.code,
    )
add("ambig_street_ctx", "天河区新塘街", xt_th)
add("ambig_street_ctx", "增城区新塘镇", xt_zc)
add("ambig_street_ctx", "增城新塘汽车站附近", xt_zc)
add("ambig_street_ctx", "天河区新塘街道办事处", xt_th)
add("ambig_street_alone", "新塘", "", "", 1, f"{xt_th}|{xt_zc}")
add("ambig_street_alone", "我在新塘这边，路灯坏了", "", "", 1, f"{xt_th}|{xt_zc}")
add("ambig_street_alone", "新塘附近有人占道经营", "", "", 1, f"{xt_th}|{xt_zc}")
by_ = [c for c in comms if c.scode == "440104020" and determined_in_street(c)]
for c in by_[:4]:
    add(
        "ambig_street_ctx",
        rnd.choice([f"越秀区白云街道{c.full}", f"越秀区白云街{short_comm(c)}", f"广州市越秀区白云街道{short_comm(c)}"]),
        "440104020",
        c.code,
    )
add("ambig_street_ctx", "越秀区白云街道", "440104020")
# 20 community-suffix variants (村委 / 居委 / 村民委员会 / 居委会) with district+street
for c in spread_comms(16, base_comms):
    add("suffix_variant", f"{dname(c.scode)}{street_short(c.scode)}{comm_variant(c)}", c.scode, c.code)

# ---------------------------------------------------------------- harder forms (second batch)
# 21 community names that equal another street's name ("花山镇南村", "江高镇珠江村", "嘉禾街太和社区")
street_bases_map = {sbase(s): s for s in real_streets}
namesakes = [
    c for c in comms if c.base in street_bases_map and street_bases_map[c.base] != c.scode and determined_in_street(c)
]
for c in rnd.sample(namesakes, min(35, len(namesakes))):
    t = rnd.choice(
        [
            f"{dname(c.scode)}{street_short(c.scode)}{short_comm(c)}",
            f"{street_full(c.scode)}{c.full}",
            f"{dname(c.scode)}{street_full(c.scode)}{short_comm(c)}{house()}",
        ]
    )
    add("namesake_comm", t, c.scode, c.code)
# 22 no suffixes at all ("白云区 嘉禾 长红")
for c in spread_comms(16, [c for c in base_comms if uniq_comm(c) and len(c.base) >= 2]):
    sep = rnd.choice([" ", "", "-"])
    add("no_suffix", f"{dname(c.scode)}{sep}{sbase(c.scode)}{sep}{c.base}", c.scode, c.code)
# 23 district without 区 ("白云嘉禾街长红社区", "广州番禺市桥街")
for c in spread_comms(13, base_comms):
    add(
        "district_no_qu",
        rnd.choice(
            [
                f"{dname(c.scode)[:-1]}{street_short(c.scode)}{short_comm(c)}",
                f"广州{dname(c.scode)[:-1]}{street_short(c.scode)}{short_comm(c)}",
            ]
        ),
        c.scode,
        c.code,
    )
# 24 typo in short street name, no district
n = 0
for s in spread_streets(200, uniq_streets):
    if n >= 12:
        break
    b = sbase(s)
    tb = typo_sub(b)
    if tb in all_names or tb == b:
        continue
    cs = [c for c in base_comms if c.scode == s and uniq_comm(c)]
    if cs and n % 2 == 0:
        c = rnd.choice(cs)
        n += add("typo_street_nodist", f"{tb}{'街' if stype(s) == '街道' else '镇'}{short_comm(c)}", s, c.code)
    else:
        n += add("typo_street_nodist", f"{tb}{'街' if stype(s) == '街道' else '镇'}{road_for(s)}{house()}", s)
# 25 sentence with community only (unique in city)
for i, c in enumerate(spread_comms(13, uniq_comms)):
    tpl = SENT_TEMPLATES[i % len(SENT_TEMPLATES)]
    add(
        "sentence_comm_only",
        tpl.format(a=short_comm(c), b=rnd.choice(BUILDINGS), p=rnd.choice(PROBLEMS), h=house()),
        c.scode,
        c.code,
    )
# 26 road named after ANOTHER street ("天河区石牌街沙太路" style): label = the street named as 街/街道
n = 0
for s in spread_streets(60, uniq_streets):
    if n >= 15:
        break
    o = rnd.choice([x for x in uniq_streets if x[:6] != s[:6]])
    rd = sbase(o) + rnd.choice(["路", "大道", "中路", "北路"])
    n += add(
        "confuser_road",
        rnd.choice([f"{dname(s)}{street_short(s)}{rd}{house()}", f"{dname(s)}{street_full(s)}{rd}{house()}附近"]),
        s,
    )
# 27 hotline work-order format
for c in spread_comms(13, base_comms):
    t = rnd.choice(
        [
            f"【来电】区域：{dname(c.scode)}；街镇：{street_full(c.scode)}；村居：{short_comm(c)}；"
            f"详细地址：{road_for(c.scode)}{house()}",
            f"所属区：{dname(c.scode)} 所属街道：{street_full(c.scode)} 所属社区：{c.full} "
            f"问题：{rnd.choice(PROBLEMS)}",
            f"事发地点：{street_short(c.scode)}{short_comm(c)}{road_for(c.scode)}{house()}（来电人：陈先生）",
        ]
    )
    add("hotline_format", t, c.scode, c.code)

with open(OUT, "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=["form", "text", "street_code", "community_code", "ambiguous", "candidates"])
    w.writeheader()
    w.writerows(out)

# ---------------------------------------------------------------- negatives
neg = []
PLAIN = [
    "楼下大排档噪音扰民到凌晨，希望有关部门处理",
    "我要投诉快递员态度恶劣",
    "社保卡丢了怎么补办",
    "公积金提取需要什么材料",
    "孩子上学的积分入学怎么算",
    "网购商品质量问题商家不退款",
    "医保报销比例是多少",
    "希望政府加快建设进度，早日通车",
    "人民群众的利益无小事，请重视",
    "物业费涨价不合理",
    "出租车司机绕路多收钱",
    "请问新生儿户口怎么办理",
    "外卖骑手闯红灯很危险",
    "工资被拖欠三个月了",
    "前进的道路上困难很多，但请解决我的问题",
    "和平年代也要注意消防安全",
    "希望多开几条公交线路",
    "电信宽带经常断网",
    "手机被诈骗了怎么办",
    "我想咨询一下驾驶证换证流程",
    "邻居家装修每天早上七点就开始打钻",
    "天上的白云很好看，但空气质量最近很差",
    "小区业委会选举有猫腻",
    "燃气费计费有问题",
    "楼上漏水到我家，协商不成",
    "垃圾分类的规定是什么",
    "健身房跑路了会员费退不回来",
    "新华书店的营业时间是几点",
    "幼儿园收费太高",
    "养老金什么时候发放",
    "快递柜超时收费不合理",
    "打不通客服电话",
    "建议增加充电桩",
    "夜市太吵影响休息",
    "路口红绿灯时间太短",
    "商场停车收费太贵",
    "房东不退押金",
    "培训机构跑路",
    "二手房交易税费咨询",
    "噪音扰民，希望尽快解决",
    "我家的狗走丢了，有人看到吗",
    "投诉某银行排队时间太长",
]
neg += [("neg_plain", t) for t in PLAIN]
# other cities / provinces, including street names identical to Guangzhou ones
gd = list(csv.DictReader(NBS_GD.open(encoding="utf-8")))
gz_bases = ALL_STREET_BASES
non_gz = [r for r in gd if r.get("cityName") and r["cityName"] != "广州市"]
same_name = [r for r in non_gz if re.sub(r"(街道|镇|乡)$", "", r["name"]) in gz_bases]
other = [r for r in non_gz if r not in same_name]
rnd.shuffle(same_name)
rnd.shuffle(other)
for r in other[:30]:
    neg.append(
        (
            "neg_other_city",
            rnd.choice(
                [
                    f"{r['cityName']}{r['areaName']}{r['name']}{rnd.randint(1, 200)}号",
                    f"我住在{r['cityName']}{r['areaName']}{r['name']}，{rnd.choice(PROBLEMS)}",
                    f"{r['cityName']}{r['name']}",
                ]
            ),
        )
    )
for r in same_name[:15]:
    neg.append(
        (
            "neg_other_city_samename",
            rnd.choice(
                [
                    f"{r['cityName']}{r['areaName']}{r['name']}{rnd.randint(1, 200)}号",
                    f"{r['cityName']}{r['areaName']}{r['name']}",
                ]
            ),
        )
    )
neg += [
    ("neg_other_city", t)
    for t in [
        "深圳市南山区粤海街道科技园",
        "北京市朝阳区望京街道阜通东大街6号",
        "上海市浦东新区陆家嘴街道",
        "佛山市南海区桂城街道南海大道",
        "东莞市虎门镇连升路",
        "杭州市西湖区文新街道",
        "成都市武侯区玉林街道",
        "深圳市福田区华强北街道",
        "武汉市洪山区珞南街道",
        "厦门市思明区鹭江街道",
        "中山市石岐街道",
        "珠海市香洲区拱北街道",
        "惠州市惠城区江北街道",
    ]
]
neg = neg[:100]
with open(NEG, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["form", "text"])
    w.writerows(neg)

print(len(out), "labelled rows;", len(neg), "negatives")
print(collections.Counter(r["form"] for r in out))
print("districts covered:", collections.Counter(dname(r["street_code"]) for r in out if r["street_code"]))
