import { z } from "zod";
import { loadConfigFile, parseConfig } from "../config/index.js";
import { kubepodsProblem } from "./cgroups.js";
import { parseListen } from "./metrics.js";
import { quantityValue } from "./quantity.js";

/**
 * agent.yaml: what one node agent watches, where it finds the cgroups, how it reaches the
 * kubelet and what it may change. Field names follow WCA's KubernetesNode where WCA had one
 * (`cgroup_driver`, `kubelet_endpoint`, `ssl`, `monitored_namespaces`), so a WCA user can read
 * it; WCA's own `client_cert` and `client_private_key` are accepted as aliases of
 * `ssl.client_cert_path` and `ssl.client_key_path`. Every field has a default except the allocation rules, so `{}` is a valid monitoring-only
 * configuration.
 */

const cpuQuota = z.union([
  z.number().nonnegative(),
  z
    .string()
    .refine(
      (v) => v === "max" || (quantityValue(v) ?? -1) >= 0,
      'must be cores ("500m", "1.5") or "max" for no limit',
    ),
]);

/** selectorRequirement is a matchExpressions entry, with Kubernetes' rules for its values. */
const selectorRequirement = z
  .strictObject({
    key: z.string().min(1),
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
    values: z.array(z.string()).optional(),
  })
  .superRefine((r, ctx) => {
    const values = r.values ?? [];
    if ((r.operator === "In" || r.operator === "NotIn") && values.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: r.values,
        message: `must list at least one value with operator ${r.operator}`,
      });
    } else if ((r.operator === "Exists" || r.operator === "DoesNotExist") && values.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: r.values,
        message: `must be empty or absent with operator ${r.operator}`,
      });
    }
  });

/** namespaceName is a Kubernetes namespace name: a DNS label (RFC 1123). */
const namespaceName = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    "must be a namespace name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
  );

/** labelSelectorSchema is Kubernetes' LabelSelector, spelled as in a Kubernetes manifest. */
const labelSelectorSchema = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z.array(selectorRequirement).optional(),
});

const qosClass = z.enum(["guaranteed", "burstable", "besteffort"]);

/**
 * allocationValuesSchema: the three knobs. cpu_quota is in cores ("500m", 1.5) or "max" for no
 * limit; cpu_shares in cgroup v1 units (2..262144, 1024 = one core's worth; converted to
 * cpu.weight on v2); cpuset_cpus a kernel cpu list ("0-3,8").
 */
const allocationValuesSchema = {
  cpu_quota: cpuQuota.optional(),
  cpu_shares: z.number().int().min(2).max(262144).optional(),
  cpuset_cpus: z
    .string()
    .regex(/^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/, 'must be a cpu list such as "0-3,8"')
    .optional(),
};

const ruleSchema = z.strictObject({
  /** name appears in logs and in refusal messages. */
  name: z.string().min(1),
  /** namespaces limits the rule to pods in these namespaces; all monitored ones when absent. */
  namespaces: z.array(namespaceName).optional(),
  /** selector matches the pod's labels as written in Kubernetes (not the sanitised ones). */
  selector: labelSelectorSchema.optional(),
  /** qos_classes limits the rule to pods of these QoS classes. */
  qos_classes: z.array(qosClass).optional(),
  ...allocationValuesSchema,
});

const allocationSchema = z.strictObject({
  /** enabled turns allocation on; off by default, so the agent only watches. @default false */
  enabled: z.boolean().default(false),
  /**
   * from_annotations lets pods ask for allocations with kubewise.dev/cpu-quota,
   * kubewise.dev/cpu-shares and kubewise.dev/cpuset-cpus. Off by default because anyone who can
   * create a pod can write annotations, and a quota annotation can lift the pod's own limit.
   * @default false
   */
  from_annotations: z.boolean().default(false),
  /** rules apply in order; for each knob the first matching rule that sets it wins. */
  rules: z.array(ruleSchema).default([]),
});

const sslSchema = z.strictObject({
  /** server_verify: true checks the kubelet's certificate against the system CAs, a path against that CA bundle, false not at all. @default true */
  server_verify: z.union([z.boolean(), z.string().min(1)]).default(true),
  client_cert_path: z.string().min(1).optional(),
  client_key_path: z.string().min(1).optional(),
  /** server_name is the name the kubelet's certificate must carry when it differs from the endpoint's host. */
  server_name: z.string().min(1).optional(),
});

const cpuManagerSchema = z.strictObject({
  /**
   * policy is the kubelet's --cpu-manager-policy. `auto` reads state_file; when that file is
   * missing the policy is unknown and cpuset allocations are refused. @default "auto"
   */
  policy: z.enum(["auto", "none", "static"]).default("auto"),
  state_file: z.string().min(1).default("/var/lib/kubelet/cpu_manager_state"),
});

/** agentFields are agent.yaml's fields before the WCA aliases are folded into ssl. */
const agentFields = z.strictObject({
  apiVersion: z.literal("kubewise.dev/v1alpha1").optional(),
  kind: z.literal("AgentConfiguration").optional(),
  /** node_name is the default for --node-name (then $NODE_NAME). */
  node_name: z.string().min(1).optional(),
  /** cgroup_root is the default for --cgroup-root. @default "/sys/fs/cgroup" */
  cgroup_root: z.string().min(1).default("/sys/fs/cgroup"),
  /** cgroup_driver must match the kubelet's cgroupDriver. @default "cgroupfs" (the kubelet's own default) */
  cgroup_driver: z.enum(["systemd", "cgroupfs"]).default("cgroupfs"),
  /**
   * cgroup_parent is the cgroup holding every pod, for a kubelet started with --cgroup-root
   * (e.g. "/custom/kubepods", or with systemd "/custom.slice/custom-kubepods.slice").
   * @default "/kubepods" with cgroupfs, "/kubepods.slice" with systemd
   */
  cgroup_parent: z.string().min(1).optional(),
  /** cgroup_version: `auto` looks for cgroup.controllers at the root. @default "auto" */
  cgroup_version: z.enum(["auto", "v1", "v2"]).default("auto"),
  /** pod_source is the default for --pod-source. @default "apiserver" */
  pod_source: z.enum(["apiserver", "kubelet"]).default("apiserver"),
  kubelet_endpoint: z.url({ protocol: /^https?$/ }).default("https://127.0.0.1:10250"),
  /** kubelet_token_path, when set, sends that file's token as a bearer token to the kubelet. */
  kubelet_token_path: z.string().min(1).optional(),
  ssl: sslSchema.default({ server_verify: true }),
  /** client_cert is WCA's name for ssl.client_cert_path (the kubelet client certificate). */
  client_cert: z.string().min(1).optional(),
  /** client_private_key is WCA's name for ssl.client_key_path. */
  client_private_key: z.string().min(1).optional(),
  /** timeout_seconds bounds one pod listing. @default 5 */
  timeout_seconds: z.number().positive().max(60).default(5),
  monitored_namespaces: z.array(namespaceName).min(1).default(["default"]),
  /** interval_seconds between iterations. @default 5 */
  interval_seconds: z.number().min(0.1).max(3600).default(5),
  /** listen is the default for --listen; "" serves no HTTP. @default "127.0.0.1:9477" */
  listen: z
    .string()
    .refine(
      (v) => v === "" || isListenAddress(v),
      'must be HOST:PORT (e.g. 0.0.0.0:9477, [::]:9477), or "" for no server',
    )
    .default("127.0.0.1:9477"),
  /** metrics_file, when set, gets the exposition text after every iteration (written atomically). */
  metrics_file: z.string().min(1).optional(),
  cpu_manager: cpuManagerSchema.default({ policy: "auto", state_file: "/var/lib/kubelet/cpu_manager_state" }),
  allocation: allocationSchema.default({ enabled: false, from_annotations: false, rules: [] }),
});

function isListenAddress(value: string): boolean {
  try {
    parseListen(value);
    return true;
  } catch {
    return false;
  }
}

const aliases = [
  ["client_cert", "client_cert_path"],
  ["client_private_key", "client_key_path"],
] as const;

interface Issue {
  path: string[];
  message: string;
}

type Fields = z.output<typeof agentFields>;

const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** aliasIssues: WCA's spelling and ours with different values, and a certificate without its key. */
function aliasIssues(c: Fields, ssl: Partial<Record<string, unknown>>): Issue[] {
  const out: Issue[] = [];
  for (const [alias, field] of aliases) {
    const a = text(c[alias]);
    const f = text(ssl[field]);
    if (a !== undefined && f !== undefined && a !== f) {
      out.push({
        path: [alias],
        message: `${alias} (WCA's name) is ${JSON.stringify(a)} but ssl.${field} is ${JSON.stringify(f)}: set one of them`,
      });
    }
  }
  const cert = text(c.client_cert) ?? text(ssl.client_cert_path);
  const key = text(c.client_private_key) ?? text(ssl.client_key_path);
  if ((cert === undefined) === (key === undefined)) return out;
  // The path of the one that is set, so the message quotes it.
  const [alias, field] = cert === undefined ? aliases[1] : aliases[0];
  out.push({
    path: text(c[alias]) !== undefined ? [alias] : ["ssl", field],
    message:
      "client_cert_path and client_key_path go together: set both or neither (WCA's client_cert and client_private_key count as them)",
  });
  return out;
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let v = root;
  for (const key of path)
    v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

/** parentIssues: a cgroup_parent that is not a cgroup path the driver could have made. */
function parentIssues(c: Fields): Issue[] {
  const parent = text(c.cgroup_parent);
  if (parent === undefined || (c.cgroup_driver !== "systemd" && c.cgroup_driver !== "cgroupfs")) return [];
  const problem = kubepodsProblem(c.cgroup_driver, parent);
  return problem ? [{ path: ["cgroup_parent"], message: problem }] : [];
}

/**
 * agentConfigSchema validates agent.yaml; see the file comment. The WCA aliases end up in ssl,
 * so the rest of the agent knows one spelling; the two spellings with different values are an error.
 */
export const agentConfigSchema = agentFields
  .superRefine(
    (c, ctx) => {
      // Runs even when other fields failed, so every problem is reported at once: look before use.
      const ssl: Partial<Record<string, unknown>> = typeof c.ssl === "object" && c.ssl !== null ? c.ssl : {};
      // input is the value at the issue's path: without it the message quotes the whole document.
      for (const issue of [...aliasIssues(c, ssl), ...parentIssues(c)])
        ctx.addIssue({ code: "custom", input: valueAt(c, issue.path), ...issue });
    },
    { when: (payload) => typeof payload.value === "object" && payload.value !== null },
  )
  .transform(({ client_cert, client_private_key, ...c }) => ({
    ...c,
    ssl: {
      ...c.ssl,
      ...(client_cert === undefined ? {} : { client_cert_path: client_cert }),
      ...(client_private_key === undefined ? {} : { client_key_path: client_private_key }),
    },
  }));

/** AgentConfig is agent.yaml after validation and defaults. */
export type AgentConfig = z.output<typeof agentConfigSchema>;
/** AllocationRuleConfig is one entry of allocation.rules. */
export type AllocationRuleConfig = AgentConfig["allocation"]["rules"][number];
/** LabelSelector is Kubernetes' label selector as written in a rule. */
export type LabelSelector = z.output<typeof labelSelectorSchema>;

/** parseAgentConfig validates already-parsed YAML; `file` only labels the messages. */
export function parseAgentConfig(data: unknown, file?: string): AgentConfig {
  return parseConfig(agentConfigSchema, data ?? {}, file);
}

/** loadAgentConfig reads and validates agent.yaml. */
export function loadAgentConfig(file: string): AgentConfig {
  return loadConfigFile(agentConfigSchema, file);
}
