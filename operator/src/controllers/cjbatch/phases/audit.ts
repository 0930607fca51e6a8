// A teacher's spot check of the AI judge on a Succeeded batch (kubectl cj audit). The CLI has no
// database access, so the pairs and the answers travel through the apiserver:
//   1. the CLI annotates the batch cj.huleedu.io/audit=requested;
//   2. this handler picks the pairs (contract/src/audit.ts) and writes them with the essays' texts,
//      never the LLM's verdicts, to the <batch>-audit ConfigMap the batch owns;
//   3. the CLI adds answers.json to that ConfigMap and sets the annotation to `submitted`;
//   4. this handler checks the answers, stores them as a separate human judge together with the
//      cj.batch.audited.v1 event (one transaction), and writes status.audit.
// Both annotation changes are watch events on the batch, so nothing here polls.
import {
  AUDIT_ANNOTATION,
  AUDIT_DEFAULT_PAIRS,
  AUDIT_KEYS,
  AUDIT_MAX_PAIRS,
  AUDIT_MAX_TEXT_BYTES,
  AUDIT_MIN_PAIRS,
  AUDIT_NONCE_ANNOTATION,
  AUDIT_PAIRS_ANNOTATION,
  AuditAnswersError,
  type AuditPair,
  type AuditReport,
  agreementSentence,
  auditConfigMapName,
  auditReport,
  type JudgedPair,
  parseAuditAnswers,
  pBeats,
  selectAuditPairs,
} from '../../../../../contract/src/audit.js';
import { type AuditedData, EVENT_AUDITED } from '../../../../../contract/src/events.js';
import type { CJBatch, CJBatchStatus } from '../../../api/index.js';
import { type PhaseContext, uidOf } from '../context.js';
import { batchEvent, batchRef } from '../finalize.js';
import { ownedObjectMeta } from '../jobs.js';
import { ForeignChildError } from '../owned.js';

export { EVENT_AUDITED };

type AuditStatus = NonNullable<CJBatchStatus['audit']>;

/** The requested number of pairs, within the limits (a bad value means the default). */
export function requestedPairs(batch: CJBatch): number {
  const n = Number(batch.metadata.annotations?.[AUDIT_PAIRS_ANNOTATION] ?? AUDIT_DEFAULT_PAIRS);
  if (!Number.isInteger(n)) return AUDIT_DEFAULT_PAIRS;
  return Math.min(AUDIT_MAX_PAIRS, Math.max(AUDIT_MIN_PAIRS, n));
}

export async function audit(ctx: PhaseContext): Promise<void> {
  const { batch, status } = ctx;
  const want = batch.metadata.annotations?.[AUDIT_ANNOTATION];
  if (status.phase !== 'Succeeded' || (want !== 'requested' && want !== 'submitted')) return;
  if (status.audit?.state === 'Audited') return;
  const name = auditConfigMapName(batch.metadata.name!);
  const cm = (await ctx.owned.configMap(name)) as
    | { metadata?: { ownerReferences?: { uid?: string }[] }; data?: Record<string, string> }
    | undefined;
  if (cm && !cm.metadata?.ownerReferences?.some((o) => o.uid === uidOf(ctx))) {
    setAudit(ctx, {
      state: 'Invalid',
      configMap: name,
      message: `ConfigMap ${name} exists and does not belong to this batch; delete it and run kubectl cj audit again`,
    });
    return;
  }
  const pairsText = cm?.data?.[AUDIT_KEYS.pairs];
  if (!pairsText) {
    await sendPairs(ctx, name);
    return;
  }
  const pairs = JSON.parse(pairsText) as AuditPair[];
  const answersText = cm?.data?.[AUDIT_KEYS.answers];
  if (want !== 'submitted' || !answersText) {
    setAudit(ctx, {
      state: 'Waiting',
      configMap: name,
      pairs: pairs.length,
      message: `${pairs.length} pairs are ready: kubectl cj audit ${batch.metadata.name}`,
    });
    return;
  }
  let answers: ReturnType<typeof parseAuditAnswers>;
  try {
    answers = parseAuditAnswers(answersText, pairs);
  } catch (err) {
    if (!(err instanceof AuditAnswersError)) throw err;
    if (status.audit?.message !== err.message) ctx.event('Warning', 'AuditRefused', err.message);
    setAudit(ctx, { state: 'Invalid', configMap: name, pairs: pairs.length, message: err.message });
    return;
  }
  const uid = uidOf(ctx);
  const report = auditReport(
    pairs,
    answers.answers,
    await ctx.store.llmVerdicts(uid),
    await ctx.store.finalThetas(uid),
  );
  const seconds = new Map(answers.answers.map((a) => [a.id, a.seconds]));
  const shown = new Map(pairs.map((p) => [`${p.a}\u0000${p.b}`, p.id]));
  const auditedAt = new Date();
  const stored = await ctx.store.commitAudit({
    uid,
    judge: answers.judge,
    judgements: report.decisions.map((d) => ({
      a: d.essayA,
      b: d.essayB,
      winner: d.human,
      ...numberOrNothing(seconds.get(shown.get(`${d.essayA}\u0000${d.essayB}`) ?? '')),
    })),
    eventType: EVENT_AUDITED,
    topic: batch.spec.output?.kafkaTopic ?? ctx.config.kafkaTopic,
    event: (eventId) => auditEvent(batch, answers.judge, report, ctx.pool, eventId, auditedAt),
  });
  // A retry after a lost status write reads the figures of the event already committed.
  const data = (stored.payload as { data: AuditEventData; time: string }).data;
  const figures = {
    judge: data.judge,
    judged: data.judged,
    agreements: data.agreements,
    interval95: data.interval95,
  };
  if (stored.created) ctx.event('Normal', 'Audited', agreementSentence(figures));
  setAudit(ctx, {
    state: 'Audited',
    configMap: name,
    judge: data.judge,
    pairs: data.pairs,
    judged: data.judged,
    agreements: data.agreements,
    agreement: round4(data.agreement),
    interval95: data.interval95.map(round4),
    modelAgreements: data.modelAgreements,
    auditedAt: (stored.payload as { time: string }).time,
    eventId: stored.eventId,
    message: agreementSentence(figures),
  });
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const numberOrNothing = (x: number | undefined) => (x === undefined ? {} : { seconds: x });

function setAudit(ctx: PhaseContext, a: AuditStatus) {
  const nonce = ctx.batch.metadata.annotations?.[AUDIT_NONCE_ANNOTATION];
  ctx.status.audit = nonce ? { ...a, nonce: nonce.slice(0, 64) } : a;
}

/** Picks the pairs and writes them, with the texts the teacher reads, to the audit ConfigMap. */
async function sendPairs(ctx: PhaseContext, name: string) {
  const { batch } = ctx;
  const uid = uidOf(ctx);
  const verdicts = await ctx.store.llmVerdicts(uid);
  const theta = await ctx.store.finalThetas(uid);
  const judged: JudgedPair[] = verdicts.map((v) => ({
    a: v.a,
    b: v.b,
    llmWinner: v.winner,
    pModel: pBeats(theta.get(v.a) ?? 0, theta.get(v.b) ?? 0),
  }));
  let pairs = selectAuditPairs(judged, requestedPairs(batch), batch.spec.seed ?? 1);
  const ids = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
  const texts = await ctx.store.essayTexts(uid, ids);
  // A ConfigMap holds at most 1 MiB: with very long essays, fewer pairs.
  const essaysOf = (ps: AuditPair[]) =>
    Object.fromEntries(
      [...new Set(ps.flatMap((p) => [p.a, p.b]))].sort().map((id) => [id, texts.get(id) ?? '']),
    );
  while (pairs.length > 1 && Buffer.byteLength(JSON.stringify(essaysOf(pairs))) > AUDIT_MAX_TEXT_BYTES)
    pairs = pairs.slice(0, -1);
  try {
    await ctx.owned.applyConfigMap(name, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: ownedObjectMeta(batch, name, { 'cj.huleedu.io/role': 'audit' }),
      data: {
        [AUDIT_KEYS.pairs]: JSON.stringify(pairs),
        [AUDIT_KEYS.essays]: JSON.stringify(essaysOf(pairs)),
      },
    });
  } catch (err) {
    if (!(err instanceof ForeignChildError)) throw err;
    setAudit(ctx, { state: 'Invalid', configMap: name, message: err.message.slice(0, 1024) });
    return;
  }
  setAudit(ctx, {
    state: 'Waiting',
    configMap: name,
    pairs: pairs.length,
    message: `${pairs.length} pairs are ready: kubectl cj audit ${batch.metadata.name}`,
  });
}

/** The audit event's data: the batch, who judged against which model, and the report. */
export type AuditEventData = AuditedData;

/** The cj.batch.audited.v1 CloudEvent (contract/src/events.ts; config/schemas/cj.batch.audited.v1.json). */
export function auditEvent(
  batch: CJBatch,
  judge: string,
  r: AuditReport,
  pool: { spec: { provider: string; model: string } } | undefined,
  eventId: string,
  time: Date,
) {
  const data: AuditEventData = {
    batch: batchRef(batch),
    judge,
    provider: pool?.spec.provider ?? null,
    model: pool?.spec.model ?? null,
    ...r,
    agreement: round4(r.agreement),
    interval95: [round4(r.interval95[0]), round4(r.interval95[1])],
  };
  return batchEvent(batch, EVENT_AUDITED, eventId, time, data);
}
