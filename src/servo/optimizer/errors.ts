import { KubewiseError } from "../../errors.js";

/**
 * OptimizerError is a problem of the local optimizer a user can act on. Reasons:
 * `invalid-expression` (objective or constraint is not valid CEL), `evaluation-failed` (an
 * expression failed on a trial's data), `store` (the trial database), `no-study` (report on a
 * study that is not there), `protocol` (a message out of turn).
 */
export class OptimizerError extends KubewiseError {}
