#!/bin/sh
# One-shot topic creation on Apache Kafka, run with the official image's kafka-topics.sh.
# Reads the same SLA_* variables as the workers; the partition counts and configs are those of
# sla_stream/stream/topics.py (tests/unit/test_deploy.py fails when the two disagree). Faust
# declares its own changelog topics. Safe to re-run: existing topics are left as they are.
set -eu
: "${SLA_BROKER:?set SLA_BROKER to the Kafka bootstrap servers}"
prefix="${SLA_TOPIC_PREFIX:-sla.}"
p="${SLA_PARTITIONS:-4}"
rf="${SLA_REPLICATION_FACTOR:-1}"
topics=/opt/kafka/bin/kafka-topics.sh

create() { # create NAME PARTITIONS [KEY=VALUE ...]
  name="$prefix$1"
  partitions="$2"
  shift 2
  for kv in "$@"; do
    set -- "$@" --config "$kv"
    shift
  done
  "$topics" --bootstrap-server "$SLA_BROKER" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "$rf" "$@"
}

# Events and ticks are co-partitioned: the incident agent reads both, keyed by incident.
create incident-events "$p"
create ticks "$p" retention.ms=3600000
# Every version of every contract, keyed by contract id; read whole by a GlobalTable.
create contracts 1 cleanup.policy=compact
create alerts "$p"
create outcomes "$p"
create dead-letter 1

"$topics" --bootstrap-server "$SLA_BROKER" --describe --topic "${prefix}contracts"
