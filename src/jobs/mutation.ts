/**
 * The admission webhook's decision, without the server: given an AdmissionReview (v1) for a new
 * pod and the latest tuned settings for its app id, the AdmissionReview response that applies
 * them as a base64 JSONPatch. The webhook never denies a pod: with nothing to apply, or
 * something it cannot apply, the pod is allowed unchanged (and the API server is told why in a
 * warning when the pod asked for settings that could not be applied).
 *
 * What is patched, on the app container (the one the app-id path points into):
 * - cpu / mem: `resources.requests` and `resources.limits` (or only one, per `resources`), as
 *   quantities ("250m", "512Mi"); when only one side is set and the other would end up
 *   inconsistent (request above limit) the other side moves with it, so the API server accepts
 *   the pod;
 * - env: each variable replaced in place (dropping a valueFrom, which cannot stand beside a
 *   value) or appended;
 * - the pod annotation SETTINGS_ANNOTATION records what was applied, also when the container
 *   already had every value: it is how the `jobs` measure connector tells the runs made with the
 *   current settings from the others (settingsIdentity, podSettingsIdentity).
 * - with `reportFinalizer`, the finalizer REPORT_FINALIZER is added to every job pod, with or
 *   without settings: a job pod then stays in the API after a delete until the watcher has put
 *   its report in the durable outbox and released it, so a pod that finishes and is deleted
 *   while the watcher is down is still reported.
 */
import { z } from "zod";
import { formatCpu, formatMemoryGiB, parseCpu, parseMemory } from "../kube/index.js";
import { appContainerIndex, jobAppId, type AppIdPath } from "./appid.js";
import type { ResourceTarget, TunedSettings } from "./settings.js";

/** SETTINGS_ANNOTATION records on a pod the tuned settings the webhook applied to it. */
export const SETTINGS_ANNOTATION = "jobs.kubewise.io/settings";

/**
 * REPORT_FINALIZER holds a job pod in the API until `kubewise jobs watch` has queued its report
 * (releaseReportFinalizer removes it). Added by the webhook when run with --report-finalizer.
 */
export const REPORT_FINALIZER = "jobs.kubewise.io/report";

/** JsonPatchOperation is one RFC 6902 operation, as the API server accepts them. */
export interface JsonPatchOperation {
  op: "add" | "replace" | "remove";
  path: string;
  value?: unknown;
}

const groupVersionKind = z.looseObject({ group: z.string(), version: z.string(), kind: z.string() });

const admissionReviewSchema = z.looseObject({
  apiVersion: z.string().regex(/^admission\.k8s\.io\/v1(beta1)?$/, "must be admission.k8s.io/v1"),
  kind: z.literal("AdmissionReview"),
  request: z.looseObject({
    uid: z.string().min(1),
    kind: groupVersionKind,
    operation: z.string(),
    namespace: z.string().optional(),
    name: z.string().optional(),
    object: z.unknown().optional(),
  }),
});

/** AdmissionReview is the part of an AdmissionReview request the webhook reads. */
export type AdmissionReview = z.output<typeof admissionReviewSchema>;

/** AdmissionReviewResponse is what the webhook answers. */
export interface AdmissionReviewResponse {
  apiVersion: string;
  kind: "AdmissionReview";
  response: {
    uid: string;
    allowed: true;
    patchType?: "JSONPatch";
    patch?: string;
    warnings?: string[];
  };
}

/**
 * parseAdmissionReview validates a request body, returning the review or a sentence saying what
 * is wrong (for a 400 answer).
 */
export function parseAdmissionReview(body: unknown): { review: AdmissionReview } | { problem: string } {
  const result = admissionReviewSchema.safeParse(body);
  if (result.success) return { review: result.data };
  const issue = result.error.issues[0];
  const where = issue === undefined ? "" : issue.path.map(String).join(".");
  return {
    problem: `not an AdmissionReview: ${where === "" ? "" : `${where}: `}${issue?.message ?? "invalid"}`,
  };
}

/**
 * reviewedJobAppId returns the app id of the pod being created, or undefined when the review
 * is not a pod CREATE or the pod is not a job pod.
 */
export function reviewedJobAppId(review: AdmissionReview, path: AppIdPath): string | undefined {
  const { kind, operation, object } = review.request;
  if (kind.group !== "" || kind.kind !== "Pod" || operation !== "CREATE") return undefined;
  return jobAppId(path, object);
}

/**
 * admissionResponse answers a review: allowed, with a JSONPatch applying `settings` to the app
 * container when there is something to apply.
 */
export function admissionResponse(
  review: AdmissionReview,
  path: AppIdPath,
  settings: TunedSettings | undefined,
  options: { reportFinalizer?: boolean } = {},
): AdmissionReviewResponse {
  const response: AdmissionReviewResponse["response"] = { uid: review.request.uid, allowed: true };
  const out: AdmissionReviewResponse = { apiVersion: review.apiVersion, kind: "AdmissionReview", response };
  if (reviewedJobAppId(review, path) === undefined) return out;
  const patch: JsonPatchOperation[] = [];
  if (settings !== undefined) {
    const result = podPatch(review.request.object, appContainerIndex(path), settings);
    if (result.warning !== undefined) response.warnings = [result.warning];
    patch.push(...result.patch);
  }
  if (options.reportFinalizer === true) patch.push(...finalizerPatch(review.request.object));
  if (patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = Buffer.from(JSON.stringify(patch), "utf8").toString("base64");
  }
  return out;
}

// finalizerPatch adds REPORT_FINALIZER to a pod (raw JSON) that does not have it yet.
function finalizerPatch(pod: unknown): JsonPatchOperation[] {
  const finalizers = asRecord(asRecord(pod).metadata).finalizers;
  if (!Array.isArray(finalizers))
    return [{ op: "add", path: "/metadata/finalizers", value: [REPORT_FINALIZER] }];
  if (finalizers.includes(REPORT_FINALIZER)) return [];
  return [{ op: "add", path: "/metadata/finalizers/-", value: REPORT_FINALIZER }];
}

/**
 * podPatch builds the JSONPatch that applies settings to container `index` of a pod (raw JSON).
 * An empty patch and a warning come back when the container does not exist.
 */
export function podPatch(
  pod: unknown,
  index: number,
  settings: TunedSettings,
): { patch: JsonPatchOperation[]; warning?: string } {
  const container = asRecord(asArray(asRecord(asRecord(pod).spec).containers)[index]);
  if (Object.keys(container).length === 0) {
    return { patch: [], warning: `kubewise: container ${index} not found; tuned settings not applied` };
  }
  const base = `/spec/containers/${index}`;
  const patch = [
    ...resourcesPatch(base, container.resources, settings),
    ...envPatch(base, container.env, settings.env ?? {}),
  ];
  const metadata = asRecord(asRecord(pod).metadata);
  const stamped = asRecord(metadata.annotations)[SETTINGS_ANNOTATION] === annotationValue(settings);
  if (patch.length === 0 && stamped) return { patch };
  return { patch: [...patch, ...annotationPatch(metadata, settings)] };
}

type Quantities = Record<string, string>;
type Resources = { requests?: Quantities; limits?: Quantities };

function resourcesPatch(base: string, current: unknown, settings: TunedSettings): JsonPatchOperation[] {
  const existing = asRecord(current) as Resources;
  const desired = desiredResources(existing, settings);
  if (current === undefined || current === null) {
    return Object.keys(desired).length === 0
      ? []
      : [{ op: "add", path: `${base}/resources`, value: desired }];
  }
  const ops: JsonPatchOperation[] = [];
  for (const side of ["requests", "limits"] as const) {
    const want = desired[side];
    if (want === undefined) continue;
    const have = existing[side];
    if (have === undefined || have === null) {
      ops.push({ op: "add", path: `${base}/resources/${side}`, value: want });
      continue;
    }
    for (const [name, quantity] of Object.entries(want)) {
      // "add" on an existing object member replaces it (RFC 6902 4.1), so one op serves both.
      if (have[name] !== quantity)
        ops.push({ op: "add", path: `${base}/resources/${side}/${pointer(name)}`, value: quantity });
    }
  }
  return ops;
}

// desiredResources returns the requests/limits after applying the settings, keeping every other
// resource as it was.
function desiredResources(existing: Resources, settings: TunedSettings): Resources {
  const out: Resources = {};
  if (existing.requests) out.requests = { ...existing.requests };
  if (existing.limits) out.limits = { ...existing.limits };
  const wanted: [string, number | undefined, (v: number) => string, (q: string) => number][] = [
    ["cpu", settings.cpu, formatCpu, parseCpu],
    ["memory", settings.mem, formatMemoryGiB, parseMemory],
  ];
  for (const [name, value, format, parse] of wanted) {
    if (value === undefined) continue;
    setQuantity(out, name, format(value), settings.resources, parse);
  }
  return out;
}

function setQuantity(
  out: Resources,
  name: string,
  quantity: string,
  target: ResourceTarget,
  parse: (q: string) => number,
): void {
  const setSide = (side: "requests" | "limits"): void => {
    out[side] = { ...out[side], [name]: quantity };
  };
  if (target !== "limits") setSide("requests");
  if (target !== "requests") setSide("limits");
  // Keep request <= limit, which the API server requires, by moving the side not targeted.
  const request = out.requests?.[name];
  const limit = out.limits?.[name];
  if (request === undefined || limit === undefined || compare(request, limit, parse) <= 0) return;
  if (target === "limits") setSide("requests");
  else setSide("limits");
}

function compare(a: string, b: string, parse: (q: string) => number): number {
  try {
    return parse(a) - parse(b);
  } catch {
    return 0;
  }
}

function envPatch(base: string, current: unknown, env: Record<string, string>): JsonPatchOperation[] {
  const names = Object.keys(env);
  if (names.length === 0) return [];
  if (!Array.isArray(current)) {
    return [{ op: "add", path: `${base}/env`, value: names.map((name) => ({ name, value: env[name] })) }];
  }
  const entries = current.map(asRecord);
  const ops: JsonPatchOperation[] = [];
  for (const name of names) {
    const value = env[name];
    // The last entry of a name is the one the container sees, so that is the one to replace.
    const at = entries.findLastIndex((e) => e.name === name);
    if (at === -1) ops.push({ op: "add", path: `${base}/env/-`, value: { name, value } });
    else if (entries[at]?.value !== value || entries[at]?.valueFrom !== undefined) {
      ops.push({ op: "replace", path: `${base}/env/${at}`, value: { name, value } });
    }
  }
  return ops;
}

// annotationValue is the SETTINGS_ANNOTATION value of settings: their fields as JSON, in a fixed order.
function annotationValue(settings: TunedSettings): string {
  const record: Record<string, unknown> = {};
  for (const key of ["cpu", "mem", "env", "resources", "version"] as const) {
    if (settings[key] !== undefined) record[key] = settings[key];
  }
  return JSON.stringify(record);
}

/**
 * settingsIdentity names one set of tuned settings so that the pods made with it can be found:
 * its `version` when it has one (the servo's adjust always writes one), else its annotation
 * value; "" when there are none (pods the webhook left alone).
 */
export function settingsIdentity(settings: TunedSettings | undefined): string {
  if (settings === undefined) return "";
  return settings.version ?? annotationValue(settings);
}

/**
 * podSettingsIdentity is the settingsIdentity of the settings the webhook applied to a pod, read
 * from its SETTINGS_ANNOTATION; "" when the pod has none.
 */
export function podSettingsIdentity(annotations: Record<string, string> | undefined): string {
  const value = annotations?.[SETTINGS_ANNOTATION];
  if (value === undefined) return "";
  try {
    const version = asRecord(JSON.parse(value)).version;
    if (typeof version === "string") return version;
  } catch {
    // Not JSON: the annotation text itself is all there is to compare.
  }
  return value;
}

function annotationPatch(metadata: unknown, settings: TunedSettings): JsonPatchOperation[] {
  const value = annotationValue(settings);
  const annotations = asRecord(metadata).annotations;
  if (annotations === undefined || annotations === null) {
    return [{ op: "add", path: "/metadata/annotations", value: { [SETTINGS_ANNOTATION]: value } }];
  }
  return [{ op: "add", path: `/metadata/annotations/${pointer(SETTINGS_ANNOTATION)}`, value }];
}

/** pointer escapes one JSON Pointer reference token (RFC 6901): "~" -> "~0", "/" -> "~1". */
export function pointer(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
