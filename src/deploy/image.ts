import { DeployError } from "./errors.js";

/** LOCAL_REGISTRY is where an `image: AUTO` service's image lives, as in Opta's local mode. */
export const LOCAL_REGISTRY = "localhost:5000";

/** ImageRef is an image reference split into its parts. */
export interface ImageRef {
  /** repository is everything before the tag or digest, registry host included. */
  repository: string;
  tag?: string;
  digest?: string;
}

const repositoryPattern =
  /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[\w][\w.-]{0,127}$/;
const digestPattern = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

/**
 * parseImageRef splits `[host[:port]/]path[:tag][@digest]`, or returns a sentence saying what is
 * wrong. The tag is the part after the last ":" that follows the last "/", so a registry port is
 * not mistaken for a tag.
 */
export function parseImageRef(ref: string): ImageRef | string {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest))
      return `"${digest}" is not an image digest (like "sha256:<64 hex digits>")`;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) return `"${tag}" is not an image tag (letters, digits, "_", "." and "-")`;
  }
  if (!repositoryPattern.test(rest)) {
    return `"${rest}" is not an image repository (like "nginx", "ghcr.io/org/app" or "localhost:5000/app")`;
  }
  return {
    repository: rest,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** ImageOptions are the render-time choices about the image. */
export interface ImageOptions {
  /** tag replaces the image's tag; for `AUTO` it is the tag pushed to the local registry. */
  tag?: string;
  /** digest pins the image, e.g. the digest `kubewise deploy push` got back; it wins over a tag. */
  digest?: string;
  /** registry hosts `AUTO` images. @default "localhost:5000" */
  registry?: string;
}

/**
 * resolveImage turns the spec's `image` into the reference the pods run. `AUTO` becomes
 * `<registry>/<service>` with the digest, else the tag, else `latest`; an external image keeps
 * its own tag unless one is given. A digest drops the tag, because the digest alone decides.
 */
export function resolveImage(image: string, service: string, options: ImageOptions = {}): string {
  const base = image === "AUTO" ? `${options.registry ?? LOCAL_REGISTRY}/${service}` : image;
  const ref = parseImageRef(base);
  if (typeof ref === "string") throw new DeployError("invalid", `image: ${ref}`);
  checkImageOptions(options);
  const digest = options.digest ?? (options.tag === undefined ? ref.digest : undefined);
  if (digest !== undefined) return `${ref.repository}@${digest}`;
  const tag = options.tag ?? ref.tag ?? (image === "AUTO" ? "latest" : undefined);
  return tag === undefined ? ref.repository : `${ref.repository}:${tag}`;
}

function checkImageOptions(options: ImageOptions): void {
  if (options.digest !== undefined && !digestPattern.test(options.digest)) {
    throw new DeployError(
      "invalid",
      `digest: "${options.digest}" is not an image digest (like "sha256:<64 hex digits>")`,
    );
  }
  if (options.tag !== undefined && !tagPattern.test(options.tag)) {
    throw new DeployError(
      "invalid",
      `tag: "${options.tag}" is not an image tag (letters, digits, "_", "." and "-")`,
    );
  }
}
