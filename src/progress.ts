/**
 * Progress for long waits: on a terminal, one line rewritten in place with a spinner and the
 * elapsed time; otherwise (CI, logs) a plain line each time the message changes.
 */
export interface Progress {
  update(message: string): void;
  done(message: string): void;
  fail(message: string): void;
}

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  const start = Date.now();
  const elapsed = (): string => `${((Date.now() - start) / 1000).toFixed(1)}s`;
  if (quiet) return { update: () => {}, done: () => {}, fail: () => {} };
  if (!stream.isTTY) {
    let last = "";
    return {
      update(message) {
        if (message !== last) stream.write(`[${elapsed()}] ${message}\n`);
        last = message;
      },
      done: (message) => stream.write(`[${elapsed()}] ${message}\n`),
      fail: (message) => stream.write(`[${elapsed()}] ${message}\n`),
    };
  }
  let message = "";
  let frame = 0;
  const draw = (): void => {
    frame = (frame + 1) % frames.length;
    stream.write(`\r\x1b[2K${frames[frame]} ${message} (${elapsed()})`);
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  const finish = (mark: string, text: string): void => {
    clearInterval(timer);
    stream.write(`\r\x1b[2K${mark} ${text} (${elapsed()})\n`);
  };
  return {
    update(m) {
      message = m;
      draw();
    },
    done: (m) => finish("✓", m),
    fail: (m) => finish("✗", m),
  };
}
