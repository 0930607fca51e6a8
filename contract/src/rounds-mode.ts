// How a batch runs its rounds (docs/architecture.md): `pipelined` — one Job of long-lived
// workers that plan ahead and score in the pod — or `rounds` — a scoring Job, then a comparison
// Job, per round. Fixed per batch when it starts: its annotation, else the operator's ROUNDS_MODE,
// else the default. Here because the operator, the CLI and the estimate all need the same names.
export type RoundsMode = 'rounds' | 'pipelined';
export const ROUNDS_MODES: readonly RoundsMode[] = ['rounds', 'pipelined'];
/** Pipelined is faster per batch and starts far fewer pods (bench/README.md). */
export const DEFAULT_ROUNDS_MODE: RoundsMode = 'pipelined';
/** The annotation that picks a batch's rounds mode. */
export const ROUNDS_ANNOTATION = 'cj.huleedu.io/rounds';

export const isRoundsMode = (v: unknown): v is RoundsMode =>
  typeof v === 'string' && (ROUNDS_MODES as readonly string[]).includes(v);

/**
 * A batch's annotated mode (undefined without the annotation); a bad value goes to `fail` with the
 * message that names the field and the fix, for the caller to raise as its own error type.
 */
export function annotatedRoundsMode(
  annotations: Record<string, string> | undefined,
  fail: (message: string) => never,
): RoundsMode | undefined {
  const v = annotations?.[ROUNDS_ANNOTATION];
  if (v === undefined || isRoundsMode(v)) return v;
  return fail(
    `metadata.annotations["${ROUNDS_ANNOTATION}"]: "${v}" is not a rounds mode; use one of ${ROUNDS_MODES.join(', ')} or remove it`,
  );
}
