import { KubewiseError } from "../errors.js";

/**
 * SwarmReason is the vocabulary of swarm errors:
 * - `duplicate-job`: a job name is listed more than once;
 * - `duplicate-worker`: a worker name is listed more than once;
 * - `invalid-name`: a job or worker name is empty;
 * - `no-workers`: there are jobs but no workers to run them;
 * - `unknown-dedicated-job`: the QoS policy dedicates a job that is not in the job list;
 * - `insufficient-workers`: dedicated jobs (plus the shared ones) need more workers than the pool has.
 */
export type SwarmReason =
  | "duplicate-job"
  | "duplicate-worker"
  | "invalid-name"
  | "no-workers"
  | "unknown-dedicated-job"
  | "insufficient-workers";

/** SwarmError is a problem with the inputs of a work assignment that the user can fix. */
export class SwarmError extends KubewiseError {
  declare readonly reason: SwarmReason;

  constructor(reason: SwarmReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
  }
}
