import { PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient } from "./client.js";
import { isNotFound, toKubeError } from "./errors.js";

/** FIELD_MANAGER is the field manager name of every server-side apply kubewise makes. */
export const FIELD_MANAGER = "kubewise";

/** ApplyResult says what an apply did, so logs and tests can tell. */
export type ApplyResult = "created" | "updated" | "unchanged";

export interface ApplyOptions {
  /** dryRun asks the server to validate and compute the result without persisting it. */
  dryRun?: boolean;
  /** force takes ownership of fields another manager set. @default true */
  force?: boolean;
}

/** describeObject renders kind namespace/name for messages. */
export function describeObject(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return `${obj.kind ?? "object"} ${ns ? `${ns}/` : ""}${obj.metadata?.name ?? "?"}`;
}

/**
 * applyObject server-side applies obj with field manager "kubewise" and reports whether it was
 * created, updated or left unchanged (an apply that changes nothing keeps the resourceVersion).
 */
export async function applyObject<T extends KubernetesObject>(
  client: KubeClient,
  obj: T,
  options: ApplyOptions = {},
): Promise<{ result: ApplyResult; object: T }> {
  const header = {
    apiVersion: obj.apiVersion ?? "",
    kind: obj.kind ?? "",
    metadata: { name: obj.metadata?.name ?? "", namespace: obj.metadata?.namespace ?? "" },
  };
  let before: KubernetesObject | undefined;
  try {
    before = await client.objects.read(header);
  } catch (err) {
    if (!isNotFound(err)) throw toKubeError(err, `read ${describeObject(obj)}`);
  }
  try {
    const object = await client.objects.patch(
      obj,
      undefined,
      options.dryRun ? "All" : undefined,
      FIELD_MANAGER,
      options.force ?? true,
      PatchStrategy.ServerSideApply,
    );
    const result: ApplyResult = !before
      ? "created"
      : before.metadata?.resourceVersion === object.metadata?.resourceVersion
        ? "unchanged"
        : "updated";
    return { result, object };
  } catch (err) {
    throw toKubeError(err, `apply ${describeObject(obj)}`);
  }
}

/** deleteObject deletes obj, returning false when it was already gone. */
export async function deleteObject(
  client: KubeClient,
  obj: KubernetesObject,
  options: { propagation?: "Foreground" | "Background" | "Orphan"; gracePeriodSeconds?: number } = {},
): Promise<boolean> {
  try {
    await client.objects.delete(
      obj,
      undefined,
      undefined,
      options.gracePeriodSeconds,
      undefined,
      options.propagation ?? "Background",
    );
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw toKubeError(err, `delete ${describeObject(obj)}`);
  }
}

/** PatchKind is the kind of patch: strategic merge (built-in kinds only) or JSON merge. */
export type PatchKind = "strategic" | "merge";

const patchStrategies: Record<PatchKind, PatchStrategy> = {
  strategic: PatchStrategy.StrategicMergePatch,
  merge: PatchStrategy.MergePatch,
};

/**
 * patchObject patches the object named by `target` (apiVersion, kind, name, namespace); `patch`
 * holds the fields to change, and null deletes a field.
 */
export async function patchObject<T extends KubernetesObject>(
  client: KubeClient,
  target: { apiVersion: string; kind: string; name: string; namespace?: string },
  patch: Record<string, unknown>,
  kind: PatchKind = "strategic",
): Promise<T> {
  const metadata = {
    ...(patch.metadata as object | undefined),
    name: target.name,
    namespace: target.namespace,
  };
  const body = { ...patch, apiVersion: target.apiVersion, kind: target.kind, metadata };
  try {
    return await client.objects.patch<T>(
      body as unknown as T,
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      patchStrategies[kind],
    );
  } catch (err) {
    throw toKubeError(
      err,
      `patch ${target.kind} ${target.namespace ? `${target.namespace}/` : ""}${target.name}`,
    );
  }
}
