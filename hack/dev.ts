// `npm run dev:up` / `npm run dev:down`: the local stack for humans.
import { readStack, startStack, stopStack } from './stack.js';

const cmd = process.argv[2];
if (cmd === 'up') {
  const already = readStack('dev');
  const s = await startStack('dev');
  console.log(already ? 'The dev stack is already running.' : `The dev stack is up (${s.timings.total}s).`);
  console.log(`
  export KUBECONFIG=${s.kubeconfig}
  export DATABASE_URL=${s.postgresUrl}
  export KAFKA_BROKERS=${s.kafkaBrokers}

  kubectl get nodes        # the process kubelet's node
  Logs: ${s.dir}/*.log, pod output in ${s.dir}/kubelet/pods/
  Stop: npm run dev:down`);
} else if (cmd === 'down') {
  console.log((await stopStack('dev')) ? 'The dev stack is stopped.' : 'No dev stack was running.');
} else {
  console.error('usage: dev.ts up|down');
  process.exit(2);
}
