// Reading a Kafka topic whole in tests: every record up to the high watermark, by a fresh
// consumer group, so a test sees exactly what a new subscriber would.
import { randomBytes } from 'node:crypto';
import { type IHeaders, Kafka, logLevel } from 'kafkajs';

/** The operator's default topic for result events. */
export const RESULT_TOPIC = 'cj.batch.events';

export interface Record_ {
  partition: number;
  offset: string;
  key: string;
  headers: Record<string, string>;
  event: any;
}

/** A record as the broker returned it: bytes, headers untouched (kafkajs gives Buffers). */
export interface RawRecord {
  partition: number;
  offset: string;
  key: Buffer | null;
  headers: IHeaders;
  value: Buffer;
}

/** Every record of the topic up to its high watermark, read by a fresh consumer group. */
export async function readTopic(brokers: string, topic = RESULT_TOPIC): Promise<Record_[]> {
  return (await readRawTopic(brokers, topic)).map((r) => ({
    partition: r.partition,
    offset: r.offset,
    key: r.key?.toString() ?? '',
    headers: Object.fromEntries(Object.entries(r.headers).map(([h, v]) => [h, String(v)])),
    event: JSON.parse(r.value.toString()),
  }));
}

/** Every record of the topic up to its high watermark, raw, read by a fresh consumer group. */
export async function readRawTopic(brokers: string, topic = RESULT_TOPIC): Promise<RawRecord[]> {
  const k = new Kafka({ clientId: 'test-topic-reader', brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = k.admin();
  await admin.connect();
  const exists = (await admin.listTopics()).includes(topic);
  const offsets = exists ? await admin.fetchTopicOffsets(topic) : [];
  await admin.disconnect();
  const want = new Map(offsets.filter((o) => Number(o.high) > 0).map((o) => [o.partition, Number(o.high)]));
  if (want.size === 0) return [];
  const consumer = k.consumer({ groupId: `topic-reader-${randomBytes(4).toString('hex')}` });
  const out: RawRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${out.length} records; wanted ${[...want]}`)),
        60_000,
      );
      const done = new Set<number>();
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            out.push({
              partition,
              offset: message.offset,
              key: message.key,
              headers: message.headers ?? {},
              value: message.value!,
            });
            if (Number(message.offset) + 1 >= want.get(partition)!) done.add(partition);
            if (done.size === want.size) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
