// --output: a table for people, JSON or YAML for scripts. The documents are the objects as the
// API server has them (or, for lists, a v1 List), so `kubectl apply -f -` takes what deploy prints.
import { stringify } from "yaml";
import { CliError } from "./cluster.js";

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** --output / -o: one of the formats the command prints (table is the default where there is one). */
export function outputFormat(value: string | undefined, allowed: readonly OutputFormat[]): OutputFormat {
  if (value === undefined) return allowed[0]!;
  if ((allowed as readonly string[]).includes(value)) return value as OutputFormat;
  throw new CliError(`--output ${JSON.stringify(value)}: must be one of ${allowed.join(", ")}`);
}

export function formatDocument(doc: unknown, format: OutputFormat): string {
  if (format === "yaml") return stringify(doc, { lineWidth: 0 });
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Human duration: 850ms, 12.3s, 4m5s, 2h3m, 3d4h. */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/** kubectl's AGE column: the largest unit or two. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}`;
  if (s < 3 * 3600) return `${Math.floor(s / 60)}m`;
  if (s < 8 * 3600)
    return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ""}`;
  if (s < 2 * 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
