// The estimate kept in status.estimate: made once, when the batch's essays are loaded, from the
// texts that were loaded and the pool it starts on, so it sits beside the actuals unchanged.
import { roundsModeOfConfig } from '../../../../runtime/src/store/batch-config.js';
import type { BatchRegistration } from '../../../../runtime/src/store/batches.js';
import {
  type CJBatch,
  type CJBatchStatus,
  estimateForBatch,
  type LLMProviderPool,
  statusEstimate,
} from '../../api/index.js';

export function startEstimate(
  batch: CJBatch,
  reg: BatchRegistration,
  pool: LLMProviderPool,
): CJBatchStatus['estimate'] {
  const assignment = reg.config.assignment as { title: string; instructions: string; rubric: string };
  try {
    return statusEstimate(
      estimateForBatch(
        batch.spec,
        { essays: reg.essays.map((e) => e.text), anchors: reg.anchors.map((a) => a.text), assignment },
        pool.spec,
        { roundsMode: roundsModeOfConfig(reg.config) },
      ),
    );
  } catch {
    // A pool the runtime cannot resolve fails the batch elsewhere with its reason; no estimate.
    return undefined;
  }
}
