import type { KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";
import { KubeError } from "./errors.js";

/**
 * ownerReference points at owner so the garbage collector deletes the dependent with it.
 * `controller` marks the owner as the managing controller; `blockOwnerDeletion` makes a
 * foreground delete of the owner wait for the dependent.
 */
export function ownerReference(
  owner: KubernetesObject,
  options: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): V1OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new KubeError(
      "Invalid",
      `cannot reference owner ${kind ?? "?"}/${name ?? "?"}: apiVersion, kind, name and uid are needed`,
    );
  }
  return {
    apiVersion,
    kind,
    name,
    uid,
    controller: options.controller ?? true,
    blockOwnerDeletion: options.blockOwnerDeletion ?? false,
  };
}

/** controllerOf returns the owner reference marked controller, if any. */
export function controllerOf(obj: KubernetesObject): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}
