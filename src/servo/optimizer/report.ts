/**
 * The study report: every trial with its settings, metrics, objective and feasibility, the best
 * trial, and plots (objective per trial with the best so far, and each setting against the
 * objective) as inline SVG in one self-contained HTML page, plus the same data as JSON.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SettingValues } from "../protocol.js";
import { optimizerConfigSchema, type OptimizerConfig } from "./config.js";
import { OptimizerError } from "./errors.js";
import { bestTrial, evaluateTrials, stopReason } from "./history.js";
import { compileObjective } from "./objective.js";
import { TrialStore, type Study, type Trial, type TrialStatus } from "./store.js";

/** ReportTrial is one trial as reported. */
export interface ReportTrial {
  number: number;
  values: SettingValues;
  status: TrialStatus;
  reason?: string;
  metrics: Record<string, number>;
  objective?: number;
  feasible: boolean;
  violated: string[];
  /** bestSoFar is the best feasible objective up to and including this trial. */
  bestSoFar?: number;
  error?: string;
}

/** StudyReport is the JSON report. */
export interface StudyReport {
  study: string;
  generatedAt: string;
  objective: string;
  direction: "maximize" | "minimize";
  constraints: string[];
  trials: ReportTrial[];
  best?: ReportTrial;
  /** done says why the study is over; absent while it runs. */
  done?: string;
}

function studyConfig(study: Study): OptimizerConfig {
  const parsed = optimizerConfigSchema.safeParse(study.config);
  if (!parsed.success) {
    throw new OptimizerError("store", `study ${study.name}: its stored configuration is not readable`);
  }
  return parsed.data;
}

/** buildReport scores a study's trials with the study's objective. Pure apart from `now`. */
export function buildReport(study: Study, trials: readonly Trial[], now: Date): StudyReport {
  const config = studyConfig(study);
  const objective = compileObjective(config);
  const evaluations = evaluateTrials(objective, trials);
  let best: number | undefined;
  const reported = trials.map((t, i): ReportTrial => {
    const e = evaluations[i] ?? { objective: undefined, score: undefined, feasible: false, violated: [] };
    if (e.feasible && e.objective !== undefined) {
      const better =
        config.direction === "maximize"
          ? e.objective > (best ?? -Infinity)
          : e.objective < (best ?? Infinity);
      if (better) best = e.objective;
    }
    const r: ReportTrial = {
      number: t.number,
      values: t.values,
      status: t.status,
      metrics: t.metrics,
      feasible: e.feasible,
      violated: e.violated,
    };
    if (t.reason !== undefined) r.reason = t.reason;
    if (e.objective !== undefined) r.objective = e.objective;
    if (best !== undefined) r.bestSoFar = best;
    if (e.error !== undefined && t.status === "ok") r.error = e.error;
    return r;
  });
  const report: StudyReport = {
    study: study.name,
    generatedAt: now.toISOString(),
    objective: config.objective,
    direction: config.direction,
    constraints: config.constraints.map((c) =>
      "name" in c && c.name ? `${c.name}: ${c.expression}` : c.expression,
    ),
    trials: reported,
  };
  const b = bestTrial(evaluations);
  if (b !== undefined && reported[b]) report.best = reported[b];
  const done = stopReason(config, trials, evaluations);
  if (done !== undefined) report.done = done;
  return report;
}

// ---------------------------------------------------------------------------------------------
// SVG

interface PlotPoint {
  x: number;
  y: number;
  kind: "feasible" | "infeasible" | "best";
  label: string;
}

interface Plot {
  title: string;
  xLabel: string;
  points: PlotPoint[];
  line?: { x: number; y: number }[];
  /** categories label integer x positions (enum settings). */
  categories?: string[];
  /** integerX: x is a count (trial numbers), so its ticks are whole numbers. */
  integerX?: boolean;
}

const W = 520;
const H = 260;
const PAD = { left: 64, right: 16, top: 28, bottom: 40 };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(n: number): string {
  return Math.abs(n) >= 1000 || (Math.abs(n) < 0.01 && n !== 0)
    ? n.toPrecision(3)
    : String(Number(n.toPrecision(4)));
}

function extent(values: number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo === hi) return [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/**
 * niceTicks returns the ticks inside [lo, hi] at a step of 1, 2 or 5 times a power of ten (at
 * least 1 when `integer`) whose number comes closest to `count` (the fewer on a tie), each
 * rounded to the step's precision so that 0.1 * 3 prints 0.3.
 */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return [lo];
  const power = 10 ** Math.floor(Math.log10((hi - lo) / Math.max(1, count - 1)));
  const within = (step: number): [number, number] => [
    Math.ceil(lo / step - 1e-9),
    Math.floor(hi / step + 1e-9),
  ];
  let best = { step: Number.NaN, n: 0 };
  for (const m of [10, 5, 2, 1]) {
    const step = integer ? Math.max(1, m * power) : m * power;
    const [first, last] = within(step);
    const n = last - first + 1;
    if (Number.isNaN(best.step) || Math.abs(n - count) < Math.abs(best.n - count)) best = { step, n };
  }
  const { step } = best;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const [first, last] = within(step);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toFixed(decimals)));
  return ticks;
}

/** renderPlot draws a scatter (with an optional step line) as an SVG element. */
export function renderPlot(plot: Plot): string {
  if (plot.points.length === 0)
    return `<p class="empty">${escapeHtml(plot.title)}: no scored trials yet.</p>`;
  const [x0, x1] = plot.categories
    ? [-0.5, plot.categories.length - 0.5]
    : extent(plot.points.map((p) => p.x));
  const [y0, y1] = extent([...plot.points.map((p) => p.y), ...(plot.line ?? []).map((p) => p.y)]);
  const sx = (x: number): number => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y: number): number => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [];
  parts.push(
    `<rect x="${PAD.left}" y="${PAD.top}" width="${W - PAD.left - PAD.right}" height="${H - PAD.top - PAD.bottom}" class="frame"/>`,
  );
  for (const y of niceTicks(y0, y1)) {
    const at = sy(y).toFixed(1);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${at}" y2="${at}" class="grid"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  const xticks = plot.categories
    ? plot.categories.map((c, i) => ({ x: i, label: c }))
    : niceTicks(x0, x1, 6, plot.integerX === true).map((x) => ({ x, label: fmt(x) }));
  for (const t of xticks) {
    const at = sx(t.x).toFixed(1);
    parts.push(`<line x1="${at}" x2="${at}" y1="${PAD.top}" y2="${H - PAD.bottom}" class="grid"/>`);
    parts.push(
      `<text x="${at}" y="${H - PAD.bottom + 16}" text-anchor="middle">${escapeHtml(t.label)}</text>`,
    );
  }
  if (plot.line && plot.line.length > 0) {
    const d = plot.line
      .map((p, i) => `${i === 0 ? "M" : "L"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`)
      .join(" ");
    parts.push(`<path d="${d}" class="best-line"/>`);
  }
  for (const p of plot.points) {
    parts.push(
      `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="${p.kind === "best" ? 6 : 4}" class="${p.kind}"><title>${escapeHtml(p.label)}</title></circle>`,
    );
  }
  parts.push(
    `<text x="${W / 2}" y="${H - 6}" text-anchor="middle" class="axis">${escapeHtml(plot.xLabel)}</text>`,
  );
  parts.push(`<text x="${PAD.left}" y="18" class="title">${escapeHtml(plot.title)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img">${parts.join("")}</svg>`;
}

function kindOf(t: ReportTrial, best: ReportTrial | undefined): PlotPoint["kind"] {
  if (best && t.number === best.number) return "best";
  return t.feasible ? "feasible" : "infeasible";
}

/** settingNames lists component/setting pairs that vary across trials. */
function settingNames(trials: readonly ReportTrial[]): [string, string][] {
  const seen = new Map<string, { c: string; s: string; values: Set<string> }>();
  for (const t of trials) {
    for (const [c, settings] of Object.entries(t.values)) {
      for (const [s, v] of Object.entries(settings)) {
        const key = `${c}\u0000${s}`;
        const entry = seen.get(key) ?? { c, s, values: new Set<string>() };
        entry.values.add(String(v));
        seen.set(key, entry);
      }
    }
  }
  return [...seen.values()].filter((e) => e.values.size > 1).map((e) => [e.c, e.s]);
}

function settingPlot(report: StudyReport, component: string, setting: string, multi: boolean): string {
  const scored = report.trials.filter((t) => t.objective !== undefined);
  const raw = scored.map((t) => t.values[component]?.[setting]);
  const numeric = raw.every((v) => typeof v === "number");
  const categories = numeric ? undefined : [...new Set(raw.map(String))];
  const points = scored.map((t, i) => ({
    x: numeric ? Number(raw[i]) : (categories ?? []).indexOf(String(raw[i])),
    y: t.objective ?? 0,
    kind: kindOf(t, report.best),
    label: `trial ${t.number}: ${setting}=${String(raw[i])}, objective ${fmt(t.objective ?? 0)}`,
  }));
  const name = multi ? `${component}.${setting}` : setting;
  const plot: Plot = { title: `${name} vs objective`, xLabel: name, points };
  if (categories) plot.categories = categories;
  return renderPlot(plot);
}

/** renderHtml renders a report as one self-contained page. */
export function renderHtml(report: StudyReport): string {
  const scored = report.trials.filter((t) => t.objective !== undefined);
  const trialPlot = renderPlot({
    title: `objective per trial (${report.direction}); line: best feasible so far`,
    xLabel: "trial",
    integerX: true,
    points: scored.map((t) => ({
      x: t.number,
      y: t.objective ?? 0,
      kind: kindOf(t, report.best),
      label: `trial ${t.number}: ${fmt(t.objective ?? 0)}`,
    })),
    line: report.trials.flatMap((t) => (t.bestSoFar === undefined ? [] : [{ x: t.number, y: t.bestSoFar }])),
  });
  const names = settingNames(report.trials);
  const multi = new Set(names.map(([c]) => c)).size > 1;
  const settingPlots = names.map(([c, s]) => settingPlot(report, c, s, multi)).join("\n");
  const metricNames = [...new Set(report.trials.flatMap((t) => Object.keys(t.metrics)))];
  const columns = names.map(([c, s]) => (multi ? `${c}.${s}` : s));
  const rows = report.trials.map((t) => {
    const cells = [
      String(t.number),
      ...names.map(([c, s]) => String(t.values[c]?.[s] ?? "")),
      ...metricNames.map((m) => (t.metrics[m] === undefined ? "" : fmt(t.metrics[m] ?? 0))),
      t.objective === undefined ? "" : fmt(t.objective),
      t.status !== "ok"
        ? `${t.status}${t.reason ? ` (${t.reason})` : ""}`
        : t.feasible
          ? "feasible"
          : `violates ${t.violated.join(", ")}`,
    ];
    const cls = report.best?.number === t.number ? ' class="best"' : "";
    return `<tr${cls}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`;
  });
  const best = report.best
    ? `Best: trial ${report.best.number}, objective ${fmt(report.best.objective ?? 0)}, settings <code>${escapeHtml(JSON.stringify(report.best.values))}</code>.`
    : "No feasible trial yet.";
  const header = ["#", ...columns, ...metricNames, "objective", "status"]
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kubewise study ${escapeHtml(report.study)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
svg{margin:8px 16px 8px 0;background:#fff}
svg text{font-size:11px;fill:#444} svg .title{font-size:13px;fill:#222} svg .axis{font-size:12px}
.frame{fill:none;stroke:#ccc} .grid{stroke:#eee} .best-line{fill:none;stroke:#2a9d3a;stroke-width:2}
.feasible{fill:#2f6fdf;opacity:.8} .infeasible{fill:none;stroke:#d33;stroke-width:1.5} .best{fill:#2a9d3a;stroke:#111}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
tr.best td{background:#e6f6e8;font-weight:600} code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>Study ${escapeHtml(report.study)}</h1>
<p>Objective (${report.direction}): <code>${escapeHtml(report.objective)}</code>${
    report.constraints.length > 0
      ? `; constraints: ${report.constraints.map((c) => `<code>${escapeHtml(c)}</code>`).join(", ")}`
      : ""
  }.</p>
<p>${report.trials.length} trials. ${best} ${report.done ? `Finished: ${escapeHtml(report.done)}.` : "Still running."}</p>
<p>Blue: feasible; hollow red: broke a constraint; green: best. Failed trials have no objective and are only in the table.</p>
<div>${trialPlot}</div>
<div>${settingPlots}</div>
<h2>Trials</h2>
<table><thead><tr>${header}</tr></thead><tbody>
${rows.join("\n")}
</tbody></table>
<p><small>Generated ${escapeHtml(report.generatedAt)} by kubewise.</small></p>
</body></html>
`;
}

/** ReportFiles are the files writeReport wrote. */
export interface ReportFiles {
  html: string;
  json: string;
  report: StudyReport;
}

/**
 * writeReport reads a study from the database at `db` and writes `<study>.html` and
 * `<study>.json` into `outDir`. With no study named, the database must hold exactly one.
 */
export function writeReport(options: {
  db: string;
  outDir: string;
  study?: string;
  now?: Date;
}): ReportFiles {
  const store = TrialStore.open(options.db, { mustExist: true });
  try {
    const names = store.studies();
    const name = options.study ?? (names.length === 1 ? names[0] : undefined);
    if (name === undefined) {
      const known = names.length === 0 ? "it has none" : `it has ${names.join(", ")}`;
      throw new OptimizerError(
        "no-study",
        `name a study with --study: ${options.db} does not hold exactly one (${known})`,
      );
    }
    const study = store.study(name);
    if (!study)
      throw new OptimizerError(
        "no-study",
        `study ${name} is not in ${options.db} (it has ${names.join(", ") || "none"})`,
      );
    const report = buildReport(study, store.trials(name), options.now ?? new Date());
    mkdirSync(options.outDir, { recursive: true });
    const base = name.replace(/[^A-Za-z0-9._-]+/g, "_");
    const html = join(options.outDir, `${base}.html`);
    const json = join(options.outDir, `${base}.json`);
    writeFileSync(html, renderHtml(report));
    writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
    return { html, json, report };
  } finally {
    store.close();
  }
}
