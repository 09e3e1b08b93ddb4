import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Two cores: two test files at a time.
    maxWorkers: 2,
    // The integration run's teardown stops its servers (each may take up to 20 s to exit on a
    // loaded machine); vitest's default of 10 s would leave them running.
    teardownTimeout: 120_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One set of real servers (Temporal, ClickHouse, PostgreSQL) for all integration files;
          // each may take OPTIINFRA_STARTUP_TIMEOUT seconds (default 180) to start.
          globalSetup: ['test/helpers/global-setup.ts'],
          // Sized for a 2-core machine also running a second suite: the slowest tests take about
          // 2 minutes there (half that on an idle machine).
          testTimeout: 240_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
