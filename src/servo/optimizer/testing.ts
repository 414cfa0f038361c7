/**
 * A simulated servo for tests and demos: it answers the optimizer's commands the way a servo
 * would, with a made-up application whose metrics are a function of its settings.
 */
import {
  adjustmentReply,
  descriptionReply,
  failureReply,
  measurementReply,
  parseCommand,
  stateValues,
  type Command,
  type DescriptorOut,
  type ServoEvent,
  type Setting,
  type SettingValues,
} from "../protocol.js";

/** SimulatedApp is the application behind a simulated servo. */
export interface SimulatedApp {
  descriptor: DescriptorOut;
  /** metrics returns what MEASURE reports for the current settings. */
  metrics(values: SettingValues): Record<string, number>;
  /** reject, when it returns a reason, makes ADJUST fail with status `rejected`. */
  reject?(values: SettingValues): string | undefined;
}

/** Post sends one event and returns the reply (in-process or over HTTP). */
export type Post = (event: ServoEvent, param: unknown) => Promise<unknown>;

/** SimulationLog is what happened during a simulated session. */
export interface SimulationLog {
  commands: Command[];
  sleep?: { duration: number; reason: unknown };
  values: SettingValues;
}

function currentDescriptor(app: SimulatedApp, values: SettingValues): DescriptorOut {
  const components = Object.fromEntries(
    Object.entries(app.descriptor.application.components).map(([name, c]) => [
      name,
      {
        settings: Object.fromEntries(
          Object.entries(c.settings).map(([s, setting]) => [
            s,
            // The app only ever holds values the optimizer sent for that setting's kind.
            { ...setting, value: values[name]?.[s] ?? setting.value } as Setting,
          ]),
        ),
      },
    ]),
  );
  const out: DescriptorOut = { application: { components } };
  if (app.descriptor.measurement) out.measurement = app.descriptor.measurement;
  return out;
}

function initialValues(app: SimulatedApp): SettingValues {
  return Object.fromEntries(
    Object.entries(app.descriptor.application.components).map(([name, c]) => [
      name,
      Object.fromEntries(
        Object.entries(c.settings).flatMap(([s, v]) => (v.value == null ? [] : [[s, v.value]])),
      ),
    ]),
  );
}

/**
 * simulateServo runs HELLO, then WHATS_NEXT and the commands, until the optimizer says SLEEP or
 * `maxCommands` commands have run; then GOODBYE. `values` carries the app's settings across
 * sessions (a restarted servo sees the app as the last session left it).
 */
export async function simulateServo(
  post: Post,
  app: SimulatedApp,
  options: { maxCommands?: number; values?: SettingValues } = {},
): Promise<SimulationLog> {
  const values: SettingValues = structuredClone(options.values ?? initialValues(app));
  const log: SimulationLog = { commands: [], values };
  await post("HELLO", { agent: "kubewise-test" });
  for (let i = 0; i < (options.maxCommands ?? 1000); i++) {
    const cmd = parseCommand(await post("WHATS_NEXT", null));
    log.commands.push(cmd);
    if (cmd.cmd === "SLEEP") {
      log.sleep = { duration: cmd.param.duration, reason: cmd.param.data?.reason };
      break;
    }
    await answer(post, app, values, cmd);
  }
  await post("GOODBYE", { reason: "exit" });
  return log;
}

async function answer(post: Post, app: SimulatedApp, values: SettingValues, cmd: Command): Promise<void> {
  const uid = cmd.cmd_uid;
  if (cmd.cmd === "DESCRIBE") {
    await post("DESCRIPTION", descriptionReply(currentDescriptor(app, values), uid));
  } else if (cmd.cmd === "ADJUST") {
    const wanted = stateValues(cmd.param.state);
    await post("ADJUSTMENT", { progress: 50, runtime: 1, cmd_uid: uid });
    const why = app.reject?.(wanted);
    if (why !== undefined) {
      await post("ADJUSTMENT", failureReply("rejected", "unstable", why, uid));
      return;
    }
    for (const [c, s] of Object.entries(wanted)) Object.assign((values[c] ??= {}), s);
    await post(
      "ADJUSTMENT",
      adjustmentReply({ application: currentDescriptor(app, values).application }, uid),
    );
  } else if (cmd.cmd === "MEASURE") {
    const m = app.metrics(values);
    const metrics = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { value: v }]));
    await post("MEASUREMENT", measurementReply(metrics, {}, uid));
  }
}
