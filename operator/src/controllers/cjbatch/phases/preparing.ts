// Preparing: the essays go into the store once (in one transaction, which fixes the budget for
// good), and the batch's worker Secret holds its own database role. Passes through once both hold.
import { DEFAULT_ROUNDS_MODE } from '../../../../../contract/src/rounds-mode.js';
import { metaTime } from '../../../kube/status.js';
import { type PhaseContext, type Step, setPhase } from '../context.js';
import { startEstimate } from '../estimate.js';
import { buildRegistration, InputError, roundsModeOf } from '../prepare.js';
import { condition } from '../status.js';

export async function preparing(ctx: PhaseContext): Promise<Step | undefined> {
  const { status, cond } = ctx;
  if (!ctx.registered) {
    setPhase(ctx, 'Preparing');
    status.startTime ??= metaTime();
    try {
      const rounds = roundsModeOf(ctx.batch, ctx.config.roundsMode ?? DEFAULT_ROUNDS_MODE, ctx.pool);
      const registration = await buildRegistration(ctx.batch, (name) => ctx.owned.configMap(name), rounds);
      ctx.registered = await ctx.store.registerBatch(registration);
      if (ctx.pool) status.estimate ??= startEstimate(ctx.batch, registration, ctx.pool);
    } catch (caught) {
      const err = inputProblem(caught);
      cond('InvalidSpec', 'True', 'InputUnreadable', err.message);
      cond('Progressing', 'False', 'InvalidSpec', 'fix the inputs; the batch starts once they are readable');
      ctx.event('Warning', 'InvalidSpec', err.message);
      // Not terminal: a ConfigMap created or fixed later is not an event of the batch's.
      return { requeueAfter: 30_000 };
    }
    const reg = ctx.registered;
    ctx.event('Normal', 'Prepared', `loaded the essays; budget ${reg.budget_total} (${reg.budget_source})`);
  }
  const secretProblem = await ctx.owned.workerSecret(ctx.pool!);
  if (secretProblem) {
    // Once per conflict, not every pass (checked before the condition is set).
    if (condition(status, 'Progressing')?.reason !== 'WorkerSecretConflict')
      ctx.event('Warning', 'WorkerSecretConflict', secretProblem);
    cond('Progressing', 'False', 'WorkerSecretConflict', secretProblem);
    return { requeueAfter: 30_000 };
  }
  return undefined;
}

/** The inputs' fault (rethrows anything else): unreadable inputs, or values the store refuses. */
function inputProblem(caught: unknown): InputError {
  if (caught instanceof InputError) return caught;
  // The database refusing the input itself (a value it cannot store) is the spec's fault too.
  const refused = inputRefusedByDatabase(caught);
  if (!refused) throw caught;
  return new InputError(`the database cannot store this batch's input: ${refused}`);
}

/**
 * The Postgres message when an error is the database refusing a value of the input (SQLSTATE
 * class 22, data exception: NUL bytes, invalid encodings, values too long; 54: too large).
 */
function inputRefusedByDatabase(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^(22|54)/.test(code)) return undefined;
  return `${(err as Error).message} (SQLSTATE ${code})`;
}
