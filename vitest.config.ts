import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // onnxruntime-node fails under the vmThreads pool; forks isolates native state per file.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'default', include: ['tests/**/*.test.ts'] } },
      {
        // Every lifecycle test (swaps under load, leases, retained window, rollback, restarts), and
        // the conformance and V2 tests (every element type, binary tensors), again with each
        // model's sessions in inference workers.
        extends: true,
        test: {
          name: 'workers',
          include: [
            'tests/lifecycle/**/*.test.ts',
            'tests/conformance.test.ts',
            'tests/v2/**/*.test.ts',
          ],
          env: { MODELGATE_EXECUTION: 'workers' },
        },
      },
    ],
  },
})
