// Tenancy drills (issue 15): two tenants, alice in one namespace and bob in another, each bound
// only to the aggregated cj-editor role (the chart's, rendered with helm), act through the real
// apiserver with impersonation (`kubectl --as`). One real operator process watches both
// namespaces (namespaced mode) and serves its webhook. Every attack is asserted to fail:
//  - a pool whose baseURL is not allowed never receives the key: refused at admission, and when
//    created behind the webhook's back the operator neither reads the Secret nor connects (a
//    loopback HTTP server records every request; an allowed twin of it proves the recorder works);
//  - a Secret without the opt-in label is never used, and status does not say whether it exists;
//  - credentials in the URL, names over 63 characters, NUL and zero-width-only text are refused;
//  - a tenant cannot reach the other namespace, nor Secrets in its own;
//  - a child name held by a stranger's object is not taken over;
//  - the operator's namespaced RBAC (the chart's) writes no Secret, ConfigMap or Job in kube-system;
//  - hostile input costs nothing: 40,000 line breaks are admitted as fast as plain text, and the
//    leader Lease keeps renewing while 20 concurrent 8 MiB reviews hit the webhook port.
// docs/security.md holds the table of these drills.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../hack/lib/proc.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { renderChart } from './install-helpers.js';
import {
  fakePool,
  freshDatabase,
  installCrds,
  type OperatorProcess,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

type Obj = Record<string, any>;
const TAG = randomBytes(4).toString('hex');
const KEY_A = `sk-ant-alice-${TAG}-DO-NOT-SEND`;
const KEY_B = `sk-ant-bob-${TAG}-DO-NOT-SEND`;
const UNLABELLED = `db-password-${TAG}-NEVER-SEND`;
const OPT_IN = { 'cj.huleedu.io/llm-api-key': 'true' };

/** Records every request it receives (method, path, the key header) and answers 200. */
async function recorder() {
  const seen: { method: string; url: string; key: string | undefined; auth: string | undefined }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      key: req.headers['x-api-key'] as string | undefined,
      auth: req.headers.authorization,
    });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"input_tokens": 1}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const render = (ns: string, set: string[]): Promise<Obj[]> => renderChart(`drill-${TAG}`, ns, set);

const as = (user: string, args: string[], input?: string) => kubectl([...args, `--as=${user}`], input);
const can = async (user: string, ...args: string[]) =>
  (await kubectl(['auth', 'can-i', ...args, `--as=${user}`])).stdout.trim();

const pool = (ns: string, name: string, baseURL: string, secret?: string): Obj =>
  fakePool(ns, baseURL, name, secret);

async function poolReady(
  ns: string,
  name: string,
): Promise<{ status: string; reason: string; message: string }> {
  return waitFor(`pool ${ns}/${name} to be checked`, async () => {
    const p = JSON.parse(await kubectlOk(['get', 'llmproviderpool', name, '-n', ns, '-o', 'json']));
    const c = p.status?.conditions?.find((x: Obj) => x.type === 'Ready');
    return c && p.status.observedGeneration === p.metadata.generation ? c : undefined;
  });
}

let nsA: string;
let nsB: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;
let denied: Awaited<ReturnType<typeof recorder>>;
let allowed: Awaited<ReturnType<typeof recorder>>;
let webhookPort: number;
const vwcName = `cj-drill-${TAG}`;
const editor = `cj-editor-${TAG}`;
const alice = `alice-${TAG}`;
const bob = `bob-${TAG}`;
const clusterScoped: string[] = [];

beforeAll(async () => {
  await installCrds();
  nsA = await newNamespace('tenant-a');
  nsB = await newNamespace('tenant-b');
  fake = await startFake();
  denied = await recorder();
  allowed = await recorder();
  // The teachers' role exactly as the chart renders it (own name: cluster-scoped, shared cluster).
  const roles = (await render(nsA, [`rbac.teacherRoles.editorName=${editor}`])).filter(
    (o) => o.kind === 'ClusterRole' && o.metadata.name === editor,
  );
  expect(roles).toHaveLength(1);
  const role = roles[0]!;
  expect(role.metadata.labels['rbac.authorization.k8s.io/aggregate-to-edit']).toBe('true');
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(role));
  clusterScoped.push(`clusterrole/${editor}`);
  for (const [ns, user, key] of [
    [nsA, alice, KEY_A],
    [nsB, bob, KEY_B],
  ] as const) {
    await kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'teacher', namespace: ns },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: editor },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
          },
          // Made by the namespace's administrator, not by the teacher.
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'llm-api-key', namespace: ns, labels: OPT_IN },
            stringData: { apiKey: key },
          },
          {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: 'db-password', namespace: ns },
            stringData: { apiKey: UNLABELLED },
          },
        ],
      }),
    );
  }
  webhookPort = await freePort();
  operator = await startOperator({
    namespace: nsA,
    databaseUrl: await freshDatabase('tenancy'),
    env: {
      WATCH_NAMESPACES: `${nsA},${nsB}`,
      // The fake judge and the "allowed" recorder only: the denied recorder is another port.
      LLM_ALLOWED_BASE_URLS: `https://api.anthropic.com,${fake.url},${allowed.url}`,
      WEBHOOK_PORT: String(webhookPort),
      WEBHOOK_URL: `https://127.0.0.1:${webhookPort}`,
      WEBHOOK_CONFIGURATION_NAME: vwcName,
      LEADER_LEASE_DURATION: '6',
      LEADER_RENEW_DEADLINE: '4',
      LEADER_RETRY_PERIOD: '1',
    },
  });
  clusterScoped.push(`validatingwebhookconfiguration/${vwcName}`);
  await waitFor(
    'the webhook to answer for both tenants',
    async () => {
      if (operator.proc.exitCode !== null)
        throw new Error(`operator exited:\n${operator.logText().slice(-3000)}`);
      const r = await as(
        alice,
        ['create', '--dry-run=server', '-n', nsA, '-f', '-'],
        JSON.stringify(pool(nsA, 'probe', denied.url)),
      );
      return r.stderr.includes('not an allowed provider endpoint');
    },
    90_000,
  );
}, 240_000);

afterAll(async () => {
  await operator?.stop();
  await Promise.all([fake?.close(), denied?.close(), allowed?.close()]);
  for (const o of clusterScoped) await kubectl(['delete', o, '--ignore-not-found']);
  for (const ns of [nsA, nsB]) if (ns) await deleteNamespace(ns);
});

const keysSeen = (r: { seen: { key?: string | undefined; auth?: string | undefined }[] }) =>
  r.seen.flatMap((s) => [s.key, s.auth]).filter(Boolean);

describe('secrets and egress', () => {
  it('control: a pool on an allowed URL with an opted-in Secret does send its key (the recorder works)', async () => {
    const r = await as(alice, ['apply', '-f', '-'], JSON.stringify(pool(nsA, 'control', allowed.url)));
    expect(r.code, r.stderr).toBe(0);
    expect((await poolReady(nsA, 'control')).status).toBe('True');
    expect(keysSeen(allowed)).toContain(KEY_A);
  });

  it('a pool whose baseURL is not allowed is refused at admission, naming the field', async () => {
    for (const url of [
      denied.url,
      'http://169.254.169.254/latest',
      'https://api.anthropic.com.evil.example',
    ]) {
      const r = await as(alice, ['create', '-f', '-'], JSON.stringify(pool(nsA, 'exfil', url)));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`spec.baseURL: ${url} is not an allowed provider endpoint`);
    }
    const creds = await as(
      alice,
      ['create', '-f', '-'],
      JSON.stringify(pool(nsA, 'creds', fake.url.replace('http://', 'http://u:hunter2@'))),
    );
    expect(creds.stderr).toContain('spec.baseURL: must not carry credentials');
    expect(creds.stderr).not.toContain('hunter2');
    expect(denied.seen).toEqual([]);
  });

  it('a Secret without the opt-in label is never used and looks exactly like a missing one', async () => {
    const made = await as(
      alice,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          pool(nsA, 'unlabelled', allowed.url, 'db-password'),
          pool(nsA, 'nosecret', allowed.url, 'nope'),
        ],
      }),
    );
    expect(made.code, made.stderr).toBe(0);
    // Admission did not look the Secret up: no warning either way.
    expect(made.stderr).not.toMatch(/db-password|nope/);
    const a = await poolReady(nsA, 'unlabelled');
    const b = await poolReady(nsA, 'nosecret');
    expect([a.status, a.reason]).toEqual(['False', 'SecretNotFound']);
    expect(b.reason).toBe(a.reason);
    expect(a.message.replace('db-password', 'X')).toBe(b.message.replace('nope', 'X'));
    expect(keysSeen(allowed)).not.toContain(UNLABELLED);
    // A batch on that pool waits; no Job (which would mount the Secret) is made.
    const batch = sampleBatch('cjbatch-small.yaml', 'on-unlabelled', nsA);
    batch.spec.providerPoolRef.name = 'unlabelled';
    expect((await as(alice, ['apply', '-f', '-'], JSON.stringify(batch))).code).toBe(0);
    await waitFor('the batch to wait for its pool', async () => {
      const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'on-unlabelled', '-n', nsA, '-o', 'json']));
      return b.status?.conditions?.find((c: Obj) => c.type === 'PoolReady')?.status === 'False';
    });
    const jobs = JSON.parse(await kubectlOk(['get', 'jobs', '-n', nsA, '-o', 'json']));
    expect(jobs.items).toEqual([]);
  });

  it('behind the webhook (deleted): the operator neither reads the key nor connects; the worker never starts', async () => {
    const vwc = JSON.parse(await kubectlOk(['get', 'validatingwebhookconfiguration', vwcName, '-o', 'json']));
    await kubectlOk(['delete', 'validatingwebhookconfiguration', vwcName]);
    try {
      await waitFor('the apiserver to stop calling the webhook', async () => {
        const r = await kubectl(['apply', '-f', '-'], JSON.stringify(pool(nsB, 'bypass', denied.url)));
        return r.code === 0;
      });
      const c = await poolReady(nsB, 'bypass');
      expect([c.status, c.reason]).toEqual(['False', 'BaseURLNotAllowed']);
      expect(c.message).toContain(`spec.baseURL: ${denied.url} is not an allowed provider endpoint`);
      const batch = sampleBatch('cjbatch-small.yaml', 'on-bypass', nsB);
      batch.spec.providerPoolRef.name = 'bypass';
      await kubectlOk(['apply', '-f', '-'], JSON.stringify(batch));
      await waitFor('the batch to wait for its pool', async () => {
        const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'on-bypass', '-n', nsB, '-o', 'json']));
        return b.status?.conditions?.find((x: Obj) => x.type === 'PoolReady')?.status === 'False';
      });
      await new Promise((r) => setTimeout(r, 3000));
      expect(denied.seen).toEqual([]);
      const jobs = JSON.parse(await kubectlOk(['get', 'jobs', '-n', nsB, '-o', 'json']));
      expect(jobs.items).toEqual([]);
      const events = await kubectlOk(['get', 'events', '-n', nsB, '-o', 'json']);
      expect(events).not.toContain(KEY_B);
    } finally {
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        managedFields: _mf,
        ...meta
      } = vwc.metadata;
      await kubectlOk(['apply', '-f', '-'], JSON.stringify({ ...vwc, metadata: meta }));
    }
  });
});

describe('tenant boundaries (cj-editor only)', () => {
  it('reaches nothing in the other namespace and no Secret in its own', async () => {
    const r = await as(alice, ['create', '-f', '-'], JSON.stringify(pool(nsB, 'intrude', fake.url)));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('forbidden');
    for (const [verb, res] of [
      ['list', 'cjbatches.cj.huleedu.io'],
      ['get', 'configmaps'],
      ['create', 'llmproviderpools.cj.huleedu.io'],
    ])
      expect(await can(alice, verb!, res!, '-n', nsB), `${verb} ${res} in B`).toBe('no');
    for (const verb of ['get', 'list', 'create'])
      expect(await can(alice, verb, 'secrets', '-n', nsA), `${verb} secrets`).toBe('no');
    expect(await can(alice, 'create', 'jobs.batch', '-n', nsA)).toBe('no');
    expect(await can(alice, 'create', 'pods', '-n', nsA)).toBe('no');
    expect(await can(alice, 'create', 'cjbatches.cj.huleedu.io', '-n', nsA)).toBe('yes');
    expect(await can(bob, 'create', 'cjbatches.cj.huleedu.io', '-n', nsA)).toBe('no');
  });

  it('the operator in namespaced mode (the chart) writes no Secret, ConfigMap or Job in kube-system', async () => {
    const rbac = (await render(nsA, [`watchNamespaces={${nsA},${nsB}}`, 'rbac.teacherRoles.create=false']))
      .filter((o) => /^(Cluster)?Role(Binding)?$/.test(o.kind) || o.kind === 'ServiceAccount')
      // The webhook's ClusterRole names one object; keep it out of the shared cluster.
      .filter((o) => !o.kind.startsWith('Cluster'));
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }));
    const sa = rbac.find((o) => o.kind === 'ServiceAccount' && o.metadata.name !== 'cj-worker')!.metadata
      .name;
    const op = `system:serviceaccount:${nsA}:${sa}`;
    await waitFor(
      'the Roles to apply',
      async () => (await can(op, 'create', 'jobs.batch', '-n', nsB)) === 'yes',
    );
    for (const [verb, res] of [
      ['create', 'secrets'],
      ['patch', 'secrets'],
      ['get', 'secrets'],
      ['create', 'configmaps'],
      ['patch', 'configmaps'],
      ['create', 'jobs.batch'],
      ['delete', 'jobs.batch'],
    ]) {
      expect(await can(op, verb!, res!, '-n', 'kube-system'), `${verb} ${res} in kube-system`).toBe('no');
      expect(await can(op, verb!, res!, '-n', 'default'), `${verb} ${res} in default`).toBe('no');
    }
    expect(await can(op, 'list', 'secrets', '-n', nsA)).toBe('no');
  });
});

describe('admission closes the holes', () => {
  const refuse = async (obj: Obj, ...fragments: string[]) => {
    const r = await as(alice, ['create', '-f', '-'], JSON.stringify(obj));
    expect(r.code, `${obj.metadata.name} was admitted`).not.toBe(0);
    for (const f of fragments) expect(r.stderr).toContain(f);
  };

  it('refuses names over 63 characters, NUL and zero-width-only text, from ConfigMaps too', async () => {
    const long = sampleBatch('cjbatch-small.yaml', 'n'.repeat(64), nsA);
    long.spec.providerPoolRef.name = 'control';
    await refuse(long, 'metadata.name:', 'at most 63');
    const zw = sampleBatch('cjbatch-small.yaml', 'zero-width', nsA);
    zw.spec.providerPoolRef.name = 'control';
    zw.spec.essays.inline[0].text = '\u200B\u200B\u2060';
    await refuse(zw, 'spec.essays.inline[0].text');
    await kubectlOk(
      ['apply', '-n', nsA, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'assignment' },
        data: { rubric: 'A good essay\u0000argues.', blank: '\u200B\uFEFF\n' },
      }),
    );
    const nul = sampleBatch('cjbatch-small.yaml', 'nul-rubric', nsA);
    nul.spec.providerPoolRef.name = 'control';
    nul.spec.assignment.rubric = { configMapKeyRef: { name: 'assignment', key: 'rubric' } };
    await refuse(nul, 'spec.assignment.rubric.configMapKeyRef', 'NUL character');
    nul.spec.assignment.rubric = { configMapKeyRef: { name: 'assignment', key: 'blank' } };
    await refuse(nul, 'spec.assignment.rubric.configMapKeyRef', 'is empty');
  });

  it("never takes over a stranger's object named <batch>-worker", async () => {
    const r = await as(bob, ['apply', '-f', '-'], JSON.stringify(pool(nsB, 'fake-pool', fake.url)));
    expect(r.code, r.stderr).toBe(0);
    expect((await poolReady(nsB, 'fake-pool')).status).toBe('True');
    await kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'squat-worker', namespace: nsB },
        stringData: { DATABASE_URL: 'theirs' },
      }),
    );
    const batch = sampleBatch('cjbatch-small.yaml', 'squat', nsB);
    expect((await as(bob, ['apply', '-f', '-'], JSON.stringify(batch))).code).toBe(0);
    const c = await waitFor('the batch to report the name clash', async () => {
      const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'squat', '-n', nsB, '-o', 'json']));
      const x = b.status?.conditions?.find((y: Obj) => y.type === 'Progressing');
      return x?.reason === 'WorkerSecretConflict' ? x : undefined;
    });
    expect(c.status).toBe('False');
    expect(c.message).toContain('Secret squat-worker exists and is not owned by this batch');
    const s = JSON.parse(await kubectlOk(['get', 'secret', 'squat-worker', '-n', nsB, '-o', 'json']));
    expect(Buffer.from(s.data.DATABASE_URL, 'base64').toString()).toBe('theirs');
    expect(s.metadata.ownerReferences).toBeUndefined();
  });
});

/** POSTs `body` to the webhook; resolves with the status code and the time taken (ms). */
function post(
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<{ code: number; ms: number }> {
  const t = Date.now();
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: webhookPort,
        path: '/validate-cjbatch',
        method: 'POST',
        rejectUnauthorized: false,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ code: res.statusCode ?? 0, ms: Date.now() - t }));
      },
    );
    req.on('error', () => resolve({ code: -1, ms: Date.now() - t }));
    req.end(body);
  });
}

function review(batch: Obj): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomBytes(8).toString('hex'),
      kind: { group: 'cj.huleedu.io', version: 'v1alpha1', kind: 'CJBatch' },
      operation: 'CREATE',
      namespace: nsA,
      name: batch.metadata.name,
      object: batch,
    },
  });
}

describe('hostile input costs nothing', () => {
  it('an essay of 40,000 line breaks is reviewed within 2x the time of a plain essay of the same size on the wire', async () => {
    const withText = (name: string, ...texts: string[]) => {
      const b = sampleBatch('cjbatch-small.yaml', name, nsA);
      b.spec.providerPoolRef.name = 'control';
      texts.forEach((t, i) => {
        b.spec.essays.inline[i].text = t;
      });
      return review(b);
    };
    const breaks = withText('breaks', `An essay.${'\n'.repeat(40_000)}The end.`);
    // "The same size" as the apiserver sends it: JSON writes each line break as two bytes ("\\n"),
    // so the plain batch carries as many bytes on the wire: two plain essays of 40,000 characters
    // (one essay is capped at 50,000 characters).
    const lorem = `An essay.${'lorem ipsum '.repeat(3334).slice(0, 40_000)}The end.`;
    const plain = withText('plain', lorem, lorem);
    // Interleaved, fastest of 9 each: both see the same (shared, busy) machine.
    let tBreaks = Number.POSITIVE_INFINITY;
    let tPlain = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 9; i++) {
      tBreaks = Math.min(tBreaks, (await post(breaks)).ms);
      tPlain = Math.min(tPlain, (await post(plain)).ms);
    }
    console.log(`admission review: 40,000 line breaks ${tBreaks} ms, plain ${tPlain} ms`);
    expect(tBreaks).toBeLessThanOrEqual(Math.max(2 * tPlain, 50));
  });

  it('the leader Lease keeps renewing while 20 concurrent 8 MiB reviews hit the webhook port', async () => {
    const lease = async () =>
      JSON.parse(await kubectlOk(['get', 'lease', 'cj-operator-leader', '-n', nsA, '-o', 'json'])).spec;
    const holder = (await lease()).holderIdentity;
    expect(holder).toBeTruthy();
    const big = Buffer.alloc(8 * 1024 * 1024, 'a');
    // Just under the limit and valid JSON: these are read, parsed and validated.
    const b = sampleBatch('cjbatch-small.yaml', 'storm', nsA);
    b.spec.providerPoolRef.name = 'control';
    // 45 essays of 40,000 line breaks: about 3.6 MB as JSON ("\n" is two bytes), under the limit.
    b.spec.essays.inline = Array.from({ length: 45 }, (_, i) => ({
      id: `e${i}`,
      text: `Essay ${i}.${'\n'.repeat(40_000)}End.`,
    }));
    const nearLimit = review(b);
    // Every renewal is an update of the Lease: a watch sees each one, with the renewTime the
    // operator wrote (its own clock), so the gaps below are the operator's, not our polling's.
    const watcher = spawn(
      'kubectl',
      [
        'get',
        'lease',
        'cj-operator-leader',
        '-n',
        nsA,
        '-w',
        '-o',
        'jsonpath={.spec.holderIdentity} {.spec.renewTime}{"\\n"}',
      ],
      { env: { ...process.env, KUBECONFIG: stack().kubeconfig } },
    );
    const seen: { holder: string; at: number }[] = [];
    let buf = '';
    watcher.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        const [h, t] = l.trim().split(' ');
        if (h && t) seen.push({ holder: h, at: Date.parse(t) });
      }
    });
    await waitFor('the Lease watch to start', async () => seen.length > 0);
    const start = Date.now();
    const codes: number[] = [];
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const wave = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? post(nearLimit) : post(big))),
      );
      codes.push(...wave.map((w) => w.code));
    }
    watcher.kill();
    const during = seen.filter((x) => x.at >= start - 1000);
    const gaps = during.slice(1).map((x, i) => x.at - during[i]!.at);
    const maxGapMs = Math.max(0, ...gaps);
    console.log(
      `storm: ${codes.length} reviews (${codes.filter((c) => c === 413).length} refused as too large, ` +
        `${codes.filter((c) => c === 429).length} queued out, ${codes.filter((c) => c === 200).length} validated), ` +
        `${during.length} Lease renewals in ${Math.round((Date.now() - start) / 1000)} s, largest gap ${maxGapMs} ms`,
    );
    expect(operator.proc.exitCode).toBeNull();
    expect(codes.filter((c) => c === 413).length).toBeGreaterThan(0);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThan(0);
    expect(new Set(during.map((x) => x.holder))).toEqual(new Set([holder]));
    expect(during.length).toBeGreaterThanOrEqual(8);
    // The renew deadline is 4 s: a gap that long would have cost the Lease.
    expect(maxGapMs).toBeLessThan(4_000);
    expect((await lease()).holderIdentity).toBe(holder);
  }, 120_000);
});
