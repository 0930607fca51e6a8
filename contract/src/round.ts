// What one scoring pass stores about its round (rounds.summary) and the operator reads back: the
// batch status figures and `kubectl cj explain`'s summary.json. It is the part of the engine's
// plan() result that those readers use, named once here. The scoring pass hands the engine's
// PlanResult to the store through RoundSummary (runtime/src/scoring/score-round.ts), so an engine
// change that renames or retypes a field a reader uses fails the build there.

/** The engine's stopping decision for the round. */
export interface RoundDecision {
  action: 'continue' | 'stop';
  reason: string;
  /** The stopping rule's checks, passed through to `kubectl cj explain`. */
  checks: unknown[];
}

/** Quality figures of the fit after the round; `null` where the engine could not compute one. */
export interface RoundQuality {
  reliability: { eap: number | null };
  meanModalProbability: number | null;
  judge: unknown;
  connectivity: { connected: boolean; components: unknown[] };
  calibration: {
    heldOut: number;
    exact: number | null;
    adjacent: number | null;
    qwk: number | null;
    coverage80: number | null;
  } | null;
  expectedSpearman?: number | null;
  /** The claim's range: for a consistent judge, and at the misperception the anchors cannot rule out. */
  expectedSpearmanConsistent?: number | null;
  expectedSpearmanLow?: number | null;
  comparisonsPerAnchor?: number | null;
  comparisonsPerStudent?: number | null;
  misfit?: unknown;
}

/** As a scoring pass writes it. */
export interface RoundSummary {
  decision: RoundDecision;
  quality: RoundQuality;
  counts: { essays: number };
}

/** As read back: a row written by an older engine may lack any of these. */
export type StoredRoundSummary = DeepPartial<RoundSummary>;

type DeepPartial<T> = T extends unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
