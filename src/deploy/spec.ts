import { z } from "zod";
import { parseConfig, readYamlFile, ConfigError } from "../config/index.js";
import { interpolateVariables } from "./interpolate.js";
import { childName } from "./names.js";
import { optaUnitNote } from "./quantities.js";
import { OPTA_ONLY_FIELDS, rawServiceSchema, type RawService } from "./schema.js";
import { normalizeTuning, type TuningSpec } from "./tuning.js";

/**
 * ServiceSpec is a service.yaml with every default worked out and every cross-field rule
 * checked: what `renderService` needs and nothing it has to guess. Amounts are in base units
 * (cpu in cores, memory in bytes), whatever form the file used.
 */
export interface ServiceSpec {
  name: string;
  /** namespace from the file; the render option wins over it. */
  namespace?: string;
  /** image is `AUTO` (the local registry) or an image reference. */
  image: string;
  /** command replaces the image's entrypoint (Opta's `commands`); empty keeps it. */
  command: string[];
  args: string[];
  ports: PortSpec[];
  /** probePort is the port health probes use: `probe_port`, else the first port. */
  probePort?: PortSpec;
  /** replicas: min == max means a fixed count and no autoscaler. */
  replicas: { min: number; max: number };
  autoscaling: { cpuPercent: number; memoryPercent: number };
  resources: {
    requests: { cpu: number; memory: number };
    /** limits.cpu is absent when the CPU limit is switched off. */
    limits: { cpu?: number; memory: number };
  };
  env: EnvVar[];
  envFrom: EnvSource[];
  liveness?: ProbeSpec;
  readiness?: ProbeSpec;
  ingress: IngressSpec;
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  tolerations: Toleration[];
  serviceAccount?: { name: string; create: boolean; annotations: Record<string, string> };
  rollout: { maxSurge: number | string; maxUnavailable: number | string };
  disruptionBudget?: { minAvailable: number | string } | { maxUnavailable: number | string };
  persistentStorage: { size: number; path: string }[];
  cronJobs: { schedule: string; command: string[]; args: string[] }[];
  tuning?: TuningSpec;
  /** notes are things the spec asks for that have no effect here, for the user to see. */
  notes: string[];
}

/** PortSpec is one port: Opta's (type, protocol) pairs are http, http+grpc, http+websocket and tcp. */
export interface PortSpec {
  name: string;
  type: "http" | "tcp";
  protocol?: "grpc" | "websocket";
  port: number;
  /** servicePort is the Service's port: 80 for http ports, the container port for tcp ports by default. */
  servicePort: number;
}

/** EnvVar is a literal value or a key of a Secret or ConfigMap. */
export type EnvVar =
  | { name: string; value: string }
  | { name: string; from: "secret" | "configMap"; object: string; key: string; optional: boolean };

/** EnvSource loads every key of a Secret or ConfigMap as environment variables. */
export interface EnvSource {
  from: "secret" | "configMap";
  object: string;
  prefix?: string;
  optional: boolean;
}

/** Probe is how a container is checked: an HTTP GET, a command, or a TCP connect. */
export type Probe = { kind: "http"; path: string } | { kind: "exec"; command: string[] } | { kind: "tcp" };

export interface ProbeSpec {
  probe: Probe;
  initialDelaySeconds: number;
}

/** PublicUri is one `public_uri` entry: host absent means every host. */
export interface PublicUri {
  host?: string;
  path: string;
}

export interface IngressSpec {
  uris: PublicUri[];
  /** keepPathPrefix passes `/api/x` on as `/api/x`; otherwise the app sees `/x`. */
  keepPathPrefix: boolean;
  className: string;
  /** tls: secretName absent means one Secret per Ingress, named after it (see renderIngresses). */
  tls?: { secretName?: string; clusterIssuer?: string };
  stickySession?: { cookieName: string; maxAgeSeconds: number };
  consistentHash?: string;
  extraAnnotations: Record<string, string>;
}

export interface Toleration {
  key: string;
  operator: "Equal" | "Exists";
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

/** SpecOptions are what loading a spec needs besides the file. */
export interface SpecOptions {
  /**
   * variables fill Opta placeholders such as `{parent.domain}` (`--var parent.domain=x`).
   * `module_name` (the service name) and `layer_name` (the namespace) are always defined.
   */
  variables?: Readonly<Record<string, string>>;
  /** namespace fills `{layer_name}` when the file sets none. @default "default" */
  namespace?: string;
}

/**
 * Issue is how normalizing reports a cross-field problem: the field path and the message. The
 * value shown is the one written at that path, unless `value` is given because the path holds
 * something else (e.g. the env_vars value a tuning range must include).
 */
export type Issue = (path: (string | number)[], message: string, value?: unknown) => void;

const ctxIssue =
  (ctx: z.RefinementCtx<RawService>): Issue =>
  (path, message, value) => {
    ctx.issues.push({ code: "custom", path, message, input: value });
  };

/** serviceSchema validates a service.yaml document and yields a ServiceSpec. */
export const serviceSchema = rawServiceSchema.transform((raw, ctx): ServiceSpec =>
  normalize(raw, ctxIssue(ctx)),
);

/**
 * parseServiceSpec validates a parsed service.yaml document (placeholders filled first) and
 * returns the ServiceSpec, or throws a ConfigError listing every problem. `file` labels messages.
 */
export function parseServiceSpec(doc: unknown, options: SpecOptions = {}, file?: string): ServiceSpec {
  const name = doc !== null && typeof doc === "object" ? (doc as { name?: unknown }).name : undefined;
  const fileNamespace =
    doc !== null && typeof doc === "object" ? (doc as { namespace?: unknown }).namespace : undefined;
  const variables: Record<string, string> = {
    ...(typeof name === "string" ? { module_name: name } : {}),
    layer_name: options.namespace ?? (typeof fileNamespace === "string" ? fileNamespace : "default"),
    ...options.variables,
  };
  const filled = interpolateVariables(doc, variables);
  if (filled.issues.length > 0) throw new ConfigError("invalid", file, filled.issues);
  const spec = parseConfig(serviceSchema, filled.value, file);
  spec.notes.push(...amountNotes(doc));
  return spec;
}

/**
 * amountNotes warns about cpu and memory amounts written as whole-number strings (see
 * optaUnitNote). It reads the document as written, before placeholders are filled: `cpu:
 * "{vars.cpu}"` is Opta's own idiom, which Opta too reads in millicores, so it gets no note.
 */
function amountNotes(doc: unknown): string[] {
  const notes: string[] = [];
  for (const section of ["resource_request", "resource_limits"] as const) {
    const amounts = field(doc, section);
    for (const kind of ["cpu", "memory"] as const) {
      const note = optaUnitNote(`${section}.${kind}`, kind, field(amounts, kind));
      if (note !== undefined) notes.push(note);
    }
  }
  return notes;
}

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
}

/** loadServiceSpec reads a service.yaml file; see parseServiceSpec. */
export function loadServiceSpec(file: string, options: SpecOptions = {}): ServiceSpec {
  return parseServiceSpec(readYamlFile(file), options, file);
}

function normalize(raw: RawService, issue: Issue): ServiceSpec {
  const ports = normalizePorts(raw, issue);
  const probePort = raw.probe_port === undefined ? ports[0] : ports.find((p) => p.name === raw.probe_port);
  if (raw.probe_port !== undefined && probePort === undefined) {
    issue(
      ["probe_port"],
      `must name one of the ports (${ports.map((p) => p.name).join(", ") || "none defined"})`,
      raw.probe_port,
    );
  }
  const replicas = normalizeReplicas(raw, issue);
  const resources = normalizeResources(raw, issue);
  const env = normalizeEnv(raw, issue);
  const notes = OPTA_ONLY_FIELDS.filter((f) => raw[f] !== undefined).map(
    (f) => `${f}: Opta-only field, ignored (it needs Opta's cloud modules)`,
  );
  const spec: ServiceSpec = {
    name: raw.name,
    ...(raw.namespace === undefined ? {} : { namespace: raw.namespace }),
    image: raw.image,
    command: raw.commands ?? [],
    args: raw.args ?? [],
    ports,
    ...(probePort === undefined ? {} : { probePort }),
    replicas,
    autoscaling: normalizeAutoscaling(raw, replicas, notes),
    resources,
    env,
    envFrom: (raw.env_from ?? []).map((e) => ({
      from: e.secret === undefined ? ("configMap" as const) : ("secret" as const),
      object: (e.secret ?? e.config_map) as string,
      ...(e.prefix === undefined ? {} : { prefix: e.prefix }),
      optional: e.optional ?? false,
    })),
    ...normalizeProbes(raw, probePort, issue, notes),
    ingress: normalizeIngress(raw, ports, issue),
    podLabels: normalizePodLabels(raw, issue),
    podAnnotations: raw.pod_annotations ?? {},
    tolerations: normalizeTolerations(raw, issue),
    ...normalizeServiceAccount(raw),
    rollout: normalizeRollout(raw, issue, notes),
    ...normalizeDisruptionBudget(raw, replicas),
    persistentStorage: normalizePersistentStorage(raw, issue),
    cronJobs: (raw.cron_jobs ?? []).map((c) => ({
      schedule: c.schedule,
      command: c.commands,
      args: c.args ?? [],
    })),
    notes,
  };
  if (raw.tuning !== undefined) spec.tuning = normalizeTuning(raw.tuning, spec, issue);
  return spec;
}

const legacyTypes: Record<string, Pick<PortSpec, "type" | "protocol">> = {
  http: { type: "http" },
  grpc: { type: "http", protocol: "grpc" },
  websocket: { type: "http", protocol: "websocket" },
  // Opta maps the legacy `tcp` key to a websocket port (modules/base.py legacy_port_type_mapping).
  tcp: { type: "http", protocol: "websocket" },
};

function normalizePorts(raw: RawService, issue: Issue): PortSpec[] {
  if (raw.port !== undefined && raw.ports !== undefined) {
    issue(["port"], "cannot be used together with ports: keep one of them");
    return [];
  }
  if (raw.port !== undefined) {
    // Opta's legacy form always names the port "main" with service port 80.
    return Object.entries(raw.port).map(([type, port]) => ({
      name: "main",
      ...(legacyTypes[type] as Pick<PortSpec, "type" | "protocol">),
      port: port as number,
      servicePort: 80,
    }));
  }
  const ports = (raw.ports ?? []).map((p, i): PortSpec => {
    const shorthand = p.type === "grpc" || p.type === "websocket" ? p.type : undefined;
    if (p.protocol !== undefined && p.type === "tcp") {
      issue(
        ["ports", i, "protocol"],
        `${p.protocol} runs over http: use type http (or type ${p.protocol})`,
        p.protocol,
      );
    }
    if (shorthand !== undefined && p.protocol !== undefined && p.protocol !== shorthand) {
      issue(["ports", i, "protocol"], `conflicts with type ${shorthand}`, p.protocol);
    }
    const type = p.type === "tcp" ? "tcp" : "http";
    const protocol = shorthand ?? p.protocol;
    return {
      name: p.name,
      type,
      ...(protocol === undefined || type === "tcp" ? {} : { protocol }),
      port: p.port,
      servicePort: p.service_port ?? (type === "http" ? 80 : p.port),
    };
  });
  for (const field of ["name", "port", "servicePort"] as const) {
    const seen = new Set<unknown>();
    ports.forEach((p, i) => {
      if (seen.has(p[field])) {
        const hint = field === "servicePort" ? " (http ports default to 80: set service_port)" : "";
        issue(
          ["ports", i, field === "servicePort" ? "service_port" : field],
          `duplicates another port's ${field}${hint}`,
          p[field],
        );
      }
      seen.add(p[field]);
    });
  }
  return ports;
}

function normalizeReplicas(raw: RawService, issue: Issue): ServiceSpec["replicas"] {
  if (raw.replicas !== undefined) {
    if (raw.min_containers !== undefined || raw.max_containers !== undefined) {
      issue(
        ["replicas"],
        "is a fixed count: use either replicas or min_containers/max_containers",
        raw.replicas,
      );
    }
    return { min: raw.replicas, max: raw.replicas };
  }
  const min = raw.min_containers ?? 1;
  const max = raw.max_containers ?? Math.max(3, min);
  if (min > max) issue(["min_containers"], `must be at most max_containers (${max})`);
  if (min === 0 && max !== 0)
    issue(["min_containers"], "can be 0 only when max_containers is 0 too (scaled down)");
  return { min, max };
}

function normalizeAutoscaling(
  raw: RawService,
  replicas: ServiceSpec["replicas"],
  notes: string[],
): ServiceSpec["autoscaling"] {
  if (replicas.min === replicas.max) {
    // A fixed count renders no HPA (see renderService), so a target set for it would do nothing unseen.
    const count = raw.replicas === undefined ? "min_containers equals max_containers" : "replicas is set";
    for (const f of ["autoscaling_target_cpu_percentage", "autoscaling_target_mem_percentage"] as const) {
      if (raw[f] !== undefined) {
        notes.push(
          `${f}: has no effect with a fixed replica count (${count}: ${replicas.min}), so no autoscaler is rendered; set max_containers above min_containers to autoscale`,
        );
      }
    }
  }
  return {
    cpuPercent: raw.autoscaling_target_cpu_percentage ?? 80,
    memoryPercent: raw.autoscaling_target_mem_percentage ?? 80,
  };
}

function normalizeResources(raw: RawService, issue: Issue): ServiceSpec["resources"] {
  const requests = {
    cpu: raw.resource_request?.cpu ?? 0.1,
    memory: raw.resource_request?.memory ?? 128 * 2 ** 20,
  };
  const cpuLimit = raw.resource_limits?.cpu;
  const limits: ServiceSpec["resources"]["limits"] = {
    memory: raw.resource_limits?.memory ?? 2 * requests.memory,
  };
  // An absent limit is twice the request; `cpu: false` (or null) switches the CPU limit off.
  if (cpuLimit === undefined) limits.cpu = 2 * requests.cpu;
  else if (typeof cpuLimit === "number") limits.cpu = cpuLimit;
  if (limits.cpu !== undefined && limits.cpu < requests.cpu) {
    issue(["resource_limits", "cpu"], "must be at least the cpu request (or false for no limit)");
  }
  if (limits.memory < requests.memory) {
    issue(["resource_limits", "memory"], "must be at least the memory request");
  }
  return { requests, limits };
}

function normalizeEnv(raw: RawService, issue: Issue): EnvVar[] {
  const env: { v: EnvVar; at: (string | number)[] }[] = [];
  const source = raw.env_vars ?? [];
  const entries = Array.isArray(source)
    ? source.map((e, i) => ({ e, at: ["env_vars", i, "name"] }))
    : Object.entries(source).map(([name, v]) => ({ e: { name, ...mapValue(v) }, at: ["env_vars", name] }));
  for (const { e, at } of entries) {
    if (e.value !== undefined) env.push({ v: { name: e.name, value: e.value }, at });
    else {
      const from = e.secret === undefined ? "configMap" : "secret";
      const object = (e.secret ?? e.config_map) as string;
      env.push({
        v: { name: e.name, from, object, key: e.key ?? e.name, optional: e.optional ?? false },
        at,
      });
    }
  }
  // Opta's deprecated `secrets` lists keys of one Secret per service.
  (raw.secrets ?? []).forEach((name, i) => {
    const object = childName(raw.name, "secrets");
    env.push({ v: { name, from: "secret", object, key: name, optional: false }, at: ["secrets", i] });
  });
  const seen = new Set<string>();
  for (const { v, at } of env) {
    if (seen.has(v.name))
      issue(at, `defines ${v.name} a second time (env_vars and secrets share one namespace)`);
    seen.add(v.name);
  }
  return env.map((e) => e.v);
}

type MapValue = Extract<NonNullable<RawService["env_vars"]>, Record<string, unknown>>[string];

function mapValue(v: MapValue): {
  value?: string;
  secret?: string;
  config_map?: string;
  key?: string;
  optional?: boolean;
} {
  return typeof v === "string" ? { value: v } : v;
}

function normalizeProbes(
  raw: RawService,
  port: PortSpec | undefined,
  issue: Issue,
  notes: string[],
): Pick<ServiceSpec, "liveness" | "readiness"> {
  const pick = (kind: "liveness" | "readiness" | "healthcheck"): Probe | undefined => {
    const path = kind === "healthcheck" ? raw.healthcheck_path : raw[`${kind}_probe_path`];
    const command = kind === "healthcheck" ? raw.healthcheck_command : raw[`${kind}_probe_command`];
    const field = kind === "healthcheck" ? "healthcheck" : `${kind}_probe`;
    const hasCommand = command !== null && command !== undefined && command.length > 0;
    if (hasCommand && path)
      issue([`${field}_command`], `set either ${field}_path or ${field}_command, not both`);
    if (hasCommand) return { kind: "exec", command };
    if (!path) return undefined;
    if (port === undefined) {
      issue([`${field}_path`], "needs a port to probe (port or ports)", path);
      return undefined;
    }
    if (!isHttpProbe(port)) {
      notes.push(
        `${field}_path: port ${port.name} is ${describePort(port)}, so it is checked by TCP and the path is not used`,
      );
      return { kind: "tcp" };
    }
    return { kind: "http", path };
  };
  const general = pick("healthcheck");
  // Websocket, grpc and tcp ports are checked by TCP connect even with no healthcheck set.
  const fallback =
    general ?? (port !== undefined && !isHttpProbe(port) ? ({ kind: "tcp" } as const) : undefined);
  const liveness = pick("liveness") ?? fallback;
  const readiness = pick("readiness") ?? fallback;
  return {
    ...(liveness === undefined
      ? {}
      : { liveness: { probe: liveness, initialDelaySeconds: raw.initial_liveness_delay } }),
    ...(readiness === undefined
      ? {}
      : { readiness: { probe: readiness, initialDelaySeconds: raw.initial_readiness_delay } }),
  };
}

/** isHttpProbe: only plain http ports answer an HTTP probe (Opta's PortSpec.probe_type). */
export function isHttpProbe(port: PortSpec): boolean {
  return port.type === "http" && port.protocol === undefined;
}

function describePort(port: PortSpec): string {
  return port.protocol ?? port.type;
}

const hostPattern = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const uriPathPattern = /^(\/[A-Za-z0-9._~%!&'=:@-]+)*\/?$/;

/**
 * parsePublicUri reads Opta's `host/path` form: "/path", "*" and "all" mean every host
 * (Opta turns "/x" and "*x" into "all/x"); "*.example.com" is a wildcard host.
 */
export function parsePublicUri(uri: string): PublicUri | string {
  if (/^[a-z]+:\/\//i.test(uri)) return 'takes host/path without a scheme, e.g. "app.example.com/api"';
  const slash = uri.indexOf("/");
  const hostPart = slash < 0 ? uri : uri.slice(0, slash);
  const rawPath = slash < 0 ? "/" : uri.slice(slash);
  const path = rawPath.length > 1 ? rawPath.replace(/\/+$/, "") : "/";
  if (!uriPathPattern.test(path)) return `path "${path}" may hold only letters, digits, "/" and -._~%!&'=:@`;
  if (hostPart === "" || hostPart === "*" || hostPart === "all") return { path };
  if (!hostPattern.test(hostPart)) return `host "${hostPart}" is not a lower-case DNS name`;
  return { host: hostPart, path };
}

function normalizeIngress(raw: RawService, ports: PortSpec[], issue: Issue): IngressSpec {
  const uris = normalizeUris(raw, issue);
  if (uris.length > 0 && !ports.some((p) => p.type === "http")) {
    issue(["public_uri"], "needs an http port to route to (a port of type http, grpc or websocket)");
  }
  if (raw.sticky_session && raw.consistent_hash) {
    issue(["consistent_hash"], "cannot be combined with sticky_session: choose one");
  }
  const tls = normalizeTls(raw, issue);
  return {
    uris,
    keepPathPrefix: raw.keep_path_prefix,
    className: raw.ingress_class,
    ...(tls === undefined ? {} : { tls }),
    ...(raw.sticky_session
      ? {
          stickySession: {
            cookieName: raw.sticky_session_cookie ?? "opta-cookie",
            maxAgeSeconds: raw.sticky_session_max_age,
          },
        }
      : {}),
    ...(raw.consistent_hash ? { consistentHash: raw.consistent_hash } : {}),
    extraAnnotations: raw.ingress_extra_annotations ?? {},
  };
}

function normalizeUris(raw: RawService, issue: Issue): PublicUri[] {
  const list = publicUris(raw);
  const uris: PublicUri[] = [];
  const seen = new Set<string>();
  list.forEach((text, i) => {
    const at = Array.isArray(raw.public_uri) ? ["public_uri", i] : ["public_uri"];
    const uri = parsePublicUri(text);
    if (typeof uri === "string") return issue(at, uri);
    const key = `${uri.host ?? "*"}${uri.path}`;
    if (seen.has(key)) issue(at, "is listed twice");
    seen.add(key);
    uris.push(uri);
  });
  return uris;
}

function publicUris(raw: RawService): string[] {
  if (raw.public_uri === undefined || raw.public_uri === null) return [];
  return Array.isArray(raw.public_uri) ? raw.public_uri : [raw.public_uri];
}

function normalizeTls(raw: RawService, issue: Issue): IngressSpec["tls"] {
  if (raw.tls === undefined || raw.tls === false) return undefined;
  if (publicUris(raw).length === 0) issue(["tls"], "needs a public_uri to secure");
  if (raw.tls === true) return {};
  return {
    ...(raw.tls.secret_name === undefined ? {} : { secretName: raw.tls.secret_name }),
    ...(raw.tls.cluster_issuer === undefined ? {} : { clusterIssuer: raw.tls.cluster_issuer }),
  };
}

function normalizePodLabels(raw: RawService, issue: Issue): Record<string, string> {
  const labels = raw.pod_labels ?? {};
  if ("app.kubernetes.io/name" in labels) {
    issue(
      ["pod_labels", "app.kubernetes.io/name"],
      "is set by kubewise to the service name (the Service selects on it)",
      labels["app.kubernetes.io/name"],
    );
  }
  return labels;
}

function normalizeTolerations(raw: RawService, issue: Issue): Toleration[] {
  return (raw.tolerations ?? []).map((t, i) => {
    // Opta filled a missing value with "opta"; "any value" (Exists) covers that and is what a
    // toleration without a value usually means.
    const operator = t.operator ?? (t.value === undefined ? "Exists" : "Equal");
    if (operator === "Exists" && t.value !== undefined)
      issue(["tolerations", i, "value"], "must be empty with operator Exists", t.value);
    return {
      key: t.key,
      operator,
      ...(t.value === undefined ? {} : { value: t.value }),
      effect: t.effect ?? "NoSchedule",
    };
  });
}

function normalizeServiceAccount(raw: RawService): Pick<ServiceSpec, "serviceAccount"> {
  const sa = raw.service_account;
  if (sa === undefined || sa === false) return {};
  if (sa === true) return { serviceAccount: { name: raw.name, create: true, annotations: {} } };
  if (typeof sa === "string") return { serviceAccount: { name: sa, create: false, annotations: {} } };
  return {
    serviceAccount: {
      name: sa.name ?? raw.name,
      create: sa.create ?? true,
      annotations: sa.annotations ?? {},
    },
  };
}

function normalizeRollout(raw: RawService, issue: Issue, notes: string[]): ServiceSpec["rollout"] {
  const zero = (v: number | string) => v === 0 || v === "0%";
  if (zero(raw.max_surge) && zero(raw.max_unavailable)) {
    issue(
      ["max_unavailable"],
      "cannot be 0 when max_surge is 0 too: the rollout could never start",
      raw.max_unavailable,
    );
  }
  if ((raw.persistent_storage ?? []).length > 0 && raw.max_surge !== "25%") {
    notes.push(
      "max_surge: a StatefulSet (persistent_storage) replaces pods one by one, so max_surge is not used",
    );
  }
  return { maxSurge: raw.max_surge, maxUnavailable: raw.max_unavailable };
}

function normalizeDisruptionBudget(
  raw: RawService,
  replicas: ServiceSpec["replicas"],
): Pick<ServiceSpec, "disruptionBudget"> {
  const pdb = raw.pod_disruption_budget;
  if (pdb === false || replicas.max === 0) return {};
  if (pdb === undefined) {
    // By default only services that always run two or more pods get one: with a single pod,
    // any budget either blocks node drains or allows the outage anyway.
    return replicas.min >= 2 ? { disruptionBudget: { maxUnavailable: 1 } } : {};
  }
  if (pdb === true) return { disruptionBudget: { maxUnavailable: 1 } };
  return {
    disruptionBudget:
      pdb.min_available === undefined
        ? { maxUnavailable: pdb.max_unavailable as number | string }
        : { minAvailable: pdb.min_available },
  };
}

function normalizePersistentStorage(raw: RawService, issue: Issue): ServiceSpec["persistentStorage"] {
  const volumes = raw.persistent_storage ?? [];
  const seen = new Set<string>();
  volumes.forEach((v, i) => {
    if (seen.has(v.path)) issue(["persistent_storage", i, "path"], "is mounted twice", v.path);
    seen.add(v.path);
  });
  return volumes.map((v) => ({ size: v.size, path: v.path }));
}
