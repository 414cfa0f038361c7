import { DeployError } from "./errors.js";
import { resolveImage, type ImageOptions } from "./image.js";
import { renderIngresses } from "./ingress.js";
import { childName } from "./names.js";
import { baseContainer, podSpecExtras, serviceContainer, sortedMap, type JsonObject } from "./pod.js";
import type { ServiceSpec } from "./spec.js";

/**
 * renderService turns a ServiceSpec into the Kubernetes objects that run it. It is a pure
 * function: the same spec and options give the same objects, in the same order, with the same
 * names, every time; nothing is read from a cluster or the clock.
 */

/** Manifest is one rendered API object. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** RenderOptions are the choices made at render time rather than in the file. */
export interface RenderOptions extends ImageOptions {
  /** namespace of every object; wins over the file's `namespace`. @default "default" */
  namespace?: string;
}

/** RenderResult is the objects, in apply order, and warnings for the user. */
export interface RenderResult {
  manifests: Manifest[];
  warnings: string[];
}

/** MANAGED_BY is the value of `app.kubernetes.io/managed-by` on everything kubewise renders. */
export const MANAGED_BY = "kubewise";

const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * renderService renders, in this order: ServiceAccount (when asked), Service (when there are
 * ports; plus a headless one for a StatefulSet), Deployment (or StatefulSet with
 * persistent_storage), HorizontalPodAutoscaler (when min and max replicas differ),
 * PodDisruptionBudget, one Ingress per public_uri, one CronJob per cron_jobs entry.
 */
export function renderService(spec: ServiceSpec, options: RenderOptions = {}): RenderResult {
  const namespace = options.namespace ?? spec.namespace ?? "default";
  if (namespace.length > 63 || !dns1123.test(namespace)) {
    throw new DeployError("invalid", `namespace: "${namespace}" is not a DNS-1123 label`);
  }
  const image = resolveImage(spec.image, spec.name, options);
  const warnings = [...spec.notes];
  if (spec.image === "AUTO" && options.tag === undefined && options.digest === undefined) {
    warnings.push(`image: AUTO with no tag or digest given, so pods run ${image}`);
  }
  const ctx: RenderContext = {
    spec,
    namespace,
    labels: { "app.kubernetes.io/name": spec.name, "app.kubernetes.io/managed-by": MANAGED_BY },
    selector: { "app.kubernetes.io/name": spec.name },
    container: { image, pinned: image.includes("@") },
  };
  const stateful = spec.persistentStorage.length > 0;
  const manifests: Manifest[] = [
    ...serviceAccount(ctx),
    ...services(ctx, stateful),
    stateful ? statefulSet(ctx) : deployment(ctx),
    ...autoscaler(ctx, stateful ? "StatefulSet" : "Deployment"),
    ...disruptionBudget(ctx, warnings),
    ...(renderIngresses(spec, namespace, ctx.labels) as Manifest[]),
    ...cronJobs(ctx),
  ];
  return { manifests, warnings };
}

interface RenderContext {
  spec: ServiceSpec;
  namespace: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  container: { image: string; pinned: boolean };
}

function metadata(
  ctx: RenderContext,
  name: string,
  annotations: Record<string, string> = {},
): Manifest["metadata"] {
  return {
    name,
    namespace: ctx.namespace,
    labels: { ...ctx.labels },
    ...(Object.keys(annotations).length > 0 ? { annotations: sortedMap(annotations) } : {}),
  };
}

function serviceAccount(ctx: RenderContext): Manifest[] {
  const sa = ctx.spec.serviceAccount;
  if (!sa?.create) return [];
  return [{ apiVersion: "v1", kind: "ServiceAccount", metadata: metadata(ctx, sa.name, sa.annotations) }];
}

/** appProtocol tells gateways and meshes what a port speaks (Kubernetes' standard names). */
const appProtocols: Record<string, string> = { grpc: "kubernetes.io/h2c", websocket: "kubernetes.io/ws" };

function services(ctx: RenderContext, stateful: boolean): Manifest[] {
  const { spec } = ctx;
  if (spec.ports.length === 0) return [];
  const ports = () =>
    spec.ports.map((p) => ({
      name: p.name,
      port: p.servicePort,
      targetPort: p.name,
      protocol: "TCP",
      ...(p.type === "http" ? { appProtocol: p.protocol ? appProtocols[p.protocol] : "http" } : {}),
    }));
  const main: Manifest = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(ctx, spec.name),
    spec: { type: "ClusterIP", selector: { ...ctx.selector }, ports: ports() },
  };
  if (!stateful) return [main];
  // A StatefulSet's pods get stable DNS names only through a headless governing Service.
  const headless: Manifest = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(ctx, childName(spec.name, "headless")),
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: { ...ctx.selector },
      ports: ports(),
    },
  };
  return [main, headless];
}

function podTemplate(ctx: RenderContext): JsonObject {
  const { spec } = ctx;
  const labels = sortedMap({ ...ctx.labels, ...spec.podLabels });
  const annotations = sortedMap(spec.podAnnotations);
  return {
    metadata: { labels, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
    spec: { ...podSpecExtras(spec), containers: [serviceContainer(spec, ctx.container)] },
  };
}

/** fixedReplicas is the replica count to write, or nothing when the autoscaler owns it. */
function fixedReplicas(spec: ServiceSpec): JsonObject {
  return spec.replicas.min === spec.replicas.max ? { replicas: spec.replicas.min } : {};
}

function deployment(ctx: RenderContext): Manifest {
  const { spec } = ctx;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(ctx, spec.name),
    spec: {
      ...fixedReplicas(spec),
      selector: { matchLabels: { ...ctx.selector } },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxSurge: spec.rollout.maxSurge, maxUnavailable: spec.rollout.maxUnavailable },
      },
      template: podTemplate(ctx),
    },
  };
}

function statefulSet(ctx: RenderContext): Manifest {
  const { spec } = ctx;
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: metadata(ctx, spec.name),
    spec: {
      ...fixedReplicas(spec),
      serviceName: childName(spec.name, "headless"),
      podManagementPolicy: "Parallel",
      selector: { matchLabels: { ...ctx.selector } },
      updateStrategy: { type: "RollingUpdate" },
      template: podTemplate(ctx),
      volumeClaimTemplates: spec.persistentStorage.map((v, i) => ({
        metadata: { name: `storage-${i}` },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: formatStorage(v.size) } } },
      })),
    },
  };
}

function formatStorage(bytes: number): string {
  const gib = bytes / 2 ** 30;
  return Number.isInteger(gib) ? `${gib}Gi` : `${Math.ceil(bytes / 2 ** 20)}Mi`;
}

function autoscaler(ctx: RenderContext, kind: string): Manifest[] {
  const { spec } = ctx;
  if (spec.replicas.min === spec.replicas.max) return [];
  const target = (name: string, averageUtilization: number) => ({
    type: "Resource",
    resource: { name, target: { type: "Utilization", averageUtilization } },
  });
  return [
    {
      apiVersion: "autoscaling/v2",
      kind: "HorizontalPodAutoscaler",
      metadata: metadata(ctx, spec.name),
      spec: {
        scaleTargetRef: { apiVersion: "apps/v1", kind, name: spec.name },
        minReplicas: spec.replicas.min,
        maxReplicas: spec.replicas.max,
        metrics: [
          target("cpu", spec.autoscaling.cpuPercent),
          target("memory", spec.autoscaling.memoryPercent),
        ],
      },
    },
  ];
}

function disruptionBudget(ctx: RenderContext, warnings: string[]): Manifest[] {
  const { spec } = ctx;
  const pdb = spec.disruptionBudget;
  if (pdb === undefined) return [];
  if (
    "minAvailable" in pdb &&
    typeof pdb.minAvailable === "number" &&
    pdb.minAvailable >= spec.replicas.min
  ) {
    warnings.push(
      `pod_disruption_budget: min_available ${pdb.minAvailable} with ${spec.replicas.min} replica(s) at the minimum blocks every node drain`,
    );
  }
  return [
    {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: metadata(ctx, spec.name),
      spec: { selector: { matchLabels: { ...ctx.selector } }, ...pdb },
    },
  ];
}

function cronJobs(ctx: RenderContext): Manifest[] {
  const { spec } = ctx;
  return spec.cronJobs.map((cron, i) => {
    // 52, not 63: the CronJob controller appends an 11-character suffix to name each Job.
    const name = childName(spec.name, `cron-${i}`, 52);
    // Not the service's own name label: the Service selects on it, and must not send traffic to cron pods.
    const labels = {
      "app.kubernetes.io/name": name,
      "app.kubernetes.io/part-of": spec.name,
      "app.kubernetes.io/managed-by": MANAGED_BY,
    };
    const annotations = sortedMap(spec.podAnnotations);
    const podLabels = sortedMap({ ...spec.podLabels, ...labels });
    return {
      apiVersion: "batch/v1",
      kind: "CronJob",
      metadata: { name, namespace: ctx.namespace, labels },
      spec: {
        schedule: cron.schedule,
        jobTemplate: {
          spec: {
            template: {
              metadata: {
                labels: podLabels,
                ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
              },
              spec: {
                restartPolicy: "Never",
                ...podSpecExtras(spec),
                containers: [
                  baseContainer("cron", spec, ctx.container, { command: cron.command, args: cron.args }),
                ],
              },
            },
          },
        },
      },
    };
  });
}
