"""Geo-queries and GeoJSON validation (smartcity.hub.query.geo), with Hong Kong coordinates."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from smartcity.hub.errors import BadRequestData
from smartcity.hub.query import geo
from smartcity.hub.query.geo import (
    GeoQuery,
    bbox,
    geometry_bbox,
    matches,
    parse_geo_query,
    validate_geometry,
)

GEOD = Geod(ellps="WGS84")
CENTRAL = [114.158, 22.282]
KOWLOON = [114.172, 22.297]
# A box over Victoria Harbour: Central and Kowloon are both inside it.
HARBOUR = [[[114.15, 22.27], [114.18, 22.27], [114.18, 22.30], [114.15, 22.30], [114.15, 22.27]]]


def query(georel: str, geometry: str, coordinates: Any, geoproperty: str | None = None) -> GeoQuery:
    parsed = parse_geo_query(
        georel, geometry, json.dumps(coordinates), geoproperty, max_points=1000
    )
    assert parsed is not None
    return parsed


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def line(*positions: list[float]) -> dict:
    return {"type": "LineString", "coordinates": list(positions)}


def box(west: float, south: float, east: float, north: float) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def geodesic(a: list[float], b: list[float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


# --- near -----------------------------------------------------------------------------------


def test_near_point_uses_the_geodesic_distance() -> None:
    distance = geodesic(CENTRAL, KOWLOON)
    assert distance == pytest.approx(2200.09, abs=0.01)  # Central to Kowloon, WGS84
    kowloon = point(*KOWLOON)
    assert matches(query("near;maxDistance==2201", "Point", CENTRAL), kowloon)
    assert not matches(query("near;maxDistance==2200", "Point", CENTRAL), kowloon)
    assert matches(query("near;minDistance==2200", "Point", CENTRAL), kowloon)
    assert not matches(query("near;minDistance==2201", "Point", CENTRAL), kowloon)


def test_near_is_inclusive_and_zero_distance_matches_the_same_point() -> None:
    assert matches(query("near;maxDistance==0", "Point", CENTRAL), point(*CENTRAL))
    assert matches(query("near;minDistance==0", "Point", CENTRAL), point(*KOWLOON))


def test_near_linestring_measures_to_the_nearest_point_of_an_edge() -> None:
    # An east-west line passing ~886 m north of Central; its nearest point is inside an edge.
    road = line([114.15, 22.29], [114.17, 22.29])
    samples = [[114.15 + 0.02 * i / 20_000, 22.29] for i in range(20_001)]
    expected = min(geodesic(CENTRAL, s) for s in samples)
    assert expected == pytest.approx(885.87, abs=0.01)
    # Nearest vertex is >1 km away, so a vertex-only distance would get this wrong.
    assert min(geodesic(CENTRAL, v) for v in road["coordinates"]) > 1000
    assert matches(query(f"near;maxDistance=={math.ceil(expected + 0.05)}", "Point", CENTRAL), road)
    assert not matches(query(f"near;maxDistance=={int(expected - 0.05)}", "Point", CENTRAL), road)
    assert matches(query(f"near;minDistance=={int(expected - 0.05)}", "Point", CENTRAL), road)


def test_near_polygon_is_zero_inside_and_vertex_distance_outside() -> None:
    assert matches(
        query("near;maxDistance==0", "Point", CENTRAL), {"type": "Polygon", "coordinates": HARBOUR}
    )
    north_east = box(114.16, 22.29, 114.18, 22.31)  # nearest point: its south-west corner
    corner = geodesic(CENTRAL, [114.16, 22.29])
    assert corner == pytest.approx(909.53, abs=0.01)
    assert matches(query(f"near;maxDistance=={math.ceil(corner)}", "Point", CENTRAL), north_east)
    assert not matches(query(f"near;maxDistance=={int(corner)}", "Point", CENTRAL), north_east)


def test_near_polygon_around_the_antipode_is_far_away() -> None:
    # The AEQD plane tears at the antipode; containment must not be decided there.
    antipode = [CENTRAL[0] - 180, -CENTRAL[1]]
    around = box(antipode[0] - 0.5, antipode[1] - 0.5, antipode[0] + 0.5, antipode[1] + 0.5)
    nearest = geodesic(CENTRAL, [antipode[0] + 0.5, antipode[1] + 0.5])
    assert not matches(query("near;maxDistance==1000000", "Point", CENTRAL), around)
    assert matches(query(f"near;minDistance=={int(nearest) - 100_000}", "Point", CENTRAL), around)


@settings(max_examples=200, deadline=None)
@given(
    start=st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)),
    end=st.tuples(st.floats(-0.05, 0.05), st.floats(-0.05, 0.05)),
)
def test_near_line_distance_matches_dense_geodesic_sampling(
    start: tuple[float, float], end: tuple[float, float]
) -> None:
    a = [CENTRAL[0] + start[0], CENTRAL[1] + start[1]]
    b = [CENTRAL[0] + end[0], CENTRAL[1] + end[1]]
    assume(a != b)
    n = 4001  # samples ≤ 3 m apart along the lon/lat-straight edge (RFC 7946)
    t = np.linspace(0, 1, n)
    lons, lats = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
    sampled = float(np.min(GEOD.inv(np.full(n, CENTRAL[0]), np.full(n, CENTRAL[1]), lons, lats)[2]))
    computed = geo._distance_m(CENTRAL[0], CENTRAL[1], geo._to_shape(line(a, b)))
    # Sampling can only overestimate, by at most half the sample spacing.
    assert sampled - 2 <= computed <= sampled + 0.02


def test_near_multipoint_uses_its_nearest_point() -> None:
    stops = {"type": "MultiPoint", "coordinates": [[114.30, 22.40], KOWLOON]}
    assert matches(query("near;maxDistance==2201", "Point", CENTRAL), stops)
    assert not matches(query("near;maxDistance==2200", "Point", CENTRAL), stops)


def test_near_ignores_altitude() -> None:
    assert matches(
        query("near;maxDistance==2201", "Point", CENTRAL),
        point(*KOWLOON) | {"coordinates": [*KOWLOON, 500]},
    )


def test_aeqd_transformers_are_cached_per_centre() -> None:
    assert geo._aeqd(114.158, 22.282) is geo._aeqd(114.158, 22.282)


# --- within / contains / intersects / disjoint / equals / overlaps ------------------------


def test_within() -> None:
    q = query("within", "Polygon", HARBOUR)
    assert matches(q, point(*CENTRAL))
    assert not matches(q, point(114.20, 22.28))
    # OGC semantics: a point on the boundary is not within (use intersects for that).
    assert not matches(q, point(114.15, 22.28))
    assert matches(q, line(CENTRAL, KOWLOON))
    assert not matches(q, line(CENTRAL, [114.20, 22.28]))
    assert matches(q, box(114.16, 22.28, 114.17, 22.29))
    assert not matches(q, box(114.16, 22.28, 114.19, 22.29))


def test_contains() -> None:
    q = query("contains", "Point", CENTRAL)
    assert matches(q, {"type": "Polygon", "coordinates": HARBOUR})
    assert not matches(q, box(114.16, 22.29, 114.18, 22.31))
    assert matches(q, point(*CENTRAL))
    assert not matches(q, point(*KOWLOON))
    assert matches(q, line([114.15, 22.282], [114.17, 22.282]))
    assert not matches(q, line(CENTRAL, KOWLOON))  # an end point is the line's boundary
    assert not matches(query("contains", "Polygon", HARBOUR), box(114.16, 22.28, 114.17, 22.29))


def test_intersects_and_disjoint_are_complements() -> None:
    subjects = {
        "inside point": (point(*CENTRAL), True),
        "boundary point": (point(114.15, 22.28), True),
        "outside point": (point(114.20, 22.28), False),
        "crossing line": (line([114.14, 22.28], [114.16, 22.28]), True),
        "outside line": (line([114.20, 22.28], [114.21, 22.29]), False),
        "overlapping box": (box(114.17, 22.29, 114.19, 22.31), True),
        "far box": (box(114.20, 22.40, 114.21, 22.41), False),
    }
    intersects = query("intersects", "Polygon", HARBOUR)
    disjoint = query("disjoint", "Polygon", HARBOUR)
    for name, (subject, expected) in subjects.items():
        assert matches(intersects, subject) is expected, name
        assert matches(disjoint, subject) is not expected, name


def test_equals_is_topological() -> None:
    q = query("equals", "Polygon", HARBOUR)
    ring = HARBOUR[0]
    rotated = [*ring[1:], ring[1]]  # same square, different start vertex
    assert matches(q, {"type": "Polygon", "coordinates": [rotated]})
    assert matches(q, {"type": "Polygon", "coordinates": [list(reversed(ring))]})
    assert not matches(q, box(114.15, 22.27, 114.18, 22.31))
    assert matches(query("equals", "Point", CENTRAL), point(*CENTRAL))
    assert not matches(query("equals", "Point", CENTRAL), point(*KOWLOON))
    assert matches(query("equals", "LineString", [CENTRAL, KOWLOON]), line(KOWLOON, CENTRAL))


def test_overlaps_needs_same_dimension_and_partial_overlap() -> None:
    q = query("overlaps", "Polygon", HARBOUR)
    assert matches(q, box(114.17, 22.29, 114.19, 22.31))
    assert not matches(q, box(114.16, 22.28, 114.17, 22.29))  # contained, not overlapping
    assert not matches(q, box(114.20, 22.40, 114.21, 22.41))
    assert not matches(q, line([114.14, 22.28], [114.16, 22.28]))  # different dimension
    assert not matches(q, point(*CENTRAL))
    lines = query("overlaps", "LineString", [[114.15, 22.28], [114.17, 22.28]])
    assert matches(lines, line([114.16, 22.28], [114.18, 22.28]))


def test_multi_geometries_as_reference() -> None:
    two_boxes = {
        "type": "MultiPolygon",
        "coordinates": [box(114.20, 22.40, 114.21, 22.41)["coordinates"], HARBOUR],
    }
    q = query("intersects", "MultiPolygon", two_boxes["coordinates"])
    assert matches(q, point(*KOWLOON))
    q = query("within", "MultiPoint", [CENTRAL, KOWLOON])
    assert matches(q, point(*KOWLOON))
    q = query("intersects", "MultiLineString", [[CENTRAL, KOWLOON]])
    assert matches(q, {"type": "Polygon", "coordinates": HARBOUR})


def test_geometry_collection_subject() -> None:
    subject = {
        "type": "GeometryCollection",
        "geometries": [point(*CENTRAL), line(KOWLOON, [114.2, 22.3])],
    }
    assert matches(query("intersects", "Polygon", HARBOUR), subject)
    assert not matches(query("within", "Polygon", HARBOUR), subject)
    assert matches(query("near;maxDistance==1", "Point", CENTRAL), subject)
    assert geometry_bbox(subject) == (114.158, 22.282, 114.2, 22.3)


# --- parsing ----------------------------------------------------------------------------------


def test_no_geo_parameters_means_no_geo_query() -> None:
    assert parse_geo_query(None, None, None, None, max_points=10) is None
    # geoproperty alone is ignored, as the spec says.
    assert parse_geo_query(None, None, None, "observationSpace", max_points=10) is None


def test_parsed_query_fields() -> None:
    q = query("near;maxDistance==1000", "Point", CENTRAL)
    assert (q.georel, q.geometry, q.geoproperty) == ("near", "Point", "location")
    assert (q.max_distance, q.min_distance) == (1000.0, None)
    assert q.georel_text == "near;maxDistance==1000"
    assert q.as_geoq() == {
        "geometry": "Point",
        "coordinates": CENTRAL,
        "georel": "near;maxDistance==1000",
        "geoproperty": "location",
    }
    assert q.to_geojson() == point(*CENTRAL)
    assert query("near;minDistance==12.5", "Point", CENTRAL).min_distance == 12.5
    assert query("within", "Polygon", HARBOUR, "operationSpace").geoproperty == "operationSpace"


def test_subscription_geoq_with_parsed_coordinates_equals_the_string_form() -> None:
    from_string = query("within", "Polygon", HARBOUR)
    from_list = parse_geo_query("within", "Polygon", HARBOUR, None, max_points=100)
    assert from_list == from_string
    assert hash(from_list) == hash(from_string)


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "geoproperty", "fragment"),
    [
        ("near;maxDistance==10", None, None, None, "missing: geometry, coordinates"),
        (None, "Point", "[114.17,22.30]", None, "missing: georel"),
        ("within", "Polygon", None, None, "missing: coordinates"),
        ("near", "Point", "[114.17,22.30]", None, "near;maxDistance==<metres>"),
        ("near;maxDistance=1000", "Point", "[114.17,22.30]", None, "exactly one distance"),
        ("near;maxDistance==-5", "Point", "[114.17,22.30]", None, "exactly one distance"),
        ("near;maxDistance==1;minDistance==2", "Point", "[114.17,22.30]", None, "exactly one"),
        ("nearby", "Point", "[114.17,22.30]", None, "is not supported"),
        ("inside", "Point", "[114.17,22.30]", None, "is not supported"),
        ("Within", "Point", "[114.17,22.30]", None, "is not supported"),
        ("near;maxDistance==1000", "Polygon", json.dumps(HARBOUR), None, "needs geometry=Point"),
        ("within", "GeometryCollection", "[]", None, "cannot be used in a geo-query"),
        ("within", "Circle", "[114.17,22.30]", None, "cannot be used in a geo-query"),
        ("within", "Point", "114.17,22.30", None, "must be a JSON array"),
        ("within", "Point", "[22.30,114.17,", None, "must be a JSON array"),
        ("within", "Point", "[22.30,114.17]", None, "latitude 114.17 is outside"),
        (
            "within",
            "Point",
            "[[114.17,22.30]]",
            None,
            "geo-query.coordinates must be a position [longitude, latitude], got an array of arr",
        ),
        (
            "within",
            "Polygon",
            "[[114.17,22.30]]",
            None,
            "but geo-query.coordinates[0][0] is 114.17, not a position",
        ),
        ("within", "Point", "[114.17,22.30]", "", "geoproperty must be"),
        (42, "Point", "[114.17,22.30]", None, "georel must be a string"),
    ],
)
def test_parse_errors(
    georel: Any, geometry: Any, coordinates: Any, geoproperty: Any, fragment: str
) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_geo_query(georel, geometry, coordinates, geoproperty, max_points=100)
    assert fragment in err.value.detail


def test_query_geometry_size_is_limited() -> None:
    many = [[114.0 + i / 1000, 22.3] for i in range(50)]
    with pytest.raises(BadRequestData, match="more than 10 positions"):
        parse_geo_query("intersects", "LineString", json.dumps(many), None, max_points=10)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "geometry",
    [
        point(*CENTRAL),
        {"type": "Point", "coordinates": [114.158, 22.282, 35.5]},
        {"type": "Point", "coordinates": [-180, -90]},
        {"type": "MultiPoint", "coordinates": [CENTRAL, KOWLOON]},
        line(CENTRAL, KOWLOON),
        {"type": "MultiLineString", "coordinates": [[CENTRAL, KOWLOON], [KOWLOON, [114.2, 22.3]]]},
        {"type": "Polygon", "coordinates": HARBOUR},
        {  # with a hole
            "type": "Polygon",
            "coordinates": [HARBOUR[0], box(114.16, 22.28, 114.17, 22.29)["coordinates"][0]],
        },
        {"type": "MultiPolygon", "coordinates": [HARBOUR]},
        {"type": "GeometryCollection", "geometries": [point(*CENTRAL), line(CENTRAL, KOWLOON)]},
        point(*CENTRAL) | {"bbox": [114.158, 22.282, 114.158, 22.282]},
    ],
)
def test_valid_geometries_are_returned_unchanged(geometry: dict) -> None:
    assert validate_geometry(geometry) is geometry


@pytest.mark.parametrize(
    ("geometry", "fragment"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[114.15, 22.27], [114.18, 22.27], [114.18, 22.30], [114.15, 22.30]]
                ],
            },
            "geometry.coordinates[0] is not a closed linear ring",
        ),
        (
            {"type": "Point", "coordinates": [114.17, 95]},
            "geometry.coordinates[1]: latitude 95 is outside [-90, 90]",
        ),
        ({"type": "Point", "coordinates": [190.5, 22.3]}, "longitude 190.5 is outside [-180, 180]"),
        (
            {"type": "Point", "coordinates": [114.17, True]},
            "geometry.coordinates[1] must be a number, got true",
        ),
        (
            {"type": "Point", "coordinates": ["114.17", 22.3]},
            'coordinates[0] must be a number, got "114.17"',
        ),
        ({"type": "Point", "coordinates": [math.nan, 22.3]}, "must be a finite number"),
        ({"type": "Point", "coordinates": [114.17, 22.3, math.inf]}, "must be a finite number"),
        ({"type": "Point", "coordinates": [114.17, 22.3, 10**400]}, "altitude a huge number"),
        ({"type": "Point", "coordinates": [114.17]}, "must be a position [longitude, latitude]"),
        ({"type": "Point", "coordinates": [1, 2, 3, 4]}, "got an array of 4 items"),
        (
            {"type": "Point", "coordinates": [[114.17, 22.3]]},
            "geometry.coordinates must be a position [longitude, latitude], got an array of arrays",
        ),
        (
            {"type": "Polygon", "coordinates": [[114.17, 22.3]]},
            "coordinates[0] must be an array of positions",
        ),
        (
            {"type": "Polygon", "coordinates": [CENTRAL, KOWLOON, CENTRAL, CENTRAL]},
            "coordinates[0] must be an array of positions",
        ),
        ({"type": "Polygon", "coordinates": []}, "must be a non-empty array of linear rings"),
        (
            {"type": "Polygon", "coordinates": [[CENTRAL, KOWLOON, CENTRAL]]},
            "at least 4 positions for a linear ring",
        ),
        ({"type": "LineString", "coordinates": [CENTRAL]}, "at least 2 positions for a LineString"),
        (
            {"type": "MultiPolygon", "coordinates": HARBOUR},
            "coordinates[0][0] must be an array of positions",
        ),
        ({"type": "MultiPoint", "coordinates": []}, "at least 1 positions"),
        (
            {"type": "MultiLineString", "coordinates": [CENTRAL, KOWLOON]},
            "geometry.coordinates[0][0] is 114.158, not a position",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [114.15, 22.27],
                        [114.18, 22.30],
                        [114.18, 22.27],
                        [114.15, 22.30],
                        [114.15, 22.27],
                    ]
                ],
            },
            "not a valid Polygon: Self-intersection",
        ),
        ({"type": "Circle", "coordinates": CENTRAL}, "geometry.type must be one of Point"),
        ({"coordinates": CENTRAL}, "it is missing"),
        ({"type": "Point"}, "geometry.coordinates is missing"),
        ({"type": "GeometryCollection", "geometries": []}, "non-empty array of geometries"),
        (
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "Point", "coordinates": [0, 91]}],
            },
            "geometry.geometries[0].coordinates[1]: latitude 91",
        ),
        ([114.17, 22.3], "must be a GeoJSON geometry object"),
        ("POINT(114.17 22.3)", "must be a GeoJSON geometry object"),
    ],
)
def test_invalid_geometries_say_what_is_wrong(geometry: Any, fragment: str) -> None:
    with pytest.raises(BadRequestData) as err:
        validate_geometry(geometry)
    assert fragment in err.value.detail


def test_too_many_points() -> None:
    many = {"type": "MultiPoint", "coordinates": [[114.0, 22.0]] * 11}
    assert validate_geometry(many, max_points=11) is many
    with pytest.raises(BadRequestData, match="more than 10 positions"):
        validate_geometry(many, max_points=10)
    # The limit is over the whole geometry, not per member.
    collection = {"type": "GeometryCollection", "geometries": [many, many]}
    with pytest.raises(BadRequestData, match="more than 20 positions"):
        validate_geometry(collection, max_points=20)


def test_deeply_nested_collections_are_refused() -> None:
    geometry: dict = point(*CENTRAL)
    for _ in range(10):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    with pytest.raises(BadRequestData, match="nested more than"):
        validate_geometry(geometry)


def test_where_names_the_attribute() -> None:
    with pytest.raises(BadRequestData, match=r"^location\.value\.coordinates\[1\]"):
        validate_geometry({"type": "Point", "coordinates": [0, 99]}, where="location.value")


# --- bounding boxes ---------------------------------------------------------------------------


def test_bbox_per_relation() -> None:
    assert bbox(query("within", "Polygon", HARBOUR)) == (114.15, 22.27, 114.18, 22.30)
    assert bbox(query("contains", "Point", CENTRAL)) == (114.158, 22.282, 114.158, 22.282)
    assert bbox(query("disjoint", "Polygon", HARBOUR)) is None
    assert bbox(query("near;minDistance==10", "Point", CENTRAL)) is None
    near_box = bbox(query("near;maxDistance==1000", "Point", CENTRAL))
    assert near_box is not None
    west, south, east, north = near_box
    # 1 km is 0.00903° of latitude and 0.00970° of longitude at 22.3°N; the box is slightly
    # larger because it is drawn on the sphere with WGS84's smallest radius of curvature.
    assert 0.00904 < north - CENTRAL[1] < 0.0091
    assert 0.00971 < east - CENTRAL[0] < 0.0098
    assert CENTRAL[1] - south == pytest.approx(north - CENTRAL[1])
    assert CENTRAL[0] - west == pytest.approx(east - CENTRAL[0])


def test_near_bbox_over_a_pole_or_the_antimeridian_spans_all_longitudes() -> None:
    assert bbox(query("near;maxDistance==50000", "Point", [10, 89.9])) == pytest.approx(
        (-180, 89.9 - 0.4525, 180, 90), abs=0.01
    )
    near_box = bbox(query("near;maxDistance==50000", "Point", [179.9, 0]))
    assert near_box is not None
    assert (near_box[0], near_box[2]) == (-180, 180)
    assert bbox(query("near;maxDistance==100000000", "Point", CENTRAL)) == (-180, -90, 180, 90)


def test_geometry_bbox() -> None:
    assert geometry_bbox(point(*CENTRAL)) == (114.158, 22.282, 114.158, 22.282)
    assert geometry_bbox({"type": "Point", "coordinates": [114, 22, 5]}) == (
        114.0,
        22.0,
        114.0,
        22.0,
    )
    assert geometry_bbox({"type": "Polygon", "coordinates": HARBOUR}) == (
        114.15,
        22.27,
        114.18,
        22.30,
    )
    assert geometry_bbox(line(KOWLOON, CENTRAL)) == (114.158, 22.282, 114.172, 22.297)


def boxes_touch(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def unfiltered_matches(q: GeoQuery, subject: dict) -> bool:
    """matches() without its own box shortcut, so the box property is not tested against itself."""
    shape = geo._to_shape(subject)
    if q.georel == "near":
        return geo._near_holds(q, geo._distance_m(q.coordinates[0], q.coordinates[1], shape))
    return geo._RELATIONS[q.georel](q.shape, shape)


def assert_bbox_keeps(q: GeoQuery, subject: dict) -> None:
    truth = unfiltered_matches(q, subject)
    assert matches(q, subject) is truth
    if truth:
        box_ = bbox(q)
        assert box_ is not None
        assert boxes_touch(box_, geometry_bbox(subject))


# Coordinates on a 0.001° grid around Hong Kong, so that shared edges, shared vertices and
# exact equality actually occur.
hk_lon = st.integers(114_100, 114_250).map(lambda v: v / 1000)
hk_lat = st.integers(22_200, 22_350).map(lambda v: v / 1000)
hk_position = st.tuples(hk_lon, hk_lat).map(list)


@st.composite
def hk_box(draw: st.DrawFn) -> dict:
    west, east = sorted(draw(st.lists(hk_lon, min_size=2, max_size=2, unique=True)))
    south, north = sorted(draw(st.lists(hk_lat, min_size=2, max_size=2, unique=True)))
    return box(west, south, east, north)


hk_geometry = st.one_of(
    hk_position.map(lambda p: point(*p)),
    st.lists(hk_position, min_size=2, max_size=4, unique_by=tuple).map(
        lambda ps: {"type": "LineString", "coordinates": ps}
    ),
    st.lists(hk_position, min_size=1, max_size=4).map(
        lambda ps: {"type": "MultiPoint", "coordinates": ps}
    ),
    hk_box(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    georel=st.sampled_from(["within", "intersects", "contains", "overlaps", "equals"]),
    reference=hk_geometry,
    subject=hk_geometry,
    same=st.booleans(),
)
def test_bbox_never_excludes_a_match(
    georel: str, reference: dict, subject: dict, same: bool
) -> None:
    q = query(georel, reference["type"], reference["coordinates"])
    assert_bbox_keeps(q, reference if same else subject)


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(-180, 180),
    lat=st.floats(-89.9, 89.9),
    distance=st.integers(0, 3_000_000),
    azimuth=st.floats(-180, 180),
    fraction=st.floats(0, 1),
    kind=st.sampled_from(["Point", "LineString", "Polygon"]),
)
def test_near_bbox_never_excludes_a_match(
    lon: float, lat: float, distance: int, azimuth: float, fraction: float, kind: str
) -> None:
    q = query(f"near;maxDistance=={distance}", "Point", [lon, lat])
    end_lon, end_lat, _ = GEOD.fwd(lon, lat, azimuth, distance * fraction)
    target = [end_lon, end_lat]
    if kind == "Point":
        subject = point(*target)
    else:
        # A small shape whose nearest part to the centre is `target`-ish, reaching outward.
        out_lon, out_lat, _ = GEOD.fwd(end_lon, end_lat, azimuth, 500)
        assume(abs(out_lon - end_lon) < 90)  # keep clear of antimeridian-crossing edges
        if kind == "LineString":
            subject = line(target, [out_lon, out_lat])
        else:
            subject = {
                "type": "Polygon",
                "coordinates": [[target, [out_lon, out_lat], [out_lon, end_lat], target]],
            }
            assume(geo.shapely.is_valid(geo._to_shape(subject)))
    validate_geometry(subject)
    assert_bbox_keeps(q, subject)


@settings(max_examples=200, deadline=None)
@given(
    lon=st.floats(-180, 180),
    lat=st.floats(-89.99, 89.99),
    distance=st.floats(0, 5_000_000),
)
def test_near_bbox_contains_the_whole_geodesic_circle(
    lon: float, lat: float, distance: float
) -> None:
    west, south, east, north = geo._near_bbox(lon, lat, distance)
    count = 360
    lons, lats, _ = GEOD.fwd(
        [lon] * count, [lat] * count, [i - 180 for i in range(count)], [distance] * count
    )
    for x, y in zip(lons, lats, strict=True):
        assert south <= y <= north
        assert west <= x <= east


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["type", "coordinates", "geometries", "x"]), children)
    ),
    max_leaves=40,
)
geometry_like = st.fixed_dictionaries(
    {"type": st.sampled_from(geo.GEOMETRY_TYPES), "coordinates": json_values},
    optional={"geometries": st.lists(json_values, max_size=3)},
)
numbers = st.integers(-200, 200) | st.floats(allow_nan=True, allow_infinity=True)
positions = st.lists(numbers, min_size=0, max_size=4)
nested_positions = st.recursive(positions, lambda c: st.lists(c, max_size=5), max_leaves=30)
structured = st.fixed_dictionaries(
    {"type": st.sampled_from(geo.GEOMETRY_TYPES), "coordinates": nested_positions}
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_values, geometry_like, structured))
def test_validate_geometry_only_raises_bad_request_data(value: Any) -> None:
    try:
        result = validate_geometry(value, max_points=50)
    except BadRequestData as err:
        assert err.detail
    else:
        assert result is value
        # Anything accepted must be usable by the rest of the module.
        geometry_bbox(result)
        q = query("near;maxDistance==1000", "Point", CENTRAL)
        matches(q, result)
