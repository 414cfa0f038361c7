/**
 * The k8slive connector (seed 000): a tuning pod beside the main Deployment. Describe reports the
 * tuning pod's cpu/mem/env (or, with no pod yet, the main component's) under the `component` name
 * with replicas 0..1. Adjust, when `deploy_to` and `adjust_on` allow, deletes any tuning pod and —
 * for replicas 1 — creates a new one from the main Deployment's pod template with the adjusted
 * values, label opsani_role: tuning and annotation opsani.com/opsani-tuning-for, owned by the
 * servo's Deployment so deleting the servo removes it; then waits for it to be ready and settled.
 */
import {
  KubeError,
  controllerOf,
  ignoreNotFound,
  ownerReference,
  toKubeError,
  waitForDeleted,
  waitForPodReady,
  waitForPodStable,
  type KubeClient,
  type V1ConfigMap,
  type V1Container,
  type V1OwnerReference,
  type V1Pod,
} from "../../kube/index.js";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import { settlementSeconds, type MainSection, type ServoConfig, type TuningSection } from "../config.js";
import { adjustOnData } from "../expr.js";
import { ServoError, type AdjustParam, type Setting } from "../protocol.js";
import {
  DEFAULT_TIMEOUT_SECONDS,
  mainContainer,
  readDeployment,
  skipped,
  type ConnectorOptions,
} from "./k8s.js";
import {
  applyEnv,
  applyResourcesPatch,
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

/** TUNING_ROLE_LABEL marks tuning pods (label opsani_role: tuning). */
export const TUNING_ROLE_LABEL = "opsani_role";
/** TUNING_FOR_ANNOTATION names the main Deployment a tuning pod tunes, as the seed spells it. */
export const TUNING_FOR_ANNOTATION = "opsani.com/opsani-tuning-for";
/** LEGACY_TUNING_FOR_ANNOTATION is the spelling the original code wrote; recognised when found. */
export const LEGACY_TUNING_FOR_ANNOTATION = "opsani.com/opsani_tuning_for";

/** K8sLiveOptions add where the servo itself runs, for the tuning pod's owner reference. */
export interface K8sLiveOptions extends ConnectorOptions {
  /** servoPod is the servo's own pod (POD_NAME / POD_NAMESPACE), when it runs in the cluster. */
  servoPod?: { name: string; namespace: string };
}

/** TuningPod is the `k8slive` adjust connector. */
export class TuningPod implements AdjustConnector {
  readonly name = "k8slive";
  readonly namespace: string;
  private readonly client: KubeClient;
  private readonly config: Pick<ServoConfig, "main" | "tuning">;
  private readonly main: MainSection;
  private readonly tuning: TuningSection;
  private readonly servoPod: { name: string; namespace: string } | undefined;
  private readonly log: Logger;

  constructor(options: K8sLiveOptions) {
    if (!options.config.tuning)
      throw new ServoError("invalid-config", "the servo configuration has no k8slive section");
    this.client = options.client;
    this.config = options.config;
    this.main = options.config.main;
    this.tuning = options.config.tuning;
    this.namespace = this.main.namespace ?? options.namespace ?? options.client.defaultNamespace;
    this.servoPod = options.servoPod;
    this.log = (options.log ?? silentLogger).child({ connector: "k8slive", pod: this.tuning.podName });
  }

  /** findTuningPod returns the tuning pod of the main Deployment, if there is one. */
  async findTuningPod(): Promise<V1Pod | undefined> {
    const pod = await ignoreNotFound(
      this.client.core.readNamespacedPod({ namespace: this.namespace, name: this.tuning.podName }),
    );
    if (!pod || pod.metadata?.deletionTimestamp) return undefined;
    const annotations = pod.metadata?.annotations ?? {};
    const tunes = annotations[TUNING_FOR_ANNOTATION] ?? annotations[LEGACY_TUNING_FOR_ANNOTATION];
    if (pod.metadata?.labels?.[TUNING_ROLE_LABEL] !== "tuning" || tunes !== this.main.component.deployment) {
      throw new ServoError(
        "adjust-failed",
        `pod ${this.namespace}/${this.tuning.podName} exists but is not the tuning pod of ${this.main.component.deployment}; set k8slive.pod_name to another name`,
        { status: "failed" },
      );
    }
    return pod;
  }

  /** describe reports the tuning component: the tuning pod's values, or the main component's when there is none. */
  async describe(): Promise<Record<string, ComponentDescription>> {
    const pod = await this.findTuningPod();
    let container: V1Container;
    let selectors: { cpu: "both" | "limit" | "request"; mem: "both" | "limit" | "request" };
    if (pod) {
      container = this.containerOf(pod);
      selectors = { cpu: this.tuning.cpuSelector, mem: this.tuning.memSelector };
    } else {
      const d = await readDeployment(this.client, this.namespace, this.main.component.deployment);
      container = mainContainer(d, this.main.component.container);
      const main = this.main.component.settings;
      const sel = (s: string | undefined): "both" | "limit" | "request" =>
        s === "limit" ? "limit" : s === "request" || s === "request_min_limit" ? "request" : "both";
      selectors = { cpu: sel(main.cpu?.selector), mem: sel(main.mem?.selector) };
    }
    const settings: Record<string, Setting> = {
      cpu: rangeSetting(this.tuning.cpu, readResource(container, "cpu", selectors.cpu), "cores"),
      mem: rangeSetting(this.tuning.mem, readResource(container, "mem", selectors.mem), "GiB"),
      // Pinned, as servox reports it: an optimizer tunes the pod's settings, not whether it exists;
      // an adjust that leaves replicas out means 1 (create or replace the pod).
      replicas: rangeSetting(this.tuning.replicas, pod ? 1 : 0, undefined, true),
    };
    for (const [name, setting] of Object.entries(this.main.component.env)) {
      settings[name] = envDescription(setting, envValue(container, name, setting));
    }
    return { [this.tuning.component]: { settings } };
  }

  private containerOf(pod: V1Pod): V1Container {
    const containers = pod.spec?.containers ?? [];
    const name = this.main.component.container;
    const found = name === undefined ? containers[0] : containers.find((c) => c.name === name);
    if (!found)
      throw new ServoError("adjust-failed", `tuning pod has no container ${name ?? "(first)"}`, {
        status: "failed",
      });
    return found;
  }

  /** adjust (re)creates or removes the tuning pod; see the file comment for the steps. */
  async adjust(param: AdjustParam, progress: ProgressCallback, signal?: AbortSignal): Promise<AdjustOutcome> {
    const data = adjustOnData(param);
    if (this.tuning.adjustOn) {
      const gate = this.tuning.adjustOn.matches(data);
      if (!gate.matched) return skipped(`Skipped due to 'adjust_on' condition (${gate.reason})`);
    }
    const deployTo = param.control.userdata?.deploy_to;
    if (deployTo !== this.tuning.deployTo) {
      return skipped(
        deployTo === undefined
          ? `Skipped: control.userdata.deploy_to is not set (this connector adjusts only deploy_to "${this.tuning.deployTo}")`
          : `Skipped: deploy_to is "${String(deployTo)}", not "${this.tuning.deployTo}"`,
      );
    }
    const requested = param.state.application.components[this.tuning.component]?.settings;
    if (!requested) return skipped(`component ${this.tuning.component} is not in the adjustment`);

    // Validate everything before touching the cluster, so a bad request changes nothing.
    const replicasRaw = requested.replicas?.value ?? 1;
    const replicas = Number(replicasRaw);
    if (replicas !== 0 && replicas !== 1) {
      throw new ServoError(
        "adjust-failed",
        `component ${this.tuning.component} setting replicas: ${JSON.stringify(replicasRaw)} is not supported; the tuning pod takes only 0 (remove it) or 1`,
        { status: "failed" },
      );
    }
    const pod = replicas === 1 ? await this.buildPod(requested) : undefined;

    const existing = await this.findTuningPod();
    if (existing) {
      progress(5, `deleting the old tuning pod ${this.tuning.podName}`);
      await this.deletePod(signal);
    }
    if (!pod) {
      progress(100, "tuning pod removed (replicas 0)");
      return { adjusted: true, reason: "success", message: "tuning pod removed" };
    }
    progress(15, `creating tuning pod ${this.tuning.podName}`);
    try {
      await this.client.core.createNamespacedPod({ namespace: this.namespace, body: pod });
    } catch (err) {
      throw new ServoError(
        "adjust-failed",
        `creating the tuning pod failed: ${toKubeError(err, "create pod").message}`,
        { status: "failed", cause: err },
      );
    }
    const timeoutMs = (param.control.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    try {
      await waitForPodReady(this.client, this.namespace, this.tuning.podName, {
        timeoutMs,
        signal,
        onProgress: (m) => progress(40, m),
      });
    } catch (err) {
      throw await this.onFailure(err, "start", signal);
    }
    const settle = settlementSeconds(this.config, "tuning", param.control);
    if (settle > 0) {
      progress(60, `settlement: watching the tuning pod for ${settle} s`);
      try {
        await waitForPodStable(this.client, this.namespace, this.tuning.podName, {
          durationMs: settle * 1000,
          signal,
        });
      } catch (err) {
        throw await this.onFailure(err, "settlement", signal);
      }
    }
    progress(100, "Adjust complete");
    return { adjusted: true, reason: "success", message: "Adjust complete" };
  }

  /** buildPod copies the main Deployment's pod template and applies the requested values. */
  async buildPod(requested: Record<string, { value: number | string }>): Promise<V1Pod> {
    const component = this.tuning.component;
    const d = await readDeployment(this.client, this.namespace, this.main.component.deployment);
    const template = structuredClone(d.spec?.template ?? {});
    const spec = template.spec;
    if (!spec)
      throw new ServoError("adjust-failed", "the main deployment has no pod template", { status: "failed" });
    const containerName = mainContainer(d, this.main.component.container).name;
    const container = spec.containers.find((c) => c.name === containerName) as V1Container;
    const resources: ResourcesPatch = { requests: {}, limits: {} };
    const env: Record<string, string> = {};
    for (const [name, { value }] of Object.entries(requested)) {
      if (name === "replicas") continue;
      if (name === "cpu")
        resourcePatch(
          resources,
          "cpu",
          checkRange(component, name, value, this.tuning.cpu),
          this.tuning.cpuSelector,
        );
      else if (name === "mem")
        resourcePatch(
          resources,
          "mem",
          checkRange(component, name, value, this.tuning.mem),
          this.tuning.memSelector,
        );
      else if (this.main.component.env[name])
        env[name] = checkEnvValue(component, name, value, this.main.component.env[name]);
      else
        throw new ServoError("adjust-failed", `component ${component} has no setting ${name}`, {
          status: "failed",
        });
    }
    applyResourcesPatch(container, resources);
    applyEnv(container, env);
    const metadata = template.metadata ?? {};
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: this.tuning.podName,
        namespace: this.namespace,
        labels: { ...metadata.labels, [TUNING_ROLE_LABEL]: "tuning" },
        annotations: { ...metadata.annotations, [TUNING_FOR_ANNOTATION]: this.main.component.deployment },
        ownerReferences: [await this.owner()],
      },
      spec,
    };
  }

  /**
   * owner is the servo's own Deployment (pod -> ReplicaSet -> Deployment) when the servo runs in
   * this namespace, so deleting the servo deletes the tuning pod. Otherwise (servo outside the
   * cluster, or elsewhere: owner references cannot cross namespaces) it is an anchor ConfigMap
   * named after the pod. A controller owner is needed in any case: the tuning pod carries the main
   * template's labels, and the main ReplicaSet would otherwise adopt it and scale it away.
   */
  private async owner(): Promise<V1OwnerReference> {
    if (this.servoPod && this.servoPod.namespace === this.namespace) {
      const deployment = await this.servoDeployment(this.servoPod);
      if (deployment) return deployment;
      this.log.warn(
        { servoPod: this.servoPod.name },
        "the servo pod has no owning Deployment; using an anchor ConfigMap",
      );
    } else if (this.servoPod) {
      this.log.warn(
        { servoNamespace: this.servoPod.namespace, appNamespace: this.namespace },
        "the servo runs in another namespace than the app, and owner references cannot cross namespaces: " +
          "the tuning pod is owned by an anchor ConfigMap and is not removed with the servo",
      );
    }
    const name = `${this.tuning.podName}-owner`;
    const body: V1ConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace: this.namespace, labels: { "app.kubernetes.io/managed-by": "kubewise" } },
      data: { purpose: `owns tuning pod ${this.tuning.podName}; delete it to delete the pod` },
    };
    const existing = await ignoreNotFound(
      this.client.core.readNamespacedConfigMap({ namespace: this.namespace, name }),
    );
    const anchor =
      existing ?? (await this.client.core.createNamespacedConfigMap({ namespace: this.namespace, body }));
    return ownerReference(
      { ...anchor, apiVersion: "v1", kind: "ConfigMap" },
      { controller: true, blockOwnerDeletion: false },
    );
  }

  private async servoDeployment(servo: {
    name: string;
    namespace: string;
  }): Promise<V1OwnerReference | undefined> {
    const pod = await ignoreNotFound(
      this.client.core.readNamespacedPod({ namespace: servo.namespace, name: servo.name }),
    );
    const rsRef = pod && controllerOf(pod);
    if (!rsRef || rsRef.kind !== "ReplicaSet") return undefined;
    const rs = await ignoreNotFound(
      this.client.apps.readNamespacedReplicaSet({ namespace: servo.namespace, name: rsRef.name }),
    );
    const dRef = rs && controllerOf(rs);
    if (!dRef || dRef.kind !== "Deployment") return undefined;
    return {
      apiVersion: dRef.apiVersion,
      kind: dRef.kind,
      name: dRef.name,
      uid: dRef.uid,
      controller: true,
      blockOwnerDeletion: false,
    };
  }

  private async deletePod(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.core.deleteNamespacedPod({
        namespace: this.namespace,
        name: this.tuning.podName,
        gracePeriodSeconds: 0,
      });
    } catch (err) {
      const e = toKubeError(err, "delete the tuning pod");
      if (e.reason !== "NotFound")
        throw new ServoError("adjust-failed", e.message, { status: "failed", cause: e });
    }
    await waitForDeleted(
      this.client,
      { apiVersion: "v1", kind: "Pod", namespace: this.namespace, name: this.tuning.podName },
      { timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000, signal },
    );
  }

  /** onFailure maps a failed wait to the original's vocabulary and applies on_fail. */
  private async onFailure(
    err: unknown,
    during: "start" | "settlement",
    signal?: AbortSignal,
  ): Promise<ServoError> {
    // A cancelled adjust (the optimizer's cancel, or the servo stopping) is not a failure of the
    // settings: on_fail is not applied, and what was applied stays as it is.
    if (signal?.aborted) return cancelledError("adjust", signal);
    if (err instanceof ServoError) return err;
    const kube = err instanceof KubeError ? err : toKubeError(err, during);
    const [status, reason] = failureOf(kube, during);
    let suffix = "";
    if (this.tuning.onFail === "destroy") {
      try {
        await this.deletePod();
        suffix = ". Destroy succeeded";
      } catch (destroyErr) {
        suffix = `. Destroy failed: ${(destroyErr as Error).message}`;
      }
    }
    this.log.warn({ reason, during, onFail: this.tuning.onFail }, "tuning pod adjust failed");
    const what =
      during === "start"
        ? "the tuning pod did not become ready"
        : "the tuning pod was unstable during settlement";
    return new ServoError(reason, `${what}: ${kube.message}${suffix}`, { status, cause: kube });
  }
}

/** failureOf maps a failed wait to the servo status and reason, in servo-k8slive's vocabulary. */
export function failureOf(err: KubeError, during: "start" | "settlement"): ["rejected" | "failed", string] {
  switch (err.podProblem) {
    case "restarted":
    case "crash-loop":
    case "unready":
      return ["rejected", "unstable"];
    case "unschedulable":
      return ["rejected", "scheduling-failed"];
    case "image-pull":
      return ["failed", "image-pull-failed"];
    case "failed":
    case "config":
      return ["rejected", during === "settlement" ? "unstable" : "start-failed"];
    default:
      return err.reason === "Timeout" ? ["failed", "start-failed"] : ["failed", "adjust-failed"];
  }
}
