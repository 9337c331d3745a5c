#!/usr/bin/env bash
# One Spark standalone daemon in the foreground (campaign keeps its process tree): master or worker.
# argv: master | worker. The node's addresses come from the environment the cluster gives every service:
# CAMPAIGN_NODE_ADDRESS (this node: 127.0.1.N locally, the private IP on AWS), CAMPAIGN_NODE_DIR,
# CAMPAIGN_CLUSTER_COORDINATOR. Every port is bound to the node's own address, never to all interfaces.
set -euo pipefail
role=${1:?usage: service.sh master|worker}
address=${CAMPAIGN_NODE_ADDRESS:?not on a cluster node}
SPARK_HOME=$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME SPARK_NO_DAEMONIZE=1 SPARK_LOCAL_IP="$address" SPARK_PUBLIC_DNS="$address"
export SPARK_LOG_DIR="$CAMPAIGN_NODE_DIR/spark-logs" SPARK_WORKER_DIR="$CAMPAIGN_NODE_DIR/spark-work"
export SPARK_CONF_DIR="$CAMPAIGN_NODE_DIR/spark-conf"
mkdir -p "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR" "$SPARK_CONF_DIR"
# Small and quiet: no update checks, no event logs, memory within what a 2-core laptop spares.
export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-256m}
case "$role" in
  master)
    export SPARK_MASTER_HOST="$address" SPARK_MASTER_PORT=7077 SPARK_MASTER_WEBUI_PORT=8080
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "$address" --port 7077 --webui-port 8080 ;;
  worker)
    export SPARK_WORKER_PORT=7078 SPARK_WORKER_WEBUI_PORT=8081 \
      SPARK_WORKER_CORES=${SPARK_WORKER_CORES:-1} SPARK_WORKER_MEMORY=${SPARK_WORKER_MEMORY:-768m}
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$address" --port 7078 --webui-port 8081 --cores "$SPARK_WORKER_CORES" \
      --memory "$SPARK_WORKER_MEMORY" --work-dir "$SPARK_WORKER_DIR" \
      "spark://${CAMPAIGN_CLUSTER_COORDINATOR:?}:7077" ;;
  *) echo "service.sh: role is master or worker, not $role" >&2; exit 2 ;;
esac
