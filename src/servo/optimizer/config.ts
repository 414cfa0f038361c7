/**
 * The `optimizer` section of servo.yaml: what the local optimizer optimises and how long it
 * searches. Every field can be overridden by the `kubewise optimizer serve` flag named in its doc.
 *
 * ```yaml
 * optimizer:
 *   study: web                     # --study
 *   db: .kubewise/optimizer.db     # --db
 *   objective: metrics.throughput / (settings.cpu * 0.03 + settings.mem * 0.004)
 *   direction: maximize
 *   constraints: ["metrics.p90 < 200.0"]
 *   max_trials: 40                 # --max-trials
 *   convergence: { patience: 12, min_improvement: 0.01 }
 *   seed: 1                        # --seed
 *   measure: { duration: 60, warmup: 10 }
 * ```
 */
import { z } from "zod";
import { expressionProblem } from "./objective.js";

const seconds = z.number().min(0);

/** constraintSchema is an SLO: a CEL condition, optionally named. A bare string is the expression. */
export const constraintSchema = z.union([
  z
    .string()
    .min(1)
    .transform((expression) => ({ expression })),
  z.strictObject({ name: z.string().min(1).optional(), expression: z.string().min(1) }),
]);

/** optimizerConfigSchema validates the `optimizer` section. */
export const optimizerConfigSchema = z
  .strictObject({
    /** study names the trial history; the same name continues it. --study. @default "default" */
    study: z.string().min(1).default("default"),
    /** db is the SQLite file of trial histories. --db. @default ".kubewise/optimizer.db" */
    db: z.string().min(1).default(".kubewise/optimizer.db"),
    /** objective is a CEL expression over `metrics`, `settings` and `components`. --objective */
    objective: z.string().min(1),
    /** direction of the objective. --direction. @default "maximize" */
    direction: z.enum(["maximize", "minimize"]).default("maximize"),
    /** constraints are SLOs; a trial that breaks one is infeasible. --constraint (repeatable) */
    constraints: z.array(constraintSchema).default([]),
    /** max_trials ends the study after this many trials, the baseline included. --max-trials. @default 50 */
    max_trials: z.number().int().min(1).default(50),
    /** convergence ends the study early when `patience` trials in a row improve the best by less than `min_improvement` (relative). */
    convergence: z
      .strictObject({
        patience: z.number().int().min(0).default(15),
        min_improvement: z.number().min(0).default(0.01),
      })
      .default({ patience: 15, min_improvement: 0.01 }),
    /** tune lists the components whose settings are searched; others are held as they are. Empty means all. */
    tune: z.array(z.string().min(1)).default([]),
    /** seed makes the search reproducible. --seed. @default 1 */
    seed: z.number().int().min(0).default(1),
    /** metrics to ask MEASURE for; empty means every metric the servo describes. */
    metrics: z.array(z.string().min(1)).default([]),
    /** measure is the `control` of every MEASURE, in seconds. */
    measure: z
      .strictObject({
        duration: seconds.default(60),
        warmup: seconds.default(0),
        delay: seconds.default(0),
      })
      .default({ duration: 60, warmup: 0, delay: 0 }),
    /** settlement is sent as ADJUST `control.settlement` when set, in seconds. */
    settlement: seconds.optional(),
    /** userdata is sent as `control.userdata` with every ADJUST and MEASURE (e.g. `deploy_to: tuning`). */
    userdata: z.record(z.string(), z.unknown()).optional(),
    /** apply_best adjusts the application to the best trial when the study ends. @default true */
    apply_best: z.boolean().default(true),
    /** idle_sleep is the SLEEP duration once the study is over, in seconds. @default 3600 */
    idle_sleep: seconds.default(3600),
  })
  .superRefine((config, ctx) => {
    // The expressions are checked here, so a bad one is reported with its file and field at load,
    // not when the first trial is scored.
    const objective = expressionProblem(config.objective, "number");
    if (objective)
      ctx.addIssue({ code: "custom", path: ["objective"], input: config.objective, message: objective });
    config.constraints.forEach((c, i) => {
      const problem = expressionProblem(c.expression, "bool");
      if (problem)
        ctx.addIssue({ code: "custom", path: ["constraints", i], input: c.expression, message: problem });
    });
  });

/** OptimizerConfig is a parsed `optimizer` section. */
export type OptimizerConfig = z.output<typeof optimizerConfigSchema>;
/** OptimizerConfigInput is the section as written (defaults optional). */
export type OptimizerConfigInput = z.input<typeof optimizerConfigSchema>;
