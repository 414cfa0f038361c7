/**
 * KubewiseError is the base of every error kubewise shows to a user. Each module has its own
 * subclass; `reason` is one word from that module's short vocabulary (for logs, tests and the
 * servo protocol) and `message` is the sentence a person reads. The CLI prints the message and
 * exits non-zero; `--verbose` adds the cause chain.
 */
export class KubewiseError extends Error {
  readonly reason: string;

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.reason = reason;
  }
}

/** describeError renders an error and, when verbose, its chain of causes, one per line. */
export function describeError(err: unknown, verbose = false): string {
  const lines: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (current instanceof Error) {
      const text = depth === 0 || !verbose ? current.message : `caused by: ${current.message}`;
      lines.push(verbose && depth > 0 && current.stack ? `${text}\n${indent(current.stack)}` : text);
      if (!verbose) break;
      current = current.cause;
    } else {
      lines.push(depth === 0 ? String(current) : `caused by: ${String(current)}`);
      break;
    }
  }
  return lines.join("\n");
}

function indent(stack: string): string {
  return stack
    .split("\n")
    .slice(1)
    .map((l) => `  ${l.trim()}`)
    .join("\n");
}
