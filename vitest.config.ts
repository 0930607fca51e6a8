import { defineConfig } from 'vitest/config';

// Two tiers. `unit` is pure and fast. `integration` runs against the real local stack
// (kube-apiserver, kube-controller-manager, etcd, process kubelet, Postgres, Kafka) that
// test/integration/global-setup.ts starts once per run, or reuses when `npm run dev:up` is running.
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
    ],
  },
});
