import { KubewiseError } from "../errors.js";

/**
 * AgentReason is the agent's vocabulary of failures:
 * - `pod-source`: the pods of the node could not be listed (kubelet or API server unreachable,
 *   refused, or answered garbage, or a kubelet credential file vanished after the start);
 *   the iteration is skipped.
 * - `cgroup`: the cgroup hierarchy is missing or not what the configuration says.
 * - `config`: a flag or setting the agent cannot work with.
 * - `unsupported`: a combination this build cannot do.
 */
export type AgentReason = "pod-source" | "cgroup" | "config" | "unsupported";

/** AgentError is a node-agent failure with a message for the person running the agent. */
export class AgentError extends KubewiseError {
  declare readonly reason: AgentReason;

  constructor(reason: AgentReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
  }
}
