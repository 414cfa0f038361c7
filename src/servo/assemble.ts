/**
 * assembleServo builds a servo from a loaded servo.yaml: the k8s connector for the main
 * component, the k8slive connector when there is a k8slive section, the configured measure
 * connector, and a transport — HTTP to a remote optimizer, or the local optimizer in-process.
 */
import { WatchedJobsMeasure } from "../jobs/index.js";
import type { KubeClient } from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { ServoConfig } from "./config.js";
import { MainDeployment, mainContainer, readDeployment } from "./connectors/k8s.js";
import { TuningPod } from "./connectors/k8slive.js";
import { PrometheusConnector } from "./connectors/prometheus.js";
import { readResource } from "./connectors/resources.js";
import { SyntheticWorkload, type WorkloadSettings } from "./connectors/synthetic.js";
import type { AdjustConnector, Clock, MeasureConnector } from "./connectors/types.js";
import { ServoError } from "./protocol.js";

export interface AssembleOptions {
  client: KubeClient;
  log?: Logger;
  clock?: Clock;
  /** servoPod is where the servo runs in the cluster (from POD_NAME / POD_NAMESPACE). */
  servoPod?: { name: string; namespace: string };
  /** measurer replaces the configured measure connector. */
  measurer?: MeasureConnector;
}

/** ServoParts are the connectors a Servo runs. */
export interface ServoParts {
  adjusters: AdjustConnector[];
  measurer?: MeasureConnector;
  main: MainDeployment;
  tuning?: TuningPod;
}

/** servoPodFromEnv reads POD_NAME / POD_NAMESPACE (set by the downward API in the servo's manifest). */
export function servoPodFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): { name: string; namespace: string } | undefined {
  return env.POD_NAME && env.POD_NAMESPACE ? { name: env.POD_NAME, namespace: env.POD_NAMESPACE } : undefined;
}

export function assembleServo(config: ServoConfig, options: AssembleOptions): ServoParts {
  const log = options.log ?? silentLogger;
  const base = { client: options.client, config, log };
  const main = new MainDeployment(base);
  const tuning = config.tuning ? new TuningPod({ ...base, servoPod: options.servoPod }) : undefined;
  const adjusters: AdjustConnector[] = tuning ? [main, tuning] : [main];
  const measurer = options.measurer ?? buildMeasurer(config, options, main, tuning);
  return { adjusters, measurer, main, tuning };
}

function buildMeasurer(
  config: ServoConfig,
  options: AssembleOptions,
  main: MainDeployment,
  tuning: TuningPod | undefined,
): MeasureConnector | undefined {
  const measure = config.measure;
  if (!measure) return undefined;
  switch (measure.connector) {
    case "prometheus":
      return new PrometheusConnector(measure, { clock: options.clock });
    case "synthetic":
      return new SyntheticWorkload(measure, () => workloadSettings(options.client, config, main, tuning), {
        clock: options.clock,
      });
    case "jobs":
      return new WatchedJobsMeasure(measure.options, {
        client: options.client,
        namespace: main.namespace,
        log: options.log,
        clock: options.clock,
      });
  }
}

/**
 * workloadSettings reads what the synthetic model simulates: the tuning pod's container when
 * there is one, else the main container — its actual cpu and mem (request, else limit) and env.
 */
async function workloadSettings(
  client: KubeClient,
  config: ServoConfig,
  main: MainDeployment,
  tuning: TuningPod | undefined,
): Promise<WorkloadSettings> {
  const pod = await tuning?.findTuningPod();
  const container = pod
    ? (pod.spec?.containers.find((c) => c.name === config.main.component.container) ??
      pod.spec?.containers[0])
    : mainContainer(
        await readDeployment(client, main.namespace, config.main.component.deployment),
        config.main.component.container,
      );
  if (!container) throw new ServoError("measure-failed", "no container to measure");
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
  return { cpu: readResource(container, "cpu", "both"), mem: readResource(container, "mem", "both"), env };
}
