import { KubeError, deleteObject, toKubeError, type KubeClient } from "../kube/index.js";
import type { FieldChange } from "./diff.js";
import type { Manifest } from "./render.js";
import { DeployError } from "./errors.js";
import { serverSideApply, type ObjectRef } from "./inventory.js";
import {
  planService,
  type DeployTarget,
  type KeptObject,
  type ObjectAction,
  type Plan,
  type PlanOptions,
} from "./plan.js";
import { awaitRollout, type RolloutOutcome, type Workload } from "./rollout.js";

/**
 * applyService makes the cluster match a rendered service: plan (read, then dry-run every
 * object, so nothing is written unless the API server accepts all of them), apply what differs,
 * prune what the spec no longer asks for, and wait for the rollout. Running it twice changes
 * nothing the second time: every object is reported unchanged.
 */

/** ObjectResult is what happened to one object, in controller-runtime's words plus "pruned". */
export type ObjectResult = "created" | "updated" | "unchanged" | "pruned";

/** AppliedObject is one object and what apply did to it. */
export interface AppliedObject {
  ref: ObjectRef;
  result: ObjectResult;
  /** changes are the fields an update changed. */
  changes: FieldChange[];
}

/** ApplyServiceOptions control an apply; the plan's options apply too. */
export interface ApplyServiceOptions extends PlanOptions {
  /** createNamespace creates the namespace when it does not exist. @default false */
  createNamespace?: boolean;
  /** prune deletes the service's objects the spec no longer asks for. @default true */
  prune?: boolean;
  /** wait for the rollout of the Deployment or StatefulSet. @default true */
  wait?: boolean;
  /** timeoutMs for the rollout. @default 300000 (Opta's `timeout` default, 300 s) */
  timeoutMs?: number;
  /** rollbackOnFailure rolls a Deployment back to its previous revision when the rollout fails. */
  rollbackOnFailure?: boolean;
  onProgress?: (message: string) => void;
  /** onApplied gets the report once every object is written and pruned, before the wait. */
  onApplied?: (report: ApplyReport) => void;
  signal?: AbortSignal;
}

/** ApplyReport is what an apply did. */
export interface ApplyReport {
  service: string;
  namespace: string;
  namespaceCreated: boolean;
  objects: AppliedObject[];
  kept: KeptObject[];
  /** rollout is how the wait ended; absent with wait false or when there is no workload. */
  rollout?: RolloutOutcome;
}

/** DEFAULT_TIMEOUT_MS is how long apply waits for a rollout by default. */
export const DEFAULT_TIMEOUT_MS = 300_000;

/** applyService applies the target; see the file comment. */
export async function applyService(
  client: KubeClient,
  target: DeployTarget,
  options: ApplyServiceOptions = {},
): Promise<ApplyReport> {
  refuseStatefulSetRollback(target, options);
  const namespaceCreated = await ensureNamespace(client, target.namespace, options.createNamespace ?? false);
  let plan: Plan;
  try {
    plan = await planService(client, target, { ...options, namespaceExists: true });
  } catch (err) {
    // A namespace made for a spec the server rejects would be the one thing left behind.
    if (namespaceCreated)
      await client.core.deleteNamespace({ name: target.namespace }).catch(() => undefined);
    throw err;
  }
  const objects = await writeObjects(client, plan);
  if (options.prune ?? true) objects.push(...(await pruneObjects(client, plan)));
  const report: ApplyReport = {
    service: target.service,
    namespace: target.namespace,
    namespaceCreated,
    objects,
    kept: plan.kept,
  };
  options.onApplied?.(report);
  const workload = workloadOf(target);
  if (!(options.wait ?? true) || !workload) return report;
  report.rollout = await awaitRollout(client, target.namespace, workload, {
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.rollbackOnFailure ? { rollbackOnFailure: true } : {}),
  });
  return report;
}

/**
 * refuseStatefulSetRollback: kubewise rolls back only Deployments (to the previous ReplicaSet's
 * template). Accepting the flag for a StatefulSet would promise a safety net that is not there,
 * so it is refused before anything is written.
 */
function refuseStatefulSetRollback(target: DeployTarget, options: ApplyServiceOptions): void {
  const workload = workloadOf(target);
  if (!options.rollbackOnFailure || workload?.kind !== "StatefulSet") return;
  throw new DeployError(
    "invalid",
    `--rollback-on-failure cannot be used for service ${target.service}: with persistent_storage it runs as a StatefulSet, and kubewise rolls back only Deployments; nothing was applied (drop the flag, and roll back by applying the previous spec)`,
  );
}

const resultOf: Record<ObjectAction, ObjectResult> = {
  create: "created",
  update: "updated",
  unchanged: "unchanged",
};

/**
 * HANDOVER_MANAGER holds a workload's replica count between kubewise dropping it and the HPA
 * first setting it; the API server removes its managedFields entry once the HPA does.
 */
export const HANDOVER_MANAGER = "kubewise-handover-to-hpa";

/** writeObjects applies the planned objects in order, skipping the unchanged ones. */
async function writeObjects(client: KubeClient, plan: Plan): Promise<AppliedObject[]> {
  const objects: AppliedObject[] = [];
  for (const o of plan.objects) {
    if (o.action !== "unchanged") {
      try {
        if (o.handoverReplicas !== undefined) await handOverReplicas(client, o.manifest, o.handoverReplicas);
        await serverSideApply(client, o.manifest, { dryRun: false });
      } catch (err) {
        throw partialFailure(err, objects);
      }
    }
    objects.push({ ref: o.ref, result: resultOf[o.action], changes: o.changes });
  }
  return objects;
}

/**
 * handOverReplicas applies only spec.replicas under HANDOVER_MANAGER, forcing it away from
 * kubewise, so the next apply without the field leaves the count alone (plan.ts replicasHandover).
 */
async function handOverReplicas(client: KubeClient, manifest: Manifest, replicas: number): Promise<void> {
  const { apiVersion, kind, metadata } = manifest;
  await serverSideApply(
    client,
    {
      apiVersion,
      kind,
      metadata: { name: metadata.name, namespace: metadata.namespace },
      spec: { replicas },
    },
    { dryRun: false, fieldManager: HANDOVER_MANAGER },
  );
}

async function pruneObjects(client: KubeClient, plan: Plan): Promise<AppliedObject[]> {
  const pruned: AppliedObject[] = [];
  for (const p of plan.prune) {
    // Background: the garbage collector removes a pruned Deployment's ReplicaSets and pods.
    await deleteObject(client, p.live, { propagation: "Background" });
    pruned.push({ ref: p.ref, result: "pruned", changes: [] });
  }
  return pruned;
}

/** workloadOf finds the Deployment or StatefulSet among a target's manifests. */
export function workloadOf(target: DeployTarget): Workload | undefined {
  const m = target.manifests.find((x) => x.kind === "Deployment" || x.kind === "StatefulSet");
  return m ? { kind: m.kind as Workload["kind"], name: m.metadata.name } : undefined;
}

/**
 * partialFailure: an object the dry run accepted can still fail for real (a quota used up in
 * between, the API server going away). Say which objects were written before it.
 */
function partialFailure(err: unknown, done: AppliedObject[]): Error {
  const ke = toKubeError(err, "apply");
  if (done.length === 0) return ke;
  const list = done.map((o) => `${o.ref.kind}/${o.ref.name} ${o.result}`).join(", ");
  return new KubeError(ke.reason, `${ke.message}\n(already applied: ${list}; apply again once fixed)`, {
    cause: ke,
  });
}

async function ensureNamespace(client: KubeClient, name: string, create: boolean): Promise<boolean> {
  try {
    await client.core.readNamespace({ name });
    return false;
  } catch (err) {
    const ke = toKubeError(err, `read namespace ${name}`);
    if (ke.reason !== "NotFound") throw ke;
  }
  if (!create) {
    throw new DeployError(
      "invalid",
      `namespace ${name} does not exist, so nothing was applied: create it, or pass --create-namespace`,
    );
  }
  try {
    await client.core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    throw toKubeError(err, `create namespace ${name}`);
  }
  return true;
}
