// Starts one local stack per integration run (or reuses `npm run dev:up`'s), provides its
// coordinates to the tests, and tears it down afterwards. A component that cannot start fails
// the run with its log tail: nothing is skipped.
import type { TestProject } from 'vitest/node';
import { readStack, type StackInfo, startStack, stopStack } from '../../hack/stack.js';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

export default async function setup(project: TestProject) {
  const reuse = process.env.CJ_REUSE_DEV !== '0' ? readStack('dev') : undefined;
  const name = `test-${process.pid}`;
  const stack = reuse ?? (await startStack(name));
  process.stderr.write(
    reuse
      ? `[stack] reusing the running dev stack (${stack.server})\n`
      : `[stack] started in ${stack.timings.total}s: ${JSON.stringify(stack.timings)}\n`,
  );
  project.provide('stack', stack);
  return async () => {
    if (!reuse) await stopStack(name);
  };
}
