#!/usr/bin/env bash
# Fetches the Kafka $KAFKA_VERSION broker jars (KRaft) from Maven Central into $CJ_CACHE/kafka/$KAFKA_VERSION/libs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
OUT=$CJ_CACHE/kafka/$KAFKA_VERSION/libs
if [ -f "$OUT/.complete" ]; then echo "[tools] kafka $KAFKA_VERSION: cached in $OUT"; exit 0; fi
echo "[tools] kafka $KAFKA_VERSION: fetching jars from Maven Central (about 1 min cold)"
rm -rf "$OUT"; mkdir -p "$OUT"
mvn -B -q -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$OUT"
ls "$OUT" | grep -q "^kafka_2.13-$KAFKA_VERSION.jar$" || { echo "[tools] kafka jar missing in $OUT" >&2; exit 1; }
touch "$OUT/.complete"
echo "[tools] kafka $KAFKA_VERSION: $(ls "$OUT" | wc -l) jars in $OUT"
