#!/usr/bin/env python3
"""The seed's Spark Structured Streaming job, for the stream benchmark.

Kafka source, JSON parsed with a strict schema, Parquet sink with a checkpoint location,
local[threads], the spark-sql-kafka-0-10 jars from Maven Central.

Usage: spark_stream_tool.py throughput <brokers> <topic> <output> <threads>
       spark_stream_tool.py latency <brokers> <topic> <output> <threads> <seconds>
Prints one JSON line; throughput mode drains the topic (trigger availableNow) and times it
(JVM start excluded), and reports the rate over the micro-batches' `addBatch` time as Spark's
sustained rate; latency mode runs 10-second micro-batches for <seconds>.
"""
import glob
import json
import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

mode, brokers, topic, output, threads = sys.argv[1:6]
jars_dir = os.environ.get("TRAFFIC_SPARK_KAFKA_JARS", os.path.expanduser("~/.cache/traffic-ci/spark-kafka-jars"))
jars = [j for j in glob.glob(f"{jars_dir}/*.jar") if any(k in j for k in ("kafka", "commons-pool2"))]
spark = (
    SparkSession.builder.master(f"local[{threads}]")
    .config("spark.jars", ",".join(jars))
    .config("spark.driver.memory", "4g")
    .config("spark.sql.shuffle.partitions", threads)
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
schema = StructType(
    [
        StructField("sensor_id", StringType()),
        StructField("timestamp", TimestampType()),
        StructField("average_speed", DoubleType()),
        StructField("traffic_density", DoubleType()),
    ]
)
source = (
    spark.readStream.format("kafka")
    .option("kafka.bootstrap.servers", brokers)
    .option("subscribe", topic)
    .option("startingOffsets", "earliest")
    .load()
)
parsed = source.select(
    F.from_json(F.col("value").cast("string"), schema).alias("r"), F.col("partition"), F.col("offset")
).select("r.*", "partition", "offset")
writer = parsed.writeStream.format("parquet").option("path", output).option("checkpointLocation", output + "-checkpoint")
if mode == "throughput":
    start = time.perf_counter()
    query = writer.trigger(availableNow=True).start()
    query.awaitTermination()
    seconds = time.perf_counter() - start
    rows = spark.read.parquet(output).count()
    # Spark's analogue of traffic's sustained rate: rows over the time its micro-batches spent
    # reading, parsing and writing (`addBatch`), leaving out query start, planning, offset logs.
    progress = query.recentProgress
    batch_rows = sum(p["numInputRows"] for p in progress)
    batch_ms = sum(p["durationMs"].get("addBatch", 0) for p in progress)
    result = {"tool": "spark", "seconds": round(seconds, 3), "rows": rows, "batches": len(progress),
              "add_batch_seconds": round(batch_ms / 1000, 3),
              "sustained_rate": round(batch_rows / (batch_ms / 1000)) if batch_ms else None}
    print(json.dumps(result), flush=True)
else:
    query = writer.trigger(processingTime="10 seconds").start()
    print(json.dumps({"ready": True}), flush=True)
    time.sleep(float(sys.argv[6]))
    query.stop()
    print(json.dumps({"tool": "spark", "stopped": True}), flush=True)
spark.stop()
