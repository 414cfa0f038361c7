import { deleteObject, waitForDeleted, type KubeClient } from "../kube/index.js";
import {
  SERVICE_KINDS,
  appliedByKubewise,
  listServiceObjects,
  otherManagers,
  refOf,
  type ObjectRef,
} from "./inventory.js";
import type { KeptObject } from "./plan.js";

/**
 * deleteService removes a service from a namespace: every object with its labels that kubewise
 * applied, newest kinds first (Ingresses before the Service they route to, the HPA before the
 * Deployment it scales). Objects with its labels that kubewise never applied are left alone and
 * reported. With wait, it returns once they are all gone, pods included.
 */

/** DeleteOptions control deleteService. */
export interface DeleteOptions {
  /** wait until every deleted object is gone, its pods too. @default true */
  wait?: boolean;
  timeoutMs?: number;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

/** DeleteReport lists what was deleted and what was left alone. */
export interface DeleteReport {
  deleted: ObjectRef[];
  kept: KeptObject[];
}

const kindOrder = (kind: string): number => SERVICE_KINDS.findIndex((k) => k.kind === kind);

/** deleteService deletes the service's objects; see the file comment. */
export async function deleteService(
  client: KubeClient,
  namespace: string,
  service: string,
  options: DeleteOptions = {},
): Promise<DeleteReport> {
  const owned = await listServiceObjects(client, namespace, service);
  const deleted: ObjectRef[] = [];
  const kept: KeptObject[] = [];
  const ours = owned
    .filter((o) => {
      if (appliedByKubewise(o)) return true;
      const managers = otherManagers(o).join(", ") || "unknown";
      kept.push({ ref: refOf(o, namespace), why: `kubewise never applied it (managed by ${managers})` });
      return false;
    })
    .sort((a, b) => kindOrder(b.kind ?? "") - kindOrder(a.kind ?? ""));
  for (const obj of ours) {
    // Foreground: the object stays until its dependents (ReplicaSets, pods, Jobs) are gone, so
    // waiting for the object waits for its pods as well.
    if (await deleteObject(client, obj, { propagation: "Foreground" })) deleted.push(refOf(obj, namespace));
  }
  if (options.wait ?? true) {
    let remaining = deleted.length;
    await Promise.all(
      deleted.map(async (ref) => {
        await waitForDeleted(
          client,
          { apiVersion: ref.apiVersion, kind: ref.kind, namespace, name: ref.name },
          {
            timeoutMs: options.timeoutMs ?? 300_000,
            ...(options.signal ? { signal: options.signal } : {}),
          },
        );
        remaining--;
        options.onProgress?.(`${deleted.length - remaining} of ${deleted.length} objects deleted`);
      }),
    );
  }
  return { deleted, kept };
}
