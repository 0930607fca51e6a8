// kubectl cj audit: a teacher judges a sample of the pairs the AI judge judged, in the terminal,
// without seeing the AI's verdicts. The CLI has no database access: it asks the operator for the
// pairs with an annotation on the batch, reads them (and the essays' texts) from the
// <batch>-audit ConfigMap the operator writes, puts the answers into that ConfigMap and marks the
// batch `submitted`; the operator stores them and reports the agreement (contract/src/audit.ts).
import { randomBytes } from 'node:crypto';
import { emitKeypressEvents } from 'node:readline';
import {
  AUDIT_ANNOTATION,
  AUDIT_DEFAULT_JUDGE,
  AUDIT_KEYS,
  AUDIT_MAX_PAIRS,
  AUDIT_MIN_PAIRS,
  AUDIT_NONCE_ANNOTATION,
  AUDIT_PAIRS_ANNOTATION,
  type AuditAnswer,
  type AuditPair,
  agreementSentence,
  auditConfigMapName,
} from '../../../contract/src/audit.js';
import { type KubeClient, resourcePath } from '../kube/rest.js';
import { UsageError } from './args.js';
import { BATCHES, CONFIGMAPS, get } from './submit.js';

export interface AuditView {
  metadata: { uid?: string; annotations?: Record<string, string> };
  status?: {
    phase?: string;
    audit?: {
      state?: string;
      pairs?: number;
      judge?: string;
      judged?: number;
      agreements?: number;
      interval95?: number[];
      modelAgreements?: number;
      message?: string;
      nonce?: string;
    };
  };
}

interface AuditCm {
  metadata?: { ownerReferences?: { uid?: string }[] };
  data?: Record<string, string>;
}

export interface AuditOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  pairs: number;
  judge: string;
  timeoutMs: number;
  input: NodeJS.ReadStream;
  out: NodeJS.WriteStream;
}

/** The audit's one-line result, or the reason there is none yet. */
export function auditLine(a: NonNullable<AuditView['status']>['audit']): string | undefined {
  if (!a?.state) return undefined;
  if (
    a.state === 'Audited' &&
    a.judged !== undefined &&
    a.agreements !== undefined &&
    a.interval95?.length === 2
  )
    return `${agreementSentence({ judged: a.judged, agreements: a.agreements, interval95: [a.interval95[0]!, a.interval95[1]!], ...(a.judge ? { judge: a.judge } : {}) })}; the final scores agreed with the teacher on ${a.modelAgreements ?? 0} of ${a.judged}.`;
  return `Audit: ${a.state}${a.message ? ` — ${a.message}` : ''}`;
}

export function parsePairs(v: string | undefined): number {
  if (v === undefined) return 20;
  const n = Number(v);
  if (!Number.isInteger(n) || n < AUDIT_MIN_PAIRS || n > AUDIT_MAX_PAIRS)
    throw new UsageError(
      `--pairs ${v}: give a whole number from ${AUDIT_MIN_PAIRS} to ${AUDIT_MAX_PAIRS} (e.g. 20)`,
    );
  return n;
}

const newNonce = () => `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() >= deadline)
      throw new UsageError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(500);
  }
}

export async function runAudit(o: AuditOptions): Promise<number> {
  const batchPath = resourcePath(BATCHES, o.namespace, o.name);
  const b = await get<AuditView>(o.client, batchPath);
  if (!b) throw new UsageError(`cjbatch ${o.name} not found in namespace ${o.namespace}`);
  if (b.status?.phase !== 'Succeeded')
    throw new UsageError(
      `cjbatch ${o.name} is ${b.status?.phase ?? 'Pending'}: only a Succeeded batch can be audited (kubectl cj status ${o.name} --watch)`,
    );
  if (b.status.audit?.state === 'Audited') {
    o.out.write(`${auditLine(b.status.audit)}\ncjbatch ${o.name} was audited already (once per batch).\n`);
    return 0;
  }
  if (!o.input.isTTY)
    throw new UsageError('kubectl cj audit asks you to judge pairs: run it in a terminal (stdin is not one)');
  const cmPath = resourcePath(CONFIGMAPS, o.namespace, auditConfigMapName(o.name));
  // Each step changes the nonce; only a state that echoes it answers that step.
  let nonce = '';
  const ready = async () => {
    const cm = await get<AuditCm>(o.client, cmPath);
    if (cm?.data?.[AUDIT_KEYS.pairs] && cm.metadata?.ownerReferences?.some((r) => r.uid === b.metadata.uid))
      return cm;
    const a = (await get<AuditView>(o.client, batchPath))?.status?.audit;
    if (nonce && a?.nonce === nonce && a.state === 'Invalid')
      throw new UsageError(a.message ?? 'audit refused');
    return undefined;
  };
  let cm = await ready();
  if (!cm) {
    nonce = newNonce();
    await o.client.mergePatch(batchPath, {
      metadata: {
        annotations: {
          [AUDIT_ANNOTATION]: 'requested',
          [AUDIT_PAIRS_ANNOTATION]: String(o.pairs),
          [AUDIT_NONCE_ANNOTATION]: nonce,
        },
      },
    });
    o.out.write('Asking the operator for pairs to judge…\n');
    cm = await until(`the operator to write ConfigMap ${auditConfigMapName(o.name)}`, o.timeoutMs, ready);
  }
  const pairs = JSON.parse(cm.data![AUDIT_KEYS.pairs]!) as AuditPair[];
  const texts = JSON.parse(cm.data![AUDIT_KEYS.essays] ?? '{}') as Record<string, string>;
  const answers = await judge(o, pairs, texts);
  if (answers === undefined) {
    o.out.write('\nStopped: nothing was sent. Run kubectl cj audit again to start over.\n');
    return 130;
  }
  const judged = answers.filter((a) => a.winner !== null).length;
  o.out.write(`\nYou judged ${judged} of ${pairs.length} pairs. Sending the answers…\n`);
  await o.client.mergePatch(cmPath, {
    data: { [AUDIT_KEYS.answers]: JSON.stringify({ judge: o.judge, answers }) },
  });
  const sent = newNonce();
  await o.client.mergePatch(batchPath, {
    metadata: { annotations: { [AUDIT_ANNOTATION]: 'submitted', [AUDIT_NONCE_ANNOTATION]: sent } },
  });
  const done = await until(`the operator to store the answers (status.audit)`, o.timeoutMs, async () => {
    const a = (await get<AuditView>(o.client, batchPath))?.status?.audit;
    return a?.nonce === sent && (a.state === 'Audited' || a.state === 'Invalid') ? a : undefined;
  });
  if (done.state === 'Invalid') throw new UsageError(`the operator refused the answers: ${done.message}`);
  o.out.write(`${auditLine(done)}\n`);
  if (judged > 0 && judged < 50)
    o.out.write(
      `(With ${judged} pairs the interval is wide; more pairs narrow it: --pairs ${AUDIT_MAX_PAIRS}.)\n`,
    );
  return 0;
}

/** Wraps text to the terminal's width, keeping paragraphs. */
function wrap(text: string, width: number): string {
  const w = Math.max(40, Math.min(width, 100));
  return text
    .split('\n')
    .map((line) => {
      const out: string[] = [];
      let cur = '';
      for (const word of line.split(/\s+/).filter(Boolean)) {
        if (cur && cur.length + 1 + word.length > w) {
          out.push(cur);
          cur = word;
        } else cur = cur ? `${cur} ${word}` : word;
      }
      out.push(cur);
      return out.join('\n');
    })
    .join('\n');
}

/** Reads single keys from a raw-mode terminal. */
function keys(input: NodeJS.ReadStream) {
  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();
  return {
    next: (allowed: string[]) =>
      new Promise<string>((resolve) => {
        const on = (str: string | undefined, key: { name?: string; ctrl?: boolean }) => {
          const k = key?.ctrl && key.name === 'c' ? 'ctrl-c' : (str ?? '').toLowerCase();
          if (k !== 'ctrl-c' && !allowed.includes(k)) return;
          input.off('keypress', on);
          resolve(k);
        };
        input.on('keypress', on);
      }),
    close: () => {
      input.setRawMode(false);
      input.pause();
    },
  };
}

/**
 * Shows each pair and reads a/b/s/q. Returns the answers (unanswered pairs left out after q), or
 * undefined after Ctrl-C (nothing is sent).
 */
async function judge(
  o: AuditOptions,
  pairs: AuditPair[],
  texts: Record<string, string>,
): Promise<AuditAnswer[] | undefined> {
  const k = keys(o.input);
  const answers: AuditAnswer[] = [];
  try {
    for (const [i, p] of pairs.entries()) {
      const width = (o.out.columns ?? 80) - 2;
      const rule = (label: string) =>
        `── ${label} ${'─'.repeat(Math.max(0, Math.min(width, 100) - label.length - 4))}`;
      o.out.write(
        `\x1b[2J\x1b[H${rule(`Essay A (${p.a})`)}\n${wrap(texts[p.a] ?? '(text missing)', width)}\n\n${rule(`Essay B (${p.b})`)}\n${wrap(texts[p.b] ?? '(text missing)', width)}\n\n`,
      );
      o.out.write(
        `Pair ${i + 1} of ${pairs.length} (${o.judge === AUDIT_DEFAULT_JUDGE ? 'you' : o.judge}): which essay is better? [a] Essay A  [b] Essay B  [s] skip  [q] finish and send\n`,
      );
      const started = Date.now();
      const key = await k.next(['a', 'b', 's', 'q']);
      if (key === 'ctrl-c') return undefined;
      if (key === 'q') break;
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      answers.push({ id: p.id, winner: key === 'a' ? p.a : key === 'b' ? p.b : null, seconds });
    }
  } finally {
    k.close();
  }
  return answers;
}
