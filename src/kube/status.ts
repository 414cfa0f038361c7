import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient } from "./client.js";
import { KubeError, toKubeError } from "./errors.js";

/** StatusTarget names a custom resource type: its apiVersion (group/version) and plural. */
export interface StatusTarget {
  apiVersion: string;
  plural: string;
}

/**
 * replaceStatus writes `object.status` through the status subresource of a namespaced custom
 * resource. The object's metadata.resourceVersion makes it an optimistic write: when the object
 * changed since it was read, the API server refuses it and this throws a KubeError with reason
 * Conflict, so the caller reads again instead of overwriting what it did not see. Returns the
 * object as stored, with its new resourceVersion.
 */
export async function replaceStatus<T extends KubernetesObject>(
  client: KubeClient,
  target: StatusTarget,
  object: T,
): Promise<T> {
  const slash = target.apiVersion.indexOf("/");
  const name = object.metadata?.name;
  const namespace = object.metadata?.namespace;
  if (slash < 0 || !name || !namespace) {
    throw new KubeError(
      "Invalid",
      `replace status: need a group/version apiVersion, a name and a namespace (got ${target.apiVersion} ${namespace ?? "?"}/${name ?? "?"})`,
    );
  }
  try {
    return (await client.custom.replaceNamespacedCustomObjectStatus({
      group: target.apiVersion.slice(0, slash),
      version: target.apiVersion.slice(slash + 1),
      plural: target.plural,
      namespace,
      name,
      body: object,
    })) as T;
  } catch (err) {
    throw toKubeError(err, `update status of ${object.kind ?? target.plural} ${namespace}/${name}`);
  }
}
