// Finding secrets and essay text in logs: every log file of the local stack (control plane,
// kubelet, Postgres, Kafka, operator processes, every pod's container logs), not its data
// directories (etcd, pgdata, Kafka segments and pod volumes hold data by design).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Folders under the stack directory that hold data, not logs. */
const DATA_DIRS = [/\/cluster\/etcd$/, /\/postgres\/pgdata$/, /\/kafka\/logs$/, /\/volumes$/, /\/pki$/];

/** Every `*.log` and `*.termination-log` file under `dir` (recursively), data folders skipped. */
export function logFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return; // removed while walking (another test's pod)
    }
    for (const e of entries) {
      const p = path.join(d, e);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (!DATA_DIRS.some((re) => re.test(p))) walk(p);
      } else if (/\.(log|termination-log)$/.test(e)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export interface Hit {
  file: string;
  needle: string;
  offset: number;
  context: string;
}

/** Occurrences of any needle in any file (first per file and needle), with a little context. */
export function scan(files: readonly string[], needles: readonly string[]): Hit[] {
  const hits: Hit[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1'); // byte-exact for ASCII needles; never throws on binary
    } catch {
      continue;
    }
    for (const needle of needles) {
      const bytes = Buffer.from(needle, 'utf8').toString('latin1');
      const at = text.indexOf(bytes);
      if (at >= 0)
        hits.push({ file, needle, offset: at, context: text.slice(Math.max(0, at - 80), at + 80) });
    }
  }
  return hits;
}

export const describeHits = (hits: readonly Hit[]) =>
  hits.map((h) => `${h.file}@${h.offset}: ${JSON.stringify(h.needle.slice(0, 24))} in …${h.context}…`);
