/**
 * The tuned-settings ConfigMaps on the cluster (SETTINGS_CONFIGMAP, key SETTINGS_KEY; the
 * document is described in settings.ts). Each namespace has its own: `kubewise jobs tune` writes
 * the one in the namespace of its jobs (saveTunedSettings, one app id at a time), and
 * ConfigMapSettings follows them all through one cluster-wide watch for the admission webhook,
 * which applies to a new pod the settings of the pod's own namespace. The watch, rather than a
 * ConfigMap volume, is what lets one webhook serve every namespace, and a new adjust reach the
 * next pod at once rather than after the kubelet's volume sync.
 */
import type { V1ConfigMap } from "../kube/index.js";
import {
  KubeError,
  ResourceWatcher,
  ignoreNotFound,
  toKubeError,
  type ApplyResult,
  type KubeClient,
} from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import {
  NamespacedSettings,
  SETTINGS_CONFIGMAP,
  SETTINGS_KEY,
  parseSettingsDocument,
  renderSettingsDocument,
  type SettingsSource,
  type TunedSettings,
} from "./settings.js";
import { DEFAULT_START_TIMEOUT_MS, startWatch } from "./watcher.js";

/** ConfigMapSettingsOptions configure a ConfigMapSettings. */
export interface ConfigMapSettingsOptions {
  client: KubeClient;
  /**
   * namespace, when set, follows only that namespace's ConfigMap (for an account that may read
   * ConfigMaps there only): pods of every other namespace then get no settings.
   * @default every namespace
   */
  namespace?: string;
  /** name of the ConfigMaps. @default SETTINGS_CONFIGMAP */
  name?: string;
  log?: Logger;
  /** startTimeoutMs bounds the wait for the first read. @default DEFAULT_START_TIMEOUT_MS */
  startTimeoutMs?: number;
}

/**
 * ConfigMapSettings is a SettingsSource that follows the settings ConfigMap of every namespace
 * (or of one, see ConfigMapSettingsOptions.namespace) and answers for a pod from its own
 * namespace's. A namespace without the ConfigMap (or its key) has no settings; a malformed
 * document is logged and that namespace's last good one kept (see NamespacedSettings). start()
 * fails with a KubeError naming the ConfigMaps when they cannot be listed.
 */
export class ConfigMapSettings implements SettingsSource {
  private readonly options: ConfigMapSettingsOptions;
  private readonly settings: NamespacedSettings;
  private readonly watcher: ResourceWatcher<V1ConfigMap>;

  constructor(options: ConfigMapSettingsOptions) {
    this.options = options;
    const log = options.log ?? silentLogger;
    this.settings = new NamespacedSettings(log);
    const name = options.name ?? SETTINGS_CONFIGMAP;
    // Selecting by name keeps the watch to the settings ConfigMaps, and lets RBAC grant list and
    // watch on that name alone (resourceNames), not on every ConfigMap of the cluster.
    this.watcher = new ResourceWatcher<V1ConfigMap>(
      options.client,
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        namespace: options.namespace,
        fieldSelector: `metadata.name=${name}`,
      },
      { log },
    );
    this.watcher.on((event) => {
      const namespace = event.object.metadata?.namespace ?? "";
      const source = `configmap ${namespace}/${name}`;
      if (event.type === "deleted") this.settings.remove(namespace, source);
      else this.settings.update(namespace, event.object.data?.[SETTINGS_KEY], source);
    });
  }

  /** start lists the ConfigMaps and follows them; it resolves once the first list is in. */
  async start(): Promise<void> {
    const name = this.options.name ?? SETTINGS_CONFIGMAP;
    const scope = this.options.namespace;
    const what =
      scope === undefined ? `configmaps named ${name} in all namespaces` : `configmap ${scope}/${name}`;
    const hint =
      scope === undefined
        ? `grant list and watch on configmaps named ${name} cluster-wide (the ClusterRole kubewise-jobs-webhook in manifests/jobs/rbac.yaml)`
        : `grant list and watch on that ConfigMap (a Role in namespace "${scope}")`;
    try {
      await startWatch(this.watcher, what, {
        timeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
        hint,
      });
    } catch (err) {
      await this.watcher.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
  }

  /** namespaces lists the namespaces whose settings ConfigMap is followed now. */
  namespaces(): string[] {
    return this.settings.namespaces();
  }

  async settingsFor(namespace: string, appId: string): Promise<TunedSettings | undefined> {
    return this.settings.settingsFor(namespace, appId);
  }
}

const MAX_WRITE_ATTEMPTS = 5;

/**
 * saveTunedSettings sets the tuned settings of one app id in the settings ConfigMap of
 * `namespace`, keeping every other app id's, and creates the ConfigMap if needed. It is a
 * read-modify-write guarded by the resourceVersion, retried when another writer got there
 * first, so two adjusts for different app ids never lose each other's settings. It throws a
 * ConfigError when the document already there is malformed (rather than overwrite it), and a
 * KubeError when the API refuses.
 */
export async function saveTunedSettings(
  client: KubeClient,
  namespace: string,
  appId: string,
  settings: TunedSettings,
  options: { name?: string } = {},
): Promise<ApplyResult> {
  const name = options.name ?? SETTINGS_CONFIGMAP;
  const what = `configmap ${namespace}/${name}`;
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeOnce(client, namespace, name, appId, settings);
    } catch (err) {
      const error = toKubeError(err, `write ${what}`);
      const raced = error.reason === "Conflict" || error.reason === "AlreadyExists";
      if (!raced) throw error;
      if (attempt >= MAX_WRITE_ATTEMPTS) {
        throw new KubeError("Conflict", `write ${what}: still changing under us after ${attempt} attempts`, {
          cause: error,
        });
      }
    }
  }
}

async function writeOnce(
  client: KubeClient,
  namespace: string,
  name: string,
  appId: string,
  settings: TunedSettings,
): Promise<ApplyResult> {
  const current = await ignoreNotFound(client.core.readNamespacedConfigMap({ namespace, name }));
  const text = current?.data?.[SETTINGS_KEY];
  const before =
    text === undefined ? new Map() : parseSettingsDocument(text, `configmap ${namespace}/${name}`);
  const rendered = renderSettingsDocument(new Map([...before, [appId, settings]]));
  if (current === undefined) {
    await client.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name, namespace }, data: { [SETTINGS_KEY]: rendered } },
    });
    return "created";
  }
  // Compared as rendered, so a hand-formatted document with the same settings is left alone.
  if (text !== undefined && renderSettingsDocument(before) === rendered) return "unchanged";
  // replace carries the resourceVersion read above: a concurrent write makes it a Conflict.
  await client.core.replaceNamespacedConfigMap({
    namespace,
    name,
    body: { ...current, data: { ...current.data, [SETTINGS_KEY]: rendered } },
  });
  return "updated";
}
