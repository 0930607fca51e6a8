// Fault drills (issue 9): one environment per drill file (namespace, database, fake LLM, pool,
// operators) and the three invariants every drill ends with:
//  - no lost comparison: every pair the engine planned has exactly one stored, final outcome, and
//    the status counters equal the rows in Postgres (pairs a pipelined batch cancelled at its stop
//    are final rows counted apart: in neither planned nor failed);
//  - no duplicated event id: the Kafka topic holds exactly one CloudEvent for the batch outcome,
//    with the outbox's event id;
//  - a terminal phase with a reason: Succeeded or Failed, condition Succeeded with reason and message.

import postgres from 'postgres';
import { expect } from 'vitest';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { readTopic as readWholeTopic } from './kafka-topic.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

export const TOPIC = 'cj.batch.events';
const cond = (status: any, type: string) => status?.conditions?.find((c: any) => c.type === type);

export interface DrillFigures {
  batch: string;
  phase: string;
  reason: string;
  rounds: number;
  planned: number;
  completed: number;
  failed: number;
  /** Open when a pipelined batch committed its stop, cancelled in that transaction. */
  cancelled: number;
  /** HTTP attempts beyond the first, summed over comparisons (from the database). */
  retried: number;
  attempts: number;
  lost: number;
  duplicatedEvents: number;
  kafkaRecords: number;
  seconds: number;
}

export class Drill {
  ns = '';
  dbUrl = '';
  sql!: postgres.Sql;
  fake!: FakeAnthropic;
  readonly operators: OperatorProcess[] = [];
  private started = new Map<string, number>();

  constructor(readonly prefix: string) {}

  /** Namespace, fresh database, fake LLM and a Ready pool (`editPool` adjusts its spec). */
  async setup(
    fakeOpts: Parameters<typeof startFake>[0] = {},
    editPool: (spec: any) => void = () => {},
  ): Promise<void> {
    await installCrds();
    this.ns = await newNamespace(this.prefix);
    this.dbUrl = await freshDatabase(this.prefix.replace(/-/g, '_'));
    this.sql = postgres(this.dbUrl, { max: 2, onnotice: () => {} });
    this.fake = await startFake(fakeOpts);
    const items = poolManifests(this.ns, this.fake.url);
    editPool(items[1]!.spec);
    await kubectlOk(
      ['apply', '-n', this.ns, '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    );
  }

  async startOperator(identity: string, env: Record<string, string> = {}): Promise<OperatorProcess> {
    const o = await startOperator({ namespace: this.ns, databaseUrl: this.dbUrl, identity, env });
    this.operators.push(o);
    return o;
  }

  async poolReady(name = 'fake-pool'): Promise<void> {
    await waitFor(
      `${name} Ready`,
      async () => cond((await this.get(['get', 'llmpool', name])).status, 'Ready')?.status === 'True',
      90_000,
    );
  }

  async teardown(): Promise<void> {
    for (const o of this.operators) await o.stop('SIGKILL').catch(() => undefined);
    await this.fake?.close().catch(() => undefined);
    await this.sql?.end({ timeout: 5 }).catch(() => undefined);
    if (this.ns) await deleteNamespace(this.ns);
  }

  get = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-n', this.ns, '-o', 'json']));
  status = async (name: string) => (await this.get(['get', 'cjbatch', name])).status ?? {};
  leaseHolder = async () =>
    (await this.get(['get', 'lease', 'cj-operator-leader'])).spec?.holderIdentity as string | undefined;

  /** Applies the small sample batch (8 essays + 4 anchors) as `name`; `edit` adjusts it. */
  async applyBatch(name: string, edit: (b: any) => void = () => {}): Promise<string> {
    const b = sampleBatch('cjbatch-small.yaml', name, this.ns);
    edit(b);
    await kubectlOk(['apply', '-n', this.ns, '-f', '-'], JSON.stringify(b));
    this.started.set(name, Date.now());
    return (await this.get(['get', 'cjbatch', name])).metadata.uid;
  }

  /**
   * The batch's judging as the store has it (not the status, which a leaderless operator does not
   * update): verdicts stored, pairs open and leased, whether it stopped (a stop round or a committed
   * outcome), its rounds mode.
   * A drill fires its fault on this, and checks afterwards that the batch was still judging.
   */
  async progress(uid: string): Promise<{
    done: number;
    open: number;
    leased: number;
    ended: boolean;
    mode: 'rounds' | 'pipelined';
  }> {
    const [r] = await this.sql`
      SELECT c.done, c.open, c.leased,
             (b.finalized_at IS NOT NULL OR EXISTS (
               SELECT 1 FROM rounds WHERE batch_uid = ${uid} AND decision = 'stop')) AS ended,
             coalesce(b.config->>'rounds', 'rounds') AS mode
        FROM batches b,
             (SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done,
                     count(*) FILTER (WHERE status IN ('pending', 'leased'))::int AS open,
                     count(*) FILTER (WHERE status = 'leased')::int AS leased
                FROM comparisons WHERE batch_uid = ${uid}) c
       WHERE b.uid = ${uid}`;
    if (!r) return { done: 0, open: 0, leased: 0, ended: false, mode: 'rounds' };
    return { done: r.done, open: r.open, leased: r.leased, ended: r.ended, mode: r.mode };
  }

  /** Ids of the batch's pairs leased by `pod` now (what a worker holds when a fault hits it). */
  async leasedBy(uid: string, pod: string): Promise<string[]> {
    const rows = await this.sql`
      SELECT id::text AS id FROM comparisons
       WHERE batch_uid = ${uid} AND status = 'leased' AND lease_owner = ${pod}`;
    return rows.map((r) => r.id as string);
  }

  /** Verdicts stored after `t` (a fault's time): more than 0 means the batch was judging past it. */
  async verdictsSince(uid: string, t: Date): Promise<number> {
    const [r] = await this.sql`
      SELECT count(*)::int AS n FROM comparisons
       WHERE batch_uid = ${uid} AND status = 'succeeded' AND completed_at > ${t}`;
    return r!.n;
  }

  /** Running comparison pods of the batch (not being deleted). */
  async comparisonPods(name: string): Promise<any[]> {
    const pods = (
      await this.get(['get', 'pods', '-l', `cj.huleedu.io/batch=${name},cj.huleedu.io/role=comparison`])
    ).items as any[];
    return pods.filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);
  }

  /** What a drill saw when it fails: status, Jobs, pods, operator log tails. */
  async describe(name: string): Promise<string> {
    const st = await this.status(name).catch((e) => String(e));
    const jobs = await kubectl(['get', 'jobs,pods', '-n', this.ns, '-o', 'wide']);
    const logs = this.operators
      .map((o) => `--- ${o.log}\n${o.logText().split('\n').slice(-25).join('\n')}`)
      .join('\n');
    return `status: ${JSON.stringify(st)}\n${jobs.stdout}\n${logs}`;
  }

  /** Waits for Succeeded or Failed (`timeoutMs`), then checks every invariant; returns the figures. */
  async finish(
    name: string,
    opts: { timeoutMs?: number; expectPhase?: 'Succeeded' | 'Failed'; allowRedelivery?: boolean } = {},
  ): Promise<DrillFigures> {
    const st = await waitFor(
      `${name} Succeeded or Failed`,
      async () => {
        const s = await this.status(name);
        return s.phase === 'Succeeded' || s.phase === 'Failed' ? s : undefined;
      },
      opts.timeoutMs ?? 300_000,
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await this.describe(name)}`);
    });
    const seconds = (Date.now() - (this.started.get(name) ?? Date.now())) / 1000;
    try {
      return await this.invariants(name, st, seconds, opts);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await this.describe(name)}`);
    }
  }

  private async invariants(
    name: string,
    terminal: any,
    seconds: number,
    opts: { expectPhase?: 'Succeeded' | 'Failed'; allowRedelivery?: boolean },
  ): Promise<DrillFigures> {
    // 3. A terminal phase with a reason.
    const done = cond(terminal, 'Succeeded');
    expect(done, 'condition Succeeded').toBeDefined();
    expect(done.reason, 'Succeeded reason').toMatch(/^[A-Z][A-Za-z0-9]*$/);
    expect(done.message, 'Succeeded message').toBeTruthy();
    expect(done.status).toBe(terminal.phase === 'Succeeded' ? 'True' : 'False');
    if (opts.expectPhase)
      expect(terminal.phase, `phase (${done.reason}: ${done.message})`).toBe(opts.expectPhase);

    // The event is published; the status read then is the final one.
    const status = await waitFor(
      `${name} EventPublished=True`,
      async () => {
        const s = await this.status(name);
        return cond(s, 'EventPublished')?.status === 'True' ? s : undefined;
      },
      120_000,
    );
    const uid = (await this.get(['get', 'cjbatch', name])).metadata.uid as string;

    // 1. No lost comparison.
    const [db] = await this.sql`
      SELECT count(*) FILTER (WHERE failure_reason IS DISTINCT FROM 'cancelled_at_stop')::int AS planned,
             count(*) FILTER (WHERE status = 'succeeded')::int AS completed,
             count(*) FILTER (WHERE status = 'failed' AND failure_reason IS DISTINCT FROM 'cancelled_at_stop')::int AS failed,
             count(*) FILTER (WHERE failure_reason = 'cancelled_at_stop')::int AS cancelled,
             count(*) FILTER (WHERE status IN ('pending', 'leased'))::int AS open,
             count(*) FILTER (WHERE status = 'succeeded' AND winner IS NULL)::int AS no_winner,
             count(*) FILTER (WHERE status = 'failed' AND failure_reason IS NULL)::int AS no_reason,
             count(*) FILTER (WHERE status IN ('succeeded', 'failed') AND completed_at IS NULL)::int AS no_time,
             coalesce(sum(attempts), 0)::int AS attempts,
             coalesce(sum(greatest(attempts - 1, 0)), 0)::int AS retried
        FROM comparisons WHERE batch_uid = ${uid}`;
    // Every pair the engine planned (rounds.pairs for the next round) is a row, once.
    const perRound = await this.sql`
      SELECT r.round, r.pairs, r.decision,
             (SELECT count(*)::int FROM comparisons c WHERE c.batch_uid = r.batch_uid AND c.round = r.round + 1) AS rows,
             (SELECT count(DISTINCT (c.essay_a, c.essay_b))::int FROM comparisons c
               WHERE c.batch_uid = r.batch_uid AND c.round = r.round + 1) AS distinct_pairs
        FROM rounds r WHERE r.batch_uid = ${uid} ORDER BY r.round`;
    const [rounds] = await this
      .sql`SELECT count(*)::int AS n, coalesce(max(round), -1)::int AS last FROM rounds WHERE batch_uid = ${uid}`;
    const continued = (perRound as any[]).filter((r) => r.decision === 'continue');
    const lost =
      db!.open +
      db!.no_winner +
      db!.no_reason +
      db!.no_time +
      continued.reduce((a: number, r: any) => a + Math.max(0, r.pairs - r.rows), 0);
    expect(db!.open, 'comparisons left pending or leased').toBe(0);
    expect(db!.no_winner + db!.no_reason + db!.no_time, 'final rows without their outcome').toBe(0);
    for (const r of perRound as any[]) {
      expect(r.rows, `round ${r.round + 1}: rows == distinct pairs`).toBe(r.distinct_pairs);
      if (r.decision === 'continue')
        expect(r.rows, `round ${r.round + 1}: planned pairs stored`).toBe(r.pairs);
    }
    expect(rounds!.n, 'each round scored exactly once').toBe(rounds!.last + 1);
    const c = status.comparisons ?? {};
    expect(c.planned, 'status planned == rows').toBe(db!.planned);
    expect(c.completed, 'status completed == succeeded rows').toBe(db!.completed);
    expect(c.failed, 'status failed == failed rows').toBe(db!.failed);

    // 2. No duplicated event id: one outbox row, one CloudEvent on the topic, same id.
    const outbox = await this.sql`SELECT event_id FROM outbox WHERE batch_uid = ${uid}`;
    expect(outbox, 'outbox rows').toHaveLength(1);
    const records = (await readTopic(stack().kafkaBrokers)).filter((r) => r.key === uid);
    const ids = new Set(records.map((r) => r.id));
    expect([...ids], 'event ids on the topic').toEqual([outbox[0]!.event_id]);
    if (!opts.allowRedelivery) expect(records, 'CloudEvents for the batch').toHaveLength(1);

    return {
      batch: name,
      phase: terminal.phase,
      reason: done.reason,
      rounds: rounds!.n,
      planned: db!.planned,
      completed: db!.completed,
      failed: db!.failed,
      cancelled: db!.cancelled,
      retried: db!.retried,
      attempts: db!.attempts,
      lost,
      duplicatedEvents: records.length - ids.size,
      kafkaRecords: records.length,
      seconds: Math.round(seconds),
    };
  }
}

export function report(drill: string, figures: DrillFigures, extra: Record<string, unknown> = {}): void {
  console.log(`[drill] ${drill}: ${JSON.stringify({ ...figures, ...extra })}`);
}

/** Every record of the topic up to its high watermark as (key, event id). */
export async function readTopic(brokers: string, topic = TOPIC): Promise<{ key: string; id: string }[]> {
  return (await readWholeTopic(brokers, topic)).map((r) => ({ key: r.key, id: r.event.id }));
}
