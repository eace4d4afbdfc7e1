"""Run a shelfwise command under spark-submit: the driver JVM and its settings are spark-submit's.

    spark-submit --master spark://spark-master:7077 --conf spark.executor.memory=16g \
        deploy/spark/submit.py fit als --engine spark --spark-stage /mnt/shared/shelfwise-stage

Only the driver runs shelfwise (the warehouse file must be on its host); executors run Spark's
ALS on the JVM (no Python code runs there), so they need no shelfwise. See docs/spark.md.
"""

import sys

from shelfwise.cli import main

if __name__ == "__main__":
    main(sys.argv[1:])
