import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/global-db.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start servers and child processes; two cores do not gain from more.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
