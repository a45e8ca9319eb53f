// Sums the suites' reports into the one closing line CI reads: "N passed, N failed", after the
// names of the tests that failed and the first line of why (CI keeps only the end of the output).
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const dir = process.argv[2] ?? ".test-results";
let passed = 0;
let failed = 0;
const rows = [];
const failures = [];
const firstLine = (text) =>
  String(text ?? "")
    .trim()
    .split("\n")[0]
    .slice(0, 300);
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
    for (const t of r.testResults ?? []) {
      const failedHere = (t.assertionResults ?? []).filter((a) => a.status === "failed");
      for (const a of failedHere)
        failures.push(`${file}: ${basename(t.name)} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
      if (t.status === "failed" && !failedHere.length) failures.push(`${file}: ${t.name}: ${firstLine(t.message)}`);
    }
  } else if (file.endsWith(".xml")) {
    // pytest junit: <testsuite ... errors="0" failures="0" skipped="0" tests="N">
    for (const m of text.matchAll(/<testsuite\b([^>]*)>/g)) {
      const attr = (k) => Number((m[1].match(new RegExp(`\\b${k}="(\\d+)"`)) ?? [])[1] ?? 0);
      f += attr("failures") + attr("errors");
      p += attr("tests") - attr("failures") - attr("errors") - attr("skipped");
    }
    for (const m of text.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
      const why = (m[2] ?? "").match(/<(failure|error)\b[^>]*?message="([^"]*)"/);
      if (why) failures.push(`${file}: ${(m[1].match(/\bname="([^"]*)"/) ?? [])[1]}: ${firstLine(why[2])}`);
    }
  } else if (file.endsWith(".jsonl")) {
    for (const line of text.split("\n").filter(Boolean)) {
      const r = JSON.parse(line);
      p += r.passed;
      f += r.failed;
      if (r.failed) failures.push(`${file}: ${r.name}`);
    }
  }
  rows.push(`${file.padEnd(20)} ${p} passed, ${f} failed`);
  passed += p;
  failed += f;
}
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join("\n")}`);
console.log(`\n${rows.join("\n")}`);
const line = `${passed} passed, ${failed} failed`;
writeFileSync(join(dir, "summary.txt"), `${line}\n`);
console.log(line);
process.exit(failed > 0 ? 1 : 0);
