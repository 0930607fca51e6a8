import { describe, expect, it } from 'vitest';
import { loadConfig, platformPolicy } from '../../../operator/src/config.js';
import { isPoison } from '../../../operator/src/outbox/relay.js';
import { imageAllowed, platformErrors, topicAllowed } from '../../../operator/src/validation/platform.js';

const policy = platformPolicy(
  loadConfig({
    DATABASE_URL: 'postgres://db/cj',
    OPERATOR_IMAGE: 'reg.example/cj-operator:1.2.3',
    WORKER_IMAGES: 'reg.example/cj-workers/*, reg.example/judge:2',
    KAFKA_ALLOWED_TOPICS: 'cj.results.*',
  }),
);

describe('platform allowlists', () => {
  it('workers run the operator image unless the platform allows more', () => {
    expect(imageAllowed(policy, 'reg.example/cj-operator:1.2.3')).toBe(true);
    expect(imageAllowed(policy, 'reg.example/cj-workers/fast:1')).toBe(true);
    expect(imageAllowed(policy, 'reg.example/judge:2')).toBe(true);
    expect(imageAllowed(policy, 'reg.example/judge:3')).toBe(false);
    expect(imageAllowed(policy, 'attacker.example/cj-operator:1.2.3')).toBe(false);
    const [e] = platformErrors({ workers: { image: 'attacker.example/x' } }, policy);
    expect(e!.field).toBe('spec.workers.image');
    expect(e!.message).toMatch(/not allowed.*remove spec\.workers\.image/);
  });

  it('topics: the default, the allowlist, never an invalid Kafka name', () => {
    expect(topicAllowed(policy, 'cj.batch.events')).toBe(true);
    expect(topicAllowed(policy, 'cj.results.class-7')).toBe(true);
    expect(topicAllowed(policy, 'other-team.results')).toBe(false);
    expect(platformErrors({ output: { kafkaTopic: '..' } }, policy)[0]!.message).toMatch(
      /not a valid Kafka topic/,
    );
    expect(platformErrors({ output: { kafkaTopic: 'other' } }, policy)[0]!.field).toBe(
      'spec.output.kafkaTopic',
    );
    expect(platformErrors({ output: { kafkaTopic: 'cj.results.x' } }, policy)).toEqual([]);
    expect(platformErrors({}, policy)).toEqual([]);
  });

  it('the relay parks only errors that are the record’s own fault', () => {
    expect(isPoison({ type: 'MESSAGE_TOO_LARGE' })).toBe(true);
    expect(
      isPoison({ name: 'KafkaJSNumberOfRetriesExceeded', cause: { type: 'TOPIC_AUTHORIZATION_FAILED' } }),
    ).toBe(true);
    expect(isPoison({ errors: [{ type: 'INVALID_TOPIC_EXCEPTION' }] })).toBe(true);
    expect(isPoison({ type: 'LEADER_NOT_AVAILABLE' })).toBe(false);
    expect(isPoison(new Error('Connection error: connect ECONNREFUSED'))).toBe(false);
  });
});
