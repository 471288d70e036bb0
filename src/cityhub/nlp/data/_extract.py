"""Rebuild the packaged gazetteer files from the shared divisions data (run from the project root).

    .venv/bin/python src/cityhub/nlp/data/_extract.py [../shared/data/china_admin_divisions]

Writes ``guangzhou_units.tsv`` (code<TAB>name; the level and parent follow from the code's length: 6 digits
district, 9 street/town, 12 community/village) and ``guangzhou_districts.geojson`` (district outlines from
Aliyun DataV, GCJ-02, coordinates rounded to 5 decimals ≈ 1 m) and ``china_places.tsv`` (code<TAB>name of every
province, prefecture-level city and county-level area of the country, NBS codes: 2, 4 and 6 digits — what the
address resolver needs to tell an address in another city from one in its own). Only public facts (names, codes,
outlines) are kept.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _round(coords: Any) -> Any:
    if isinstance(coords[0], (int, float)):
        return [round(coords[0], 5), round(coords[1], 5)]
    return [_round(c) for c in coords]


def main(source: Path) -> None:
    rows = list(csv.DictReader((source / "guangzhou" / "guangzhou_divisions.csv").open(encoding="utf-8")))
    expected_len = {"district": 6, "street": 9, "community": 12}
    with (HERE / "guangzhou_units.tsv").open("w", encoding="utf-8", newline="\n") as out:
        out.write("code\tname\n")
        for r in rows:
            # The loader derives level and parent from the code, so refuse data where that would be wrong.
            assert len(r["code"]) == expected_len[r["level"]], r
            assert r["level"] == "district" or r["code"].startswith(r["parent_code"]), r
            out.write(f"{r['code']}\t{r['name']}\n")
    modood = source / "raw" / "modood"
    placeholders = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"}
    with (HERE / "china_places.tsv").open("w", encoding="utf-8", newline="\n") as out:
        out.write("code\tname\n")
        for table in ("provinces", "cities", "areas"):
            for r in csv.DictReader((modood / f"{table}.csv").open(encoding="utf-8")):
                if r["name"] not in placeholders:
                    out.write(f"{r['code']}\t{r['name']}\n")
    geo = json.loads((source / "geo" / "guangzhou_districts_datav.geojson").read_text(encoding="utf-8"))
    features = [
        {
            "type": "Feature",
            "properties": {"code": str(f["properties"]["adcode"]), "name": f["properties"]["name"]},
            "geometry": {"type": f["geometry"]["type"], "coordinates": _round(f["geometry"]["coordinates"])},
        }
        for f in geo["features"]
    ]
    (HERE / "guangzhou_districts.geojson").write_text(
        json.dumps(
            {"type": "FeatureCollection", "crs_note": "GCJ-02 (DataV)", "features": features},
            ensure_ascii=False,
            separators=(",", ":"),
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data/china_admin_divisions"))
