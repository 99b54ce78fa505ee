import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The second prints the robustness suites' one summary when the run ends.
    globalSetup: ['test/helpers/global-setup.ts', 'test/robustness/summary-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two build-machine cores: files run in parallel, but not more than the machine can hold.
    maxWorkers: 2,
    // The JSON report gives .ci/run its "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
