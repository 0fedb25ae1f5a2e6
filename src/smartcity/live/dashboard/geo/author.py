"""Authoring-time script (not used at run time): builds the shipped GeoJSON files.

    python -m smartcity.live.dashboard.geo.author NODE_MODULES_DIR

NODE_MODULES_DIR holds ``world-atlas@2.0.2`` (Natural Earth 1:10m, public domain) and
``@svg-maps/hong-kong@1.0.0`` (the 18 districts from MapSVG, CC BY 4.0), installed with
``npm install --ignore-scripts``. The district outlines come as an SVG in page units without
geographic reference, so they are georeferenced by fitting a scale and offset per axis
(equirectangular, as MapSVG draws its maps) that best overlaps Natural Earth's Hong Kong land;
both are then simplified with shapely. See README.md beside this file for provenance.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.ops import unary_union
from shapely.validation import make_valid

HERE = Path(__file__).parent
HK_ISO = "344"  # ISO 3166-1 numeric, the id world-atlas gives Hong Kong
TOLERANCE = 0.0008  # degrees (~80 m): plenty for a city overview map
DISTRICTS_TC = {
    "Central and Western": ("中西區", "中西区"),
    "Eastern": ("東區", "东区"),
    "Islands": ("離島區", "离岛区"),
    "Kowloon City": ("九龍城區", "九龙城区"),
    "Kwai Tsing": ("葵青區", "葵青区"),
    "Kwun Tong": ("觀塘區", "观塘区"),
    "North": ("北區", "北区"),
    "Sai Kung": ("西貢區", "西贡区"),
    "Sha Tin": ("沙田區", "沙田区"),
    "Sham Shui Po": ("深水埗區", "深水埗区"),
    "Southern": ("南區", "南区"),
    "Tai Po": ("大埔區", "大埔区"),
    "Tsuen Wan": ("荃灣區", "荃湾区"),
    "Tuen Mun": ("屯門區", "屯门区"),
    "Wan Chai": ("灣仔區", "湾仔区"),
    "Wong Tai Sin": ("黃大仙區", "黄大仙区"),
    "Yau Tsim Mong": ("油尖旺區", "油尖旺区"),
    "Yuen Long": ("元朗區", "元朗区"),
}


def topo_feature(topo: dict[str, Any], obj: str, fid: str) -> Any:
    """One feature of a quantized TopoJSON as a shapely geometry."""
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs: list[list[tuple[float, float]]] = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)

    def ring(indexes: list[int]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for i in indexes:
            points = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(points if not out else points[1:])
        return out

    for geom in topo["objects"][obj]["geometries"]:
        if str(geom.get("id")) == fid:
            polys = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
            parts = [Polygon(ring(p[0]), [ring(h) for h in p[1:]]).buffer(0) for p in polys]
            return unary_union(parts)
    raise SystemExit(f"feature {fid} not in {obj}")


def svg_polygons(path: str) -> list[Polygon]:
    """Parse a path of relative moves and implicit relative line-tos (all this SVG uses)."""
    polys: list[Polygon] = []
    x = y = 0.0
    for part in re.findall(r"m[^m]*", path):
        numbers = [float(n) for n in re.findall(r"-?[\d.]+(?:e-?\d+)?", part)]
        x, y = x + numbers[0], y + numbers[1]
        points = [(x, y)]
        for i in range(2, len(numbers) - 1, 2):
            x, y = x + numbers[i], y + numbers[i + 1]
            points.append((x, y))
        if len(points) >= 3:
            poly = Polygon(points).buffer(0)
            polys.extend(poly.geoms if isinstance(poly, MultiPolygon) else [poly])
        if part.rstrip().endswith("z"):
            x, y = points[0]
    return polys


def place(geom: Any, p: tuple[float, float, float, float]) -> Any:
    from shapely.affinity import affine_transform

    ax, bx, ay, by = p  # lon = ax * x + bx; lat = ay * y + by (SVG y grows downwards)
    return affine_transform(geom, [ax, 0, 0, ay, bx, by])


def fit(svg: Any, land: Any) -> tuple[float, float, float, float]:
    """Scale/offset per axis maximising the overlap (IoU) of the districts with the land."""
    x0, y0, x1, y1 = svg.bounds
    lx0, ly0, lx1, ly1 = land.bounds
    ax = (lx1 - lx0) / (x1 - x0)
    ay = -(ly1 - ly0) / (y1 - y0)
    p = [ax, lx0 - ax * x0, ay, ly1 - ay * y0]

    def score(q: list[float]) -> float:
        g = make_valid(place(svg, (q[0], q[1], q[2], q[3])))
        inter = g.intersection(land).area
        return float(inter / (g.area + land.area - inter))

    best = score(p)
    steps = [abs(p[0]) * 0.02, 0.01, abs(p[2]) * 0.02, 0.01]
    for _ in range(12):
        improved = False
        for i in range(4):
            for sign in (1, -1):
                q = list(p)
                q[i] += sign * steps[i]
                s = score(q)
                if s > best:
                    best, p, improved = s, q, True
        if not improved:
            steps = [s / 2 for s in steps]
    print(f"georeference IoU with Natural Earth land: {best:.3f}", file=sys.stderr)
    return (p[0], p[1], p[2], p[3])


def rounded(geom: Any) -> dict[str, Any]:
    def r(c: Any) -> Any:
        return (
            [r(x) for x in c]
            if isinstance(c[0], list | tuple)
            else [round(c[0], 5), round(c[1], 5)]
        )

    gj = mapping(geom)
    return {"type": gj["type"], "coordinates": r(json.loads(json.dumps(gj["coordinates"])))}


def main(node_modules: Path) -> None:
    topo = json.loads((node_modules / "world-atlas/countries-10m.json").read_text())
    land = topo_feature(topo, "countries", HK_ISO)
    js = (node_modules / "@svg-maps/hong-kong/index.js").read_text()
    data = json.loads(js[js.index("{") : js.rindex("}") + 1])
    districts = {loc["name"]: unary_union(svg_polygons(loc["path"])) for loc in data["locations"]}
    params = fit(unary_union(list(districts.values())).buffer(0), land)
    coast = land.simplify(TOLERANCE, preserve_topology=True)
    (HERE / "hk-coastline.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "Hong Kong", "source": "Natural Earth 1:10m"},
                        "geometry": rounded(coast),
                    }
                ],
            },
            separators=(",", ":"),
        )
    )
    features = []
    for name, geom in sorted(districts.items()):
        placed = place(geom, params).simplify(TOLERANCE, preserve_topology=True)
        tc, sc = DISTRICTS_TC[name]
        features.append(
            {
                "type": "Feature",
                "properties": {"name_en": name, "name_tc": tc, "name_sc": sc},
                "geometry": rounded(shape(mapping(placed))),
            }
        )
    (HERE / "hk-districts.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
