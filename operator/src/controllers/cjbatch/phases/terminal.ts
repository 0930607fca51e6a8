// Succeeded or Failed: the batch's role is retired once its workers are gone (retiring.ts), and
// the result event is left. The relay enqueues the batch when it publishes or parks the event, so
// this phase looks again on that, not on a timer; the long requeue below is only a net for a relay
// that is not running (no KAFKA_BROKERS) or restarting.
import type { PhaseContext, Step } from '../context.js';
import { uidOf } from '../context.js';
import { condition } from '../status.js';
import { audit } from './audit.js';
import { retiring } from './retiring.js';

/** Without a word from the relay, look again after this long. */
export const UNPUBLISHED_RECHECK_MS = 60_000;

export async function terminal(ctx: PhaseContext): Promise<Step> {
  // A teacher's spot check of the judge, asked for on a Succeeded batch (kubectl cj audit).
  await audit(ctx);
  const retire = await retiring(ctx);
  return sooner(retire, await published(ctx));
}

/** The earlier of two requeues (none: no requeue). */
const sooner = (a: Step | undefined, b: Step): Step => {
  const ms = [a?.requeueAfter, b.requeueAfter].filter((x): x is number => x !== undefined);
  return ms.length > 0 ? { requeueAfter: Math.min(...ms) } : {};
};

/** The result event: published, parked, or still in the outbox. */
async function published(ctx: PhaseContext): Promise<Step> {
  const { status, cond } = ctx;
  if (condition(status, 'EventPublished')?.status === 'True') return {};
  const ev = await ctx.store.eventState(uidOf(ctx));
  if (ev?.sent) {
    cond('EventPublished', 'True', 'Published', `event ${ev.eventId} was published to Kafka`);
    ctx.event('Normal', 'EventPublished', `event ${ev.eventId} published`);
    return {};
  }
  if (ev?.parkedReason) {
    const message = `event ${ev.eventId} was set aside and will not be retried: ${ev.parkedReason}; the results are in the results ConfigMap`;
    if (condition(status, 'EventPublished')?.reason !== 'EventParked')
      ctx.event('Warning', 'EventParked', message.slice(0, 1000));
    cond('EventPublished', 'False', 'EventParked', message.slice(0, 32_000));
    return { requeueAfter: 300_000 };
  }
  return { requeueAfter: UNPUBLISHED_RECHECK_MS };
}
