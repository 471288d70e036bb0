"""Build bench/data/addresses_labelled.csv.

Generated hard forms from real Guangzhou names, plus a hand-written part.

    .venv/bin/python bench/make_address_set.py [--seed 7] [--per-form 60]

Reads ../shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv (the real names and codes).
Labels are taken from the divisions directly (never from the resolver). Columns: part
(generated/handwritten), form, text, street_code, community_code ('' = the text tells no community).
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared/data/china_admin_divisions/guangzhou/guangzhou_divisions.csv"
OUT = ROOT / "bench/data/addresses_labelled.csv"

# Real Guangzhou roads (some embed division names on purpose: 新市墟路, 黄埔大道, 天河路).
ROADS = [
    "广园中路",
    "机场路",
    "白云大道北",
    "广州大道北",
    "解放北路",
    "环市东路",
    "东风中路",
    "中山五路",
    "江南大道中",
    "工业大道北",
    "天河路",
    "黄埔大道西",
    "中山大道西",
    "禺山大道",
    "迎宾路",
    "新市墟路",
    "增槎路",
    "鹤龙一路",
    "云城西路",
    "同泰路",
    "京溪路",
    "沙太路",
    "岗贝路",
    "石沙路",
    "南湖路",
    "人民北路",
    "东晓路",
    "宝岗大道",
    "金沙洲路",
    "荔城大道",
    "新塘大道",
    "青年路",
]
LANDMARKS = [
    "附近",
    "对面",
    "旁边",
    "楼下",
    "路口",
    "公交站旁",
    "小区门口",
    "菜市场旁",
    "后巷",
    "地铁站A出口",
]
# Common characters used for one-character typos.
TYPO_POOL = (
    "的了和是在有人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把"
    "性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但"
    "质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品"
    "式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战"
    "先回则任取据处理府研质信"
)


# Hand-written, realistic messy addresses (written by hand, not generated). (text, district, street, community
# core or '' when the text does not tell the community). Community cores are matched against the divisions.
HANDWRITTEN: list[tuple[str, str, str, str, str]] = [
    ("白云区嘉禾街望岗社区望岗大街3巷2号", "白云区", "嘉禾街道", "", "issue"),
    ("太和镇大源村大源北路88号", "白云区", "大源街道", "大源", "issue"),
    ("同和街蟾蜍石东路12号之一", "白云区", "同和街道", "蟾蜍石", "issue"),
    ("京溪街南方医院附近", "白云区", "京溪街道", "", "issue"),
    ("广州市白云区嘉禾街道望南社区居委会旁边的垃圾站", "白云区", "嘉禾街道", "望南", "messy"),
    ("白云区嘉禾望北社区鹤边一路口", "白云区", "嘉禾街道", "望北", "messy"),
    ("白云 嘉禾街 长湴社区 长湴村大街", "白云区", "嘉禾街道", "长湴", "messy"),
    ("白云区三元里街松柏岗社区机场路旁", "白云区", "三元里街道", "松柏岗", "messy"),
    ("三元里街道梓元岗社区居委会", "白云区", "三元里街道", "梓元岗", "messy"),
    ("新市街棠涌社区棠涌西街", "白云区", "新市街道", "棠涌", "messy"),
    ("白云区新市墟路汇侨南社区", "白云区", "新市街道", "汇侨南", "messy"),
    ("永平街集贤苑社区，集贤路口", "白云区", "永平街道", "集贤苑", "messy"),
    ("白云区永平街道颐和山庄社区北门", "白云区", "永平街道", "颐和山庄", "messy"),
    ("石井街潭村北社区石井大道", "白云区", "石井街道", "潭村北", "messy"),
    ("石井街道凰岗社区凰岗大街十巷", "白云区", "石井街道", "凰岗", "messy"),
    ("人和镇蚌湖社区", "白云区", "人和镇", "蚌湖", "messy"),
    ("白云区人和镇汉塘村委会对面", "白云区", "人和镇", "汉塘", "messy"),
    ("钟落潭镇竹料社区竹料大道", "白云区", "钟落潭镇", "竹料", "messy"),
    ("钟落潭长沙埔村路边", "白云区", "钟落潭镇", "长沙埔", "messy"),
    ("江高镇塘贝村工业区", "白云区", "江高镇", "塘贝", "messy"),
    ("白云区江高镇水沥村", "白云区", "江高镇", "水沥", "messy"),
    ("太和镇兴丰村", "白云区", "太和镇", "兴丰", "messy"),
    ("白云区太和谢家庄村委会附近鱼塘", "白云区", "太和镇", "谢家庄", "messy"),
    ("大源街米龙村米龙路", "白云区", "大源街道", "米龙", "messy"),
    ("同和街道握山社区", "白云区", "同和街道", "握山", "messy"),
    ("同和榕树头社区同和路", "白云区", "同和街道", "榕树头", "messy"),
    ("京溪街梅花园社区", "白云区", "京溪街道", "梅花园", "messy"),
    ("白云区京溪街道犀牛角社区南方医院宿舍", "白云区", "京溪街道", "犀牛角", "messy"),
    ("白云區京溪街京海社區", "白云区", "京溪街道", "京海", "traditional"),
    ("廣州市白雲區鍾落潭鎮竹料社區", "白云区", "钟落潭镇", "竹料", "traditional"),
    ("越秀區北京街道盛賢社區", "越秀区", "北京街道", "", "traditional"),
    ("天河區林和街道天壽社區", "天河区", "林和街道", "天寿", "traditional"),
    ("越秀区北京街流水井社区", "越秀区", "北京街道", "流水井", "messy"),
    ("越秀北京街都府社区，北京路步行街", "越秀区", "北京街道", "都府", "messy"),
    ("北京街道财厅前社区", "越秀区", "北京街道", "财厅前", "messy"),
    ("天河区石牌街华南师范大学社区", "天河区", "石牌街道", "华南师范大学", "messy"),
    ("石牌街暨南大学社区黄埔大道西601号", "天河区", "石牌街道", "暨南大学", "messy"),
    ("天河林和街花生寮社区", "天河区", "林和街道", "花生寮", "messy"),
    ("林和街天河北社区天河北路", "天河区", "林和街道", "天河北", "messy"),
    ("猎德街道猎德社区猎德大道", "天河区", "猎德街道", "猎德", "messy"),
    ("天河区龙洞街上社社区", "天河区", "龙洞街道", "上社", "messy"),
    ("员村街员村四横路社区", "天河区", "员村街道", "员村四横路", "messy"),
    ("天河区新塘街新塘社区", "天河区", "新塘街道", "新塘", "ambiguous_ctx"),
    ("增城新塘镇卫山村", "增城区", "新塘镇", "卫山", "ambiguous_ctx"),
    ("增城区新塘镇汇美社区新塘大道", "增城区", "新塘镇", "汇美", "ambiguous_ctx"),
    ("海珠区赤岗街客村社区", "海珠区", "赤岗街道", "客村", "messy"),
    ("赤岗街珠影社区", "海珠区", "赤岗街道", "珠影", "messy"),
    ("海珠赤岗石榴岗社区石榴岗路", "海珠区", "赤岗街道", "石榴岗", "messy"),
    ("荔湾区逢源街耀华社区", "荔湾区", "逢源街道", "耀华", "messy"),
    ("逢源街道何家祠社区宝华路", "荔湾区", "逢源街道", "何家祠", "messy"),
    ("黄埔区大沙街横沙社区", "黄埔区", "大沙街道", "横沙", "messy"),
    ("大沙街姬堂社区黄埔东路", "黄埔区", "大沙街道", "姬堂", "messy"),
    ("番禺区市桥街德兴社区", "番禺区", "市桥街道", "德兴", "messy"),
    ("番禺南村镇华南碧桂园社区", "番禺区", "南村镇", "华南碧桂园", "messy"),
    ("番禺区南村镇坑头村", "番禺区", "南村镇", "坑头", "messy"),
    ("花都区新华街培英社区", "花都区", "新华街道", "培英", "messy"),
    ("花都新华街云山居委会", "花都区", "新华街道", "云山", "messy"),
    ("南沙区南沙街蕉门河社区", "南沙区", "南沙街道", "蕉门河", "messy"),
    ("从化区街口街城内社区", "从化区", "街口街道", "城内", "messy"),
    ("增城区荔城街挂绿社区", "增城区", "荔城街道", "挂绿", "messy"),
    ("白云区嘉和街望南社区", "白云区", "嘉禾街道", "望南", "typo"),
    ("白云区钟洛潭镇竹料社区", "白云区", "钟落潭镇", "竹料", "typo"),
    ("白云区永平街集贤苑社区", "白云区", "永平街道", "集贤苑", "messy"),
    ("白云区石井街庆丰社区", "白云区", "石井街道", "庆丰", "messy"),
    ("白云区嘉禾街", "白云区", "嘉禾街道", "", "street_only"),
    ("黄埔区大沙街道大沙地东", "黄埔区", "大沙街道", "", "street_only"),
    ("天河区石牌街岗顶", "天河区", "石牌街道", "", "street_only"),
    ("同和街广州大道北京溪地铁站", "白云区", "同和街道", "", "street_only"),
    ("番禺市桥街道易发商场后面", "番禺区", "市桥街道", "", "street_only"),
    # Harder hand-written forms: former names, bare cores, noise, duplicates, no context.
    ("番禺区钟村镇谢村", "番禺区", "钟村街道", "谢村", "former_name"),
    ("番禺钟村祈福新邨", "番禺区", "钟村街道", "祈福新邨", "bare_names"),
    ("芳村区花地街怡芳苑社区", "荔湾区", "花地街道", "怡芳苑", "former_name"),
    ("东山区东山街寺贝社区寺贝通津", "越秀区", "东山街道", "寺贝", "former_name"),
    ("萝岗区萝岗街香雪社区", "黄埔区", "萝岗街道", "香雪", "former_name"),
    ("从化市街口街城内社区", "从化区", "街口街道", "城内", "former_name"),
    ("石井庆丰", "白云区", "石井街道", "庆丰", "bare_names"),
    ("同德街 鹅掌坦 西街十号", "白云区", "同德街道", "鹅掌坦", "bare_names"),
    ("广州市 白云区 / 龙归街 / 夏良村", "白云区", "龙归街道", "夏良", "messy"),
    ("白云区黄石街江夏第一社区江夏北二路", "白云区", "黄石街道", "江夏第一", "messy"),
    ("黄石街江夏村（江夏第二社区）", "白云区", "黄石街道", "江夏第二", "messy"),
    ("松洲街槎龙社区螺涌路", "白云区", "松洲街道", "槎龙", "messy"),
    ("棠景街岗贝社区岗贝路63号", "白云区", "棠景街道", "岗贝", "messy"),
    ("金沙洲金沙街沙凤新村社区", "白云区", "金沙街道", "沙凤新村", "messy"),
    ("云城街萧岗南社区萧岗大街", "白云区", "云城街道", "萧岗南", "messy"),
    ("鹤龙街鹤边社区鹤边一路", "白云区", "鹤龙街道", "鹤边", "messy"),
    ("均禾街清湖北社区清湖村大道", "白云区", "均禾街道", "清湖北", "messy"),
    ("均禾街罗冈社区", "白云区", "均禾街道", "罗岗", "typo"),
    ("白云区松州街团结社区", "白云区", "松洲街道", "团结", "typo"),
    ("天河區新塘街道新塘社區", "天河区", "新塘街道", "新塘", "traditional"),
    ("新塘", "", "", "", "ambiguous_no_ctx"),
    ("东山街幸福社区", "越秀区", "东山街道", "幸福", "messy"),
    ("白云大道北岭南新世界附近", "", "", "", "landmark_only"),
    ("广州塔附近的马路", "", "", "", "landmark_only"),
]


def load(source: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(source.open(encoding="utf-8")))


def community_core(name: str) -> tuple[str, str]:
    m = re.match(
        r"^(.+?)(社区居民委员会|社区居委会|社区居[民委居]*委[员]?会会?|居民委员会|居委会|村民委员会|村委会|(虚拟)?生活区)$",
        name,
    )
    if not m:
        return name, "other"
    core, suffix = m.group(1), m.group(2)
    return core, ("village" if "村" in suffix else "area" if "生活区" in suffix else "community")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-form", type=int, default=60)
    args = ap.parse_args()
    import opencc

    s2t = opencc.OpenCC("s2t")
    rows = load(SOURCE)
    by_code = {r["code"]: r for r in rows}
    streets = [r for r in rows if r["level"] == "street" and re.search(r"(街道|镇)$", r["name"])]
    communities = [r for r in rows if r["level"] == "community" and community_core(r["name"])[1] != "other"]
    all_cores = {community_core(r["name"])[0] for r in rows if r["level"] == "community"}
    all_cores |= {re.sub(r"(街道|镇)$", "", r["name"]) for r in streets}
    rng = random.Random(args.seed)

    def street_forms(s: dict[str, str]) -> tuple[str, str]:
        core = re.sub(r"(街道|镇)$", "", s["name"])
        short = core + ("镇" if s["name"].endswith("镇") else "街")
        return core, short

    def community_short(c: dict[str, str]) -> str:
        core, kind = community_core(c["name"])
        if kind == "village":
            return core if core.endswith("村") else core + "村"
        return core + ("生活区" if kind == "area" else "社区")

    def tail() -> str:
        return rng.choice(ROADS) + str(rng.randint(1, 300)) + "号"

    out: list[dict[str, str]] = []

    def add(form: str, text: str, street: str, community: str) -> None:
        out.append(
            {
                "part": "generated",
                "form": form,
                "text": text,
                "street_code": street,
                "community_code": community,
            }
        )

    for _ in range(args.per_form):
        c = rng.choice(communities)
        s = by_code[c["parent_code"]]
        d = by_code[s["parent_code"]]
        add("full", f"广州市{d['name']}{s['name']}{c['name']}{tail()}", s["code"], c["code"])
    for _ in range(args.per_form):
        c = rng.choice(communities)
        s = by_code[c["parent_code"]]
        d = by_code[s["parent_code"]]
        add("short", f"{d['name'][:-1]}{street_forms(s)[1]}{community_short(c)}{tail()}", s["code"], c["code"])
    for _ in range(args.per_form):
        c = rng.choice(communities)
        s = by_code[c["parent_code"]]
        add(
            "missing_district",
            f"{street_forms(s)[1]}{community_short(c)}{rng.choice(ROADS)}",
            s["code"],
            c["code"],
        )
    made = 0
    while made < args.per_form:
        c = rng.choice(communities)
        s = by_code[c["parent_code"]]
        d = by_code[s["parent_code"]]
        core, _kind = community_core(c["name"])
        target = rng.choice(["street", "community"])
        s_core, s_short = street_forms(s)
        c_short = community_short(c)
        if target == "street" and len(s_core) >= 2:
            i = rng.randrange(len(s_core))
            bad = s_core[:i] + rng.choice(TYPO_POOL) + s_core[i + 1 :]
            if bad in all_cores or bad == s_core:
                continue
            text = f"{d['name']}{bad}{s_short[len(s_core) :]}{c_short}{tail()}"
        elif len(core) >= 2:
            i = rng.randrange(len(core))
            bad = core[:i] + rng.choice(TYPO_POOL) + core[i + 1 :]
            if bad in all_cores or bad == core:
                continue
            text = f"{d['name']}{s_short}{bad}{c_short[len(core) :]}{tail()}"
        else:
            continue
        add("typo", text, s["code"], c["code"])
        made += 1
    for _ in range(args.per_form):
        c = rng.choice(communities)
        s = by_code[c["parent_code"]]
        d = by_code[s["parent_code"]]
        text = rng.choice(
            [
                f"广州市{d['name']}{s['name']}{c['name']}",
                f"{d['name']}{street_forms(s)[1]}{community_short(c)}",
            ]
        )
        add("traditional", s2t.convert(text + tail()), s["code"], c["code"])
    for _ in range(args.per_form):
        s = rng.choice(streets)
        d = by_code[s["parent_code"]]
        prefix = rng.choice([d["name"], d["name"][:-1], ""])
        add(
            "road_with_street",
            f"{prefix}{street_forms(s)[1]}{rng.choice(ROADS)}{rng.choice(LANDMARKS)}",
            s["code"],
            "",
        )

    street_by_name = {(by_code[s["parent_code"]]["name"], s["name"]): s for s in streets}
    for text, district, street, core, form in HANDWRITTEN:
        if not street:
            out.append({"part": "handwritten", "form": form, "text": text, "street_code": "", "community_code": ""})
            continue
        s = street_by_name[(district, street)]
        community = ""
        if core:
            hits = [c for c in communities if c["parent_code"] == s["code"] and community_core(c["name"])[0] == core]
            assert len(hits) == 1, (text, core, hits)
            community = hits[0]["code"]
        out.append(
            {
                "part": "handwritten",
                "form": form,
                "text": text,
                "street_code": s["code"],
                "community_code": community,
            }
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["part", "form", "text", "street_code", "community_code"])
        w.writeheader()
        w.writerows(out)
    print(f"wrote {len(out)} rows ({sum(r['part'] == 'handwritten' for r in out)} hand-written) to {OUT}")


if __name__ == "__main__":
    main()
