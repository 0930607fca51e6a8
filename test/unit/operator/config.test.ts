// Operator settings from the environment: defaults, and a clear error for nonsense.
import { describe, expect, it } from 'vitest';
import { DEFAULT_ROUNDS_MODE } from '../../../contract/src/rounds-mode.js';
import { loadConfig } from '../../../operator/src/config.js';

const base = { DATABASE_URL: 'postgres://db/cj' };

describe('loadConfig', () => {
  it("uses controller-runtime's leader election timings by default", () => {
    expect(loadConfig(base).leaderLease).toEqual({
      durationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
  });

  it('reads the timings in seconds and refuses an inconsistent or invalid set, naming the variables', () => {
    expect(
      loadConfig({
        ...base,
        LEADER_LEASE_DURATION: '6',
        LEADER_RENEW_DEADLINE: '4',
        LEADER_RETRY_PERIOD: '0.5',
      }).leaderLease,
    ).toEqual({ durationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 500 });
    expect(() => loadConfig({ ...base, LEADER_RENEW_DEADLINE: '20' })).toThrow(
      /LEADER_RETRY_PERIOD < LEADER_RENEW_DEADLINE < LEADER_LEASE_DURATION; got 2s, 20s, 15s/,
    );
    expect(() => loadConfig({ ...base, LEADER_LEASE_DURATION: 'soon' })).toThrow(
      'LEADER_LEASE_DURATION must be a positive number of seconds, not "soon"',
    );
  });

  it("takes the result event's size limit from KAFKA_MAX_MESSAGE_BYTES (default 1 MB)", () => {
    expect(loadConfig(base).kafkaMaxMessageBytes).toBe(1_000_000);
    expect(loadConfig({ ...base, KAFKA_MAX_MESSAGE_BYTES: '5000000' }).kafkaMaxMessageBytes).toBe(5_000_000);
    expect(() => loadConfig({ ...base, KAFKA_MAX_MESSAGE_BYTES: '1MB' })).toThrow(
      'KAFKA_MAX_MESSAGE_BYTES must be a positive whole number, not "1MB"',
    );
  });

  it('runs batches pipelined unless ROUNDS_MODE says rounds, and refuses any other mode', () => {
    expect(DEFAULT_ROUNDS_MODE).toBe('pipelined');
    expect(loadConfig(base).roundsMode).toBe('pipelined');
    expect(loadConfig({ ...base, ROUNDS_MODE: '' }).roundsMode).toBe('pipelined');
    expect(loadConfig({ ...base, ROUNDS_MODE: 'rounds' }).roundsMode).toBe('rounds');
    expect(() => loadConfig({ ...base, ROUNDS_MODE: 'batched' })).toThrow(
      'ROUNDS_MODE must be one of rounds, pipelined, not "batched"',
    );
  });

  it('needs DATABASE_URL', () => {
    expect(() => loadConfig({})).toThrow(/DATABASE_URL is not set/);
  });
});
