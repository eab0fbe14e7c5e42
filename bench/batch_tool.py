#!/usr/bin/env python3
"""One peer of the batch benchmark: CSV -> Parquet partitioned by month, with an explicit schema.

Usage: batch_tool.py <duckdb|polars|spark> <input.csv> <output dir> <threads>
Prints one JSON line: {"tool", "seconds", "rows"}; the time excludes interpreter and JVM start.
"""
import json
import os
import sys
import time

tool, source, output, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def duckdb_job():
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    start = time.perf_counter()
    con.execute(
        f"""COPY (
              SELECT DateTime AS datetime, Junction AS junction, Vehicles AS vehicles, ID AS id,
                     strftime(DateTime, '%Y-%m') AS month
              FROM read_csv('{source}', header = true,
                   columns = {{'DateTime': 'TIMESTAMP', 'Junction': 'INTEGER', 'Vehicles': 'INTEGER', 'ID': 'BIGINT'}})
            ) TO '{output}' (FORMAT parquet, PARTITION_BY (month), COMPRESSION zstd)"""
    )
    seconds = time.perf_counter() - start
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{output}/*/*.parquet')").fetchone()[0]
    return seconds, rows


def polars_job():
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    start = time.perf_counter()
    schema = {"DateTime": pl.String, "Junction": pl.Int32, "Vehicles": pl.Int32, "ID": pl.Int64}
    frame = (
        pl.scan_csv(source, schema=schema)
        .select(
            pl.col("DateTime").str.to_datetime("%Y-%m-%d %H:%M:%S").alias("datetime"),
            pl.col("Junction").alias("junction"),
            pl.col("Vehicles").alias("vehicles"),
            pl.col("ID").alias("id"),
        )
        .with_columns(month=pl.col("datetime").dt.strftime("%Y-%m"))
        .collect()
    )
    frame.write_parquet(output, partition_by="month", compression="zstd")
    return time.perf_counter() - start, frame.height


def spark_job():
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType, TimestampNTZType

    spark = (
        SparkSession.builder.master(f"local[{threads}]")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(threads))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    schema = StructType(
        [
            StructField("DateTime", TimestampNTZType()),
            StructField("Junction", IntegerType()),
            StructField("Vehicles", IntegerType()),
            StructField("ID", LongType()),
        ]
    )
    start = time.perf_counter()
    frame = spark.read.csv(source, header=True, schema=schema, timestampFormat="yyyy-MM-dd HH:mm:ss")
    frame = frame.select(
        F.col("DateTime").alias("datetime"),
        F.col("Junction").alias("junction"),
        F.col("Vehicles").alias("vehicles"),
        F.col("ID").alias("id"),
    ).withColumn("month", F.date_format("datetime", "yyyy-MM"))
    frame.write.partitionBy("month").option("compression", "zstd").mode("overwrite").parquet(output)
    seconds = time.perf_counter() - start
    rows = spark.read.parquet(output).count()
    spark.stop()
    return seconds, rows


seconds, rows = {"duckdb": duckdb_job, "polars": polars_job, "spark": spark_job}[tool]()
print(json.dumps({"tool": tool, "seconds": round(seconds, 3), "rows": rows}))
