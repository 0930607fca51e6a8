// The e2e tier: what a user meets first, on a real kind node (real kubelet, containerd and runc,
// kube-proxy Services, CoreDNS). The project's image, installed with the chart's defaults, runs
// against Postgres, Kafka and the fake judge as pods reached by Service names. In order: install ->
// the webhook admits and refuses -> the sample batch Succeeds -> its result event is on the broker
// -> `kubectl cj results` -> a worker pod killed mid-round costs nothing -> the kubelet enforces
// uid, read-only root, no token, restricted Pod Security -> health checks -> uninstall leaves nothing.
// One file, run in order by `npm run e2e:kind` (hack/kind/e2e.sh), which makes the cluster.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../hack/lib/tools.js';
import { argoHealth, kstatus } from '../unit/install/health-tools.js';
import {
  CHART,
  dockerExecNode,
  env,
  Fatal,
  getJson,
  helm,
  helmOk,
  kubectl,
  kubectlOk,
  ok,
  SAMPLES,
  waitFor,
} from './cluster.js';

const SYSTEM = 'cj-system';
const NS = 'cj-e2e';
const DEPS = 'cj-deps';
// Another tenant's namespace: no policy of ours applies to it, and ours must keep it out.
const TENANT = 'cj-tenant';
const RELEASE = 'cj-operator';
const JUDGE_URL = `http://fake-judge.${DEPS}.svc:8787`;
const TOPIC = 'cj.batch.events';
type Obj = Record<string, any>;

const yamlDocs = (file: string) =>
  readFileSync(file, 'utf8')
    .split(/^---$/m)
    .map((d) => parse(d))
    .filter(Boolean);

/** The sample pool, pointed at the in-cluster judge, and its Secret. */
function poolManifests(): Obj[] {
  const pool = parse(readFileSync(path.join(SAMPLES, 'llmproviderpool.yaml'), 'utf8'));
  pool.spec.baseURL = JUDGE_URL;
  const [secret] = yamlDocs(path.join(SAMPLES, 'secret.yaml'));
  // Provider keys are opt-in Secrets (docs/security.md).
  secret.metadata.labels = { ...secret.metadata.labels, 'cj.huleedu.io/llm-api-key': 'true' };
  return [secret, pool];
}

function batch(name: string, edit: (b: Obj) => void = () => {}): Obj {
  const b = parse(readFileSync(path.join(SAMPLES, 'cjbatch-small.yaml'), 'utf8'));
  b.metadata = { name, namespace: NS };
  edit(b);
  return b;
}

// The chart's defaults, plus what this install must say: which namespace holds batches and that
// the in-cluster judge is an allowed provider URL (when the chart has those settings).
const chartValues = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
function namespaceValues(): string[] {
  const out =
    'watchNamespaces' in chartValues
      ? ['--set-json', `watchNamespaces=${JSON.stringify([NS])}`]
      : ['--set', `workerServiceAccount.extraNamespaces={${NS}}`];
  if (chartValues.llm?.allowedBaseURLs)
    out.push(
      '--set-json',
      `llm.allowedBaseURLs=${JSON.stringify([...chartValues.llm.allowedBaseURLs, JUDGE_URL])}`,
    );
  return out;
}

const apply = (objs: Obj[]) =>
  kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }));

async function phaseOf(name: string): Promise<Obj> {
  const b = await getJson('cjbatch', name, '-n', NS);
  const s = b.status ?? {};
  // A Failed batch never succeeds: end the wait now, with its conditions.
  if (s.phase === 'Failed') throw new Fatal(`batch ${name} failed: ${JSON.stringify(s.conditions)}`);
  return b;
}
const succeeded = (name: string, timeoutMs = 480_000) =>
  waitFor(
    `CJBatch ${name} to reach Succeeded`,
    async () => {
      const b = await phaseOf(name);
      return b.status?.phase === 'Succeeded' ? b : undefined;
    },
    timeoutMs,
    2_000,
  );

/** A bare pod of the project's image (loaded into the node, never pulled) running `node ARGS`. */
const runNodePod = (ns: string, pod: string, nodeArgs: string[]) =>
  kubectlOk([
    'run',
    pod,
    '-n',
    ns,
    `--image=${env.image}`,
    '--image-pull-policy=Never',
    '--restart=Never',
    '--command',
    '--',
    'node',
    ...nodeArgs,
  ]);

/**
 * Reads every record on the topic from inside the cluster (a pod of our image, kafkajs), once
 * `batch` says its event is there: Succeeded comes before the relay's send (EventPublished), and
 * a reader that asks first may find no topic at all.
 */
async function readEvents(tag: string, batch: string): Promise<Obj[]> {
  await waitFor(
    `CJBatch ${batch} EventPublished=True`,
    async () =>
      ((await phaseOf(batch)).status?.conditions ?? []).some(
        (c: Obj) => c.type === 'EventPublished' && c.status === 'True',
      ),
    120_000,
    2_000,
  );
  const pod = `event-reader-${tag}`;
  const script = `
    import kafkajs from 'kafkajs';
    const kafka = new kafkajs.Kafka({ clientId: 'e2e', brokers: ['kafka.${DEPS}.svc:9092'], logLevel: 0 });
    const consumer = kafka.consumer({ groupId: 'e2e-${tag}-' + Date.now() });
    await consumer.connect();
    await consumer.subscribe({ topic: '${TOPIC}', fromBeginning: true });
    const out = [];
    let last = Date.now();
    await consumer.run({ eachMessage: async ({ message }) => {
      last = Date.now();
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      out.push({ key: String(message.key), headers, value: JSON.parse(String(message.value)) });
    } });
    const t0 = Date.now();
    while (Date.now() - last < 5000 || (out.length === 0 && Date.now() - t0 < 30000)) await new Promise((r) => setTimeout(r, 500));
    await consumer.disconnect();
    console.log(JSON.stringify(out));
  `;
  await kubectl(['delete', 'pod', pod, '-n', DEPS, '--ignore-not-found', '--wait=true']);
  await runNodePod(DEPS, pod, ['--input-type=module', '-e', script]);
  await waitFor(
    `pod ${pod} to finish reading the topic`,
    async () => {
      const p = await getJson('pod', pod, '-n', DEPS);
      if (p.status?.phase === 'Failed')
        throw new Error(`reader failed: ${(await kubectl(['logs', pod, '-n', DEPS])).stdout}`);
      return p.status?.phase === 'Succeeded';
    },
    120_000,
  );
  const logs = await kubectlOk(['logs', pod, '-n', DEPS]);
  await kubectl(['delete', 'pod', pod, '-n', DEPS, '--wait=false']);
  return JSON.parse(logs.trim().split('\n').pop()!);
}

const execIn = (ns: string, pod: string, container: string, cmd: string[]) =>
  kubectl(['exec', '-n', ns, pod, '-c', container, '--', ...cmd]);

/**
 * From inside a pod, one TCP connect to each `host:port`, all at once, 3 s each: 'connected',
 * 'timeout' (what a NetworkPolicy drop looks like) or the error code (ECONNREFUSED: nothing
 * listens, but the packets got through).
 */
async function connects(ns: string, pod: string, container: string, targets: string[]) {
  const script = `const net = require('net');
Promise.all(${JSON.stringify(targets)}.map((t) => new Promise((resolve) => {
  const i = t.lastIndexOf(':');
  const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
  const done = (r) => { s.destroy(); resolve([t, r]); };
  s.setTimeout(3000, () => done('timeout'));
  s.on('connect', () => done('connected'));
  s.on('error', (e) => done(e.code));
}))).then((r) => console.log(JSON.stringify(Object.fromEntries(r))));`;
  const out = await ok(execIn(ns, pod, container, ['node', '-e', script]), `connect from ${ns}/${pod}`);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, string>;
}

/** The Postgres ingress sample, pointed at this cluster's namespaces and Postgres labels. */
function postgresPolicy(): Obj {
  const p = parse(readFileSync(path.join(SAMPLES, 'postgres-networkpolicy.yaml'), 'utf8'));
  p.metadata.namespace = DEPS;
  p.spec.podSelector = { matchLabels: { app: 'postgres' } };
  const [operator, workers] = p.spec.ingress[0].from;
  operator.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] = SYSTEM;
  workers.namespaceSelector.matchExpressions[0].values = [NS];
  return p;
}

/** Why the operator's pods are not Ready: each container's state and its last log lines. */
async function whyNotReady(): Promise<string> {
  const pods = await getJson('pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=cj-operator').catch(() => ({
    items: [],
  }));
  const out: string[] = [];
  for (const p of pods.items as Obj[]) {
    const c = p.status?.containerStatuses?.[0];
    const state = c?.state?.waiting ?? c?.state?.terminated ?? c?.lastState?.terminated ?? {};
    out.push(
      `pod ${p.metadata.name}: ${state.reason ?? 'no container status'}, restarts ${c?.restartCount ?? 0}`,
    );
    const logs = await kubectl(['logs', '-n', SYSTEM, p.metadata.name, '--previous', '--tail=40']);
    const last = (
      logs.code === 0
        ? logs.stdout
        : (await kubectl(['logs', '-n', SYSTEM, p.metadata.name, '--tail=40'])).stdout
    )
      // The error, not its stack: a crash's cause is the line before the frames.
      .split('\n')
      .filter((line) => line.trim() !== '' && !/^\s+at /.test(line))
      .slice(-8)
      .join('\n');
    if (last) out.push(last.replace(/^/gm, '  | '));
  }
  return out.join('\n') || 'no operator pods';
}

/**
 * The kubelet's view from inside a container, in ONE exec (a worker pod may finish between two):
 * uid and gid, whether `/` and `/tmp` are writable, whether a service-account token is mounted.
 * undefined when the exec itself failed (the pod ended under it).
 */
async function inside(ns: string, pod: string, container: string) {
  const probe = `const fs = require('fs');
const w = (f) => { try { fs.writeFileSync(f, 'x'); return 'writable'; } catch (e) { return e.code; } };
console.log(JSON.stringify({
  ids: process.getuid() + ' ' + process.getgid(),
  root: w('/probe'),
  tmp: w('/tmp/probe') === 'writable' ? 'ok' : w('/tmp/probe'),
  token: String(fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')),
}));`;
  const r = await execIn(ns, pod, container, ['node', '-e', probe]);
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      ids: string;
      root: string;
      tmp: string;
      token: string;
    };
  } catch {
    return undefined;
  }
}

/** A query on the in-cluster Postgres as its superuser (the test's view of the store, past RLS). */
const psql = async (query: string) =>
  (
    await kubectlOk([
      'exec',
      '-n',
      DEPS,
      'deploy/postgres',
      '--',
      'psql',
      '-h',
      '/tmp',
      '-U',
      'cj',
      '-d',
      'cj',
      '-tAc',
      query,
    ])
  ).trim();
/** Ids of the comparisons a worker pod holds leased right now. */
const leasedBy = async (pod: string) =>
  (await psql(`SELECT id FROM comparisons WHERE status = 'leased' AND lease_owner = '${pod}'`))
    .split('\n')
    .filter(Boolean);

// The tests after the install share it: when it failed, each of them fails at once with that
// reason instead of waiting out its own timeout on an operator that never came up (a broken image
// would otherwise cost every later test its minutes). Uninstall still runs.
let installFailure: string | undefined;
const needsInstall = () => {
  if (installFailure) throw new Error(`not run: the operator is not installed (${installFailure})`);
};

describe('e2e on kind: the real image, installed with Helm', () => {
  beforeAll(async () => {
    const nodes = await getJson('nodes');
    expect(nodes.items, 'the kind cluster has a node').toHaveLength(1);
    // Dependencies, from locally built images, reached through Services and cluster DNS.
    const deps = readFileSync(path.join(repoRoot, 'hack/kind/deps.yaml'), 'utf8')
      .replaceAll('${POSTGRES_IMAGE}', env.postgresImage)
      .replaceAll('${KAFKA_IMAGE}', env.kafkaImage)
      .replaceAll('${JUDGE_IMAGE}', env.judgeImage);
    await kubectlOk(['apply', '-f', '-'], deps);
    for (const d of ['postgres', 'kafka', 'fake-judge'])
      await kubectlOk(['rollout', 'status', '-n', DEPS, `deployment/${d}`, '--timeout=300s']);
    // Both namespaces enforce the restricted Pod Security profile.
    for (const ns of [SYSTEM, NS]) {
      await kubectlOk(['create', 'namespace', ns]);
      await kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
    }
    // A pod of another tenant (our image: it has node), to knock on the operator and Postgres.
    await kubectlOk(['create', 'namespace', TENANT]);
    await runNodePod(TENANT, 'tenant', ['-e', 'setInterval(() => {}, 1 << 30)']);
    await kubectlOk(['wait', '-n', TENANT, '--for=condition=Ready', 'pod/tenant', '--timeout=120s']);
  }, 600_000);

  afterAll(async () => {
    // Diagnostics for a failed run; the cluster itself is deleted by e2e.sh.
    const pods = await kubectl(['get', 'pods', '-A', '-o', 'wide']);
    if (process.env.CJ_E2E_DEBUG) console.log(pods.stdout);
  });

  it('helm install: the operator runs from the image the Dockerfile built', async () => {
    const [repository, tag] = env.image.split(':');
    const install = await helm([
      'install',
      RELEASE,
      CHART,
      '-n',
      SYSTEM,
      '--set',
      `image.repository=${repository}`,
      '--set',
      `image.tag=${tag}`,
      '--set',
      'image.pullPolicy=Never',
      '--set-string',
      `database.url=postgres://cj:cj@postgres.${DEPS}.svc:5432/cj`,
      '--set-string',
      `kafka.brokers=kafka.${DEPS}.svc:9092`,
      '--set',
      'operator.comparisonLeaseSeconds=15',
      // Under its NetworkPolicy (enforced here by kube-network-policies): every later test runs
      // the operator with egress limited to DNS and these ports (the judge's 8787 added).
      '--set',
      'networkPolicy.enabled=true',
      '--set-json',
      `networkPolicy.egressPorts=${JSON.stringify([...chartValues.networkPolicy.egressPorts, 8787])}`,
      ...namespaceValues(),
      '--wait',
      '--timeout',
      '5m',
    ]);
    if (install.code !== 0) {
      installFailure = `helm install failed: ${install.stderr.trim()}`;
      throw new Error(`${installFailure}\n${await whyNotReady()}`);
    }
    const dep = await getJson('deployment', RELEASE, '-n', SYSTEM);
    expect(dep.status.readyReplicas).toBe(dep.spec.replicas);
    const pods = await getJson('pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=cj-operator');
    expect(pods.items.length).toBe(dep.spec.replicas);
    for (const p of pods.items) {
      const c = p.status.containerStatuses[0];
      expect(c.image).toContain(env.image);
      // The image the pod runs, as the node's containerd knows it (kind load imports it under a
      // repo digest): its config digest is the image id docker build produced.
      const img = JSON.parse(
        await ok(dockerExecNode(['crictl', 'inspecti', '-o', 'json', c.image]), 'crictl'),
      );
      expect(img.status.id).toBe(env.imageId);
      expect(img.status.repoDigests).toContain(c.imageID);
      expect(c.ready).toBe(true);
    }
  }, 600_000);

  it("NetworkPolicy is enforced: the chart's policy limits the operator's egress and ingress", async () => {
    needsInstall();
    const enforced = 'is NetworkPolicy enforced on this node (kube-network-policies, hack/kind/netpol.yaml)?';
    expect((await getJson('networkpolicy', RELEASE, '-n', SYSTEM)).spec.policyTypes).toEqual([
      'Ingress',
      'Egress',
    ]);
    const pods = await getJson('pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=cj-operator');
    const op = pods.items[0];
    const [opName, opIp, opC] = [op.metadata.name, op.status.podIP, op.spec.containers[0].name];
    // Egress: Postgres's port is in networkPolicy.egressPorts; CoreDNS's metrics port (9153, on
    // the kube-dns Service) is not. The tenant, under no policy, reaches both: the port is open.
    const dnsMetrics = 'kube-dns.kube-system.svc:9153';
    const pg = `postgres.${DEPS}.svc:5432`;
    const fromTenant = await connects(TENANT, 'tenant', 'tenant', [dnsMetrics]);
    expect(fromTenant[dnsMetrics], `a pod under no policy connecting to ${dnsMetrics}`).toBe('connected');
    const fromOp = await connects(SYSTEM, opName, opC, [pg, dnsMetrics]);
    expect(fromOp[pg], `the operator connecting to ${pg} (an allowed egress port)`).toBe('connected');
    expect(
      fromOp[dnsMetrics],
      `the operator connecting to ${dnsMetrics}, a port not in networkPolicy.egressPorts: ${enforced}`,
    ).toBe('timeout');
    // Ingress: only the probe (and metrics) port and the webhook port are open to other pods. A
    // listener on another port inside the operator pod is reachable from the node (root on the
    // node is exempt from policy: kubelet probes) but not from the tenant's pod.
    const port = 9999;
    const listen = execIn(SYSTEM, opName, opC, [
      'node',
      '-e',
      `const seen = []; const srv = require('net').createServer((s) => { seen.push(s.remoteAddress); s.destroy(); });
srv.listen(${port}, () => setTimeout(() => { srv.close(); console.log(JSON.stringify(seen)); }, 20000));`,
    ]);
    await waitFor(
      `the listener on ${opIp}:${port} in the operator pod (seen from the node)`,
      async () => (await dockerExecNode(['bash', '-c', `exec 3<>/dev/tcp/${opIp}/${port}`])).code === 0,
      15_000,
      500,
    );
    const probe = `${opIp}:${chartValues.probes.port}`;
    const other = `${opIp}:${port}`;
    const knock = await connects(TENANT, 'tenant', 'tenant', [probe, other]);
    expect(knock[probe], `another namespace's pod connecting to the operator's probe port ${probe}`).toBe(
      'connected',
    );
    expect(
      knock[other],
      `another namespace's pod connecting to ${other}, a port the policy does not open: ${enforced}`,
    ).toBe('timeout');
    const tenantIp = (await getJson('pod', 'tenant', '-n', TENANT)).status.podIP;
    const seen = JSON.parse((await ok(listen, 'the listener in the operator pod')).trim().split('\n').pop()!);
    expect(seen, 'addresses the listener in the operator pod accepted').not.toContain(tenantIp);
  }, 300_000);

  it('the Postgres ingress sample: only the operator and its workers reach the database', async () => {
    needsInstall();
    const pg = `postgres.${DEPS}.svc:5432`;
    expect((await connects(TENANT, 'tenant', 'tenant', [pg]))[pg], 'the tenant before the policy').toBe(
      'connected',
    );
    await apply([postgresPolicy()]);
    const pods = await getJson('pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=cj-operator');
    const op = pods.items[0];
    // The agent applies a new policy within a moment: wait for the tenant to be shut out.
    await waitFor(
      'the tenant to be refused by the Postgres policy',
      async () => (await connects(TENANT, 'tenant', 'tenant', [pg]))[pg] === 'timeout',
      30_000,
    );
    expect((await connects(SYSTEM, op.metadata.name, op.spec.containers[0].name, [pg]))[pg]).toBe(
      'connected',
    );
    // The batches below run under it: their scoring and comparison pods are the "workers" entry.
  }, 300_000);

  it('the webhook admits a valid pool and refuses a bad batch naming the field and the fix', async () => {
    needsInstall();
    await apply(poolManifests().map((o) => ({ ...o, metadata: { ...o.metadata, namespace: NS } })));
    await kubectlOk([
      'wait',
      '-n',
      NS,
      '--for=condition=Ready',
      'llmproviderpool/fake-pool',
      '--timeout=120s',
    ]);
    const bad = batch('bad', (b) => {
      b.spec.anchors[0].id = b.spec.essays.inline[0].id;
    });
    const r = await waitFor('the webhook to answer (not a connection error)', async () => {
      const r = await kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(bad));
      return r.stderr.includes('denied the request') || r.code === 0 ? r : undefined;
    });
    expect(r.code, `the webhook admitted a batch whose anchor id is an essay id:\n${r.stdout}`).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "vcjbatch.cj.huleedu.io" denied the request');
    expect(r.stderr).toMatch(/spec\.anchors\[0\]\.id: anchor id "essay-01" is also an essay id.*rename/);
    // The same batch without the mistake is admitted.
    const good = await kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(batch('good')));
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
  }, 300_000);

  it('runs the sample batch to Succeeded', async () => {
    needsInstall();
    await apply([batch('sample-small')]);
    const b = await succeeded('sample-small');
    expect(b.status.comparisons.completed).toBeGreaterThan(0);
    expect(b.status.comparisons.failed ?? 0).toBe(0);
    expect(b.status.comparisons.pending ?? 0).toBe(0);
  }, 600_000);

  it('publishes exactly one result event to the in-cluster broker', async () => {
    needsInstall();
    const b = await getJson('cjbatch', 'sample-small', '-n', NS);
    const events = (await readEvents('one', 'sample-small')).filter(
      (e) => e.value.subject === b.metadata.uid,
    );
    expect(events, "the batch's result events on the topic (exactly one, never a duplicate)").toHaveLength(1);
    const e = events[0]!;
    expect(e.headers['content-type']).toContain('application/cloudevents+json');
    // Structured mode only: a ce_ header would make the official Python SDK read binary mode.
    expect(Object.keys(e.headers).filter((h) => h.startsWith('ce_'))).toEqual([]);
    expect(e.value).toMatchObject({
      specversion: '1.0',
      type: 'cj.batch.completed.v1',
      source: `/apis/cj.huleedu.io/v1alpha1/namespaces/${NS}/cjbatches/sample-small`,
    });
    expect(e.value.data.comparisons).toEqual(b.status.comparisons);
    expect(e.value.data.results.map((r: Obj) => r.essayId).sort()).toEqual(
      [...batch('x').spec.essays.inline, ...batch('x').spec.anchors].map((x: Obj) => x.id).sort(),
    );
  }, 300_000);

  it('`kubectl cj results` prints the ranking table', async () => {
    needsInstall();
    const r = await kubectl(['cj', 'results', 'sample-small', '-n', NS]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RANK\s+ESSAY\s+SCORE/);
    for (const e of batch('x').spec.essays.inline) expect(r.stdout).toContain(e.id);
    expect(lines.length).toBeGreaterThanOrEqual(1 + batch('x').spec.essays.inline.length);
  }, 120_000);

  it('a worker crashes mid-round (SIGKILL, no SIGTERM): its leases expire, nothing is lost', async () => {
    needsInstall();
    await apply([
      batch('killed', (b) => {
        // Round by round (the default is pipelined): a comparison Job per round whose index is run
        // again in a new pod; the pipelined batch below covers the other mode.
        b.metadata.annotations = { ...b.metadata.annotations, 'cj.huleedu.io/rounds': 'rounds' };
        b.spec.workers = { ...(b.spec.workers ?? {}), parallelism: 2 };
        // Three times the sample's essays (new ids, the same texts reworded by a suffix): rounds
        // long enough that a worker is reliably caught holding pairs, on an idle machine too.
        const essays = b.spec.essays.inline as { id: string; text: string }[];
        b.spec.essays.inline = [1, 2, 3].flatMap((k) =>
          essays.map((e) => ({ id: `${e.id}-${k}`, text: k === 1 ? e.text : `${e.text} (Draft ${k}.)` })),
        );
      }),
    ]);
    const runningCompare = async () => {
      const b = await phaseOf('killed');
      // A batch that ended has no worker left to catch: say so now, not after the wait's timeout.
      if (b.status?.phase === 'Succeeded')
        throw new Fatal('batch killed succeeded before a worker was caught holding leased pairs');
      const pods = await getJson(
        'pods',
        '-n',
        NS,
        '-l',
        'cj.huleedu.io/batch=killed,cj.huleedu.io/role=comparison',
      );
      return pods.items.find((p: Obj) => p.status.containerStatuses?.[0]?.state?.running);
    };
    // The kubelet's view of a worker while it runs: our uid, a read-only root, no token. (A pod
    // may finish between the listing and the exec: then look at the next one.)
    const seen = await waitFor(
      'a look inside a running comparison pod',
      async () => {
        const p = await runningCompare();
        if (!p) return undefined;
        const v = await inside(NS, p.metadata.name, p.spec.containers[0].name);
        return v ? { ...v, image: p.spec.containers[0].image } : undefined;
      },
      300_000,
      200,
    );
    expect(seen).toEqual({ ids: '65532 65532', root: 'EROFS', tmp: 'ok', token: 'false', image: env.image });
    // Crash one while it runs: SIGKILL its process from the node, as the kernel's OOM killer
    // would. (Deleting the pod, even with --grace-period=0, sends SIGTERM first, and the worker
    // then hands its pairs back itself: the lease expiry would go untested.) Its leased pairs
    // must come back after the lease (15 s here) and be judged once by the index's next pod.
    // Freeze it (SIGSTOP: it can neither finish nor hand back a pair), read what it holds, and
    // kill it only while it holds something; otherwise thaw it and look again.
    // Freeze first, then look (a look before the freeze costs a round trip in which the worker
    // may hand its pairs in); each container's pid is looked up once.
    const pids = new Map<string, string>();
    const { victim, pid, orphaned } = await waitFor(
      'a running comparison pod frozen while it holds leased pairs',
      async () => {
        const p = await runningCompare();
        if (!p) return undefined;
        const id = String(p.status.containerStatuses[0].containerID).replace(/^.*:\/\//, '');
        if (!pids.has(id)) {
          const info = JSON.parse(await ok(dockerExecNode(['crictl', 'inspect', id]), 'crictl inspect'));
          pids.set(id, String(info.info.pid));
        }
        const pid = pids.get(id)!;
        await ok(dockerExecNode(['kill', '-STOP', pid]), 'kill -STOP the worker');
        const held = await leasedBy(p.metadata.name);
        if (held.length > 0) return { victim: p, pid, orphaned: held };
        await ok(dockerExecNode(['kill', '-CONT', pid]), 'kill -CONT the worker');
        return undefined;
      },
      300_000,
      200,
    );
    const name = victim.metadata.name as string;
    await ok(dockerExecNode(['kill', '-KILL', pid]), 'kill -KILL the worker');
    const crashed = await waitFor('the crashed worker to be reported', async () => {
      const p = await getJson('pod', name, '-n', NS);
      return p.status.containerStatuses?.[0]?.state?.terminated;
    });
    expect(crashed.exitCode).toBe(137);
    // What the dead worker held: nobody can finish these until their lease expires.
    expect(await leasedBy(name), `pairs still leased by ${name} after it died`).toEqual(orphaned);
    const index = victim.metadata.annotations['batch.kubernetes.io/job-completion-index'];
    const job = victim.metadata.labels['batch.kubernetes.io/job-name'] ?? victim.metadata.labels['job-name'];
    const done = await succeeded('killed');
    // The Job ran that index again in a new pod (the killed one never reported success).
    const again = await getJson('pods', '-n', NS, '-l', `batch.kubernetes.io/job-name=${job}`);
    const sameIndex = again.items.filter(
      (p: Obj) => p.metadata.annotations['batch.kubernetes.io/job-completion-index'] === index,
    );
    expect(sameIndex.some((p: Obj) => p.metadata.name !== name && p.status.phase === 'Succeeded')).toBe(true);
    const c = done.status.comparisons;
    const judged = await psql(
      `SELECT count(*) FROM comparisons WHERE id IN (${orphaned.join(',')}) AND status = 'succeeded' AND lease_owner <> '${name}'`,
    );
    expect(Number(judged), `the dead worker's ${orphaned.length} pairs, judged by another pod`).toBe(
      orphaned.length,
    );
    expect(c.completed).toBe(c.planned);
    expect(c.pending ?? 0).toBe(0);
    expect(c.failed ?? 0).toBe(0);
    const events = (await readEvents('two', 'killed')).filter((e) => e.value.subject === done.metadata.uid);
    expect(events, "the batch's result events on the topic (exactly one, never a duplicate)").toHaveLength(1);
    expect(events[0]!.value.data.comparisons).toEqual(c);
  }, 900_000);

  it('a pipelined batch runs on one Job of long-lived workers, nothing lost or sent twice', async () => {
    needsInstall();
    const P = 2;
    await apply([
      batch('piped', (b) => {
        b.metadata.annotations = { 'cj.huleedu.io/rounds': 'pipelined' };
        b.spec.workers = { ...(b.spec.workers ?? {}), parallelism: P };
      }),
    ]);
    const done = await succeeded('piped');
    // The first round is scored by a Job of its own; every later pair is judged and planned by the
    // one workers Job, whose pods live through the rounds (rounds mode starts a Job per round).
    const jobs = await getJson('jobs', '-n', NS, '-l', 'cj.huleedu.io/batch=piped');
    expect(jobs.items.map((j: Obj) => j.metadata.name).sort()).toEqual(['piped-score-0', 'piped-workers']);
    const pods = await getJson('pods', '-n', NS, '-l', 'cj.huleedu.io/batch=piped');
    expect(pods.items.length, 'pods of the pipelined batch').toBeGreaterThanOrEqual(2);
    expect(pods.items.length, 'pods of the pipelined batch').toBeLessThanOrEqual(2 * P + 2);
    const c = done.status.comparisons;
    expect(c.completed).toBe(c.planned);
    expect(c.pending ?? 0).toBe(0);
    expect(c.failed ?? 0).toBe(0);
    const events = (await readEvents('piped', 'piped')).filter((e) => e.value.subject === done.metadata.uid);
    expect(events, "the batch's result events on the topic (exactly one)").toHaveLength(1);
    expect(events[0]!.value.data.comparisons).toEqual(c);
  }, 600_000);

  it("the kubelet's view: uid 65532, read-only root, no token in workers, restricted Pod Security", async () => {
    needsInstall();
    const pods = await getJson('pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/name=cj-operator');
    const op = pods.items[0];
    const seen = await inside(SYSTEM, op.metadata.name, op.spec.containers[0].name);
    if (!seen) throw new Error(`kubectl exec into the operator pod ${op.metadata.name} failed`);
    expect(seen.ids).toBe('65532 65532');
    expect(seen.root).toBe('EROFS');
    expect(seen.tmp).toBe('ok');
    // The product image carries neither the hack/ tooling nor the fake judge (a test double).
    const shipped = await execIn(SYSTEM, op.metadata.name, op.spec.containers[0].name, [
      'node',
      '-e',
      "const fs = require('fs'); console.log(JSON.stringify([fs.readdirSync('/app/dist'), fs.existsSync('/app/dist/runtime/src/fake-anthropic')]))",
    ]);
    const [top, fake] = JSON.parse(shipped.stdout);
    expect(top).toContain('operator');
    expect(top, 'what the product image ships in /app/dist (no developer tooling)').not.toContain('hack');
    expect(fake, 'the product image ships the fake judge (a test double)').toBe(false);
    // Every worker pod the batches ran: no service-account token volume, the worker account.
    const workers = await getJson('pods', '-n', NS, '-l', 'app.kubernetes.io/managed-by=cj-operator');
    expect(workers.items.length).toBeGreaterThan(0);
    for (const w of workers.items) {
      expect(w.spec.automountServiceAccountToken).toBe(false);
      expect(w.spec.serviceAccountName).toBe('cj-worker');
      for (const v of w.spec.volumes ?? [])
        expect(v.projected?.sources ?? []).not.toContainEqual(
          expect.objectContaining({ serviceAccountToken: expect.anything() }),
        );
      const sc = w.spec.containers[0].securityContext;
      expect(sc).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    }
    // The namespace enforces restricted: a root, privileged pod is refused by admission.
    const r = await kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'root', namespace: NS },
        spec: { containers: [{ name: 'c', image: env.image, securityContext: { privileged: true } }] },
      }),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('violates PodSecurity "restricted:latest"');
  }, 300_000);

  it('Argo CD health Lua and kstatus agree on the live objects', async () => {
    needsInstall();
    const b = await getJson('cjbatch', 'sample-small', '-n', NS);
    expect(argoHealth(b), 'Argo CD health (config/health/cjbatch.lua) of a Succeeded CJBatch').toMatchObject({
      status: 'Healthy',
    });
    expect(kstatus(b).status).toBe('Current');
    const p = await getJson('llmproviderpool', 'fake-pool', '-n', NS);
    expect(argoHealth(p), 'Argo CD health (config/health/llmproviderpool.lua) of a Ready pool').toMatchObject(
      { status: 'Healthy' },
    );
    expect(kstatus(p).status).toBe('Current');
    expect(kstatus(await getJson('deployment', RELEASE, '-n', SYSTEM)).status).toBe('Current');
  }, 300_000);

  it('helm uninstall leaves nothing behind but the kept CRDs', async () => {
    // Batches carry the operator's finalizer: delete them while it runs.
    await kubectlOk(['delete', 'cjbatch', '--all', '-n', NS, '--wait=true', '--timeout=120s']);
    await kubectlOk(['delete', 'llmproviderpool', '--all', '-n', NS, '--wait=true', '--timeout=120s']);
    await helmOk(['uninstall', RELEASE, '-n', SYSTEM, '--wait', '--timeout', '120s']);
    const left = async (ns: string, kinds: string) =>
      (await kubectlOk(['get', kinds, '-n', ns, '-o', 'name'])).trim().split('\n').filter(Boolean).sort();
    await waitFor('the release and the batches children to be gone', async () => {
      const a = await left(
        SYSTEM,
        'deployments,pods,services,leases,roles,rolebindings,jobs,poddisruptionbudgets',
      );
      const b = await left(NS, 'pods,jobs,roles,rolebindings');
      return a.length + b.length === 0;
    });
    expect(await left(SYSTEM, 'secrets,configmaps,serviceaccounts')).toEqual([
      'configmap/kube-root-ca.crt',
      'serviceaccount/default',
    ]);
    expect(await left(NS, 'secrets,configmaps,serviceaccounts')).toEqual([
      'configmap/kube-root-ca.crt',
      'secret/llm-api-key',
      'serviceaccount/default',
    ]);
    const cluster = (kind: string) =>
      kubectlOk(['get', kind, '-o', 'name']).then((o) =>
        o.split('\n').filter((n) => n.includes(RELEASE) || /\/cj-(editor|viewer)$/.test(n)),
      );
    expect(await cluster('validatingwebhookconfigurations')).toEqual([]);
    expect(await cluster('clusterroles')).toEqual([]);
    expect(await cluster('clusterrolebindings')).toEqual([]);
    // crds.keep=true (the default): the CRDs stay, so users' batches survive an uninstall.
    expect((await kubectl(['get', 'crd', 'cjbatches.cj.huleedu.io'])).code).toBe(0);
    expect((await helm(['status', RELEASE, '-n', SYSTEM])).code).not.toBe(0);
  }, 600_000);
});
