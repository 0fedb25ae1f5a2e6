"""Build ``carparks.json`` from the Transport Department samples (run by hand, never at run time).

    python src/smartcity/live/simulator/data/author.py /work/shared/real-world/carpark

Keeps, per car park: id, names (en/tc/sc), district, WGS84 position, and an estimated number
of private car spaces (the feed publishes vacancies, not capacities: the estimate is 1.6x the
sampled vacancy rounded to tens, at least 60, 150 when the vacancy was unknown). The car park's
kind (office, mall, residential, public), which picks its weekly occupancy cycle, is guessed
from its English name.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MALL = ("plaza", "mall", "centre", "center", "square", "shopping", "market", "city", "place")
OFFICE = ("tower", "building", "office", "government", "exchange", "commercial", "industrial")
HOME = ("estate", "court", "garden", "house", "villa", "phase", "block")


def kind(name: str) -> str:
    lower = name.lower()
    for words, label in ((HOME, "residential"), (MALL, "mall"), (OFFICE, "office")):
        if any(w in lower for w in words):
            return label
    return "public"


def main(folder: Path) -> None:
    info = json.loads((folder / "td_basic_info_all.json").read_text(encoding="utf-8-sig"))
    vacancy = json.loads((folder / "td_vacancy_all.json").read_text(encoding="utf-8-sig"))
    seen: dict[str, int] = {}
    for park in vacancy["car_park"]:
        for vt in park.get("vehicle_type", []):
            if vt.get("type") != "P":
                continue
            for cat in vt.get("service_category", []):
                if cat.get("vacancy_type") == "A" and (cat.get("vacancy") or -1) >= 0:
                    seen[park["park_id"]] = max(seen.get(park["park_id"], 0), cat["vacancy"])
    out = []
    for park in info["car_park"]:
        if not park.get("latitude") or not park.get("longitude"):
            continue
        sampled = seen.get(park["park_id"])
        spaces = max(60, round(sampled * 1.6 / 10) * 10) if sampled else 150
        out.append(
            {
                "id": park["park_id"],
                "name": {
                    "en": park["name_en"],
                    "zh-Hant": park["name_tc"],
                    "zh-Hans": park["name_sc"],
                },
                "district": park["district_en"],
                "lon": round(park["longitude"], 6),
                "lat": round(park["latitude"], 6),
                "spaces": spaces,
                "kind": kind(park["name_en"]),
            }
        )
    target = Path(__file__).with_name("carparks.json")
    target.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(f"wrote {len(out)} car parks to {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
