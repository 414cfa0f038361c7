import {
  FIELD_MANAGER,
  ignoreNotFound,
  isNotFound,
  toKubeError,
  type KubeClient,
  type KubernetesObject,
} from "../kube/index.js";
import { MANAGED_BY, type Manifest } from "./render.js";

/**
 * What a service owns in a cluster: the objects of the kinds the renderer makes that carry its
 * labels (`app.kubernetes.io/name: <service>` and `app.kubernetes.io/managed-by: kubewise`; a
 * CronJob names its service in `app.kubernetes.io/part-of`). Finding them by label, not by a
 * record of past applies, keeps apply level-based: what is in the cluster is the truth.
 */

/** ObjectRef names one object. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

/** ServiceKind is a kind the renderer can produce, so one a service may own. */
export interface ServiceKind {
  apiVersion: string;
  kind: string;
}

/** SERVICE_KINDS are the kinds renderService can produce, in apply order. */
export const SERVICE_KINDS: readonly ServiceKind[] = [
  { apiVersion: "v1", kind: "ServiceAccount" },
  { apiVersion: "v1", kind: "Service" },
  { apiVersion: "apps/v1", kind: "Deployment" },
  { apiVersion: "apps/v1", kind: "StatefulSet" },
  { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler" },
  { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
  { apiVersion: "networking.k8s.io/v1", kind: "Ingress" },
  { apiVersion: "batch/v1", kind: "CronJob" },
];

const NAME = "app.kubernetes.io/name";
const PART_OF = "app.kubernetes.io/part-of";
const MANAGED = "app.kubernetes.io/managed-by";

/** refOf names a manifest or live object. */
export function refOf(obj: KubernetesObject | Manifest, namespace = ""): ObjectRef {
  return {
    apiVersion: obj.apiVersion ?? "",
    kind: obj.kind ?? "",
    namespace: obj.metadata?.namespace ?? namespace,
    name: obj.metadata?.name ?? "",
  };
}

/** refKey is a map key for an object within one namespace: kind and name. */
export function refKey(ref: Pick<ObjectRef, "kind" | "name">): string {
  return `${ref.kind}/${ref.name}`;
}

/**
 * belongsTo says whether an object's labels claim it for the service. A CronJob counts only by
 * `part-of`: its own name label is its name, which could equal another service's name.
 */
export function belongsTo(obj: KubernetesObject, service: string): boolean {
  const labels = obj.metadata?.labels ?? {};
  if (labels[MANAGED] !== MANAGED_BY) return false;
  if (obj.kind === "CronJob") return labels[PART_OF] === service;
  return labels[NAME] === service && (labels[PART_OF] === undefined || labels[PART_OF] === service);
}

/**
 * appliedByKubewise says whether kubewise has server-side applied the object: it holds a
 * managedFields entry of the "kubewise" manager with operation Apply. Only such objects are ever
 * pruned, so a labelled object someone else made (kubectl, Helm, by hand) is never deleted.
 */
export function appliedByKubewise(obj: KubernetesObject): boolean {
  return (obj.metadata?.managedFields ?? []).some(
    (f) => f.manager === FIELD_MANAGER && f.operation === "Apply",
  );
}

/** ownerOfFields names the field managers of an object other than kubewise, for messages. */
export function otherManagers(obj: KubernetesObject): string[] {
  const names = (obj.metadata?.managedFields ?? [])
    .map((f) => f.manager ?? "?")
    .filter((m) => m !== FIELD_MANAGER);
  return [...new Set(names)];
}

function selectorsFor(kind: string, service: string): string {
  const by = kind === "CronJob" ? `${PART_OF}=${service}` : `${NAME}=${service}`;
  return `${MANAGED}=${MANAGED_BY},${by}`;
}

/**
 * listServiceObjects lists every object of the service in the namespace, across SERVICE_KINDS,
 * in that order. A kind the API server does not serve is skipped.
 */
export async function listServiceObjects(
  client: KubeClient,
  namespace: string,
  service: string,
): Promise<KubernetesObject[]> {
  const lists = await Promise.all(
    SERVICE_KINDS.map(async ({ apiVersion, kind }) => {
      try {
        const list = await client.objects.list(
          apiVersion,
          kind,
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          selectorsFor(kind, service),
        );
        // List items come without apiVersion and kind; put them back so the objects stand alone.
        return list.items
          .map((item) => ({ ...item, apiVersion, kind }))
          .filter((item) => belongsTo(item, service));
      } catch (err) {
        if (isNotFound(err) || /Unrecognized API version and kind/.test(String(err))) return [];
        throw toKubeError(err, `list ${kind} objects of service ${namespace}/${service}`);
      }
    }),
  );
  return lists.flat();
}

/** readObject reads the object a manifest names, or undefined when it does not exist. */
export async function readObject(client: KubeClient, ref: ObjectRef): Promise<KubernetesObject | undefined> {
  try {
    return await ignoreNotFound(
      client.objects.read({
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        metadata: { name: ref.name, namespace: ref.namespace },
      }),
    );
  } catch (err) {
    throw toKubeError(err, `read ${ref.kind} ${ref.namespace}/${ref.name}`);
  }
}

/**
 * serverSideApply applies a manifest with field manager "kubewise" (or `fieldManager`), forcing ownership of the
 * fields it sets; `dryRun` makes the server run every stage (defaulting, validation, admission)
 * and return the result without storing it. Unlike applyObject in src/kube it reads nothing
 * first: the plan has already read the live objects, and a second read per object would double
 * the requests of a re-apply.
 */
export async function serverSideApply(
  client: KubeClient,
  manifest: Manifest,
  options: { dryRun: boolean; fieldManager?: string },
): Promise<KubernetesObject> {
  try {
    return await client.objects.patch(
      manifest as KubernetesObject,
      undefined,
      options.dryRun ? "All" : undefined,
      options.fieldManager ?? FIELD_MANAGER,
      true,
      "application/apply-patch+yaml",
    );
  } catch (err) {
    throw toKubeError(
      err,
      `${options.dryRun ? "dry-run " : ""}apply ${manifest.kind} ${manifest.metadata.name}`,
    );
  }
}
