/**
 * Package optimizer is kubewise's local optimizer: the server side of the servo protocol, so a
 * servo can tune an application with no remote backend. It describes the application, measures
 * the current settings first, then proposes settings on the described grids (a Gaussian-process
 * search that respects min/max/step and pinned settings), scores each measurement with a CEL
 * objective and SLO constraints, keeps every trial in SQLite so a restarted optimizer resumes its
 * study, and reports the study as HTML and JSON. It runs in-process (LocalOptimizer.post) or
 * over HTTP (startOptimizerServer).
 */
export {
  optimizerConfigSchema,
  constraintSchema,
  type OptimizerConfig,
  type OptimizerConfigInput,
} from "./config.js";
export { OptimizerError } from "./errors.js";
export {
  compileObjective,
  type CompiledObjective,
  type Direction,
  type Evaluation,
  type ObjectiveSpec,
} from "./objective.js";
export { LocalOptimizer, type LocalOptimizerOptions, type StudySummary } from "./optimizer.js";
export { buildReport, renderHtml, writeReport, type ReportFiles, type StudyReport } from "./report.js";
export { startOptimizerServer, type OptimizerServer, type OptimizerServerOptions } from "./server.js";
export { TrialStore, type Study, type Trial, type TrialStatus } from "./store.js";
export { simulateServo, type SimulatedApp } from "./testing.js";
