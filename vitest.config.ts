import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "protocol/**/*.test.ts",
            "operator/**/*.test.ts",
            "runtime-image/sidecar/**/*.test.ts",
            "test/unit/**/*.test.ts",
            "test/hostile/**/*.test.ts",
          ],
          // The corpus cases that need the API server's admission run with the integration suite.
          exclude: ["**/node_modules/**", "**/dist/**", "test/hostile/**/*.integration.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/hostile/**/*.integration.test.ts"],
          environment: "node",
          // One real cluster is shared: files run one after another.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          // Needs the three-node local cluster (TRELLIS_NODES=3): scripts/test.sh runs it last.
          name: "multinode",
          include: ["test/multinode/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 400_000,
        },
      },
    ],
  },
});
