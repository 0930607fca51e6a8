/**
 * What every bench/cj script reads from its command line and its files: one definition of each.
 */
import { readFileSync } from 'node:fs';

/** The value after `name` on the command line (`--seeds 101-130` → '101-130'), if given. */
export const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

/** The records of one or more JSON-lines files (`files`: paths joined with commas), in order. */
export function readJsonl<T>(files: string): T[] {
  return files
    .split(',')
    .flatMap((file) => readFileSync(file, 'utf8').split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}
