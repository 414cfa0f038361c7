/**
 * Registration of the admission webhook with the API server: the MutatingWebhookConfiguration
 * that manifests/jobs/mutatingwebhook.yaml describes, built with the CA of the webhook's
 * certificate in its caBundle (which the kustomize install leaves to a hand-made overlay) and
 * server-side applied, so registering again is harmless and a new CA replaces the old one.
 */
import type { V1LabelSelector, V1MutatingWebhookConfiguration } from "../kube/index.js";
import { applyObject, deleteObject, type ApplyResult, type KubeClient } from "../kube/index.js";
import { JobsError } from "./errors.js";

/** JOB_LABEL marks a pod (template) whose creation the webhook is asked about. */
export const JOB_LABEL = "jobs.kubewise.io/job";
/** WEBHOOK_CONFIGURATION is the MutatingWebhookConfiguration's default name. */
export const WEBHOOK_CONFIGURATION = "kubewise-jobs";
/** WEBHOOK_NAME is the webhook's name inside it (fully qualified, as the API requires). */
export const WEBHOOK_NAME = "jobs.kubewise.io";
/** SYSTEM_NAMESPACES are never sent to the webhook unless named explicitly. */
export const SYSTEM_NAMESPACES = ["kube-system", "kube-node-lease", "kubewise-system"] as const;

/**
 * WebhookEndpoint is where the API server calls the webhook: a URL (https, e.g. a webhook
 * running beside a local API server) or a Service in the cluster.
 */
export type WebhookEndpoint =
  { url: string } | { service: { name: string; namespace: string; port?: number; path?: string } };

/** WebhookRegistration describes the MutatingWebhookConfiguration to create or update. */
export interface WebhookRegistration {
  /** name of the configuration. @default WEBHOOK_CONFIGURATION */
  name?: string;
  endpoint: WebhookEndpoint;
  /** caPem is the CA that signed the webhook's serving certificate (ca.crt of `jobs cert`). */
  caPem: string;
  /** namespaces limits the webhook to these namespaces. @default every namespace but SYSTEM_NAMESPACES */
  namespaces?: readonly string[];
  /** timeoutSeconds is how long the API server waits for an answer (1-30). @default 5 */
  timeoutSeconds?: number;
}

/**
 * webhookConfiguration builds the MutatingWebhookConfiguration: pod CREATEs of pods labelled
 * JOB_LABEL=true, failurePolicy Ignore (a job pod is never held up by the webhook), no side
 * effects. It throws a JobsError (`certificate`) when caPem holds no PEM certificate.
 */
export function webhookConfiguration(registration: WebhookRegistration): V1MutatingWebhookConfiguration {
  if (!registration.caPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new JobsError(
      "certificate",
      "the webhook's CA is not a PEM certificate (expected ca.crt of `kubewise jobs cert`)",
    );
  }
  const caBundle = Buffer.from(registration.caPem, "utf8").toString("base64");
  const { endpoint } = registration;
  const clientConfig =
    "url" in endpoint
      ? { url: endpoint.url, caBundle }
      : {
          service: {
            name: endpoint.service.name,
            namespace: endpoint.service.namespace,
            port: endpoint.service.port ?? 443,
            path: endpoint.service.path ?? "/mutate",
          },
          caBundle,
        };
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: {
      name: registration.name ?? WEBHOOK_CONFIGURATION,
      labels: { "app.kubernetes.io/managed-by": "kubewise" },
    },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Ignore",
        timeoutSeconds: registration.timeoutSeconds ?? 5,
        reinvocationPolicy: "Never",
        clientConfig,
        rules: [
          {
            operations: ["CREATE"],
            apiGroups: [""],
            apiVersions: ["v1"],
            resources: ["pods"],
            scope: "Namespaced",
          },
        ],
        objectSelector: { matchLabels: { [JOB_LABEL]: "true" } },
        namespaceSelector: namespaceSelector(registration.namespaces),
      },
    ],
  };
}

function namespaceSelector(namespaces: readonly string[] | undefined): V1LabelSelector {
  const key = "kubernetes.io/metadata.name";
  if (namespaces !== undefined && namespaces.length > 0) {
    return { matchExpressions: [{ key, operator: "In", values: [...namespaces] }] };
  }
  return { matchExpressions: [{ key, operator: "NotIn", values: [...SYSTEM_NAMESPACES] }] };
}

/**
 * registerWebhook creates or updates the MutatingWebhookConfiguration and says which it did.
 * It throws a KubeError when the API server refuses it (e.g. Invalid: a URL that is not https).
 */
export async function registerWebhook(
  client: KubeClient,
  registration: WebhookRegistration,
): Promise<ApplyResult> {
  const { result } = await applyObject(client, webhookConfiguration(registration));
  return result;
}

/** unregisterWebhook deletes the MutatingWebhookConfiguration; false when it did not exist. */
export async function unregisterWebhook(client: KubeClient, name = WEBHOOK_CONFIGURATION): Promise<boolean> {
  return deleteObject(client, {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name },
  });
}

/** WEBHOOK_TIMEOUT_RANGE is the API server's bound on timeoutSeconds, in seconds. */
export const WEBHOOK_TIMEOUT_RANGE = { min: 1, max: 30 } as const;

/**
 * webhookTimeoutProblem says what is wrong with `value` as the webhook's timeoutSeconds ("" when
 * nothing): a whole number of seconds within WEBHOOK_TIMEOUT_RANGE.
 */
export function webhookTimeoutProblem(flag: string, value: string): string {
  const n = Number(value);
  const { min, max } = WEBHOOK_TIMEOUT_RANGE;
  if (value.trim() !== "" && Number.isInteger(n) && n >= min && n <= max) return "";
  return `${flag} ${JSON.stringify(value)} is out of range: expected a whole number of seconds from ${min} to ${max} (the API server's limit)`;
}

/**
 * webhookUrlProblem says what is wrong with `value` as the URL the API server calls the webhook
 * at ("" when nothing): an absolute https URL, since the API server calls webhooks over TLS only.
 */
export function webhookUrlProblem(flag: string, value: string): string {
  const expected = "expected an https URL, e.g. https://127.0.0.1:8443/mutate";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${flag} ${JSON.stringify(value)} is not a URL: ${expected}`;
  }
  if (url.protocol !== "https:") {
    return `${flag} ${JSON.stringify(value)} is not https: the API server calls webhooks over TLS only; ${expected}`;
  }
  return "";
}
