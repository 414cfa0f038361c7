/**
 * Tuned settings for job pods, by app id: what the servo's adjust decided (cpu, mem, env) and
 * the admission webhook applies to new job pods. The document is YAML, kept in the ConfigMap
 * SETTINGS_CONFIGMAP under the key SETTINGS_KEY (or in a file, for `--settings-file`):
 *
 * ```yaml
 * apiVersion: kubewise.io/v1alpha1
 * kind: JobSettings
 * apps:
 *   render-video:          # the app id (JOBID)
 *     cpu: 0.5             # cores
 *     mem: 1.5             # GiB
 *     env: {THREADS: "4"}  # numbers and booleans are written as strings
 *     resources: both      # set requests and limits (default), or only requests / limits
 *     version: adjust-17   # optional label, copied into the pod's annotation
 * ```
 *
 * App ids are map keys inside one document because a ConfigMap key cannot hold every string
 * an app id can be.
 *
 * Settings belong to a namespace: each namespace has its own SETTINGS_CONFIGMAP (the one
 * `kubewise jobs tune` writes in the namespace of its jobs), and a new pod gets the settings of
 * its app id in its own namespace's document only (NamespacedSettings), so two namespaces that
 * use the same app id never get each other's settings. A settings file (SettingsFile) is the
 * exception: it is one document, applied to pods of every namespace.
 */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { stringify } from "yaml";
import { z } from "zod";
import { ConfigError, parseConfig, parseYamlDocument } from "../config/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";

/** SETTINGS_CONFIGMAP is the ConfigMap the servo's adjust writes and the webhook reads. */
export const SETTINGS_CONFIGMAP = "kubewise-jobs-settings";
/** SETTINGS_KEY is the ConfigMap data key that holds the document. */
export const SETTINGS_KEY = "settings.yaml";
/** SETTINGS_API_VERSION and SETTINGS_KIND identify the document. */
export const SETTINGS_API_VERSION = "kubewise.io/v1alpha1";
export const SETTINGS_KIND = "JobSettings";

/** ResourceTarget says which of a container's resources the cpu and mem settings set. */
export type ResourceTarget = "both" | "requests" | "limits";

const envName = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const envValue = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));

const tunedSettingsSchema = z.strictObject({
  cpu: z.number().positive("cpu must be more than 0 cores").optional(),
  mem: z.number().positive("mem must be more than 0 GiB").optional(),
  env: z
    .record(z.string(), envValue)
    .superRefine((env, ctx) => {
      // Checked here rather than as the record's key schema, whose own message hides ours.
      for (const name of Object.keys(env).filter((n) => !envName.test(n))) {
        const message =
          "must be an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)";
        ctx.addIssue({ code: "custom", path: [name], message, input: name });
      }
    })
    .optional(),
  resources: z.enum(["both", "requests", "limits"]).default("both"),
  version: z.string().optional(),
});

/** TunedSettings are the settings for one app id. */
export type TunedSettings = z.output<typeof tunedSettingsSchema>;

const documentSchema = z.strictObject({
  apiVersion: z.literal(SETTINGS_API_VERSION),
  kind: z.literal(SETTINGS_KIND),
  apps: z.record(z.string().min(1, "an app id is empty"), tunedSettingsSchema).default({}),
});

/** SettingsByApp maps an app id to its tuned settings. */
export type SettingsByApp = ReadonlyMap<string, TunedSettings>;

/**
 * parseSettingsDocument reads a JobSettings document. It throws a ConfigError naming the field,
 * the value and what is allowed; `source` labels the messages (a file, or namespace/configmap).
 */
export function parseSettingsDocument(text: string, source?: string): SettingsByApp {
  const parsed = parseConfig(documentSchema, parseYamlDocument(text, source) ?? {}, source);
  return new Map(Object.entries(parsed.apps));
}

/** renderSettingsDocument writes the document parseSettingsDocument reads, app ids sorted. */
export function renderSettingsDocument(settings: SettingsByApp): string {
  const apps = Object.fromEntries([...settings.entries()].sort(([a], [b]) => a.localeCompare(b)));
  return stringify({ apiVersion: SETTINGS_API_VERSION, kind: SETTINGS_KIND, apps });
}

/**
 * SettingsSource answers "what are the latest settings for this app id, for a new pod in this
 * namespace?".
 */
export interface SettingsSource {
  settingsFor(namespace: string, appId: string): Promise<TunedSettings | undefined>;
}

/**
 * SettingsDocument holds one document's settings, fed with its texts, e.g. by a ConfigMap watch:
 * update() parses the new text and, if it is malformed, logs and keeps the last good settings
 * (a bad write by hand must not strip tuned settings from every new pod), returning false.
 */
export class SettingsDocument {
  private current: SettingsByApp = new Map();
  private readonly log: Logger;

  constructor(log: Logger = silentLogger) {
    this.log = log;
  }

  /** update replaces the settings with the document's; undefined text (no key) means none. */
  update(text: string | undefined, source: string): boolean {
    try {
      this.current = text === undefined ? new Map() : parseSettingsDocument(text, source);
      this.log.info({ source, apps: this.current.size }, "tuned settings loaded");
      return true;
    } catch (err) {
      this.log.error({ source, err }, "tuned settings are invalid; keeping the previous settings");
      return false;
    }
  }

  /** get returns the settings of an app id, or undefined when the document has none for it. */
  get(appId: string): TunedSettings | undefined {
    return this.current.get(appId);
  }
}

/**
 * NamespacedSettings is a SettingsSource with one SettingsDocument per namespace, fed by a watch
 * of the settings ConfigMaps: update() when a namespace's ConfigMap is added or changed,
 * remove() when it is deleted. A namespace without a document has no settings, so its pods are
 * admitted unchanged. A malformed document keeps that namespace's last good settings, and only
 * that namespace's.
 */
export class NamespacedSettings implements SettingsSource {
  private readonly documents = new Map<string, SettingsDocument>();
  private readonly log: Logger;

  constructor(log: Logger = silentLogger) {
    this.log = log;
  }

  /** update replaces the settings of `namespace` with the document's (see SettingsDocument.update). */
  update(namespace: string, text: string | undefined, source: string): boolean {
    let document = this.documents.get(namespace);
    if (document === undefined) {
      document = new SettingsDocument(this.log);
      this.documents.set(namespace, document);
    }
    return document.update(text, source);
  }

  /** remove forgets the settings of `namespace`: its new pods are admitted unchanged. */
  remove(namespace: string, source: string): void {
    if (this.documents.delete(namespace)) this.log.info({ source }, "tuned settings removed");
  }

  /** namespaces lists the namespaces that have a settings document, sorted. */
  namespaces(): string[] {
    return [...this.documents.keys()].sort();
  }

  async settingsFor(namespace: string, appId: string): Promise<TunedSettings | undefined> {
    return this.documents.get(namespace)?.get(appId);
  }
}

/**
 * SettingsFile is a SettingsSource backed by a file that is re-read when its modification time
 * or size changes. A change that does not parse is logged and the last good settings are kept,
 * so a half-written file never strips the settings from new pods. The file is one document for
 * the pods of every namespace: settingsFor ignores the namespace.
 */
export class SettingsFile implements SettingsSource {
  readonly file: string;
  private readonly document: SettingsDocument;
  private stamp = "";

  private constructor(file: string, log: Logger) {
    this.file = file;
    this.document = new SettingsDocument(log);
  }

  /**
   * open reads the file once. A malformed or unreadable file at start is an error (a
   * ConfigError) for the user to see; a missing one means no settings yet, because the file is
   * usually an optional ConfigMap volume that appears with the servo's first adjust.
   */
  static async open(file: string, log: Logger = silentLogger): Promise<SettingsFile> {
    const source = new SettingsFile(file, log);
    const stamp = fileStamp(file);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        log.warn({ file }, "no tuned settings file yet; pods are admitted unchanged until it appears");
        return source;
      }
      throw new ConfigError("unreadable", file, [
        { path: [], message: `cannot be read (${code ?? String(err)})` },
      ]);
    }
    parseSettingsDocument(text, file); // at start, a malformed file is the user's error to see
    source.document.update(text, file);
    source.stamp = stamp ?? "";
    return source;
  }

  async settingsFor(_namespace: string, appId: string): Promise<TunedSettings | undefined> {
    await this.refresh();
    return this.document.get(appId);
  }

  private async refresh(): Promise<void> {
    const stamp = fileStamp(this.file);
    if (stamp === undefined) {
      // Removed (the ConfigMap was deleted): no settings, rather than stale ones.
      if (this.stamp !== "") this.document.update(undefined, this.file);
      this.stamp = "";
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    const text = await readFile(this.file, "utf8").catch(() => undefined);
    // A file that vanished between stat and read keeps the last settings, like a bad one.
    if (text !== undefined) this.document.update(text, this.file);
  }
}

function fileStamp(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${st.mtimeMs}:${st.size}:${st.ino}`;
  } catch {
    return undefined;
  }
}
