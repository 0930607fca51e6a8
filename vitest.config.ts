import { defineConfig } from 'vitest/config';

// Three tiers. `unit` is pure and fast. `integration` runs against the real local stack
// (kube-apiserver, kube-controller-manager, etcd, process kubelet, Postgres, Kafka) that
// test/integration/global-setup.ts starts once per run, or reuses when `npm run dev:up` is running.
// `e2e` runs on the kind cluster `npm run e2e:kind` creates (hack/kind/e2e.sh): the real image on a
// real node; run alone, it fails naming that command. `live` calls the real Anthropic API
// (`npm run test:live`, needs ANTHROPIC_API_KEY; not part of `npm test`).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'live',
          include: ['test/live/**/*.test.ts'],
          testTimeout: 120_000,
        },
      },
    ],
  },
});
