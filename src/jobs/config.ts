/**
 * Configuration of `kubewise jobs watch` and `kubewise jobs webhook`: the seed's environment
 * variables with the seed's defaults, and a CLI flag for each (a flag overrides its variable).
 * Problems are reported through ConfigError, named by the flag or variable the value came from.
 * A default applies only to a variable that is not set: one set to "" (POD_NAMESPACES="",
 * OPTUNE_APP_ID="", OPTUNE_URL="") is an error, since it is more likely a broken template or
 * Secret than a wish for the default. OPTUNE_URL must contain {app_id}, and no brace but those of
 * {acct} and {app_id}.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { ConfigError, parseConfig, type ConfigIssue } from "../config/index.js";
import { DEFAULT_APP_ID_PATH, describeAppIdPathError, parseAppIdPath, type AppIdPath } from "./appid.js";

/** DEFAULT_OPTUNE_URL is the seed's OPTUNE_URL default; it needs OPTUNE_ACCOUNT and a token. */
export const DEFAULT_OPTUNE_URL =
  "https://us-central1-optune-saas-collect.cloudfunctions.net/metrics/{acct}/{app_id}/servo";

/** DEFAULT_NAMESPACES is the seed's POD_NAMESPACES default. */
export const DEFAULT_NAMESPACES = ["default"];

/** DEFAULT_OUTBOX is where the watcher keeps undelivered reports unless --outbox says otherwise. */
export const DEFAULT_OUTBOX = ".kubewise/jobs/outbox.sqlite";

/** DEFAULT_WEBHOOK_LISTEN is the webhook's address: loopback unless told otherwise. */
export const DEFAULT_WEBHOOK_LISTEN = "127.0.0.1:8443";

/** JOBS_ENV names the seed's environment variables. */
export const JOBS_ENV = {
  url: "OPTUNE_URL",
  account: "OPTUNE_ACCOUNT",
  token: "OPTUNE_AUTH_TOKEN",
  namespaces: "POD_NAMESPACES",
  appIdPath: "OPTUNE_APP_ID",
} as const;

/** URL_PLACEHOLDERS are the replacement strings OPTUNE_URL may contain. */
export const URL_PLACEHOLDERS = ["{acct}", "{app_id}"] as const;

/** JobsWatchFlags are the flags of `kubewise jobs watch`; each overrides its env variable. */
export interface JobsWatchFlags {
  /** url overrides OPTUNE_URL. */
  url?: string;
  /** account overrides OPTUNE_ACCOUNT. */
  account?: string;
  /** tokenFile names a file holding the bearer token; overrides OPTUNE_AUTH_TOKEN. */
  tokenFile?: string;
  /** namespaces is comma-separated and overrides POD_NAMESPACES. */
  namespaces?: string;
  /** appIdPath overrides OPTUNE_APP_ID. */
  appIdPath?: string;
  /** outbox is the outbox file. @default DEFAULT_OUTBOX */
  outbox?: string;
}

/** ReportTarget is where and how reports are sent. The token is never logged. */
export interface ReportTarget {
  /** urlTemplate is OPTUNE_URL with its {acct} and {app_id} placeholders still in it. */
  urlTemplate: string;
  account: string;
  /** token is sent as `Authorization: Bearer <token>`; no header when undefined. */
  token: string | undefined;
}

/** JobsWatchConfig is the validated configuration of the watcher. */
export interface JobsWatchConfig {
  target: ReportTarget;
  namespaces: string[];
  /**
   * namespacesFrom names where the namespaces came from (`--namespaces`, `POD_NAMESPACES`, or
   * `--namespaces/POD_NAMESPACES` for the default), for the error about one that does not exist.
   */
  namespacesFrom?: string;
  appIdPath: AppIdPath;
  outbox: string;
}

/** JobsWebhookFlags are the flags of `kubewise jobs webhook`. */
export interface JobsWebhookFlags {
  /** listen is host:port. @default DEFAULT_WEBHOOK_LISTEN */
  listen?: string;
  certFile?: string;
  keyFile?: string;
  /** settingsFile is a tuned-settings document (see settings.ts), re-read when it changes. */
  settingsFile?: string;
  /** appIdPath overrides OPTUNE_APP_ID. */
  appIdPath?: string;
}

/** JobsWebhookConfig is the validated configuration of the admission webhook server. */
export interface JobsWebhookConfig {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  settingsFile: string | undefined;
  appIdPath: AppIdPath;
}

/** Env is the part of process.env the jobs configuration reads. */
export type Env = Readonly<Record<string, string | undefined>>;

const namespaceName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * checkUrlTemplate returns what is wrong with an OPTUNE_URL template, or undefined: only the
 * placeholders {acct} and {app_id} are allowed, no other `{` or `}` may appear, {app_id} must be
 * there (each report goes to its app id's URL, as with the seed's default), and with them filled
 * in it must be an absolute http(s) URL.
 */
export function checkUrlTemplate(template: string): string | undefined {
  if (template.trim() === "") return "must not be empty";
  const unknown = (template.match(/\{[^{}]*\}/g) ?? []).filter(
    (p) => !(URL_PLACEHOLDERS as readonly string[]).includes(p),
  );
  if (unknown.length > 0) {
    return `unknown placeholder ${unknown.map((p) => JSON.stringify(p)).join(", ")}; allowed are {acct} and {app_id}`;
  }
  const rest = template.replaceAll("{acct}", "").replaceAll("{app_id}", "");
  const stray = /[{}]/.exec(rest);
  if (stray !== null) {
    return `has a stray "${stray[0]}" (braces may only enclose {acct} or {app_id})`;
  }
  if (!template.includes("{app_id}")) {
    return "must contain {app_id}: each report is sent to the URL of its pod's app id (the seed's default URL has it)";
  }
  let url: URL;
  try {
    url = new URL(template.replaceAll("{acct}", "acct").replaceAll("{app_id}", "app"));
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `must be an http or https URL, not ${url.protocol.replace(/:$/, "")}`;
  }
  return undefined;
}

/**
 * parseNamespaces splits a comma-separated namespace list, trimming spaces and dropping
 * duplicates. Names are checked by the schema so that an empty one is reported, not skipped.
 */
export function parseNamespaces(text: string): string[] {
  return [...new Set(text.split(",").map((n) => n.trim()))];
}

const watchSchema = z
  .strictObject({
    url: z.string().superRefine((v, ctx) => {
      const problem = checkUrlTemplate(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem, input: v });
    }),
    account: z.string().regex(/^[^/\s]*$/, "must be a URL path segment: no '/' and no spaces"),
    namespaces: z
      .array(
        z.string().superRefine((v, ctx) => {
          const problem = checkNamespaceName(v);
          if (problem) ctx.addIssue({ code: "custom", message: problem, input: v });
        }),
      )
      .min(
        1,
        `is set but empty: list the namespaces to watch (when unset, "${DEFAULT_NAMESPACES.join(",")}" is watched)`,
      ),
    appIdPath: appIdPathSchema(),
    outbox: z.string().min(1, "must not be empty"),
  })
  .superRefine((v, ctx) => {
    if (v.url.includes("{acct}") && v.account === "") {
      const message = "must be set because the URL contains {acct}";
      ctx.addIssue({ code: "custom", path: ["account"], message, input: v.account });
    }
  });

/**
 * namespaceListProblem says what is wrong with a comma-separated namespace list ("" when it is
 * fine): the first bad name and why.
 */
export function namespaceListProblem(text: string): string {
  for (const name of parseNamespaces(text)) {
    const problem = checkNamespaceName(name);
    if (problem !== undefined) return name === "" ? problem : `"${name}": ${problem}`;
  }
  return "";
}

function checkNamespaceName(name: string): string | undefined {
  if (name === "") return "a namespace name is empty (check for a stray comma)";
  if (name.length > 63) return "a namespace name has at most 63 characters";
  if (!namespaceName.test(name)) return "must be a namespace name: lower-case letters, digits and '-'";
  return undefined;
}

function appIdPathSchema(): z.ZodType<string> {
  return z.string().superRefine((v, ctx) => {
    if (v === "") {
      const message = `is set but empty: give a path (when unset, ${DEFAULT_APP_ID_PATH} is used)`;
      ctx.addIssue({ code: "custom", message });
      return;
    }
    const problem = describeAppIdPathError(v);
    if (problem)
      ctx.addIssue({ code: "custom", message: problem.replace(/^app-id path "(?:[^"\\]|\\.)*": /, "") });
  });
}

/**
 * resolveWatchConfig merges flags over the seed's environment variables over the seed's
 * defaults and validates the result. It throws ConfigError listing every problem, each named by
 * the flag or variable it came from; the token is read from --token-file (trailing newline
 * dropped) or OPTUNE_AUTH_TOKEN and never appears in an error.
 */
export function resolveWatchConfig(flags: JobsWatchFlags, env: Env = process.env): JobsWatchConfig {
  const sources = new Map<string, string>();
  const pick = (
    field: string,
    flag: string | undefined,
    flagName: string,
    envName: string,
    fallback: string,
  ) => {
    if (flag !== undefined) return record(sources, field, `--${flagName}`, flag);
    // Set but empty is not unset: the seed's defaults apply only to a variable that is not set,
    // so OPTUNE_APP_ID="" or POD_NAMESPACES="" is reported instead of silently defaulted.
    const fromEnv = env[envName];
    if (fromEnv !== undefined) return record(sources, field, envName, fromEnv);
    return record(sources, field, `--${flagName}/${envName}`, fallback);
  };
  const raw = {
    url: pick("url", flags.url, "url", JOBS_ENV.url, DEFAULT_OPTUNE_URL),
    account: pick("account", flags.account, "account", JOBS_ENV.account, ""),
    namespaces: watchedNamespaces(
      pick("namespaces", flags.namespaces, "namespaces", JOBS_ENV.namespaces, DEFAULT_NAMESPACES.join(",")),
    ),
    appIdPath: pick("appIdPath", flags.appIdPath, "app-id-path", JOBS_ENV.appIdPath, DEFAULT_APP_ID_PATH),
    outbox: record(sources, "outbox", "--outbox", flags.outbox ?? DEFAULT_OUTBOX),
  };
  const token = readToken(flags.tokenFile, env);
  const valid = parseWithSources(watchSchema, raw, sources, "jobs watch configuration");
  return {
    target: { urlTemplate: valid.url, account: valid.account, token },
    namespaces: valid.namespaces,
    namespacesFrom: sources.get("namespaces") ?? "--namespaces",
    appIdPath: parseAppIdPath(valid.appIdPath),
    outbox: valid.outbox,
  };
}

const webhookSchema = z.strictObject({
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:8443")
    .refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65535, "the port must be at most 65535"),
  certFile: z.string({ error: "is required: the PEM certificate the webhook serves" }).min(1),
  keyFile: z.string({ error: "is required: the PEM private key of the certificate" }).min(1),
  settingsFile: z.string().min(1).optional(),
  appIdPath: appIdPathSchema(),
});

/** resolveWebhookConfig validates the webhook's flags (OPTUNE_APP_ID applies here as well). */
export function resolveWebhookConfig(flags: JobsWebhookFlags, env: Env = process.env): JobsWebhookConfig {
  const sources = new Map<string, string>([
    ["listen", "--listen"],
    ["certFile", "--cert-file"],
    ["keyFile", "--key-file"],
    ["settingsFile", "--settings-file"],
  ]);
  // As for the watcher: OPTUNE_APP_ID="" is an error, not the default.
  const appIdPath = flags.appIdPath ?? env[JOBS_ENV.appIdPath] ?? DEFAULT_APP_ID_PATH;
  sources.set("appIdPath", flags.appIdPath !== undefined ? "--app-id-path" : JOBS_ENV.appIdPath);
  const raw = {
    listen: flags.listen ?? DEFAULT_WEBHOOK_LISTEN,
    certFile: flags.certFile,
    keyFile: flags.keyFile,
    settingsFile: flags.settingsFile,
    appIdPath,
  };
  const valid = parseWithSources(webhookSchema, raw, sources, "jobs webhook configuration");
  const colon = valid.listen.lastIndexOf(":");
  return {
    host: valid.listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1"),
    port: Number(valid.listen.slice(colon + 1)),
    certFile: valid.certFile,
    keyFile: valid.keyFile,
    settingsFile: valid.settingsFile,
    appIdPath: parseAppIdPath(valid.appIdPath),
  };
}

// watchedNamespaces is parseNamespaces, except that an empty or blank list is no list at all,
// which the schema reports as such rather than as one empty name.
function watchedNamespaces(text: string): string[] {
  return text.trim() === "" ? [] : parseNamespaces(text);
}

function record<T>(sources: Map<string, string>, field: string, source: string, value: T): T {
  sources.set(field, source);
  return value;
}

// parseWithSources runs parseConfig and renames each issue's first path element from the field
// to the flag or variable it came from, which is what the user can go and fix.
function parseWithSources<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  sources: ReadonlyMap<string, string>,
  label: string,
): z.output<S> {
  try {
    return parseConfig(schema, raw, label);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const issues: ConfigIssue[] = err.issues.map((issue) => {
      const [first, ...rest] = issue.path;
      const source = typeof first === "string" ? sources.get(first) : undefined;
      return source === undefined ? issue : { ...issue, path: [source, ...rest] };
    });
    throw new ConfigError("invalid", label, issues);
  }
}

function readToken(tokenFile: string | undefined, env: Env): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const message = code === "ENOENT" ? "file not found" : `cannot be read (${code ?? "error"})`;
      throw new ConfigError("unreadable", "jobs watch configuration", [
        { path: ["--token-file"], message, value: tokenFile },
      ]);
    }
    return emptyToUndefined(text.trim());
  }
  return emptyToUndefined(env[JOBS_ENV.token]?.trim() ?? "");
}

function emptyToUndefined(text: string): string | undefined {
  return text === "" ? undefined : text;
}
