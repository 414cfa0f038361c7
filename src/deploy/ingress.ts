import { childName, shortHash } from "./names.js";
import { sortedMap, type JsonObject } from "./pod.js";
import type { PortSpec, PublicUri, ServiceSpec } from "./spec.js";

/**
 * Ingresses for a service's `public_uri` entries, for ingress-nginx (the controller Opta
 * installed; the annotations below are its). One Ingress per entry, as Opta did, because the
 * prefix rewrite is an Ingress-wide annotation and "/" must not be rewritten.
 */

const nginx = "nginx.ingress.kubernetes.io";

/**
 * ingressName is `<service>-<8 hex of host+path>`: adding or removing one public_uri entry
 * never renames the Ingress of another.
 */
export function ingressName(service: string, uri: PublicUri): string {
  return childName(service, shortHash(`${uri.host ?? "*"}${uri.path}`));
}

/** renderIngresses renders one networking.k8s.io/v1 Ingress per public_uri entry. */
export function renderIngresses(
  spec: ServiceSpec,
  namespace: string,
  labels: Record<string, string>,
): JsonObject[] {
  const port = spec.ports.find((p) => p.type === "http");
  if (port === undefined) return [];
  return spec.ingress.uris.map((uri) => renderIngress(spec, uri, port, namespace, labels));
}

function renderIngress(
  spec: ServiceSpec,
  uri: PublicUri,
  port: PortSpec,
  namespace: string,
  labels: Record<string, string>,
): JsonObject {
  const name = ingressName(spec.name, uri);
  const strip = uri.path !== "/" && !spec.ingress.keepPathPrefix;
  // Stripping needs a regex path: "/api(/|$)(.*)" captures the rest as $2 for the rewrite.
  // Keeping the prefix needs no rewrite at all, so it stays a portable Prefix path.
  const path = strip
    ? { path: `${uri.path}(/|$)(.*)`, pathType: "ImplementationSpecific" }
    : { path: uri.path, pathType: "Prefix" };
  const tls = spec.ingress.tls;
  const annotations = sortedMap({
    ...ingressAnnotations(spec, port, strip),
    ...spec.ingress.extraAnnotations,
  });
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      name,
      namespace,
      labels: { ...labels },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      ingressClassName: spec.ingress.className,
      ...(tls
        ? {
            tls: [
              {
                ...(uri.host === undefined ? {} : { hosts: [uri.host] }),
                secretName: tls.secretName ?? childName(name, "tls"),
              },
            ],
          }
        : {}),
      rules: [
        {
          ...(uri.host === undefined ? {} : { host: uri.host }),
          http: {
            paths: [{ ...path, backend: { service: { name: spec.name, port: { name: port.name } } } }],
          },
        },
      ],
    },
  };
}

function ingressAnnotations(spec: ServiceSpec, port: PortSpec, strip: boolean): Record<string, string> {
  const a: Record<string, string> = {};
  const { stickySession, consistentHash, tls } = spec.ingress;
  if (stickySession) {
    a[`${nginx}/affinity`] = "cookie";
    a[`${nginx}/session-cookie-name`] = stickySession.cookieName;
    a[`${nginx}/session-cookie-expires`] = String(stickySession.maxAgeSeconds);
    a[`${nginx}/session-cookie-max-age`] = String(stickySession.maxAgeSeconds);
  }
  if (consistentHash) a[`${nginx}/upstream-hash-by`] = consistentHash;
  if (strip) {
    a[`${nginx}/use-regex`] = "true";
    a[`${nginx}/rewrite-target`] = "/$2";
  }
  if (port.protocol === "grpc") a[`${nginx}/backend-protocol`] = "GRPC";
  if (port.protocol === "websocket") {
    // nginx closes idle proxied connections after 60 s by default, which drops quiet websockets.
    a[`${nginx}/proxy-read-timeout`] = "3600";
    a[`${nginx}/proxy-send-timeout`] = "3600";
  }
  if (tls?.clusterIssuer) a["cert-manager.io/cluster-issuer"] = tls.clusterIssuer;
  return a;
}
