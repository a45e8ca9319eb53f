// The chart's PrometheusRule: its rule groups pass `promtool check rules` (Prometheus from
// Debian), and `promtool test rules` shows the stuck-calls and operator-down alerts fire on
// synthetic series and stay quiet on healthy ones.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { render } from "../support/helm.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "trellis-rules-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function promtool(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run("promtool", args, { cwd: dir });
    return stdout + stderr;
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (err.code === "ENOENT")
      throw new Error("promtool is not installed: run scripts/cluster/deps.sh (Debian package prometheus)", {
        cause: e,
      });
    throw new Error(`promtool ${args.join(" ")} failed: ${err.stdout ?? ""}${err.stderr ?? err.message}`, { cause: e });
  }
}

async function rulesFile(): Promise<string> {
  const { objects } = await render({ "monitoring.prometheusRule.enabled": true }, "trellis-system", "trellis");
  const rule = objects.find((o) => o.kind === "PrometheusRule") as unknown as { spec: { groups: unknown[] } };
  const path = join(dir, "rules.yaml");
  writeFileSync(path, stringify({ groups: rule.spec.groups }));
  return path;
}

describe("PrometheusRule", () => {
  it("passes promtool check rules", async () => {
    const out = await promtool(["check", "rules", await rulesFile()]);
    expect(out).toMatch(/SUCCESS: 5 rules found/);
  });

  it("fires the stuck-calls and operator-down alerts on synthetic series, and only then", async () => {
    await rulesFile();
    const job = 'job="trellis"';
    const test = {
      rule_files: ["rules.yaml"],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          input_series: [
            // f has a call running for 40 minutes and none finishes; g finishes one every minute.
            {
              series: `trellis_function_calls{${job},namespace="ns",application="app",function="f",phase="Running"}`,
              values: "1x40",
            },
            {
              series: `trellis_function_calls_total{${job},namespace="ns",application="app",function="f",phase="Succeeded"}`,
              values: "3x40",
            },
            {
              series: `trellis_function_calls{${job},namespace="ns",application="app",function="g",phase="Running"}`,
              values: "1x40",
            },
            {
              series: `trellis_function_calls_total{${job},namespace="ns",application="app",function="g",phase="Succeeded"}`,
              values: "0+1x40",
            },
            // The operator is up and leading for 10 minutes, then gone.
            { series: `up{${job}}`, values: "1x10 0x30" },
            { series: `trellis_leader{${job}}`, values: "1x10 _x30" },
          ],
          alert_rule_test: [
            {
              eval_time: "35m",
              alertname: "TrellisStuckCalls",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", namespace: "ns", application: "app", function: "f" },
                  exp_annotations: {
                    summary: "Trellis calls are stuck",
                    description: "ns/app function f has calls in flight and none finished for 15 minutes.",
                  },
                },
              ],
            },
            { eval_time: "5m", alertname: "TrellisOperatorDown", exp_alerts: [] },
            {
              eval_time: "20m",
              alertname: "TrellisOperatorDown",
              exp_alerts: [
                {
                  exp_labels: { severity: "critical" },
                  exp_annotations: {
                    summary: "No Trellis operator is leading",
                    description:
                      "No replica of trellis-system/trellis is up and holding the leader Lease for 5 minutes: function calls are not scheduled.",
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    writeFileSync(join(dir, "test.yaml"), stringify(test));
    const out = await promtool(["test", "rules", "test.yaml"]);
    expect(out).toMatch(/SUCCESS/);
  });
});
