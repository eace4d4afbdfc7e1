#!/usr/bin/env bash
# Fit on Kubernetes in client mode from a pod that holds the warehouse (the driver), executors as
# pods. The stage is an S3 bucket both sides reach: DuckDB writes the Parquet (httpfs extension,
# credentials from the environment or a DuckDB secret), Spark reads it through hadoop-aws.
set -euo pipefail

API=${API:-https://kubernetes.default.svc:443}
STAGE=${STAGE:-s3a://shelfwise-stage/ucsd}
IMAGE=${IMAGE:-apache/spark:4.3.0}                     # the Spark version pyspark pins
DRIVER_HOST=${DRIVER_HOST:-$(hostname -i)}           # executors connect back to this pod

shelfwise fit als -p factors=128 \
  --engine spark --spark-master "k8s://$API" --spark-stage "$STAGE" \
  --spark-blocks 48 --spark-checkpoint-interval 5 \
  --spark-conf spark.kubernetes.container.image="$IMAGE" \
  --spark-conf spark.kubernetes.namespace=shelfwise \
  --spark-conf spark.kubernetes.authenticate.driver.serviceAccountName=shelfwise \
  --spark-conf spark.driver.host="$DRIVER_HOST" \
  --spark-conf spark.driver.port=7078 \
  --spark-conf spark.executor.instances=6 \
  --spark-conf spark.executor.cores=4 \
  --spark-conf spark.executor.memory=20g \
  --spark-conf spark.executor.memoryOverhead=4g \
  --spark-conf spark.jars.packages=org.apache.hadoop:hadoop-aws:3.4.1 \
  --spark-conf spark.hadoop.fs.s3a.aws.credentials.provider=com.amazonaws.auth.EnvironmentVariableCredentialsProvider
