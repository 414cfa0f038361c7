import {
  FIELD_MANAGER,
  ignoreNotFound,
  toKubeError,
  type KubeClient,
  type KubeError,
  type KubernetesObject,
  type V1ManagedFieldsEntry,
} from "../kube/index.js";
import { diffObjects, type FieldChange } from "./diff.js";
import { DeployError } from "./errors.js";
import {
  appliedByKubewise,
  belongsTo,
  listServiceObjects,
  otherManagers,
  readObject,
  refKey,
  refOf,
  serverSideApply,
  type ObjectRef,
} from "./inventory.js";
import type { Manifest } from "./render.js";

/**
 * planService works out what applying a service would do, without changing anything: it reads
 * the service's objects, server-side applies every rendered object in dry-run mode (so the API
 * server defaults, validates and admits each one exactly as it would for real), and compares
 * each result with the live object. It is also the first half of every apply, which is how a
 * spec the API server rejects leaves the cluster untouched.
 */

/** DeployTarget is a rendered service: what to plan, apply, or look at. */
export interface DeployTarget {
  service: string;
  namespace: string;
  /** manifests in apply order, as renderService returns them. */
  manifests: Manifest[];
}

/** ObjectAction is what an apply does to one object. */
export type ObjectAction = "create" | "update" | "unchanged";

/** ObjectPlan is one rendered object: what would happen to it and which fields would change. */
export interface ObjectPlan {
  ref: ObjectRef;
  action: ObjectAction;
  /** changes are the field changes of an update (empty for a create or no change). */
  changes: FieldChange[];
  manifest: Manifest;
  /**
   * handoverReplicas is set when a workload kubewise gave a fixed replica count becomes
   * autoscaled: apply first sets spec.replicas to this count under another field manager (see
   * replicasHandover), so dropping the field from kubewise's apply does not reset it to 1.
   */
  handoverReplicas?: number;
}

/** KeptObject is an object with the service's labels that kubewise leaves alone, and why. */
export interface KeptObject {
  ref: ObjectRef;
  why: string;
}

/** Plan is what applying a service would do. */
export interface Plan {
  service: string;
  namespace: string;
  /** namespaceExists false means every object would be created and none could be checked. */
  namespaceExists: boolean;
  objects: ObjectPlan[];
  /** prune lists the service's objects the spec no longer asks for, which apply deletes. */
  prune: { ref: ObjectRef; live: KubernetesObject }[];
  kept: KeptObject[];
  /** changed is true when an apply would create, update or delete anything. */
  changed: boolean;
}

/** PlanOptions change what planning accepts. */
export interface PlanOptions {
  /**
   * adopt lets the service take over objects of its names that exist without its labels
   * (made by kubectl, Helm, by hand). @default false: such an object is an error
   */
  adopt?: boolean;
  /** namespaceExists skips reading the namespace when the caller already knows it exists. */
  namespaceExists?: true;
}

/**
 * planService plans an apply of the target. It throws a DeployError when an object of a rendered
 * name exists but belongs to something else (unless adopt), or when the API server rejects any
 * rendered object, listing every rejection.
 */
export async function planService(
  client: KubeClient,
  target: DeployTarget,
  options: PlanOptions = {},
): Promise<Plan> {
  const { namespace, service } = target;
  const namespaceExists =
    options.namespaceExists ??
    (await ignoreNotFound(client.core.readNamespace({ name: namespace })).catch((err: unknown) => {
      throw toKubeError(err, `read namespace ${namespace}`);
    }));
  if (!namespaceExists) {
    const objects = target.manifests.map((m): ObjectPlan => ({
      ref: refOf(m, namespace),
      action: "create",
      changes: [],
      manifest: m,
    }));
    return { service, namespace, namespaceExists: false, objects, prune: [], kept: [], changed: true };
  }
  const owned = await listServiceObjects(client, namespace, service);
  const byKey = new Map(owned.map((o) => [refKey(refOf(o)), o]));
  const lives = await Promise.all(
    target.manifests.map((m) => byKey.get(refKey(refOf(m))) ?? readObject(client, refOf(m, namespace))),
  );
  checkOwnership(target, lives, options);
  const results = await dryRunAll(client, target);
  const objects = target.manifests.map((manifest, i): ObjectPlan => {
    const live = lives[i];
    const ref = refOf(manifest, namespace);
    if (!live) return { ref, action: "create", changes: [], manifest };
    const handover = replicasHandover(manifest, live, target.manifests);
    // The dry run cannot chain the handover before it, so it shows the count reset to 1; what
    // the apply will leave is the handover's count.
    const after =
      handover === undefined ? (results[i] as KubernetesObject) : withReplicas(results[i], handover);
    const changes = diffObjects(live, after);
    const ownershipChanged = !sameOwnership(live, after);
    return {
      ref,
      action: changes.length > 0 || ownershipChanged || handover !== undefined ? "update" : "unchanged",
      changes,
      manifest,
      ...(handover === undefined ? {} : { handoverReplicas: handover }),
    };
  });
  const wanted = new Set(target.manifests.map((m) => refKey(refOf(m))));
  const prune: Plan["prune"] = [];
  const kept: KeptObject[] = [];
  for (const live of owned) {
    const ref = refOf(live, namespace);
    if (wanted.has(refKey(ref))) continue;
    if (appliedByKubewise(live)) prune.push({ ref, live });
    else {
      const managers = otherManagers(live).join(", ") || "unknown";
      kept.push({
        ref,
        why: `has the service's labels but kubewise never applied it (managed by ${managers})`,
      });
    }
  }
  const changed = objects.some((o) => o.action !== "unchanged") || prune.length > 0;
  return { service, namespace, namespaceExists: true, objects, prune, kept, changed };
}

function checkOwnership(
  target: DeployTarget,
  lives: (KubernetesObject | undefined)[],
  options: PlanOptions,
): void {
  if (options.adopt) return;
  const foreign = lives.flatMap((live) =>
    live && !belongsTo(live, target.service)
      ? [
          `${live.kind ?? "?"} ${target.namespace}/${live.metadata?.name ?? "?"} (managed by ${otherManagers(live).join(", ") || "unknown"})`,
        ]
      : [],
  );
  if (foreign.length === 0) return;
  throw new DeployError(
    "invalid",
    `${foreign.length} object(s) of service ${target.service}'s names already exist without its labels, so nothing was applied:\n  ${foreign.join("\n  ")}\ndelete them, or pass --adopt to take them over`,
  );
}

/** rejectedByServer: the API server answered and refused the object (not an outage or a timeout). */
function rejectedByServer(err: KubeError): boolean {
  return err.status !== undefined && !["Unavailable", "Timeout", "Unauthorized"].includes(err.reason);
}

async function dryRunAll(client: KubeClient, target: DeployTarget): Promise<KubernetesObject[]> {
  const settled = await Promise.allSettled(
    target.manifests.map((m) => serverSideApply(client, m, { dryRun: true })),
  );
  const rejections: string[] = [];
  for (const s of settled) {
    if (s.status === "fulfilled") continue;
    const err = toKubeError(s.reason, "dry-run apply");
    if (!rejectedByServer(err)) throw err;
    rejections.push(err.message);
  }
  if (rejections.length > 0) {
    throw new DeployError(
      "invalid",
      `the API server rejected ${rejections.length} of ${target.manifests.length} object(s) of service ${target.service}, so nothing was applied:\n  ${rejections.join("\n  ")}`,
    );
  }
  return settled.map((s) => (s as PromiseFulfilledResult<KubernetesObject>).value);
}

function kubewiseEntry(obj: KubernetesObject): V1ManagedFieldsEntry | undefined {
  return obj.metadata?.managedFields?.find((f) => f.manager === FIELD_MANAGER && f.operation === "Apply");
}

/**
 * sameOwnership: the fields kubewise owns would not change. An object equal in content can still
 * need the apply, e.g. one made by `render | kubectl apply` that kubewise has never owned: until
 * it does, removing a field from the spec would not remove it from the object.
 */
function sameOwnership(live: KubernetesObject, after: KubernetesObject): boolean {
  const a = kubewiseEntry(live);
  const b = kubewiseEntry(after);
  return (
    a !== undefined &&
    b !== undefined &&
    a.apiVersion === b.apiVersion &&
    JSON.stringify(a.fieldsV1) === JSON.stringify(b.fieldsV1)
  );
}

/**
 * replicasHandover: a Deployment or StatefulSet that kubewise applied with a fixed `replicas`
 * and now renders without it (an HPA takes over) would, by server-side apply, lose the field
 * kubewise owned and be defaulted to 1 replica until the HPA scales it back. Kubernetes' advice
 * for this move ("Migrating Deployments and StatefulSets to horizontal autoscaling", and
 * "Transferring ownership" in the server-side apply docs) is to hand the field to another field
 * manager first, with its current value, and only then drop it from the applied configuration.
 * The count handed over is the live one, raised to the HPA's minimum: never fewer pods. It
 * returns undefined when no handover is needed.
 */
export function replicasHandover(
  manifest: Manifest,
  live: KubernetesObject,
  manifests: readonly Manifest[],
): number | undefined {
  if (manifest.kind !== "Deployment" && manifest.kind !== "StatefulSet") return undefined;
  if ((manifest.spec as { replicas?: unknown } | undefined)?.replicas !== undefined) return undefined;
  const owned = kubewiseEntry(live)?.fieldsV1 as { "f:spec"?: Record<string, unknown> } | undefined;
  if (owned?.["f:spec"]?.["f:replicas"] === undefined) return undefined;
  const liveReplicas = (live as { spec?: { replicas?: number } }).spec?.replicas ?? 1;
  const hpa = manifests.find((m) => {
    const ref = (m.spec as { scaleTargetRef?: { kind?: string; name?: string } } | undefined)?.scaleTargetRef;
    return (
      m.kind === "HorizontalPodAutoscaler" &&
      ref?.kind === manifest.kind &&
      ref.name === manifest.metadata.name
    );
  });
  const minReplicas = (hpa?.spec as { minReplicas?: number } | undefined)?.minReplicas ?? 1;
  return Math.max(liveReplicas, minReplicas);
}

function withReplicas(obj: KubernetesObject | undefined, replicas: number): KubernetesObject {
  const o = obj as KubernetesObject & { spec?: Record<string, unknown> };
  return { ...o, spec: { ...o.spec, replicas } } as KubernetesObject;
}
