// The results format of a finished batch: what the operator writes into the results ConfigMaps
// (JSON for programs, CSV for spreadsheets, split into parts when large) and what
// `kubectl cj results` joins back.
import { z } from 'zod';
import { chunkWithin } from './chunk.js';

/** Probabilities and grades are 0..1 and non-empty strings wherever they appear. */
const Grade = z.string().min(1);
const Probability = z.number().min(0).max(1);

/** An essay's grade projection from the anchors. */
export const GradeProjectionSchema = z
  .object({
    assigned: Grade.describe("The headline grade: the engine's gradeDecision (posterior median by default)."),
    assignedProbability: Probability,
    modal: Grade.describe('Modal (most probable) grade.'),
    modalProbability: Probability,
    expected: z.number().describe('Expected grade index (0 = lowest grade).'),
    interval80: z
      .tuple([z.string(), z.string()])
      .describe('80% grade interval [low, high], grown from the assigned grade.'),
    probabilities: z
      .array(z.object({ grade: Grade, p: Probability }))
      .describe('Posterior probability of each grade, in scale order.'),
  })
  .describe('Grade projection; absent when none was computed (e.g. no anchors).');

/** One essay (or anchor) of a finished batch, as the results ConfigMap and the result event carry it. */
export const EssayResultSchema = z.object({
  essayId: z.string().min(1),
  anchor: z.boolean().describe('True for anchor essays (known grade).'),
  rank: z.number().int().min(1).describe('1 = best.'),
  score: z.number().describe('Latent quality (Bradley-Terry scale, logits).'),
  se: z.number().min(0).describe('Standard error of the score.'),
  grade: GradeProjectionSchema.optional(),
  /**
   * Possible prompt injection found in this essay's text (`injection:<kind>`, kinds from
   * contract/src/injection.ts). The essay was judged as data inside its delimiters; a teacher may
   * want to read it.
   */
  flags: z
    .array(z.string().regex(/^injection:[a-z_]+$/))
    .optional()
    .describe(
      'Possible prompt injection found in the essay (injection:<kind>); the essay was judged as data.',
    ),
});
export type EssayResult = z.infer<typeof EssayResultSchema>;

/** Essays (anchors excluded) per assigned grade. */
export const GradeDistributionSchema = z.array(z.object({ grade: Grade, count: z.number().int().min(0) }));

export const BatchResultsSchema = z.object({
  essays: z.array(EssayResultSchema),
  gradeDistribution: GradeDistributionSchema,
});
export type BatchResults = z.infer<typeof BatchResultsSchema>;

/**
 * Bytes of results one ConfigMap may carry. The apiserver refuses a ConfigMap above 1 MiB
 * (1,048,576 bytes of data and metadata); the rest of the budget is for `summary.json`, keys and
 * metadata. 2000 essays with 6 grades need ≈ 0.97 MB, with 20 grades ≈ 1.9 MB.
 */
export const RESULTS_BYTES_PER_CONFIGMAP = 900_000;

/** One results ConfigMap's data and the name suffix it gets (`''` for the first). */
export interface ResultsPart {
  suffix: string;
  data: Record<string, string>;
}

/**
 * The results as ConfigMap data: JSON for programs (`results.json`: `{essays, gradeDistribution}`),
 * CSV for spreadsheets (`results.csv`). When they do not fit one ConfigMap, the essays (in rank
 * order) are split over `<name>`, `<name>-2`, … `<name>-<k>`: the first carries `parts: "k"`, the
 * grade distribution and the CSV header; concatenating the parts' `results.csv` in order gives the
 * whole CSV, and their `results.json` essays in order give every essay (`joinResultsParts`).
 */
export function resultsConfigMaps(
  r: BatchResults,
  grades: string[],
  budget = RESULTS_BYTES_PER_CONFIGMAP,
): ResultsPart[] {
  const header = `${[
    'rank',
    'essay',
    'anchor',
    'score',
    'se',
    'grade',
    'p_grade',
    'modal_grade',
    'p_modal',
    ...grades.map((g) => `p_${g}`),
    'flags',
  ].join(',')}\n`;
  const rows = r.essays.map((e) => ({
    json: JSON.stringify(e),
    csv: `${[
      e.rank,
      e.essayId,
      e.anchor,
      e.score,
      e.se,
      e.grade?.assigned ?? '',
      e.grade?.assignedProbability ?? '',
      e.grade?.modal ?? '',
      e.grade?.modalProbability ?? '',
      ...grades.map((g) => e.grade?.probabilities.find((x) => x.grade === g)?.p ?? ''),
      (e.flags ?? []).join(' '),
    ].join(',')}\n`,
  }));
  const distribution = JSON.stringify(r.gradeDistribution);
  // Rank order, packed greedily; the first part's header and distribution are charged to every
  // part, which keeps each within the budget and costs little.
  const overhead = Buffer.byteLength(header) + Buffer.byteLength(distribution) + 64;
  const chunks = chunkWithin(
    rows,
    Number.POSITIVE_INFINITY,
    (row) => Buffer.byteLength(row.json) + Buffer.byteLength(row.csv) + 1,
    budget - overhead,
  );
  if (chunks.length === 0) chunks.push([]);
  return chunks.map((chunk, i) => {
    const essays = `[${chunk.map((x) => x.json).join(',')}]`;
    const csv = chunk.map((x) => x.csv).join('');
    if (i > 0)
      return { suffix: `-${i + 1}`, data: { 'results.json': `{"essays":${essays}}`, 'results.csv': csv } };
    return {
      suffix: '',
      data: {
        'results.json': `{"essays":${essays},"gradeDistribution":${distribution}}`,
        'results.csv': header + csv,
        ...(chunks.length > 1 ? { parts: String(chunks.length) } : {}),
      },
    };
  });
}

/** The whole results from the parts' data, first part first (the inverse of resultsConfigMaps). */
export function joinResultsParts(parts: Record<string, string>[]): { json: BatchResults; csv: string } {
  const first = JSON.parse(
    parts[0]?.['results.json'] ?? '{"essays":[],"gradeDistribution":[]}',
  ) as BatchResults;
  const essays = [...first.essays];
  for (const p of parts.slice(1))
    essays.push(...(JSON.parse(p['results.json'] ?? '{"essays":[]}') as BatchResults).essays);
  return {
    json: { essays, gradeDistribution: first.gradeDistribution },
    csv: parts.map((p) => p['results.csv'] ?? '').join(''),
  };
}
