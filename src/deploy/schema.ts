import { z } from "zod";
import { byKind } from "./by-kind.js";
import { parseImageRef } from "./image.js";
import { cpuQuantity, memoryQuantity, storageQuantity } from "./quantities.js";
import { tuningSchema } from "./tuning-schema.js";

/**
 * The service.yaml schema as written by users, before defaults are worked out. Field names and
 * forms are Opta's k8s-service ones (research/agents-operators.md §C.1), so an Opta module block
 * validates unchanged; kubewise's additions use the same snake_case style. Objects are strict so
 * a misspelt field is reported, not silently ignored.
 */

const dns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const portName = /^(?=.*[a-z])[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$|^[a-z]$/;
const envName = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const qualifiedName =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/**
 * cleanOnly makes a cross-field refine run only on an otherwise valid object, so "needs exactly
 * one of" is not reported beside (and about the remains of) an unknown key.
 */
const cleanOnly = (error: string) => ({ error, when: (p: { issues: unknown[] }) => p.issues.length === 0 });

const serviceName = z
  .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") })
  .max(63, "must be at most 63 characters")
  .regex(dns1035, 'must be lower-case letters, digits and "-", starting with a letter (a DNS-1035 label)');
const objectName = z
  .string()
  .max(253, "must be at most 253 characters")
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    'must be lower-case letters, digits, "-" and "." (a DNS-1123 name)',
  );
const portNumber = z.number().int().min(1, "must be 1-65535").max(65535, "must be 1-65535");

/** count is a whole number; Opta accepts numeric strings too (they come from `{vars.x}`). */
const count = byKind(
  {
    number: z.number().int("must be a whole number").min(0, "must be 0 or more"),
    string: z.string().regex(/^\d+$/, "must be a whole number").transform(Number),
  },
  "must be a whole number",
);

/** percent is a whole percentage, as 80, "80" or "80%". */
const percent = byKind(
  {
    number: z.number().int("must be a whole percentage").min(1, "must be at least 1 (percent)"),
    string: z
      .string()
      .regex(/^\d+%?$/, 'must be a whole percentage such as 80 or "80%"')
      .transform((s) => Number(s.replace("%", ""))),
  },
  'must be a whole percentage such as 80 or "80%"',
);

/** intOrPercent is a Kubernetes IntOrString as rolling updates and PDBs take it: 1 or "25%". */
export const intOrPercent = byKind(
  {
    number: z.number().int("must be a whole number").min(0, "must be 0 or more"),
    string: z.string().regex(/^\d+%$/, 'must be a whole number or a percentage like "25%"'),
  },
  'must be a whole number or a percentage like "25%"',
);

/** text accepts a scalar and keeps it as a string: YAML users write `FLAG: true` and `PORT: 8080`. */
const text = byKind(
  { string: z.string(), number: z.number(), boolean: z.boolean() },
  "must be a string",
).transform(String);

function keyedMap(keyRule: RegExp, valueSchema: z.ZodType<string>, what: string) {
  return z.record(z.string().regex(keyRule, `is not a valid ${what} key`), valueSchema);
}

const labels = keyedMap(
  qualifiedName,
  text.pipe(z.string().regex(labelValue, "is not a valid label value (63 characters: letters, digits, -_.)")),
  "label",
);
const annotations = keyedMap(qualifiedName, text, "annotation");

const path = z.string().startsWith("/", 'must start with "/"');
const command = z.array(z.string()).nullish();

const portsEntry = z.strictObject({
  name: z
    .string()
    .max(15, "must be at most 15 characters (an IANA service name)")
    .regex(portName, 'must be lower-case letters, digits and single "-", with at least one letter'),
  type: z.enum(["http", "tcp", "grpc", "websocket"]),
  port: portNumber,
  service_port: portNumber.optional(),
  protocol: z.enum(["grpc", "websocket"]).optional(),
});

/** legacyPort is Opta's deprecated `port: {http: 8080}` form: exactly one key. */
const legacyPort = z
  .strictObject({
    http: portNumber.optional(),
    tcp: portNumber.optional(),
    grpc: portNumber.optional(),
    websocket: portNumber.optional(),
  })
  .refine(
    (p) => Object.keys(p).length === 1,
    cleanOnly("must have exactly one of http, tcp, grpc, websocket"),
  );

const envRef = {
  key: z.string().min(1).optional(),
  optional: z.boolean().optional(),
};

const envListEntry = z
  .strictObject({
    name: z.string().regex(envName, "is not a valid environment variable name"),
    value: text.optional(),
    secret: objectName.optional(),
    config_map: objectName.optional(),
    ...envRef,
  })
  .refine(
    (e) => [e.value, e.secret, e.config_map].filter((x) => x !== undefined).length === 1,
    cleanOnly("needs exactly one of value, secret, config_map"),
  );

const envMapRef = z
  .strictObject({ secret: objectName.optional(), config_map: objectName.optional(), ...envRef })
  .refine(
    (e) => (e.secret === undefined) !== (e.config_map === undefined),
    cleanOnly("needs exactly one of secret, config_map"),
  );

const envMapValue = byKind(
  { string: text, number: text, boolean: text, object: envMapRef },
  "must be a string, {secret: NAME, key: KEY} or {config_map: NAME, key: KEY}",
);

const envFromEntry = z
  .strictObject({
    secret: objectName.optional(),
    config_map: objectName.optional(),
    prefix: z.string().optional(),
    optional: z.boolean().optional(),
  })
  .refine(
    (e) => (e.secret === undefined) !== (e.config_map === undefined),
    cleanOnly("needs exactly one of secret, config_map"),
  );

const toleration = z.strictObject({
  key: z.string().regex(qualifiedName, "is not a valid taint key"),
  value: text.optional(),
  operator: z.enum(["Equal", "Exists"]).optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
});

const serviceAccount = byKind(
  {
    boolean: z.boolean(),
    string: serviceName,
    object: z.strictObject({
      name: serviceName.optional(),
      create: z.boolean().optional(),
      annotations: annotations.optional(),
    }),
  },
  "must be true, the name of an existing account, or {name, create, annotations}",
);

const disruptionBudget = byKind(
  {
    boolean: z.boolean(),
    object: z
      .strictObject({ min_available: intOrPercent.optional(), max_unavailable: intOrPercent.optional() })
      .refine(
        (p) => (p.min_available === undefined) !== (p.max_unavailable === undefined),
        cleanOnly("needs exactly one of min_available, max_unavailable"),
      ),
  },
  "must be true, false, {min_available: N} or {max_unavailable: N}",
);

const tls = byKind(
  {
    boolean: z.boolean(),
    object: z.strictObject({
      secret_name: objectName.optional(),
      cluster_issuer: z.string().min(1).optional(),
    }),
  },
  "must be true, false or {secret_name, cluster_issuer}",
);

const cronJob = z.strictObject({
  commands: z.array(z.string()).min(1, "needs at least one element"),
  args: z.array(z.string()).optional(),
  schedule: z
    .string()
    .regex(
      /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$/,
      'must be a cron schedule such as "*/5 * * * *" or "@hourly"',
    ),
});

/** optaOnly are Opta fields that need Opta's cloud modules; they are accepted and reported as ignored. */
export const OPTA_ONLY_FIELDS = [
  "links",
  "additional_iam_policies",
  "additional_iam_roles",
  "read_buckets",
  "write_buckets",
  "timeout",
  "max_history",
] as const;

const optaOnly = Object.fromEntries(OPTA_ONLY_FIELDS.map((f) => [f, z.unknown().optional()])) as Record<
  (typeof OPTA_ONLY_FIELDS)[number],
  z.ZodOptional<z.ZodUnknown>
>;

/** rawServiceSchema validates a service.yaml document as written. */
export const rawServiceSchema = z.strictObject({
  name: serviceName,
  type: z
    .enum(["k8s-service", "local-k8s-service", "aws-k8s-service", "gcp-k8s-service", "azure-k8s-service"])
    .optional(),
  namespace: z.string().max(63).regex(dns1123, "must be a DNS-1123 label").optional(),
  image: z
    .string()
    .default("AUTO")
    .refine((s) => s.toUpperCase() === "AUTO" || typeof parseImageRef(s) !== "string", {
      error: (issue) => {
        const problem = parseImageRef(String(issue.input));
        return `must be AUTO or an image reference: ${typeof problem === "string" ? problem : ""}`;
      },
    })
    .transform((s) => (s.toUpperCase() === "AUTO" ? "AUTO" : s)),
  commands: command,
  args: command,
  port: legacyPort.optional(),
  ports: z.array(portsEntry).optional(),
  probe_port: z.string().optional(),
  replicas: count.optional(),
  min_containers: count.optional(),
  max_containers: count.optional(),
  // No default here: normalize defaults them to 80, and notes a target set for a fixed count.
  autoscaling_target_cpu_percentage: percent.optional(),
  autoscaling_target_mem_percentage: percent.optional(),
  resource_request: z
    .strictObject({ cpu: cpuQuantity.optional(), memory: memoryQuantity.optional() })
    .nullish(),
  resource_limits: z
    .strictObject({
      cpu: byKind(
        {
          number: cpuQuantity,
          string: cpuQuantity,
          boolean: z.boolean().refine((b) => !b, 'must be false (no CPU limit) or an amount such as "500m"'),
          null: z.null(),
        },
        'must be an amount ("500m", 500) or false for no CPU limit',
      ).optional(),
      memory: memoryQuantity.optional(),
    })
    .nullish(),
  // Opta's defaults are empty lists, so `env_vars:` and `public_uri:` left empty (YAML null) mean none.
  env_vars: byKind(
    {
      null: z.null(),
      array: z.array(envListEntry),
      object: z.record(z.string().regex(envName, "is not a valid environment variable name"), envMapValue),
    },
    "must be a list of {name, value} or a map of name: value",
  ).optional(),
  env_from: z.array(envFromEntry).optional(),
  secrets: z.array(z.string().regex(envName, "is not a valid environment variable name")).nullish(),
  healthcheck_path: path.nullish(),
  healthcheck_command: command,
  liveness_probe_path: path.nullish(),
  liveness_probe_command: command,
  readiness_probe_path: path.nullish(),
  readiness_probe_command: command,
  initial_liveness_delay: z.number().int().min(0).default(30),
  initial_readiness_delay: z.number().int().min(0).default(30),
  public_uri: byKind(
    { null: z.null(), string: z.string(), array: z.array(z.string()) },
    "must be a string or a list of strings",
  ).optional(),
  keep_path_prefix: z.boolean().default(false),
  ingress_class: z.string().min(1).default("nginx"),
  ingress_extra_annotations: annotations.nullish(),
  tls: tls.optional(),
  consistent_hash: z.string().min(1).nullish(),
  sticky_session: z.boolean().default(false),
  sticky_session_max_age: z.number().int().min(1).default(86400),
  sticky_session_cookie: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "must be letters, digits, _ and -")
    .optional(),
  tolerations: z.array(toleration).nullish(),
  pod_labels: labels.nullish(),
  pod_annotations: annotations.nullish(),
  service_account: serviceAccount.optional(),
  max_surge: intOrPercent.default("25%"),
  max_unavailable: intOrPercent.default("25%"),
  pod_disruption_budget: disruptionBudget.optional(),
  persistent_storage: z.array(z.strictObject({ size: storageQuantity, path })).nullish(),
  cron_jobs: z.array(cronJob).nullish(),
  tuning: tuningSchema.optional(),
  ...optaOnly,
});

/** RawService is a validated service.yaml document before defaults are worked out. */
export type RawService = z.output<typeof rawServiceSchema>;
