#!/usr/bin/env bash
# Fit als and mf on a Spark standalone cluster from the warehouse host (client mode: the driver is
# the shelfwise process, the executors do the ALS). The stage must be the same path on the
# warehouse host and on every worker (an NFS mount here), or an object store (see kubernetes.sh).
# Sizes are for all 229M UCSD interactions with 128 factors; see docs/spark.md for the arithmetic.
set -euo pipefail

MASTER=${MASTER:-spark://spark-master:7077}
STAGE=${STAGE:-/mnt/shared/shelfwise-stage}
DB=${SHELFWISE_DB:-/srv/shelfwise/ucsd.duckdb}

common=(
  --engine spark --spark-master "$MASTER" --spark-stage "$STAGE"
  --spark-blocks 48                                  # ~2x the executor cores below
  --spark-checkpoint-interval 5                      # short lineage: a lost executor redoes little
  --spark-conf spark.executor.instances=6
  --spark-conf spark.executor.cores=4
  --spark-conf spark.executor.memory=20g             # factors + one block's normal equations
  --spark-conf spark.executor.memoryOverhead=4g      # native BLAS buffers live off-heap
  --spark-conf spark.driver.memory=4g                # the driver only plans: factors go to the stage
  --spark-conf spark.ui.enabled=true
  --db "$DB"
)

shelfwise fit als -p factors=128 "${common[@]}"
shelfwise fit mf -p factors=128 "${common[@]}"
# Or everything that changed, als and mf on the cluster and the rest on this host:
# shelfwise refresh "${common[@]}"
