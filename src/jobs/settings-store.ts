/**
 * The tuned-settings ConfigMap on the cluster (SETTINGS_CONFIGMAP, key SETTINGS_KEY; the
 * document is described in settings.ts): ConfigMapSettings follows it through a watch for the
 * admission webhook, so a new adjust reaches the next pod at once rather than after the
 * kubelet's volume sync; saveTunedSettings is the write an adjust makes for one app id.
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
  SETTINGS_CONFIGMAP,
  SETTINGS_KEY,
  SettingsDocument,
  parseSettingsDocument,
  renderSettingsDocument,
  type SettingsSource,
  type TunedSettings,
} from "./settings.js";
import { DEFAULT_START_TIMEOUT_MS, startWatch } from "./watcher.js";

/** ConfigMapSettingsOptions configure a ConfigMapSettings. */
export interface ConfigMapSettingsOptions {
  client: KubeClient;
  /** namespace of the ConfigMap. */
  namespace: string;
  /** name of the ConfigMap. @default SETTINGS_CONFIGMAP */
  name?: string;
  log?: Logger;
  /** startTimeoutMs bounds the wait for the first read. @default DEFAULT_START_TIMEOUT_MS */
  startTimeoutMs?: number;
}

/**
 * ConfigMapSettings is a SettingsSource that follows the settings ConfigMap. A missing ConfigMap
 * (or key) means no settings; a malformed document is logged and the last good one kept (see
 * SettingsDocument). start() fails with a KubeError naming the ConfigMap when it cannot be read.
 */
export class ConfigMapSettings implements SettingsSource {
  private readonly options: ConfigMapSettingsOptions;
  private readonly document: SettingsDocument;
  private readonly watcher: ResourceWatcher<V1ConfigMap>;

  constructor(options: ConfigMapSettingsOptions) {
    this.options = options;
    const log = options.log ?? silentLogger;
    this.document = new SettingsDocument(log);
    const name = options.name ?? SETTINGS_CONFIGMAP;
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
    const source = `configmap ${options.namespace}/${name}`;
    this.watcher.on((event) => {
      const text = event.type === "deleted" ? undefined : event.object.data?.[SETTINGS_KEY];
      this.document.update(text, source);
    });
  }

  /** start reads the ConfigMap and follows it; it resolves once the first read is in. */
  async start(): Promise<void> {
    const name = this.options.name ?? SETTINGS_CONFIGMAP;
    try {
      await startWatch(this.watcher, `configmap ${this.options.namespace}/${name}`, {
        timeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
        hint: "grant get, list and watch on that ConfigMap (the Role kubewise-jobs-webhook in manifests/jobs/rbac.yaml)",
      });
    } catch (err) {
      await this.watcher.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.watcher.stop();
  }

  async settingsFor(appId: string): Promise<TunedSettings | undefined> {
    return this.document.settingsFor(appId);
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
