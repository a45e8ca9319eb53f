import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "dist/",
      "**/dist/",
      ".tools/",
      "crds/",
      "charts/",
      "runtime-image/python/",
      "bench/results/",
      // Bench and test output (the bench writes its operator bundle there).
      ".test-results/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
    },
  },
  {
    // Size and branching limits for source files: a file past 400 lines holds more than one idea,
    // a function past complexity 15 has more paths than its tests cover.
    rules: {
      "max-lines": ["error", { max: 400, skipBlankLines: true, skipComments: true }],
      complexity: ["error", 15],
    },
  },
  {
    // Tests and benchmarks are flat lists of scenarios: their length is the number of cases and their
    // branching is setup and assertions, not logic to cover. They get more room and no complexity limit.
    files: ["**/*.test.ts", "**/*.testlib.ts", "**/*.bench.ts", "test/**", "bench/**"],
    rules: {
      "max-lines": ["error", { max: 600, skipBlankLines: true, skipComments: true }],
      complexity: "off",
    },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { module: "writable", require: "readonly" } },
  },
);
