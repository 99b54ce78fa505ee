/** Medians and p99 from one run, and the table `npm run bench` prints. */
export interface BenchResult {
  name: string;
  unit: string;
  samples: number;
  median: number;
  p90: number;
  p99: number;
  /** Goals, each checked against the statistic it names. */
  goal?: { median?: number; p90?: number; p99?: number };
  note?: string;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index]!;
}

export function summarize(name: string, unit: string, values: readonly number[], goal?: BenchResult['goal'], note?: string): BenchResult {
  const sorted = [...values].sort((a, b) => a - b);
  return { name, unit, samples: sorted.length, median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99), goal, note };
}

export function meetsGoal(result: BenchResult): boolean {
  if (!result.goal) return true;
  if (result.goal.median !== undefined && !(result.median < result.goal.median)) return false;
  if (result.goal.p90 !== undefined && !(result.p90 < result.goal.p90)) return false;
  if (result.goal.p99 !== undefined && !(result.p99 < result.goal.p99)) return false;
  return true;
}

export function formatTable(results: readonly BenchResult[]): string {
  const fmt = (v: number) => (Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3));
  const rows = results.map((r) => {
    const goal = r.goal
      ? [r.goal.median !== undefined ? `median<${r.goal.median}` : '', r.goal.p90 !== undefined ? `p90<${r.goal.p90}` : '', r.goal.p99 !== undefined ? `p99<${r.goal.p99}` : '']
          .filter(Boolean)
          .join(' ')
      : '';
    const cell = (v: number) => (Number.isNaN(v) ? '-' : `${fmt(v)} ${r.unit}`);
    return [r.name, cell(r.median), cell(r.p90), cell(r.p99), String(r.samples), goal, r.goal ? (meetsGoal(r) ? 'ok' : 'MISSED') : ''];
  });
  const header = ['benchmark', 'median', 'p90', 'p99', 'n', 'goal', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
