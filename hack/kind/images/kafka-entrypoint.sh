#!/bin/sh
# Writes server.properties for a one-node KRaft cluster advertised as $KAFKA_ADVERTISED_HOST,
# formats the log directory (under $KAFKA_DATA, an emptyDir) and runs the broker.
set -eu
: "${KAFKA_DATA:=/var/lib/kafka}" "${KAFKA_ADVERTISED_HOST:=localhost}"
mkdir -p "$KAFKA_DATA/logs"
cfg=$KAFKA_DATA/server.properties
cat >"$cfg" <<CFG
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://localhost:9093
advertised.listeners=PLAINTEXT://$KAFKA_ADVERTISED_HOST:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
CFG
cat >"$KAFKA_DATA/log4j.properties" <<'L4J'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
L4J
JAVA_OPTS="-Xms128m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true -Dlog4j.configuration=file:$KAFKA_DATA/log4j.properties"
# shellcheck disable=SC2086  # JAVA_OPTS is a list of flags
java $JAVA_OPTS -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format -t "$(cat /proc/sys/kernel/random/uuid | tr -d - | head -c 22)" -c "$cfg" --ignore-formatted >/dev/null
# shellcheck disable=SC2086
exec java $JAVA_OPTS -cp '/opt/kafka/libs/*' kafka.Kafka "$cfg"
