// The phase table (docs/architecture.md explains it). Gates run first, in order, on every pass:
// the first that returns a Step ends the pass. Then the rounds' state in the store says which work
// handler runs. Handlers never call each other: a handler that cannot go on returns `fail`, and the
// dispatcher hands that to the finalizing phase.
import type { Progress } from '../../../../../runtime/src/store/progress.js';
import type { RoundRow } from '../../../../../runtime/src/store/rounds.js';
import type { PhaseContext, Step } from '../context.js';
import { isTerminal } from '../status.js';
import { comparing, pipelining } from './comparing.js';
import { finish, reassert } from './finalizing.js';
import { pending } from './pending.js';
import { preparing } from './preparing.js';
import { scoring } from './scoring.js';
import { terminal } from './terminal.js';

export { fail } from './finalizing.js';

type Gate = (ctx: PhaseContext) => Promise<Step | undefined>;

/** Terminal → an outcome already committed → Pending (spec, pool, suspend) → Preparing. */
export const GATES: readonly Gate[] = [
  async (ctx) => (isTerminal(ctx.batch) ? terminal(ctx) : undefined),
  async (ctx) => {
    const committed = await ctx.store.committedOutcome(ctx.batch.metadata.uid!);
    return committed ? reassert(ctx, committed) : undefined;
  },
  async (ctx) => {
    ctx.registered = await ctx.store.getBatch(ctx.batch.metadata.uid!);
    return pending(ctx);
  },
  preparing,
];

/** What the rounds need next, from the store's summary alone (pure). */
export type RoundWork =
  | { kind: 'score'; round: number }
  | { kind: 'judge'; round: number; planned: number; done: number }
  | { kind: 'pipeline'; round: number; open: number; lastFinishedAt?: number }
  | { kind: 'finish'; latest: RoundRow }
  | { kind: 'fail'; reason: string; message: string };

/**
 * Round r is planned by scoring round r-1 (round 0 plans the first pairs); it is judged until
 * every planned pair is final; a stop decision, or a round that planned no pairs, finishes the
 * batch. A round whose comparisons mostly failed ends the batch before scoring more of them.
 *
 * Pipelined rounds: round 0 is scored by a Job as above; after it, the batch's long-lived workers
 * judge and plan ahead until a committed stop decision (which cancels the pairs still open, in the
 * same transaction). A pass that planned no pairs is not the end there: the workers plan again
 * once the open pairs are judged, and plan() stops (`exhausted`) when nothing is left.
 */
export function nextWork(
  latest: RoundRow | undefined,
  p: Progress,
  minSuccessRate: number,
  mode: 'rounds' | 'pipelined' = 'rounds',
): RoundWork {
  if (!latest) return { kind: 'score', round: 0 };
  if (latest.decision === 'stop') return { kind: 'finish', latest };
  // A 'continue' that planned no pairs cannot make progress: finish with what exists.
  if (mode === 'rounds' && latest.pairs === 0) return { kind: 'finish', latest };
  const round = latest.round + 1;
  const cur = p.currentRound;
  const judging = cur === null || cur.round !== round || cur.done !== cur.planned;
  if (mode === 'rounds' && judging)
    return { kind: 'judge', round, planned: cur?.planned ?? 0, done: cur?.done ?? 0 };
  const finished = p.completed + p.failed;
  if (finished >= 20 && p.completed / finished < minSuccessRate)
    return {
      kind: 'fail',
      reason: 'LowSuccessRate',
      message: `only ${p.completed} of ${finished} comparisons succeeded (floor ${minSuccessRate * 100}%); see the pool's status and the worker logs`,
    };
  if (mode === 'pipelined')
    return {
      kind: 'pipeline',
      round: latest.round,
      open: p.pending,
      ...(p.lastFinishedAt ? { lastFinishedAt: p.lastFinishedAt.getTime() } : {}),
    };
  return { kind: 'score', round };
}

/** The work handler for the rounds' state. */
export function work(ctx: PhaseContext, w: RoundWork): Promise<Step> | Step {
  switch (w.kind) {
    case 'score':
      return scoring(ctx, w.round);
    case 'judge':
      return comparing(ctx, w);
    case 'pipeline':
      return pipelining(ctx, w);
    case 'finish':
      return finish(ctx, w.latest);
    case 'fail':
      return { fail: { reason: w.reason, message: w.message } };
  }
}
