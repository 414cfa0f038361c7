import { Watch, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { KubeClient } from "./client.js";
import { KubeError, toKubeError } from "./errors.js";

/** WatchTarget names the objects to watch: a kind, optionally in one namespace, with selectors. */
export interface WatchTarget {
  apiVersion: string;
  kind: string;
  /** plural resource name; @default derived from kind ("Pod" -> "pods", "Ingress" -> "ingresses") */
  plural?: string;
  /** namespace; @default all namespaces */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export type WatchEventType = "added" | "updated" | "deleted";

/** WatchEvent is one change seen in the cache: the object after it (or as last seen, when deleted). */
export interface WatchEvent<T> {
  type: WatchEventType;
  object: T;
  /**
   * inferred is true on a "deleted" event the watcher did not see but inferred from a relist (the
   * object was cached and is missing from the new list, after a 410 or an outage). Its object is
   * the last cached state, which may be stale: the object may have changed before it was deleted.
   * Unset on every event the API server sent.
   */
  inferred?: boolean;
}

export interface WatcherOptions {
  log?: Logger;
  /** sleep is injectable so tests can run the backoff fast. */
  sleep?: (ms: number) => Promise<void>;
  /** backoff after consecutive failures: initialMs doubling up to maxMs. @default 500 ms .. 30 s */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** serverTimeoutSeconds makes the server end each watch so a silently dead connection is replaced. @default 240 */
  serverTimeoutSeconds?: number;
}

/** resourcePath is the REST path of a collection: /api/v1/namespaces/ns/pods, /apis/apps/v1/deployments. */
export function resourcePath(
  target: Pick<WatchTarget, "apiVersion" | "kind" | "plural" | "namespace">,
): string {
  const plural = target.plural ?? pluralOf(target.kind);
  const base = target.apiVersion.includes("/") ? `/apis/${target.apiVersion}` : `/api/${target.apiVersion}`;
  return target.namespace ? `${base}/namespaces/${target.namespace}/${plural}` : `${base}/${plural}`;
}

function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith("s") || lower.endsWith("x")) return `${lower}es`;
  if (lower.endsWith("y") && !/[aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

type Listener<T> = (event: WatchEvent<T>) => void;

/**
 * ResourceWatcher keeps a cache of the objects a target selects and tells listeners about every
 * change. Unlike the official informer it never stops by itself: a 410 Gone relists at once, and
 * any other failure (API server down, connection reset) relists after an exponential backoff, so
 * changes made while it was disconnected are delivered as events once it is back, deletions too.
 */
export class ResourceWatcher<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private readonly listeners = new Set<Listener<T>>();
  private readonly errorListeners = new Set<(err: KubeError) => void>();
  private resourceVersion = "";
  private stopped = true;
  private current: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private syncedResolve!: () => void;
  private readonly syncedPromise: Promise<void>;
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private wake: (() => void) | undefined;
  private relistCount = 0;
  private goneCount = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly target: WatchTarget,
    private readonly options: WatcherOptions = {},
  ) {
    this.log = (options.log ?? silentLogger).child({ watch: resourcePath(target) });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.syncedPromise = new Promise((resolve) => (this.syncedResolve = resolve));
  }

  /** on registers a listener for changes; it returns a function that removes it. */
  on(listener: Listener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** onError registers a listener for failures (the watcher keeps going after each). */
  onError(listener: (err: KubeError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** start begins listing and watching in the background; `synced()` tells when the first list is in. */
  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    this.loop = this.run();
    return this;
  }

  /** synced resolves once the cache holds a full list. */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  /** stop ends the watch; it resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort();
    this.wake?.();
    await this.loop;
  }

  /**
   * stats counts the full lists made (the first one included) and the watches the server ended
   * with 410 Gone (a resource version it no longer has), for logs and tests.
   */
  stats(): { relists: number; gone: number } {
    return { relists: this.relistCount, gone: this.goneCount };
  }

  /** list returns the cached objects. */
  list(): T[] {
    return [...this.cache.values()];
  }

  /** get returns one cached object. */
  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(`${namespace ?? this.target.namespace ?? ""}/${name}`);
  }

  private emit(type: WatchEventType, object: T, inferred = false): void {
    const event: WatchEvent<T> = inferred ? { type, object, inferred } : { type, object };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.error({ err }, "watch listener failed");
      }
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        const outcome = await this.watchOnce();
        if (outcome === "gone") {
          this.goneCount++;
          this.log.debug("resource version too old, relisting");
          this.resourceVersion = "";
        }
        failures = 0;
      } catch (err) {
        if (this.stopped) break;
        failures++;
        const error = toKubeError(err, `watch ${resourcePath(this.target)}`);
        for (const listener of this.errorListeners) listener(error);
        const delay = Math.min(
          (this.options.initialBackoffMs ?? 500) * 2 ** (failures - 1),
          this.options.maxBackoffMs ?? 30_000,
        );
        this.log.warn({ err: error.message, retryInMs: delay, failures }, "watch failed, will relist");
        this.resourceVersion = "";
        await Promise.race([this.sleep(delay), new Promise<void>((r) => (this.wake = r))]);
      }
    }
  }

  private async relist(): Promise<void> {
    const t = this.target;
    const list = await this.client.objects.list<T>(
      t.apiVersion,
      t.kind,
      t.namespace,
      undefined,
      undefined,
      undefined,
      t.fieldSelector,
      t.labelSelector,
    );
    this.relistCount++;
    const seen = new Set<string>();
    for (const obj of list.items) {
      // Lists of built-in kinds omit apiVersion/kind on items; fill them so callers can rely on them.
      obj.apiVersion ??= t.apiVersion;
      obj.kind ??= t.kind;
      const key = keyOf(obj);
      seen.add(key);
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit("added", obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit("updated", obj);
    }
    for (const [key, obj] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit("deleted", obj, true);
      }
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? "";
    this.syncedResolve();
  }

  private watchOnce(): Promise<"gone" | "closed"> {
    const t = this.target;
    const watch = new Watch(this.client.config);
    return new Promise((resolve, reject) => {
      let gone = false;
      let failure: KubeError | undefined;
      const onEvent = (phase: string, obj: T & { code?: number; message?: string }): void => {
        if (phase === "ERROR") {
          if (obj.code === 410) gone = true;
          else failure = new KubeError("Unknown", `watch error: ${obj.message ?? JSON.stringify(obj)}`);
          this.current?.abort();
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (phase === "BOOKMARK") return;
        obj.apiVersion ??= t.apiVersion;
        obj.kind ??= t.kind;
        const key = keyOf(obj);
        if (phase === "DELETED") {
          this.cache.delete(key);
          this.emit("deleted", obj);
        } else {
          const existed = this.cache.has(key);
          this.cache.set(key, obj);
          this.emit(existed ? "updated" : "added", obj);
        }
      };
      const onDone = (err: unknown): void => {
        this.current = undefined;
        // 410 comes as an ERROR event in the stream, or as the status of the watch request.
        if (gone || (err as { statusCode?: number } | null)?.statusCode === 410) resolve("gone");
        else if (failure) reject(failure);
        else if (err && !this.stopped && (err as { name?: string }).name !== "AbortError") reject(err);
        else resolve("closed");
      };
      watch
        .watch(
          resourcePath(t),
          {
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: t.labelSelector,
            fieldSelector: t.fieldSelector,
            timeoutSeconds: this.options.serverTimeoutSeconds ?? 240,
          },
          onEvent,
          onDone,
        )
        .then((controller) => {
          this.current = controller;
          if (this.stopped) controller.abort();
        }, reject);
    });
  }
}
