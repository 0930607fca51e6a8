/**
 * `runtime score`: the scoring Job of one round. Env: DATABASE_URL, BATCH_UID, ROUND.
 * Exit codes: 0 scored (or already scored), 4 bad input, 1 unexpected.
 */
import { BadInput, scoreRound } from '../scoring/score-round.js';
import { connect } from '../store/db.js';

export async function main(_argv: string[]): Promise<number> {
  const uid = process.env.BATCH_UID;
  const round = Number(process.env.ROUND);
  if (!uid || !Number.isInteger(round) || round < 0) {
    console.error('score: BATCH_UID and ROUND (an integer >= 0) must be set');
    return 4;
  }
  const sql = connect(undefined, 2);
  try {
    const t0 = Date.now();
    const summary = await scoreRound(sql, uid, round);
    const line = JSON.stringify({ msg: 'round scored', uid, ...summary, ms: Date.now() - t0 });
    console.log(line);
    return 0;
  } catch (err) {
    if (err instanceof BadInput) {
      console.error(`score: ${err.message}`);
      return 4;
    }
    throw err;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
