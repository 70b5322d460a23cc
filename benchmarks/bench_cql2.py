"""CQL2 benchmark: filtered feature pages from our API (PostGIS and GeoPackage stores) side by side
with tipg 1.6.1's CQL2 on the very same PostGIS table, plus deep plain pages (keyset paging).

    bash scripts/postgis.sh                       # prints the database URL
    OBSERVATORY_TEST_DATABASE_URL=... .venv/bin/python benchmarks/bench_cql2.py --permits 100000

Each workload is a list of requests (the filter's constants vary, so no answer is a repeat),
fetched once to warm up and then timed in sequence with one client. Both servers answer
``numberMatched`` (tipg always counts; we count exactly up to 100,000 matches and give PostgreSQL's
estimate above), and both order nothing but what they must: we order by the stable id.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import quote

from bench_serving import AMSS, SCHEMA, Workloads, load_all, prepare, side_by_side, timed

HERE = Path(__file__).resolve().parent
REQUESTS = 20


def _filters(k: int) -> dict[str, str]:
    """The CQL2 text workloads, the ``k``-th variant of each."""
    west, south = AMSS[0] + (k % 10) * 0.03, AMSS[1] + (k // 10 % 2) * 0.1
    box = f"POLYGON(({west} {south},{west + 0.02} {south},{west + 0.02} {south + 0.02},{west} {south + 0.02},{west} {south}))"  # noqa: E501
    day = f"2016-{1 + k % 12:02d}-01"
    return {
        "comparison AND equality": f"floor_area_m2 > {200 + 50 * k} AND kind = 'permiso_construccion'",
        "BETWEEN": f"investment_usd BETWEEN {10_000 + 1_000 * k} AND {20_000 + 1_000 * k}",
        "IN + date": f"use_class IN ('comercio_servicios', 'industria') AND submitted >= DATE('{day}')",
        "LIKE": f"permit_id LIKE 'PC-{2016 + k % 3}-000{k % 10}%'",
        "S_INTERSECTS polygon": f"S_INTERSECTS(geom, {box})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--permits", type=int, default=100_000)
    args = parser.parse_args()
    url, peer_python, postgis, geopackage, sources = prepare(args.permits)
    timed("load into PostGIS", lambda: load_all(postgis, sources))
    timed("load into GeoPackage", lambda: load_all(geopackage, sources))

    names = list(_filters(0))
    workloads: Workloads = {
        f"cql2 {name}": (
            lambda base, tipg, name=name: [
                f"{base}/collections/{f'{SCHEMA}.permits' if tipg else 'permits'}/items?limit=100"
                f"&filter-lang=cql2-text&filter={quote(_filters(k)[name])}"
                for k in range(REQUESTS)
            ]
        )
        for name in names
    }
    deep = max(0, args.permits // 2)
    workloads[f"plain pages limit=10000 offset≈{deep}"] = lambda base, tipg: [
        f"{base}/collections/{f'{SCHEMA}.permits' if tipg else 'permits'}/items"
        f"?bbox=-180,-90,180,90&limit=10000&offset={deep + 10_000 * k}"
        for k in range(3)
    ]
    peer_env = {"TIPG_MAX_FEATURES_PER_ITEMS": "10000"}
    results = side_by_side(url, postgis, geopackage, peer_python, workloads, port=8461, peer_env=peer_env)

    print(f"\n{args.permits:,} permits")
    print("| workload | ours (PostGIS) | ours (GeoPackage) | tipg | PostGIS / tipg | GeoPackage / tipg |")
    print("|---|---|---|---|---|---|")
    for workload, row in results.items():
        cells = [f"{row[k]:.2f} s" for k in ("ours-postgis", "ours-geopackage", "tipg")]
        ratios = [f"{row[k] / row['tipg']:.2f}" for k in ("ours-postgis", "ours-geopackage")]
        print(f"| {workload} | {' | '.join(cells)} | {' | '.join(ratios)} |")


if __name__ == "__main__":
    main()
