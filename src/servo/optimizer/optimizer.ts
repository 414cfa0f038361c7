/**
 * LocalOptimizer is the server side of the servo protocol: it answers a servo's events the way
 * the Opsani backend would, from a study kept in the trial store. A session goes:
 *
 *   WHATS_NEXT -> DESCRIBE; then per trial ADJUST(candidate) -> MEASURE -> trial recorded;
 *   when the study is over, ADJUST(best) once and SLEEP.
 *
 * The first trial of a study is the baseline (the settings found by the first DESCRIBE), measured
 * without an adjust. Everything that decides the next command is derived from the stored trials,
 * so a restarted optimizer (or servo) carries on where the study stopped. The same object serves
 * HTTP (server.ts) and in-process callers (`post`), with the same message shapes.
 */
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import {
  adjustCommand,
  describeCommand,
  measureCommand,
  optimizerReply,
  parseEvent,
  readingValue,
  resultStatus,
  ServoError,
  sleepCommand,
  type ControlOut,
  type Descriptor,
  type MeasurementParam,
  type MetricDescriptor,
  type OptimizerReply,
  type ServoEvent,
  type ServoEventMessage,
  type SettingValues,
} from "../protocol.js";
import type { OptimizerConfig } from "./config.js";
import { bestTrial, evaluateTrials, stopReason, toObservations } from "./history.js";
import { compileObjective, type CompiledObjective, type Evaluation } from "./objective.js";
import { mixSeed, seededRng } from "./random.js";
import { suggest, type SearchOptions } from "./search.js";
import {
  differsFrom,
  fromSettingValues,
  spaceFromDescriptor,
  toSettingValues,
  type Point,
  type SearchSpace,
} from "./space.js";
import type { Trial, TrialStatus, TrialStore } from "./store.js";

/** LocalOptimizerOptions configure a LocalOptimizer. */
export interface LocalOptimizerOptions {
  config: OptimizerConfig;
  store: TrialStore;
  /** now is the clock for timestamps and command ids. @default () => new Date() */
  now?: () => Date;
  log?: Logger;
  search?: SearchOptions;
}

/** StudySummary is where a study stands. */
export interface StudySummary {
  study: string;
  trials: number;
  best?: { number: number; values: SettingValues; objective: number };
  /** done says why the study is over; undefined while it runs. */
  done?: string;
}

interface Candidate {
  number: number;
  point: Point;
  values: SettingValues;
  startedAt: string;
  attempts: number;
}

/** Pending is the command the servo is working on; `body.cmd_uid` identifies it. */
interface Pending {
  cmd: "DESCRIBE" | "ADJUST" | "MEASURE";
  body: Record<string, unknown>;
  /** purpose of an ADJUST: a trial's candidate, or the best settings once the study is over. */
  purpose?: "trial" | "best";
}

/** MAX_ATTEMPTS is how often a command that failed transiently (or was cancelled) is retried. */
const MAX_ATTEMPTS = 3;
const RETRYABLE = new Set(["transient-failure", "cancelled"]);

/** LocalOptimizer runs one study for one servo. */
export class LocalOptimizer {
  readonly config: OptimizerConfig;
  private readonly store: TrialStore;
  private readonly objective: CompiledObjective;
  private readonly now: () => Date;
  private readonly log: Logger;
  private readonly searchOptions: SearchOptions;
  private space: SearchSpace | undefined;
  private metricsWanted: Record<string, MetricDescriptor> = {};
  /** current is the application's settings as last described or adjusted; undefined means unknown. */
  private current: SettingValues | undefined;
  private candidate: Candidate | undefined;
  private pending: Pending | undefined;
  private sequence = 0;
  private describeFailures = 0;
  private backoffDue = false;
  private bestAttempts = 0;

  /** constructor compiles the objective (throwing OptimizerError on bad CEL) and opens the study. */
  constructor(options: LocalOptimizerOptions) {
    this.config = options.config;
    this.store = options.store;
    this.now = options.now ?? (() => new Date());
    this.log = (options.log ?? silentLogger).child({ study: options.config.study });
    this.searchOptions = options.search ?? {};
    this.objective = compileObjective({
      objective: this.config.objective,
      direction: this.config.direction,
      constraints: this.config.constraints,
    });
    this.store.ensureStudy(this.config.study, this.config, this.now());
  }

  /** post is the in-process transport: the reply a servo would get for POSTing `{event, param}`. */
  post(event: ServoEvent, param: unknown): Promise<unknown> {
    return Promise.resolve(this.handle({ event, param }));
  }

  /**
   * handle answers one POSTed body. WHATS_NEXT gets a command; every other event gets
   * `{status, reason?, message?}` with an optimizer status. A body that is not a servo event gets
   * status `invalid`.
   */
  handle(body: unknown): unknown {
    let message: ServoEventMessage;
    try {
      message = parseEvent(body);
    } catch (err) {
      return optimizerReply("invalid", "invalid-message", (err as Error).message);
    }
    if (message.event === "WHATS_NEXT") return this.whatsNext();
    return this.onEvent(message);
  }

  /** summary reports the study's progress from the store. */
  summary(): StudySummary {
    const trials = this.store.trials(this.config.study);
    const evaluations = evaluateTrials(this.objective, trials);
    const out: StudySummary = { study: this.config.study, trials: trials.length };
    const b = bestTrial(evaluations);
    const best = b === undefined ? undefined : trials[b];
    const objective = b === undefined ? undefined : evaluations[b]?.objective;
    if (best && objective !== undefined) out.best = { number: best.number, values: best.values, objective };
    const done = stopReason(this.config, trials, evaluations);
    if (done !== undefined) out.done = done;
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // WHATS_NEXT

  private whatsNext(): unknown {
    // Asked again without an answer: the servo lost the command (it restarted, or a reply was lost).
    if (this.pending) return this.pending.body;
    if (this.backoffDue) {
      this.backoffDue = false;
      const seconds = Math.min(300, 15 * 2 ** (this.describeFailures - 1));
      return sleepCommand(seconds, `describe failed ${this.describeFailures} time(s); retrying`);
    }
    if (!this.space || !this.current)
      return this.issue({ cmd: "DESCRIBE", body: describeCommand(this.uid()) });
    return this.nextTrialCommand(this.space, this.current);
  }

  private nextTrialCommand(space: SearchSpace, current: SettingValues): unknown {
    if (!this.candidate) {
      const trials = this.store.trials(this.config.study);
      const evaluations = evaluateTrials(this.objective, trials);
      const done = stopReason(this.config, trials, evaluations);
      if (done !== undefined) return this.finish(space, current, trials, evaluations, done);
      const observations = toObservations(space, trials, evaluations);
      const rng = seededRng(mixSeed(this.config.seed, trials.length));
      const suggestion = suggest(space, observations, rng, this.searchOptions);
      if (!suggestion)
        return this.finish(space, current, trials, evaluations, "every combination of settings was tried");
      this.candidate = {
        number: trials.length,
        point: suggestion.point,
        values: toSettingValues(space, suggestion.point, true),
        startedAt: this.now().toISOString(),
        attempts: 0,
      };
      this.log.info(
        { trial: this.candidate.number, source: suggestion.source, values: this.candidate.values },
        "trial proposed",
      );
    }
    const c = this.candidate;
    if (differsFrom(space, c.point, current)) {
      const body = adjustCommand(toSettingValues(space, c.point), this.adjustControl(), this.uid());
      return this.issue({ cmd: "ADJUST", body, purpose: "trial" });
    }
    return this.issue({
      cmd: "MEASURE",
      body: measureCommand(this.metricsWanted, this.measureControl(), this.uid()),
    });
  }

  /** finish applies the best trial's settings once, then keeps the servo asleep. */
  private finish(
    space: SearchSpace,
    current: SettingValues,
    trials: Trial[],
    evaluations: Evaluation[],
    done: string,
  ): unknown {
    const b = bestTrial(evaluations);
    const best = b === undefined ? undefined : trials[b];
    const point = best ? fromSettingValues(space, best.values) : undefined;
    if (this.config.apply_best && point && this.bestAttempts < 2 && differsFrom(space, point, current)) {
      this.bestAttempts++;
      this.log.info(
        { trial: best?.number, values: best?.values, reason: done },
        "study finished, applying the best settings",
      );
      const body = adjustCommand(toSettingValues(space, point), this.adjustControl(), this.uid());
      return this.issue({ cmd: "ADJUST", body, purpose: "best" });
    }
    const objective = b === undefined ? undefined : evaluations[b]?.objective;
    const bestText = best ? `; best trial #${best.number} (objective ${objective})` : "; no feasible trial";
    return sleepCommand(this.config.idle_sleep, `study ${this.config.study} is over: ${done}${bestText}`);
  }

  private issue(pending: Pending): unknown {
    this.pending = pending;
    return pending.body;
  }

  private uid(): string {
    this.sequence++;
    return `${this.config.study}-${this.now().getTime().toString(36)}-${this.sequence}`;
  }

  private control(): ControlOut {
    return this.config.userdata === undefined ? {} : { userdata: this.config.userdata };
  }

  private adjustControl(): ControlOut {
    const control = this.control();
    if (this.config.settlement !== undefined) control.settlement = this.config.settlement;
    return control;
  }

  private measureControl(): ControlOut {
    const { duration, warmup, delay } = this.config.measure;
    return { ...this.control(), duration, warmup, delay };
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private onEvent(message: ServoEventMessage): OptimizerReply {
    switch (message.event) {
      case "HELLO":
        // A (re)started servo: forget the command in flight and learn the settings again. The
        // candidate survives, so an interrupted trial is tried again rather than lost.
        this.pending = undefined;
        this.current = undefined;
        this.bestAttempts = 0;
        this.log.info({ agent: message.param.agent }, "servo connected");
        return optimizerReply("ok");
      case "GOODBYE":
        this.pending = undefined;
        this.log.info({ reason: message.param.reason }, "servo said goodbye");
        return optimizerReply("ok");
      case "WHATS_NEXT":
        return optimizerReply("invalid", "unexpected-event", "WHATS_NEXT is answered with a command");
      default:
        return "progress" in message ? this.onProgress(message) : this.onResult(message);
    }
  }

  private expect(cmd: Pending["cmd"], uid: string | undefined): OptimizerReply | undefined {
    const p = this.pending;
    if (!p || p.cmd !== cmd) {
      return optimizerReply("unexpected-event", "unexpected-event", `no ${cmd} command is in progress`);
    }
    const expected = String(p.body.cmd_uid);
    if (uid !== undefined && uid !== expected) {
      return optimizerReply(
        "invalid",
        "unexpected cmd_uid",
        `cmd_uid ${uid} is not the command in progress (${expected})`,
      );
    }
    return undefined;
  }

  private onProgress(message: Extract<ServoEventMessage, { progress: true }>): OptimizerReply {
    const cmd = message.event === "ADJUSTMENT" ? "ADJUST" : "MEASURE";
    return this.expect(cmd, message.param.cmd_uid) ?? optimizerReply("ok");
  }

  private onResult(message: ServoEventMessage): OptimizerReply {
    switch (message.event) {
      case "DESCRIPTION": {
        const wrong = this.pending ? this.expect("DESCRIBE", message.param.cmd_uid) : undefined;
        if (wrong) return wrong;
        this.pending = undefined;
        return this.onDescription(
          resultStatus(message.param),
          message.param.descriptor,
          message.param.message,
        );
      }
      case "ADJUSTMENT": {
        const wrong = this.expect("ADJUST", message.param.cmd_uid);
        if (wrong) return wrong;
        return this.onAdjustment(message.param);
      }
      case "MEASUREMENT": {
        const wrong = this.expect("MEASURE", message.param.cmd_uid);
        if (wrong) return wrong;
        this.pending = undefined;
        return this.onMeasurement(message.param);
      }
      default:
        break;
    }
    return optimizerReply("invalid", "unexpected-event", `${message.event} was not expected`);
  }

  private onDescription(
    status: string,
    descriptor: Descriptor | undefined,
    text: string | undefined,
  ): OptimizerReply {
    if (status !== "ok" || !descriptor) {
      this.describeFailures++;
      this.backoffDue = true;
      this.log.warn({ status, message: text }, "describe failed");
      return optimizerReply("ok");
    }
    this.describeFailures = 0;
    this.space = spaceFromDescriptor(descriptor, this.config.tune);
    const unknown = this.config.tune.filter((c) => !(c in descriptor.application.components));
    if (unknown.length > 0) {
      const known = Object.keys(descriptor.application.components).join(", ");
      this.log.warn({ unknown, known }, "optimizer.tune names components the servo does not describe");
    }
    this.current = describedValues(descriptor);
    this.metricsWanted = this.wantedMetrics(descriptor);
    this.store.saveDescriptor(this.config.study, descriptor);
    // A candidate proposed for another space (settings added or removed) is dropped.
    if (this.candidate && !fromSettingValues(this.space, this.candidate.values)) this.candidate = undefined;
    this.log.info({ settings: this.space.dimensions.length }, "application described");
    return optimizerReply("ok");
  }

  private wantedMetrics(descriptor: Descriptor): Record<string, MetricDescriptor> {
    const described = descriptor.measurement?.metrics ?? {};
    if (this.config.metrics.length === 0) return described;
    return Object.fromEntries(this.config.metrics.map((m) => [m, described[m] ?? {}]));
  }

  private onAdjustment(param: { status?: string; reason?: string; message?: string }): OptimizerReply {
    const purpose = this.pending?.purpose ?? "trial";
    this.pending = undefined;
    const status = resultStatus(param);
    if (status === "ok") {
      const applied = purpose === "best" ? undefined : this.candidate?.values;
      // The best settings were applied by a finished study: describe again to confirm them.
      this.current = applied ? { ...this.current, ...applied } : undefined;
      return optimizerReply("ok");
    }
    // After a failed adjust the application's settings are unknown until described again.
    this.current = undefined;
    this.log.warn({ status, reason: param.reason, message: param.message }, "adjust failed");
    if (purpose === "trial") this.failCandidate(status, param);
    return optimizerReply("ok");
  }

  private onMeasurement(param: MeasurementParam): OptimizerReply {
    const status = resultStatus(param);
    if (status !== "ok") {
      this.log.warn({ status, reason: param.reason, message: param.message }, "measure failed");
      this.failCandidate(status, param);
      return optimizerReply("ok");
    }
    const metrics: Record<string, number> = {};
    for (const [name, reading] of Object.entries(param.metrics ?? {})) {
      const v = readingValue(reading);
      if (v !== undefined) metrics[name] = v;
    }
    if (Object.keys(metrics).length === 0) {
      this.failCandidate("failed", {
        reason: "no-metrics",
        message: "the measurement has no numeric metrics",
      });
      return optimizerReply("ok");
    }
    this.record("ok", { metrics });
    return optimizerReply("ok");
  }

  /** failCandidate retries a transient failure, or records the trial as rejected or failed. */
  private failCandidate(status: string, param: { reason?: string; message?: string }): void {
    const c = this.candidate;
    if (!c) return;
    c.attempts++;
    if (RETRYABLE.has(status) && c.attempts < MAX_ATTEMPTS) return;
    const trialStatus: TrialStatus = status === "rejected" ? "rejected" : "failed";
    this.record(trialStatus, { reason: param.reason ?? status, message: param.message });
  }

  private record(
    status: TrialStatus,
    data: { metrics?: Record<string, number>; reason?: string; message?: string | undefined },
  ): void {
    const c = this.candidate;
    if (!c) throw new ServoError("protocol", "a result arrived with no trial in progress");
    const trial: Trial = {
      number: c.number,
      values: c.values,
      status,
      metrics: data.metrics ?? {},
      startedAt: c.startedAt,
      finishedAt: this.now().toISOString(),
    };
    if (data.reason !== undefined) trial.reason = data.reason;
    if (data.message !== undefined) trial.message = data.message;
    this.store.addTrial(this.config.study, trial);
    this.candidate = undefined;
    const e = evaluateTrials(this.objective, [trial])[0];
    if (e?.error !== undefined && status === "ok")
      this.log.warn({ trial: c.number, error: e.error }, "objective failed");
    this.log.info(
      { trial: c.number, status, objective: e?.objective, feasible: e?.feasible },
      "trial finished",
    );
  }
}

/**
 * describedValues are the settings a descriptor reports. A setting with no value (a container
 * without resources) is left out, so the baseline trial adjusts it instead of assuming it.
 */
function describedValues(descriptor: Descriptor): SettingValues {
  const out: SettingValues = {};
  for (const [component, c] of Object.entries(descriptor.application.components)) {
    for (const [name, setting] of Object.entries(c.settings)) {
      if (setting.value !== null && setting.value !== undefined)
        (out[component] ??= {})[name] = setting.value;
    }
  }
  return out;
}
