"""The ``engine`` fixture: every analysis test taking it runs on DuckDB and on a local Spark,
so each analysis is shown to give the same answers on both (docs/analytics.md).

Spark starts once per test session (10-20 s) with one core and two shuffle partitions, and
is skipped, with the reason, where pyspark or a Java runtime is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator

import pytest

from smartcity.analytics.engine import DuckDBEngine, Engine


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'smartcity[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime for Spark (apt-get install default-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[Engine]:
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    from smartcity.analytics.spark import SparkEngine

    engine = SparkEngine(
        master="local[1]",
        config={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "1",
            "spark.driver.memory": "1g",
            # Test data is small: compiling query code costs more than it saves. These halve
            # the first query's time (tens of seconds on a busy 2-core machine) and change no
            # answer; production keeps Spark's defaults.
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.sql.adaptive.enabled": "false",
        },
    )
    yield engine
    engine.close()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "spark":
        yield request.getfixturevalue("spark_engine")
        return
    duck = DuckDBEngine()
    yield duck
    duck.close()
