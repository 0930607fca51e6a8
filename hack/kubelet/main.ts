// Entry point of the process kubelet: `node dist/hack/kubelet/main.js <config.json>`.
import { readFileSync } from 'node:fs';
import { type KubeletOptions, ProcessKubelet } from './kubelet.js';

const opts = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as KubeletOptions;
const kubelet = new ProcessKubelet(opts);
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    void kubelet.stop().finally(() => process.exit(0));
  });
}
kubelet.start().catch((err) => {
  console.error(err);
  process.exit(1);
});
