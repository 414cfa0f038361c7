/**
 * Pure helpers shared by the k8s and k8slive connectors: read a container's cpu/mem the way a
 * selector says, build the resource and env changes for an adjustment, and check requested values
 * against a setting's grid. No I/O here.
 */
import type { V1Container, V1EnvVar } from "../../kube/index.js";
// Pure quantity helpers come straight from their file, so pure code need not load the API client.
import { formatCpu, formatMemoryGiB, parseCpu, parseMemoryGiB } from "../../kube/quantity.js";
import type { EnvSetting, RangeSpec, Selector } from "../config.js";
import { ServoError, type Setting } from "../protocol.js";

/** ResourceName is a servo setting backed by a container resource. */
export type ResourceName = "cpu" | "mem";

const k8sName: Record<ResourceName, "cpu" | "memory"> = { cpu: "cpu", mem: "memory" };

function parse(resource: ResourceName, q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  return resource === "cpu" ? parseCpu(q) : parseMemoryGiB(q);
}

function format(resource: ResourceName, value: number): string {
  return resource === "cpu" ? formatCpu(value) : formatMemoryGiB(value);
}

/**
 * readResource returns a container's cpu (cores) or mem (GiB): with selector `limit` the limit
 * if set, else the request; with any other selector the request if set, else the limit; 0 when
 * neither is set (the seed's rule for `both`, and `limit` read as documented).
 */
export function readResource(container: V1Container, resource: ResourceName, selector: Selector): number {
  const name = k8sName[resource];
  const request = parse(resource, container.resources?.requests?.[name]);
  const limit = parse(resource, container.resources?.limits?.[name]);
  const ordered = selector === "limit" ? [limit, request] : [request, limit];
  return ordered.find((v) => v !== undefined) ?? 0;
}

/** ResourcesPatch is a container's requests and limits to set (string) or clear (null). */
export interface ResourcesPatch {
  requests: Record<string, string | null>;
  limits: Record<string, string | null>;
}

/**
 * resourcePatch says how to write `value` with a selector: `both` sets request and limit;
 * `request` sets the request and clears the limit; `limit` sets the limit and clears the request;
 * `request_min_limit` sets the request and a limit of max(value, limitMin).
 */
export function resourcePatch(
  into: ResourcesPatch,
  resource: ResourceName,
  value: number,
  selector: Selector,
  limitMin?: number,
): ResourcesPatch {
  const name = k8sName[resource];
  const q = format(resource, value);
  switch (selector) {
    case "both":
      into.requests[name] = q;
      into.limits[name] = q;
      break;
    case "request":
      into.requests[name] = q;
      into.limits[name] = null;
      break;
    case "limit":
      into.limits[name] = q;
      into.requests[name] = null;
      break;
    case "request_min_limit":
      into.requests[name] = q;
      into.limits[name] = format(resource, Math.max(value, limitMin ?? value));
      break;
  }
  return into;
}

/** applyResourcesPatch writes a ResourcesPatch into a container object (for a pod built from a template). */
export function applyResourcesPatch(container: V1Container, patch: ResourcesPatch): void {
  const resources = (container.resources ??= {});
  for (const part of ["requests", "limits"] as const) {
    const target: Record<string, string> = { ...(resources[part] ?? {}) };
    for (const [k, v] of Object.entries(patch[part])) {
      if (v === null) delete target[k];
      else target[k] = v;
    }
    if (Object.keys(target).length > 0) resources[part] = target;
    else delete resources[part];
  }
}

/** envValue reads an env setting's current value from a container, or its default when unset. */
export function envValue(container: V1Container, name: string, setting: EnvSetting): number | string {
  const raw = container.env?.find((e) => e.name === name)?.value;
  if (raw === undefined) return setting.default;
  if (setting.type === "enum") return raw;
  const n = Number(raw);
  return Number.isFinite(n) ? n : setting.default;
}

/** applyEnv sets env variables on a container object, replacing or appending by name. */
export function applyEnv(container: V1Container, values: Record<string, string>): void {
  const env: V1EnvVar[] = [...(container.env ?? [])];
  for (const [name, value] of Object.entries(values)) {
    const i = env.findIndex((e) => e.name === name);
    if (i >= 0) env[i] = { name, value };
    else env.push({ name, value });
  }
  container.env = env;
}

/** rangeSetting builds a DESCRIPTION range setting. */
export function rangeSetting(spec: RangeSpec, value: number | null, unit?: string, pinned = false): Setting {
  return { type: "range", unit, min: spec.min, max: spec.max, step: spec.step, pinned, value };
}

/** envDescription builds the DESCRIPTION entry of an env setting with its current value. */
export function envDescription(setting: EnvSetting, value: number | string): Setting {
  if (setting.type === "enum") {
    return {
      type: "enum",
      unit: setting.unit,
      values: setting.values,
      pinned: setting.pinned,
      value: String(value),
    };
  }
  return rangeSetting(
    setting,
    typeof value === "number" ? value : Number(value),
    setting.unit,
    setting.pinned,
  );
}

/**
 * checkRange validates a requested numeric value against a setting's range, returning it as a
 * number, or throws a ServoError (failed/adjust-failed) naming the component, setting and range.
 */
export function checkRange(
  component: string,
  setting: string,
  raw: number | string,
  spec: RangeSpec,
): number {
  const value = typeof raw === "number" ? raw : Number(raw);
  if (!Number.isFinite(value) || value < spec.min - 1e-9 || value > spec.max + 1e-9) {
    throw new ServoError(
      "adjust-failed",
      `component ${component} setting ${setting}: ${JSON.stringify(raw)} is outside ${spec.min}..${spec.max}`,
      { status: "failed" },
    );
  }
  return value;
}

/** checkEnvValue validates a requested env value and returns it as the string the container gets. */
export function checkEnvValue(
  component: string,
  name: string,
  raw: number | string,
  setting: EnvSetting,
): string {
  if (setting.type === "enum") {
    const value = String(raw);
    if (!setting.values.includes(value)) {
      throw new ServoError(
        "adjust-failed",
        `component ${component} env ${name}: ${JSON.stringify(raw)} is not one of ${setting.values.join(", ")}`,
        { status: "failed" },
      );
    }
    return value;
  }
  return String(checkRange(component, name, raw, setting));
}
