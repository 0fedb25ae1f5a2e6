"""City analytics: each analysis written once, run on DuckDB (in process, the default) or on
Apache Spark (a city that outgrows one machine), reading the hub's history as Parquet
(``smartcity history export``), never the transactional database. See docs/analytics.md."""
