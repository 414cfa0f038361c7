import { KubewiseError } from "../errors.js";

/**
 * JobsErrorReason is the short vocabulary of the jobs module's errors:
 * `invalid-app-id-path` (the OPTUNE_APP_ID syntax), `outbox` (the outbox file cannot be opened or
 * written), `outbox-locked` (another watcher holds the outbox), `certificate` (TLS material cannot
 * be made or read), `settings` (a tuned-settings document is malformed), `not-wired` (a part
 * that needs the Kubernetes layer was asked for without it) and `namespace-not-found` (a namespace
 * to watch does not exist, e.g. a typo in POD_NAMESPACES).
 */
export type JobsErrorReason =
  | "invalid-app-id-path"
  | "outbox"
  | "outbox-locked"
  | "certificate"
  | "settings"
  | "not-wired"
  | "namespace-not-found";

/** JobsError is the error type of the jobs module; `reason` is one word from JobsErrorReason. */
export class JobsError extends KubewiseError {
  declare readonly reason: JobsErrorReason;

  constructor(reason: JobsErrorReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
  }
}
