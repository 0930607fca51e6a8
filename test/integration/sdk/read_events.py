"""Reads a Kafka topic as a Python consumer of the operator's events would: kafka-python for the
records, the official CloudEvents SDK (`cloudevents.core.bindings.kafka.from_kafka`, which picks
binary or structured mode by itself) to decode them. Prints one JSON line per record: the
attributes and data the SDK returned, or the SDK's error. Used by events-sdk.test.ts.

usage: read_events.py BROKERS TOPIC
"""

import json
import sys
import time
from datetime import datetime

from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat
from kafka import KafkaConsumer, TopicPartition


def main(brokers: str, topic: str) -> None:
    consumer = KafkaConsumer(bootstrap_servers=brokers.split(","), enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    if not partitions:
        sys.exit(f"topic {topic} has no partitions")
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    left = {tp: n for tp, n in end.items() if n > 0}
    deadline = time.monotonic() + 60
    while left:
        if time.monotonic() > deadline:
            sys.exit(f"timed out reading {topic}; partitions left: {left}")
        for tp, records in consumer.poll(timeout_ms=10_000).items():
            for r in records:
                message = KafkaMessage(headers=dict(r.headers), key=r.key, value=r.value)
                try:
                    event = from_kafka(message, JSONFormat())
                    attrs = {
                        k: (v.isoformat() if isinstance(v, datetime) else v)
                        for k, v in event.get_attributes().items()
                    }
                    out = {"offset": r.offset, "attributes": attrs, "data": event.get_data()}
                except Exception as err:  # the test prints what the SDK said
                    out = {"offset": r.offset, "error": f"{type(err).__name__}: {err}"}
                print(json.dumps(out), flush=True)
                if r.offset + 1 >= left.get(tp, 0):
                    left.pop(tp, None)
    consumer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
