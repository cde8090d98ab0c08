import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // onnxruntime-node fails under the vmThreads pool; forks isolates native state per file.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
