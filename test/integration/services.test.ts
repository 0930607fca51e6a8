// The local services are real: kafkajs produces to and consumes from the broker, and the
// `postgres` client queries the server.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import postgres from 'postgres';
import { expect, it } from 'vitest';
import { stack } from './helpers.js';

it('kafkajs produces and consumes on the local broker', async () => {
  const kafka = new Kafka({
    clientId: 'services-test',
    brokers: [stack().kafkaBrokers],
    logLevel: logLevel.NOTHING,
  });
  const topic = `services-${randomBytes(4).toString('hex')}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'hello' }] });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: `g-${topic}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message within 30 s')), 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        clearTimeout(timer);
        resolve(`${message.key}=${message.value}`);
      },
    });
  });
  await consumer.disconnect();
  expect(got).toBe('k=hello');
});

it('the postgres client queries the local Postgres', async () => {
  const sql = postgres(stack().postgresUrl, { max: 1, onnotice: () => {} });
  const [row] = await sql`SELECT current_setting('server_version_num')::int AS v, 1 + 1 AS two`;
  await sql.end();
  expect(row!.two).toBe(2);
  expect(row!.v).toBeGreaterThanOrEqual(150000);
});
