// The foundation's proof: the real Job, ReplicaSet and Deployment controllers drive pods that the
// process kubelet runs as processes; the real apiserver enforces CEL on a CRD.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../../hack/lib/proc.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, waitFor } from './helpers.js';

let ns: string;
beforeAll(async () => {
  ns = await newNamespace('cluster');
});
afterAll(async () => {
  await deleteNamespace(ns);
});

const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-o', 'json', '-n', ns]));
const jobCondition = async (name: string, type: string) =>
  (await getJson(['get', 'job', name])).status?.conditions?.find(
    (c: any) => c.type === type && c.status === 'True',
  );

describe('process kubelet with the real controllers', () => {
  it('runs an Indexed Job: completion index and ConfigMap values reach the pods', async () => {
    await kubectlOk(['create', 'configmap', 'greeting', '-n', ns, '--from-literal=word=hello']);
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'indexed', namespace: ns },
      spec: {
        completionMode: 'Indexed',
        completions: 3,
        parallelism: 2,
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'main',
                image: 'node:22',
                command: ['node', '-e'],
                args: [
                  "require('fs').writeFileSync('/dev/termination-log', `${process.env.WORD}:${process.env.INDEX}:${process.env.JOB_COMPLETION_INDEX}`)",
                ],
                env: [
                  { name: 'WORD', valueFrom: { configMapKeyRef: { name: 'greeting', key: 'word' } } },
                  {
                    name: 'INDEX',
                    valueFrom: {
                      fieldRef: {
                        fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                      },
                    },
                  },
                ],
              },
            ],
          },
        },
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(job));
    await waitFor('Job indexed Complete', () => jobCondition('indexed', 'Complete'), 90_000);
    const pods = await getJson(['get', 'pods', '-l', 'job-name=indexed']);
    const messages = pods.items
      .map((p: any) => p.status.containerStatuses[0].state.terminated.message)
      .sort();
    // The Job controller sets JOB_COMPLETION_INDEX itself; both paths must agree.
    expect(messages).toEqual(['hello:0:0', 'hello:1:1', 'hello:2:2']);
    const status = (await getJson(['get', 'job', 'indexed'])).status;
    expect(status.succeeded).toBe(3);
    expect(status.completedIndexes).toBe('0-2');
  });

  it('fails a Job through its podFailurePolicy when the pod exits 3', async () => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'exit3', namespace: ns },
      spec: {
        backoffLimit: 6,
        podFailurePolicy: { rules: [{ action: 'FailJob', onExitCodes: { operator: 'In', values: [3] } }] },
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [{ name: 'main', image: 'node:22', command: ['node', '-e', 'process.exit(3)'] }],
          },
        },
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(job));
    const failed = await waitFor('Job exit3 Failed', () => jobCondition('exit3', 'Failed'), 90_000);
    expect(failed.reason).toBe('PodFailurePolicy');
    const pods = await getJson(['get', 'pods', '-l', 'job-name=exit3']);
    expect(pods.items).toHaveLength(1); // failed fast: no retry despite backoffLimit 6
    expect(pods.items[0].status.containerStatuses[0].state.terminated.exitCode).toBe(3);
  });

  it('ends the process of a running pod that is deleted', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'sleeper', namespace: ns },
      spec: {
        terminationGracePeriodSeconds: 5,
        containers: [
          { name: 'main', image: 'node:22', command: ['node', '-e', 'setInterval(() => {}, 1000)'] },
        ],
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(pod));
    const running = await waitFor('pod sleeper Running', async () => {
      const p = await getJson(['get', 'pod', 'sleeper']);
      return p.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.containerID ? p : undefined;
    });
    const pid = Number(running.status.containerStatuses[0].containerID.replace('process://', ''));
    expect(alive(pid)).toBe(true);
    await kubectlOk(['delete', 'pod', 'sleeper', '-n', ns, '--wait=true', '--timeout=60s']);
    expect(alive(pid)).toBe(false);
    expect((await kubectl(['get', 'pod', 'sleeper', '-n', ns])).code).not.toBe(0);
  });

  it("brings a Deployment's pods to Running and Ready; two pods listen on the same port", async () => {
    const server =
      "require('http').createServer((q, s) => s.end(process.env.POD_NAME)).listen(8080, process.env.POD_IP)";
    const deploy = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            containers: [
              {
                name: 'web',
                image: 'node:22',
                command: ['node', '-e', server],
                ports: [{ containerPort: 8080, name: 'http' }],
                readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
                env: [
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                ],
              },
            ],
          },
        },
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(deploy));
    await kubectlOk(['rollout', 'status', 'deployment/web', '-n', ns, '--timeout=90s']);
    const pods = (await getJson(['get', 'pods', '-l', 'app=web'])).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.status.phase).toBe('Running');
      expect(p.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
      const res = await fetch(`http://${p.status.podIP}:8080/`);
      expect(await res.text()).toBe(p.metadata.name);
    }
    expect(new Set(pods.map((p: any) => p.status.podIP)).size).toBe(2);
    expect((await getJson(['get', 'deployment', 'web'])).status.readyReplicas).toBe(2);
  });
});

describe('the real apiserver validates CRDs', () => {
  it('rejects an object that breaks a CEL rule, with the rule message', async () => {
    const group = `${ns}.example.com`;
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    properties: { min: { type: 'integer' }, max: { type: 'integer' } },
                    'x-kubernetes-validations': [
                      { rule: 'self.min <= self.max', message: 'spec.min must not exceed spec.max' },
                    ],
                  },
                },
              },
            },
          },
        ],
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(crd));
    try {
      await kubectlOk(['wait', '--for=condition=Established', `crd/widgets.${group}`, '--timeout=30s']);
      const obj = (min: number, max: number) =>
        JSON.stringify({
          apiVersion: `${group}/v1`,
          kind: 'Widget',
          metadata: { name: `w${min}${max}`, namespace: ns },
          spec: { min, max },
        });
      const bad = await kubectl(['apply', '-f', '-'], obj(5, 1));
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('spec.min must not exceed spec.max');
      await kubectlOk(['apply', '-f', '-'], obj(1, 5));
    } finally {
      await kubectl(['delete', 'crd', `widgets.${group}`, '--wait=false']);
    }
  });
});
