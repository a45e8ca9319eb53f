// Sums the suites' reports into the one closing line CI reads: "N passed, N failed".
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? ".test-results";
let passed = 0;
let failed = 0;
const rows = [];
for (const file of existsSync(dir) ? readdirSync(dir).sort() : []) {
  // Only the suites' reports count (operator logs and such live in subfolders).
  if (!/\.(json|xml|jsonl)$/.test(file) || !statSync(join(dir, file)).isFile()) continue;
  const text = readFileSync(join(dir, file), "utf8");
  let p = 0;
  let f = 0;
  if (file.endsWith(".json")) {
    const r = JSON.parse(text);
    p = r.numPassedTests ?? 0;
    // A file that fails to load fails no test but fails the run: count it once.
    f = (r.numFailedTests ?? 0) + (r.success === false && !r.numFailedTests ? 1 : 0);
  } else if (file.endsWith(".xml")) {
    // pytest junit: <testsuite ... errors="0" failures="0" skipped="0" tests="N">
    for (const m of text.matchAll(/<testsuite\b([^>]*)>/g)) {
      const attr = (k) => Number((m[1].match(new RegExp(`\\b${k}="(\\d+)"`)) ?? [])[1] ?? 0);
      f += attr("failures") + attr("errors");
      p += attr("tests") - attr("failures") - attr("errors") - attr("skipped");
    }
  } else if (file.endsWith(".jsonl")) {
    for (const line of text.split("\n").filter(Boolean)) {
      const r = JSON.parse(line);
      p += r.passed;
      f += r.failed;
    }
  }
  rows.push(`${file.padEnd(20)} ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}
console.log(`\n${rows.join("\n")}`);
const line = `${passed} passed, ${failed} failed`;
writeFileSync(join(dir, "summary.txt"), `${line}\n`);
console.log(line);
process.exit(failed > 0 ? 1 : 0);
