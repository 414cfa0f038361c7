import { formatCpu } from "../kube/index.js";
import type { EnvSource, EnvVar, ProbeSpec, ServiceSpec } from "./spec.js";

/**
 * The pod template and container of a service, shared by its Deployment (or StatefulSet) and
 * its CronJobs. Everything here is plain data in, plain data out.
 */

/** JsonObject is a rendered API object or part of one. */
export type JsonObject = { [key: string]: unknown };

/** ContainerOptions are the render-time parts of a container. */
export interface ContainerOptions {
  image: string;
  /** pinned: the image is named by digest, so it never needs pulling again. */
  pinned: boolean;
}

/** serviceContainer is the service's one container: ports, env, resources, probes, volumes. */
export function serviceContainer(spec: ServiceSpec, options: ContainerOptions): JsonObject {
  const ports = spec.ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: "TCP" }));
  return {
    ...baseContainer(spec.name, spec, options, { command: spec.command, args: spec.args, ports }),
    ...(spec.liveness ? { livenessProbe: probe(spec, spec.liveness, false) } : {}),
    ...(spec.readiness ? { readinessProbe: probe(spec, spec.readiness, true) } : {}),
    ...(spec.persistentStorage.length > 0
      ? { volumeMounts: spec.persistentStorage.map((v, i) => ({ name: `storage-${i}`, mountPath: v.path })) }
      : {}),
  };
}

/** ContainerParts are what differs between the service's container and a cron job's. */
export interface ContainerParts {
  command: string[];
  args: string[];
  ports?: JsonObject[];
}

/** baseContainer is what every container of a service shares: image, env, resources. */
export function baseContainer(
  name: string,
  spec: ServiceSpec,
  options: ContainerOptions,
  parts: ContainerParts,
): JsonObject {
  const container: JsonObject = {
    name,
    image: options.image,
    // Tags move, so pull them every time (as Opta did); a digest never changes.
    imagePullPolicy: options.pinned ? "IfNotPresent" : "Always",
  };
  if (parts.command.length > 0) container.command = parts.command;
  if (parts.args.length > 0) container.args = parts.args;
  if (parts.ports && parts.ports.length > 0) container.ports = parts.ports;
  if (spec.env.length > 0) container.env = spec.env.map(envVar);
  if (spec.envFrom.length > 0) container.envFrom = spec.envFrom.map(envSource);
  container.resources = resources(spec);
  return container;
}

function resources(spec: ServiceSpec): JsonObject {
  const { requests, limits } = spec.resources;
  return {
    requests: { cpu: formatCpu(requests.cpu), memory: formatBytes(requests.memory) },
    limits: {
      ...(limits.cpu === undefined ? {} : { cpu: formatCpu(limits.cpu) }),
      memory: formatBytes(limits.memory),
    },
  };
}

const binary: [string, number][] = [
  ["Ti", 2 ** 40],
  ["Gi", 2 ** 30],
  ["Mi", 2 ** 20],
  ["Ki", 2 ** 10],
];
const decimal: [string, number][] = [
  ["T", 1e12],
  ["G", 1e9],
  ["M", 1e6],
  ["k", 1e3],
];

/**
 * formatBytes writes a memory amount in its shortest exact form, binary suffixes winning ties:
 * 268435456 is "256Mi", and 2e9 stays "2G" rather than "1953125Ki".
 */
export function formatBytes(bytes: number): string {
  const whole = Math.round(bytes);
  let best = String(whole);
  for (const [suffix, unit] of [...binary, ...decimal]) {
    if (whole < unit || whole % unit !== 0) continue;
    const text = `${whole / unit}${suffix}`;
    if (text.length < best.length) best = text;
  }
  return best;
}

function envVar(e: EnvVar): JsonObject {
  if ("value" in e) return { name: e.name, value: e.value };
  const ref = { name: e.object, key: e.key, ...(e.optional ? { optional: true } : {}) };
  return { name: e.name, valueFrom: e.from === "secret" ? { secretKeyRef: ref } : { configMapKeyRef: ref } };
}

function envSource(e: EnvSource): JsonObject {
  const ref = { name: e.object, ...(e.optional ? { optional: true } : {}) };
  return {
    ...(e.prefix === undefined ? {} : { prefix: e.prefix }),
    ...(e.from === "secret" ? { secretRef: ref } : { configMapRef: ref }),
  };
}

function probe(spec: ServiceSpec, p: ProbeSpec, readiness: boolean): JsonObject {
  const port = spec.probePort?.name;
  const action =
    p.probe.kind === "exec"
      ? { exec: { command: p.probe.command } }
      : p.probe.kind === "http"
        ? { httpGet: { path: p.probe.path, port } }
        : { tcpSocket: { port } };
  return {
    ...action,
    initialDelaySeconds: p.initialDelaySeconds,
    ...(readiness ? { periodSeconds: 10 } : {}),
  };
}

/** sortedMap copies a string map with its keys sorted, so output does not depend on input order. */
export function sortedMap(map: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** podSpecExtras are the pod-level fields every pod of the service shares. */
export function podSpecExtras(spec: ServiceSpec): JsonObject {
  return {
    ...(spec.serviceAccount ? { serviceAccountName: spec.serviceAccount.name } : {}),
    ...(spec.tolerations.length > 0
      ? {
          tolerations: spec.tolerations.map((t) => ({
            key: t.key,
            operator: t.operator,
            ...(t.value === undefined ? {} : { value: t.value }),
            effect: t.effect,
          })),
        }
      : {}),
  };
}
