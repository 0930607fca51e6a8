# A single-node Kafka (KRaft, broker and controller) for the kind e2e (hack/kind/deps.yaml): the
# broker jars from the tool cache (Maven Central) and Debian's JRE.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY libs /opt/kafka/libs
COPY kafka-entrypoint.sh /usr/local/bin/kafka-entrypoint
RUN mkdir -p /var/lib/kafka && chown 65532:65532 /var/lib/kafka
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kafka-entrypoint"]
