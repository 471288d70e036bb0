"""Rebuild the packaged district outline from the shared divisions data (run from the project root).

    .venv/bin/python src/cityhub/onemap/data/_extract.py [../shared/data/china_admin_divisions]

Writes ``district_outlines.geojson``: the outline of 白云区 (Baiyun, adcode 440111) as Aliyun DataV publishes it —
GCJ-02, the datum of Chinese web maps — with coordinates rounded to 5 decimals (≈ 1 m) and only its code and name
kept. It is the one map's base layer when the database's district unit has no boundary of its own. Only a public
fact (an administrative outline) is kept; the data file itself is never read at run time.
"""

from __future__ import annotations

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
    data = json.loads((source / "geo" / "baiyun_district_boundary_datav.geojson").read_text(encoding="utf-8"))
    features = []
    for feature in data["features"]:
        props = feature["properties"]
        geometry = {"type": feature["geometry"]["type"], "coordinates": _round(feature["geometry"]["coordinates"])}
        features.append(
            {
                "type": "Feature",
                "properties": {"code": str(props["adcode"]), "name": props["name"]},
                "geometry": geometry,
            }
        )
    out = {"type": "FeatureCollection", "crs_note": "GCJ-02 (Aliyun DataV)", "features": features}
    (HERE / "district_outlines.geojson").write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data/china_admin_divisions"))
