import { KubewiseError } from "../errors.js";

/**
 * DeployReason is the deploy module's vocabulary: `invalid` is a spec that parses but cannot be
 * rendered as asked (a missing --var, a bad --tag); `notuning` is a servo config asked of a spec
 * with no `tuning:` block. Problems in the spec file itself are ConfigErrors from src/config.
 */
export type DeployReason = "invalid" | "notuning";

/** DeployError is a problem rendering or deploying a service, with a message for humans. */
export class DeployError extends KubewiseError {
  declare readonly reason: DeployReason;

  constructor(reason: DeployReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
  }
}
