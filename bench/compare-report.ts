// `--compare <rev>`: the figures of the baseline operator (<rev>) and the current tree's operator,
// measured in the same run, side by side with their ratio.
import { COMPARED, type Figures, type OperatorSections } from "./figures.js";
import type { Phases } from "./measure.js";

export interface CompareResults {
  /** The revision as given, its commit and short hash. */
  rev: string;
  commit: string;
  short: string;
  order: string;
  baseline: Figures;
  current: Figures;
  /** current / baseline of each figure. */
  ratios: Figures;
  /** The baseline operator's full sections and phases, as the current operator's are reported. */
  baselineDetail: OperatorSections & { namespace: string; phases: Phases; operatorLog: string };
}

const show = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "n/a" : String(x));

/** Marks a ratio that is worse for the current operator by more than 10 %. */
function verdict(ratio: number, better: "lower" | "higher"): string {
  if (Number.isNaN(ratio)) return "";
  const worse = better === "lower" ? ratio > 1.1 : ratio < 1 / 1.1;
  return worse ? "  <- current worse by >10%" : "";
}

export function printComparison(c: CompareResults): void {
  console.log(
    `\nCompared with the operator of ${c.rev} (${c.short}), in this run: ${c.order}.\n` +
      `ratio = current / baseline: above 1 means slower or more for every figure except map calls/s, ` +
      `where below 1 means slower.\n`,
  );
  const rows = [
    ["figure", `baseline (${c.short})`, "current", "ratio current/baseline"],
    ...COMPARED.map((f) => [f.label, show(c.baseline[f.key]), show(c.current[f.key]), show(c.ratios[f.key])]),
  ];
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  rows.forEach((row, i) => {
    const f = COMPARED[i - 1];
    const mark = f && f.flag !== false ? verdict(c.ratios[f.key] ?? NaN, f.better) : "";
    console.log(`${row[0]!.padEnd(w[0]!)}  ${row[1]!.padEnd(w[1]!)}  ${row[2]!.padEnd(w[2]!)}  ${row[3]}${mark}`);
  });
  const invalid = Object.entries(c.baselineDetail.phases).filter(([, p]) => p.otherOperators.length > 0);
  if (invalid.length > 0)
    console.log(
      `\nWARNING: other operators ran during the baseline's phases ${invalid.map(([n]) => n).join(", ")}: ` +
        `those baseline figures are not valid.`,
    );
  console.log(`baseline operator log: ${c.baselineDetail.operatorLog}`);
}
