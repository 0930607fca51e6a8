// kubectl cj audit end to end, as a teacher runs it: a real terminal (tmux), keys sent with
// `tmux send-keys`, the operator (dist/) on the local stack. A small batch succeeds; a 20-pair
// session is judged in the terminal; the answers travel through the <batch>-audit ConfigMap; the
// agreement in status.audit, in `kubectl cj explain` and in the cj.batch.audited.v1 event equals
// the one computed here from the LLM's verdicts in the database. tmux is a prerequisite (.ci/run
// installs it): without it this file fails, it does not skip.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { loadEventSchema, validate } from '../unit/outbox/event-schemas.js';
import { deleteNamespace, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { readTopic } from './kafka-topic.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  smallBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

const CLI = path.join(repoRoot, 'dist/operator/src/cli/kubectl-cj.js');
const SOCKET = `cj-audit-${randomBytes(3).toString('hex')}`;
let ns: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;
let sql: postgres.Sql;
let tmuxStarted = false;

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
const pane = () => tmux('capture-pane', '-p', '-J', '-t', 'audit');

function cj(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '-n', ns],
      { env: { ...process.env, KUBECONFIG: stack().kubeconfig } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  try {
    execFileSync('tmux', ['-V']);
  } catch {
    throw new Error('tmux is required for this test (apt-get install tmux; .ci/run installs it)');
  }
  await installCrds();
  ns = await newNamespace('audit');
  fake = await startFake();
  const db = await freshDatabase('audit');
  sql = postgres(db, { max: 1, onnotice: () => {} });
  operator = await startOperator({ namespace: ns, databaseUrl: db });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fake.url) }),
  );
});

afterAll(async () => {
  if (tmuxStarted) {
    try {
      tmux('kill-server');
    } catch {}
  }
  await operator?.stop();
  await fake?.close();
  await sql?.end();
  if (ns) await deleteNamespace(ns);
});

it('a teacher judges 20 pairs in the terminal; the agreement reaches status, explain and the event', async () => {
  // 12 items, 66 distinct pairs; 40 comparisons leave well over 20 distinct judged pairs.
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(smallBatch('class-9a', ns, 40)));
  const done = await waitFor(
    'class-9a Succeeded',
    async () => {
      const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'class-9a', '-n', ns, '-o', 'json']));
      if (b.status?.phase === 'Failed') throw new Error(`batch failed: ${JSON.stringify(b.status)}`);
      return b.status?.phase === 'Succeeded' ? b : undefined;
    },
    600_000,
  );
  const uid: string = done.metadata.uid;

  // Without a terminal the command refuses (it would otherwise hang on keys nobody types).
  const piped = await cj(['audit', 'class-9a']);
  expect(piped.code).toBe(2);
  expect(piped.stderr).toMatch(/run it in a terminal/);

  tmux(
    'new-session',
    '-d',
    '-s',
    'audit',
    '-x',
    '200',
    '-y',
    '60',
    '-e',
    `KUBECONFIG=${stack().kubeconfig}`,
    `${process.execPath} ${CLI} audit class-9a -n ${ns} --judge ms-test --pairs 20; echo AUDIT-EXIT=$?; sleep 600`,
  );
  tmuxStarted = true;
  await waitFor('pair 1 on screen', async () => (/Pair 1 of 20 /.test(pane()) ? true : undefined), 120_000);
  const cm = JSON.parse(await kubectlOk(['get', 'configmap', 'class-9a-audit', '-n', ns, '-o', 'json']));
  const pairs: { id: string; a: string; b: string }[] = JSON.parse(cm.data['pairs.json']);
  expect(pairs).toHaveLength(20);
  expect(cm.data['pairs.json']).not.toMatch(/winner/);
  expect(cm.metadata.ownerReferences[0].uid).toBe(uid);
  // The teacher's keys: a for the first 10, b for the next 8, skip one, b for the last.
  const keyFor = (i: number) => (i < 10 ? 'a' : i < 18 ? 'b' : i === 18 ? 's' : 'b');
  for (let i = 0; i < 20; i++) {
    await waitFor(
      `pair ${i + 1} on screen`,
      async () => (new RegExp(`Pair ${i + 1} of 20 `).test(pane()) ? true : undefined),
      30_000,
    );
    expect(pane()).toContain(`Essay A (${pairs[i]!.a})`);
    tmux('send-keys', '-t', 'audit', keyFor(i));
  }
  const screen = await waitFor(
    'the audit to finish',
    async () => (/AUDIT-EXIT=\d+/.test(pane()) ? pane() : undefined),
    120_000,
  );
  expect(screen).toMatch(/AUDIT-EXIT=0/);

  // The agreement, independently: the LLM's majority per unordered pair from the database.
  const rows = await sql<{ a: string; b: string; winner: string }[]>`
    SELECT essay_a AS a, essay_b AS b, CASE winner WHEN 'A' THEN essay_a ELSE essay_b END AS winner
      FROM comparisons WHERE batch_uid = ${uid} AND status = 'succeeded' ORDER BY id`;
  let agreements = 0;
  const human = pairs.map((p, i) => (keyFor(i) === 'a' ? p.a : keyFor(i) === 'b' ? p.b : null));
  for (const [i, p] of pairs.entries()) {
    if (human[i] === null) continue;
    const mine = rows.filter((r) => [r.a, r.b].sort().join() === [p.a, p.b].sort().join());
    expect(mine.length, `pair ${p.id} was judged by the LLM`).toBeGreaterThan(0);
    const forA = mine.filter((r) => r.winner === p.a).length;
    const llm = forA * 2 > mine.length ? p.a : forA * 2 < mine.length ? p.b : mine[0]!.winner;
    if (llm === human[i]) agreements++;
  }
  const status = JSON.parse(await kubectlOk(['get', 'cjbatch', 'class-9a', '-n', ns, '-o', 'json'])).status;
  expect(status.audit).toMatchObject({
    state: 'Audited',
    judge: 'ms-test',
    pairs: 20,
    judged: 19,
    agreements,
  });
  const sentence = `ms-test agreed with the AI judge on ${agreements} of 19 pairs`;
  expect(screen).toContain(sentence);
  console.log(`[audit] ${status.audit.message}; interval ${status.audit.interval95}`);

  const explain = await cj(['explain', 'class-9a']);
  expect(explain.code, explain.stderr).toBe(0);
  expect(explain.stdout).toContain(`Human check of the AI judge: ${sentence}`);

  const stored = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM human_judgements WHERE batch_uid = ${uid} AND judge = 'ms-test'`;
  expect(stored[0]!.n).toBe(19);

  // The event: once, valid against its schema, the same figures as the status.
  const event = await waitFor(
    'the cj.batch.audited.v1 event on Kafka',
    async () =>
      (await readTopic(stack().kafkaBrokers)).find(
        (r) => r.event.type === 'cj.batch.audited.v1' && r.event.subject === uid,
      ),
    120_000,
  );
  expect(validate(loadEventSchema('cj.batch.audited.v1'), event.event)).toEqual([]);
  expect(event.key).toBe(uid);
  expect(event.event.id).toBe(status.audit.eventId);
  expect(event.event.data).toMatchObject({ judged: 19, skipped: 1, agreements, judge: 'ms-test' });
  expect(event.event.data.interval95).toEqual(status.audit.interval95);

  // Once per batch: a second run reports the figure instead of asking again.
  const again = await cj(['audit', 'class-9a']);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('audited already');
});
