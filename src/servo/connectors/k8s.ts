/**
 * The k8s connector: the main component of servo-k8s, one container of one Deployment. Describe
 * reads the live values; adjust patches the Deployment, waits for the rollout by watch, then for
 * the settlement period, and on failure applies on_fail (rollback, destroy or nop).
 */
import {
  KubeError,
  deploymentSelector,
  patchObject,
  rollbackDeployment,
  toKubeError,
  waitForPodsStable,
  waitForRolloutHealthy,
  type KubeClient,
  type V1Container,
  type V1Deployment,
} from "../../kube/index.js";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import {
  K8S_CPU_DEFAULTS,
  K8S_MEM_DEFAULTS,
  settlementSeconds,
  type MainSection,
  type ServoConfig,
} from "../config.js";
import { adjustOnData } from "../expr.js";
import { ServoError, type AdjustParam, type Setting } from "../protocol.js";
import {
  checkEnvValue,
  checkRange,
  envDescription,
  envValue,
  rangeSetting,
  readResource,
  resourcePatch,
  type ResourcesPatch,
} from "./resources.js";
import {
  cancelledError,
  type AdjustConnector,
  type AdjustOutcome,
  type ComponentDescription,
  type ProgressCallback,
} from "./types.js";

/** DEFAULT_TIMEOUT_SECONDS bounds a rollout when the command's control gives no timeout (servo-k8s). */
export const DEFAULT_TIMEOUT_SECONDS = 630;

export interface ConnectorOptions {
  client: KubeClient;
  config: Pick<ServoConfig, "main" | "tuning">;
  /** namespace when the config has none; @default the client's default namespace */
  namespace?: string;
  log?: Logger;
}

/** skipped builds the outcome of an adjust that had nothing to do. */
export function skipped(reason: string): AdjustOutcome {
  return { adjusted: false, reason };
}

/** readDeployment reads the main Deployment, mapping NotFound to a clear ServoError. */
export async function readDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<V1Deployment> {
  try {
    return await client.apps.readNamespacedDeployment({ namespace, name });
  } catch (err) {
    const e = toKubeError(err, `read deployment ${namespace}/${name}`);
    const message =
      e.reason === "NotFound" ? `the main deployment ${namespace}/${name} does not exist` : e.message;
    throw new ServoError("adjust-failed", message, { status: "failed", cause: e });
  }
}

/** mainContainer finds the configured container (or the first) in a pod template. */
export function mainContainer(d: V1Deployment, name: string | undefined): V1Container {
  const containers = d.spec?.template.spec?.containers ?? [];
  const found = name === undefined ? containers[0] : containers.find((c) => c.name === name);
  if (!found) {
    const known = containers.map((c) => c.name).join(", ");
    throw new ServoError(
      "adjust-failed",
      `deployment ${d.metadata?.namespace}/${d.metadata?.name} has no container ${name ?? "(first)"} (containers: ${known || "none"})`,
      { status: "failed" },
    );
  }
  return found;
}

/** MainDeployment is the `k8s` adjust connector. */
export class MainDeployment implements AdjustConnector {
  readonly name = "k8s";
  readonly namespace: string;
  private readonly client: KubeClient;
  private readonly config: Pick<ServoConfig, "main" | "tuning">;
  private readonly main: MainSection;
  private readonly log: Logger;

  constructor(options: ConnectorOptions) {
    this.client = options.client;
    this.config = options.config;
    this.main = options.config.main;
    this.namespace = this.main.namespace ?? options.namespace ?? options.client.defaultNamespace;
    this.log = (options.log ?? silentLogger).child({ connector: "k8s" });
  }

  /** describe reports the main component's listed settings with their live values. */
  async describe(): Promise<Record<string, ComponentDescription>> {
    const { component } = this.main;
    const d = await readDeployment(this.client, this.namespace, component.deployment);
    return { [component.key]: { settings: this.settingsOf(d) } };
  }

  /** settingsOf describes the component's listed settings as the Deployment has them. */
  private settingsOf(d: V1Deployment): Record<string, Setting> {
    const { component } = this.main;
    const container = mainContainer(d, component.container);
    const settings: Record<string, Setting> = {};
    const { cpu, mem, replicas } = component.settings;
    if (cpu)
      settings.cpu = rangeSetting(
        { ...K8S_CPU_DEFAULTS, ...cpu },
        readResource(container, "cpu", cpu.selector),
        "cores",
        cpu.pinned,
      );
    if (mem)
      settings.mem = rangeSetting(
        { ...K8S_MEM_DEFAULTS, ...mem },
        readResource(container, "mem", mem.selector),
        "GiB",
        mem.pinned,
      );
    const current = d.spec?.replicas ?? 1;
    if (replicas || (!cpu && !mem)) {
      settings.replicas = rangeSetting(
        { min: replicas?.min ?? current, max: replicas?.max ?? current, step: replicas?.step ?? 1 },
        current,
        undefined,
        replicas?.pinned ?? false,
      );
    }
    for (const [name, setting] of Object.entries(component.env)) {
      settings[name] = envDescription(setting, envValue(container, name, setting));
    }
    return settings;
  }

  /**
   * unpinned drops the pinned settings an adjust repeats at their value, and refuses one that
   * would change a pinned setting (as servox does: pinned settings are reported, never changed).
   */
  private unpinned(
    live: Record<string, Setting>,
    requested: Record<string, { value: number | string }>,
  ): Record<string, { value: number | string }> {
    const out: Record<string, { value: number | string }> = {};
    for (const [name, setting] of Object.entries(requested)) {
      const current = live[name];
      if (current?.pinned !== true) {
        out[name] = setting;
      } else if (String(current.value) !== String(setting.value)) {
        throw new ServoError(
          "adjust-failed",
          `component ${this.main.component.key} setting ${name} is pinned at ${String(current.value)}; it cannot be changed to ${String(setting.value)}`,
          { status: "failed" },
        );
      }
    }
    return out;
  }

  /**
   * adjust applies this component's values from `param.state`: resources and env go into the pod
   * template, replicas into spec.replicas, in one strategic merge patch. Skips (ok, with the
   * reason) when adjust_on is false or the component is not in the request.
   */
  async adjust(param: AdjustParam, progress: ProgressCallback, signal?: AbortSignal): Promise<AdjustOutcome> {
    const { component } = this.main;
    if (this.main.adjustOn) {
      const gate = this.main.adjustOn.matches(adjustOnData(param));
      if (!gate.matched) return skipped(`Skipped due to 'adjust_on' condition (${gate.reason})`);
    }
    const requested = param.state.application.components[component.key]?.settings;
    if (!requested || Object.keys(requested).length === 0) {
      return skipped(`component ${component.key} is not in the adjustment`);
    }
    const before = await readDeployment(this.client, this.namespace, component.deployment);
    const container = mainContainer(before, component.container);
    const live = this.settingsOf(before);
    const changing = this.unpinned(live, requested);
    if (Object.keys(changing).length === 0) {
      return skipped(`component ${component.key}: only pinned settings, at their values`);
    }
    const patch = this.buildPatch(container.name, changing, live.replicas);
    const generation = before.metadata?.generation ?? 0;
    progress(5, `patching deployment ${this.namespace}/${component.deployment}`);
    let after: V1Deployment;
    try {
      after = await patchObject<V1Deployment>(
        this.client,
        { apiVersion: "apps/v1", kind: "Deployment", namespace: this.namespace, name: component.deployment },
        patch,
      );
    } catch (err) {
      throw new ServoError(
        "adjust-failed",
        `patching the main deployment failed: ${(err as Error).message}`,
        {
          status: "failed",
          cause: err,
        },
      );
    }
    const changed = (after.metadata?.generation ?? 0) !== generation;
    this.log.info({ deployment: component.deployment, changed }, "main deployment patched");
    const timeoutMs = (param.control.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    try {
      await waitForRolloutHealthy(this.client, this.namespace, component.deployment, {
        timeoutMs,
        signal,
        onProgress: (m) => progress(40, m),
      });
    } catch (err) {
      throw await this.onFailure(err, "rollout", signal);
    }
    const settle = settlementSeconds(this.config, "main", param.control);
    if (settle > 0) {
      progress(70, `settlement: watching the main pods for ${settle} s`);
      try {
        await waitForPodsStable(this.client, this.namespace, deploymentSelector(after), {
          durationMs: settle * 1000,
          signal,
          ignore: (pod) => pod.metadata?.labels?.opsani_role === "tuning",
        });
      } catch (err) {
        throw await this.onFailure(err, "settlement", signal);
      }
    }
    progress(100, "adjust complete");
    return { adjusted: true, reason: "success" };
  }

  /**
   * buildPatch validates every requested value and builds one strategic merge patch. `replicas`
   * is the replicas setting as described (absent when the config does not expose it): its range
   * bounds a requested replica count.
   */
  private buildPatch(
    containerName: string,
    requested: Record<string, { value: number | string }>,
    replicasSetting: Setting | undefined,
  ): Record<string, unknown> {
    const { component } = this.main;
    const resources: ResourcesPatch = { requests: {}, limits: {} };
    const env: { name: string; value: string; valueFrom: null }[] = [];
    let replicas: number | undefined;
    for (const [name, { value }] of Object.entries(requested)) {
      const { cpu, mem } = component.settings;
      if (name === "cpu" && cpu) {
        resourcePatch(
          resources,
          "cpu",
          checkRange(component.key, name, value, { ...K8S_CPU_DEFAULTS, ...cpu }),
          cpu.selector,
          cpu.limitMin,
        );
      } else if (name === "mem" && mem) {
        resourcePatch(
          resources,
          "mem",
          checkRange(component.key, name, value, { ...K8S_MEM_DEFAULTS, ...mem }),
          mem.selector,
          mem.limitMin,
        );
      } else if (name === "replicas" && replicasSetting?.type === "range") {
        const { min, max } = replicasSetting;
        const n = Number(value);
        if (typeof value !== "number" || !Number.isInteger(n) || n < min || n > max) {
          throw new ServoError(
            "adjust-failed",
            `component ${component.key} setting replicas: ${JSON.stringify(value)} is not allowed; expected a whole number from ${min} to ${max}`,
            { status: "failed" },
          );
        }
        replicas = n;
      } else if (component.env[name]) {
        env.push({
          name,
          value: checkEnvValue(component.key, name, value, component.env[name]),
          valueFrom: null,
        });
      } else {
        throw new ServoError("adjust-failed", `component ${component.key} has no setting ${name}`, {
          status: "failed",
        });
      }
    }
    const containerPatch: Record<string, unknown> = { name: containerName };
    if (Object.keys(resources.requests).length + Object.keys(resources.limits).length > 0)
      containerPatch.resources = resources;
    if (env.length > 0) containerPatch.env = env;
    const spec: Record<string, unknown> = {};
    if (Object.keys(containerPatch).length > 1) spec.template = { spec: { containers: [containerPatch] } };
    if (replicas !== undefined) spec.replicas = replicas;
    return { spec };
  }

  /** onFailure applies on_fail and returns the ServoError to report, in servo-k8s's vocabulary. */
  private async onFailure(
    err: unknown,
    during: "rollout" | "settlement",
    signal?: AbortSignal,
  ): Promise<ServoError> {
    // A cancelled adjust (the optimizer's cancel, or the servo stopping) is not a failure of the
    // settings: on_fail is not applied, and what was applied stays as it is.
    if (signal?.aborted) return cancelledError("adjust", signal);
    if (err instanceof ServoError) return err;
    const kube = err instanceof KubeError ? err : toKubeError(err, during);
    const unstable =
      kube.podProblem === "restarted" || kube.podProblem === "crash-loop" || during === "settlement";
    const reason =
      kube.podProblem === "image-pull" ? "image-pull-failed" : unstable ? "unstable" : "start-failed";
    const status = reason === "image-pull-failed" ? "failed" : "rejected";
    const { deployment } = this.main.component;
    let suffix = "";
    if (this.main.onFail === "rollback") {
      try {
        const revision = await rollbackDeployment(this.client, this.namespace, deployment);
        await waitForRolloutHealthy(this.client, this.namespace, deployment, {
          timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
        });
        suffix = `. Rollback to revision ${revision} succeeded`;
      } catch (rollbackErr) {
        suffix = `. Rollback failed: ${(rollbackErr as Error).message}`;
      }
    } else if (this.main.onFail === "destroy") {
      try {
        await patchObject(
          this.client,
          { apiVersion: "apps/v1", kind: "Deployment", namespace: this.namespace, name: deployment },
          { spec: { replicas: 0 } },
        );
        suffix = ". Destroy (scale to 0) succeeded";
      } catch (destroyErr) {
        suffix = `. Destroy failed: ${(destroyErr as Error).message}`;
      }
    }
    this.log.warn({ reason, during, onFail: this.main.onFail }, "main adjust failed");
    return new ServoError(reason, `${during} of the main deployment failed: ${kube.message}${suffix}`, {
      status,
      cause: kube,
    });
  }
}
