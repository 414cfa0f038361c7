import type { ApplyReport } from "./apply.js";
import { formatChange } from "./diff.js";
import type { PodReport } from "./health.js";
import type { ObjectRef } from "./inventory.js";
import type { Plan } from "./plan.js";
import type { DeleteReport } from "./prune.js";
import type { RolloutOutcome } from "./rollout.js";
import type { ServiceStatus } from "./status.js";

/**
 * The text the deploy commands print: pure functions from reports to lines, so the CLI stays
 * thin and the wording is tested without a cluster.
 */

const obj = (ref: ObjectRef): string => `${ref.kind}/${ref.name}`;

function count(n: number, what: string): string {
  return `${n} ${what}`;
}

/** formatPlan prints a plan: a summary line, then each object with its field changes. */
export function formatPlan(plan: Plan): string {
  const lines: string[] = [];
  const by = (action: string) => plan.objects.filter((o) => o.action === action).length;
  lines.push(
    `service ${plan.service} in namespace ${plan.namespace}: ${count(by("create"), "to create")}, ${count(by("update"), "to update")}, ${count(plan.prune.length, "to prune")}, ${count(by("unchanged"), "unchanged")}`,
  );
  if (!plan.namespaceExists) {
    lines.push(
      `namespace ${plan.namespace} does not exist: every object would be created (apply needs --create-namespace), and the API server has not checked them`,
    );
  }
  for (const o of plan.objects) {
    const mark = o.action === "create" ? "+" : o.action === "update" ? "~" : "=";
    lines.push(`${mark} ${obj(o.ref)} (${o.action})`);
    for (const c of o.changes) lines.push(`    ${formatChange(c)}`);
    if (o.handoverReplicas !== undefined)
      lines.push(`    spec.replicas handed over to the autoscaler at ${o.handoverReplicas} (not reset to 1)`);
    else if (o.action === "update" && o.changes.length === 0)
      lines.push("    kubewise takes ownership of its fields");
  }
  for (const p of plan.prune) lines.push(`- ${obj(p.ref)} (prune: no longer in the spec)`);
  for (const k of plan.kept) lines.push(`! ${obj(k.ref)} left alone: ${k.why}`);
  lines.push(plan.changed ? "changes pending (exit code 2)" : "no changes (exit code 0)");
  return `${lines.join("\n")}\n`;
}

/** formatApplied prints what apply did to each object. */
export function formatApplied(report: ApplyReport): string {
  const lines: string[] = [];
  if (report.namespaceCreated) lines.push(`Namespace/${report.namespace} created`);
  for (const o of report.objects) {
    const fields =
      o.result === "updated" && o.changes.length > 0 ? ` (${count(o.changes.length, "field(s)")})` : "";
    lines.push(`${obj(o.ref)} ${o.result}${fields}`);
  }
  for (const k of report.kept) lines.push(`${obj(k.ref)} left alone: ${k.why}`);
  return `${lines.join("\n")}\n`;
}

/** formatPod prints one pod on one line. */
export function formatPod(p: PodReport): string {
  const state = `${p.name}  ${p.phase}  ${p.ready ? "ready" : "not ready"}  restarts ${p.restarts}`;
  return p.problem ? `${state}  ${p.problem.reason}: ${p.problem.message}` : state;
}

/** formatRollout prints a failed rollout: why, the failing pods, and the rollback. */
export function formatRollout(outcome: RolloutOutcome): string {
  if (outcome.state === "ready") return `${outcome.message}\n`;
  const lines = [
    `rollout of ${outcome.workload.kind}/${outcome.workload.name} failed (${outcome.reason}): ${outcome.message}`,
  ];
  const failing = outcome.pods.filter((p) => p.problem);
  if (failing.length > 0) {
    lines.push("pods of the new revision with problems:");
    for (const p of failing) lines.push(`  ${formatPod(p)}`);
  }
  if (outcome.rollback) lines.push(outcome.rollback.message);
  else if (outcome.workload.kind === "Deployment") {
    lines.push("the Deployment is left as applied (--rollback-on-failure rolls it back)");
  }
  return `${lines.join("\n")}\n`;
}

function pad(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) =>
    r
      .map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c))
      .join("  ")
      .trimEnd(),
  );
}

/** formatStatus prints a service's objects, rollout, autoscaler and pods. */
export function formatStatus(s: ServiceStatus): string {
  const lines = [`service ${s.service} in namespace ${s.namespace}`];
  if (s.objects.length === 0) lines.push("no objects: the service is not deployed here");
  else {
    const rows = s.objects.map((o) => [
      obj(o.ref),
      o.present ? (o.foreign ? "present (not applied by kubewise)" : "present") : "MISSING",
      o.detail,
    ]);
    lines.push(...pad([["OBJECT", "STATE", "DETAIL"], ...rows]));
  }
  const w = s.workload;
  if (w) {
    lines.push(
      `${w.kind}/${w.name}: ${w.ready}/${w.desired} ready, ${w.updated} updated, ${w.available} available${w.revision ? `, revision ${w.revision}` : ""}; rollout ${w.rollout}`,
    );
  }
  const h = s.autoscaler;
  if (h) {
    const metrics = h.metrics
      .map(
        (m) =>
          `${m.name} ${m.current === undefined ? "?" : `${m.current}%`}/${m.target === undefined ? "?" : `${m.target}%`}`,
      )
      .join(", ");
    // An HPA the controller has not synced yet (every 15 s by default) has an empty status.
    const seen = h.current > 0 || h.desired > 0 || h.problems.length > 0;
    const replicas = seen
      ? `${h.current} replica(s), desired ${h.desired}`
      : "not synced by the HPA controller yet";
    lines.push(
      `HorizontalPodAutoscaler/${h.name}: ${replicas}, min ${h.min}, max ${h.max}; current/target ${metrics}`,
    );
    for (const p of h.problems) lines.push(`  ${p}`);
  }
  if (w) {
    const problems = s.pods.filter((p) => p.problem).length;
    lines.push(`pods: ${s.pods.length} (${problems} with problems)`);
    for (const p of s.pods) lines.push(`  ${formatPod(p)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** formatDeleted prints what delete removed and left. */
export function formatDeleted(namespace: string, service: string, report: DeleteReport): string {
  const lines =
    report.deleted.length === 0
      ? [`service ${service} has no objects in namespace ${namespace}`]
      : report.deleted.map((r) => `${obj(r)} deleted`);
  for (const k of report.kept) lines.push(`${obj(k.ref)} left alone: ${k.why}`);
  return `${lines.join("\n")}\n`;
}
