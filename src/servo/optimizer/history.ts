/**
 * From stored trials to what the search and the reports need: each trial scored with the current
 * objective, the search's observations, the best trial, and whether the study is over. Pure.
 */
import type { OptimizerConfig } from "./config.js";
import type { CompiledObjective, Evaluation } from "./objective.js";
import { bestIndex, hasConverged, type Observation } from "./search.js";
import { fromSettingValues, type SearchSpace } from "./space.js";
import type { Trial } from "./store.js";

/** evaluateTrials scores every trial; a trial that was not measured has no score and is infeasible. */
export function evaluateTrials(objective: CompiledObjective, trials: readonly Trial[]): Evaluation[] {
  return trials.map((t) => {
    if (t.status !== "ok") {
      const why = `${t.status}${t.reason ? ` (${t.reason})` : ""}`;
      return { objective: undefined, score: undefined, feasible: false, violated: [], error: why };
    }
    return objective.evaluate({ metrics: t.metrics, settings: t.values });
  });
}

/** toObservations maps trials onto the space; trials whose values no longer fit it are skipped. */
export function toObservations(
  space: SearchSpace,
  trials: readonly Trial[],
  evaluations: readonly Evaluation[],
): Observation[] {
  return trials.flatMap((t, i) => {
    const point = fromSettingValues(space, t.values);
    const e = evaluations[i];
    if (!point || !e) return [];
    return [
      e.slacks === undefined
        ? { point, score: e.score, feasible: e.feasible }
        : { point, score: e.score, feasible: e.feasible, slacks: e.slacks },
    ];
  });
}

/** bestTrial is the index of the best feasible trial, if there is one. */
export function bestTrial(evaluations: readonly Evaluation[]): number | undefined {
  return bestIndex(evaluations.map((e) => ({ point: [], score: e.score, feasible: e.feasible })));
}

/** OBJECTIVE_ERROR_LIMIT is how many measured trials in a row may fail to evaluate before the study stops. */
export const OBJECTIVE_ERROR_LIMIT = 3;

/**
 * stopReason says why the study is over, or undefined while it goes on: max_trials reached, the
 * best score stopped improving, or the objective failed on the last few measured trials (a
 * misspelt metric, say; fixing the expression and restarting resumes the study).
 */
export function stopReason(
  config: OptimizerConfig,
  trials: readonly Trial[],
  evaluations: readonly Evaluation[],
): string | undefined {
  if (trials.length >= config.max_trials) return `reached max_trials (${config.max_trials})`;
  const measured = evaluations.filter((_, i) => trials[i]?.status === "ok");
  const recent = measured.slice(-OBJECTIVE_ERROR_LIMIT);
  if (recent.length === OBJECTIVE_ERROR_LIMIT && recent.every((e) => e.score === undefined)) {
    return `the objective could not be evaluated on the last ${OBJECTIVE_ERROR_LIMIT} trials: ${recent.at(-1)?.error ?? "unknown error"}`;
  }
  const { patience, min_improvement: minImprovement } = config.convergence;
  const observations = evaluations.map((e) => ({ point: [], score: e.score, feasible: e.feasible }));
  if (hasConverged(observations, { patience, minImprovement })) {
    return `converged: the last ${patience} trials improved the best by less than ${minImprovement * 100}%`;
  }
  return undefined;
}
