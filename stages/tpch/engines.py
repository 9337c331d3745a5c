"""The query engines the TPC-H bench compares, behind one small interface.

Each engine registers the eight TPC-H tables under their specification names from the
`<table>.parquet` files tpchgen-cli writes into a data directory (DuckDB: views over
`read_parquet`; DataFusion: `SessionContext.register_parquet`), and runs one SQL text to a fully
materialised `pyarrow.Table`, so a timing always covers execution plus the complete fetch.

Both engines run with their default settings (all cores, in-memory, no result cache), which is
what a reader of the published numbers would get.
"""

from __future__ import annotations

import importlib.metadata
from decimal import Decimal
from pathlib import Path

TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
ENGINE_NAMES = ("duckdb", "datafusion")  # the default comparison, on this machine
ALL_ENGINES = (*ENGINE_NAMES, "spark")  # spark only when named: it needs a cluster's Spark master


def query_text(text: str, sf: str) -> str:
    """A query file's text ready to run at sf: Q11's `:fraction` becomes 0.0001 / SF (the specification's)."""
    fraction = Decimal("0.0001") / Decimal(sf)
    return text.replace(":fraction", format(fraction.normalize(), "f"))


class DataNotFound(Exception):
    """The data directory or one of its table files is missing or empty."""


def table_paths(data_dir: Path) -> dict[str, Path]:
    return {table: data_dir / f"{table}.parquet" for table in TABLES}


def check_data_dir(data_dir: Path) -> None:
    """Raise DataNotFound naming every missing or empty table file (or the missing directory)."""
    if not data_dir.is_dir():
        raise DataNotFound(
            f"TPC-H data directory {data_dir} does not exist. Run the tpch-generate stage for this "
            "scale factor first (bash stages/tpch/generate.sh SF DIR), or fix --data-dir."
        )
    missing = [str(path) for path in table_paths(data_dir).values() if not path.is_file() or path.stat().st_size == 0]
    if missing:
        raise DataNotFound(
            f"TPC-H data directory {data_dir} is incomplete; missing or empty: {', '.join(missing)}. "
            "Regenerate it with bash stages/tpch/generate.sh SF DIR (into a fresh directory)."
        )


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, data_dir: Path) -> None:
        import duckdb

        self.version = duckdb.__version__
        self._connection = duckdb.connect(database=":memory:")
        for table, path in table_paths(data_dir).items():
            literal = str(path).replace("'", "''")
            self._connection.execute(f"create view {table} as select * from read_parquet('{literal}')")

    def run(self, sql: str):
        # The relation API hands Arrow over without the extra copy a DB-API cursor makes.
        # DuckDB 1.4 renamed relation.arrow() to to_arrow_table(); the project allows both.
        relation = self._connection.sql(sql)
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()


class DataFusionEngine:
    name = "datafusion"

    def __init__(self, data_dir: Path) -> None:
        import datafusion

        self.version = importlib.metadata.version("datafusion")
        self._context = datafusion.SessionContext()
        for table, path in table_paths(data_dir).items():
            self._context.register_parquet(table, str(path))

    def run(self, sql: str):
        return self._context.sql(sql).to_arrow_table()


class SparkEngine:
    """Spark SQL on a standalone cluster: spark://$CAMPAIGN_CLUSTER_COORDINATOR:7077 (or $CAMPAIGN_SPARK_MASTER).

    The driver runs here, bound to the coordinator's own address; executors run on the cluster's workers and
    read the same parquet files (one machine locally; on AWS the data dir must be on every node). Small memory,
    no driver web UI, no console progress: nothing reaches the network beyond the cluster's addresses.
    """

    name = "spark"

    def __init__(self, data_dir: Path) -> None:
        import os

        from pyspark.sql import SparkSession

        coordinator = os.environ.get("CAMPAIGN_CLUSTER_COORDINATOR", "127.0.1.1")
        master = os.environ.get("CAMPAIGN_SPARK_MASTER") or f"spark://{coordinator}:7077"
        self.version = importlib.metadata.version("pyspark")
        builder = SparkSession.builder.master(master).appName("campaign-tpch")
        settings = {
            "spark.driver.host": coordinator,
            "spark.driver.bindAddress": coordinator,
            "spark.driver.memory": "512m",
            "spark.executor.memory": "512m",
            "spark.executor.cores": "1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.session.timeZone": "UTC",
        }
        for key, value in settings.items():
            builder = builder.config(key, value)
        self._spark = builder.getOrCreate()
        self._spark.sparkContext.setLogLevel("WARN")
        for table, path in table_paths(data_dir).items():
            self._spark.read.parquet(str(path)).createOrReplaceTempView(table)

    def run(self, sql: str):
        frame = self._spark.sql(sql.strip().rstrip(";"))
        to_arrow = getattr(frame, "toArrow", None)  # pyspark >= 4
        if to_arrow is not None:
            return to_arrow()
        import pyarrow

        return pyarrow.Table.from_pandas(frame.toPandas(), preserve_index=False)


ENGINE_CLASSES = {"duckdb": DuckDBEngine, "datafusion": DataFusionEngine, "spark": SparkEngine}


def open_engine(name: str, data_dir: Path):
    """Return a ready engine with the TPC-H tables registered from data_dir."""
    return ENGINE_CLASSES[name](data_dir)
