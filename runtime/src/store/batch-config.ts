// What the operator freezes into `batches.config` when a batch starts, and what the scoring and
// comparison workers read back. One schema for both sides of that boundary.

import { z } from 'zod';
import type { RoundsMode } from '../../../contract/src/rounds-mode.js';

export const BatchConfigSchema = z.object({
  grades: z.array(z.string()).describe('Grade scale, lowest first.'),
  seed: z.number().int(),
  roundSize: z.number().int().min(1).describe('Pairs planned per round.'),
  shards: z.number().int().min(1).describe('Completions of each comparison Job (one shard each).'),
  maxPerEssay: z.number().int().min(1).optional(),
  rounds: z
    .enum(['rounds', 'pipelined'])
    .optional()
    .describe(
      'rounds (or absent): one scoring Job, then one comparison Job per round. pipelined: long-lived workers judge and plan ahead.',
    ),
  stopping: z.object({
    lag: z.number().int().min(1),
    rankStability: z.number().min(0).max(1),
    maxGradeChanges: z.number().min(0).max(1),
    reliability: z.number().min(0).max(1),
    gradeConfidence: z.number().min(0).max(1),
    minPerEssay: z.number().int().min(0),
  }),
  assignment: z.object({ title: z.string(), instructions: z.string(), rubric: z.string() }),
});
export type BatchConfig = z.infer<typeof BatchConfigSchema>;

/** The rounds mode frozen into a batch's config (absent in batches started before it existed: rounds). */
export const roundsModeOfConfig = (config: Record<string, unknown>): RoundsMode =>
  config.rounds === 'pipelined' ? 'pipelined' : 'rounds';
