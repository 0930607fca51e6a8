/**
 * `runtime score`: the scoring Job of one round. Env and exit codes: the Job contract
 * (contract/src/job.ts) — 0 scored (or already scored), `badInput`, 1 unexpected.
 */
import { EXIT, JobInputError, readScoreEnv } from '../../../contract/src/job.js';
import { BadInput, scoreRound } from '../scoring/score-round.js';
import { connect } from '../store/index.js';

export async function main(_argv: string[]): Promise<number> {
  let env: ReturnType<typeof readScoreEnv>;
  try {
    env = readScoreEnv(process.env);
  } catch (err) {
    if (!(err instanceof JobInputError)) throw err;
    console.error(`score: ${err.message}`);
    return EXIT.badInput;
  }
  const { batchUid: uid, round } = env;
  const sql = connect(undefined, 2);
  try {
    const t0 = Date.now();
    const summary = await scoreRound(sql, uid, round);
    const line = JSON.stringify({ msg: 'round scored', uid, ...summary, ms: Date.now() - t0 });
    console.log(line);
    return EXIT.done;
  } catch (err) {
    if (err instanceof BadInput) {
      console.error(`score: ${err.message}`);
      return EXIT.badInput;
    }
    throw err;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
