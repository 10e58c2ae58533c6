// Test runner configuration: every suite runs on loopback only, in forked workers.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ first when any file in src/ is newer, so a worker never runs stale code.
    globalSetup: ['./test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
