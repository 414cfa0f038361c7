import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ClusterError } from "./errors.js";

/** The binaries of the local control plane, built by tools/control-plane/build.sh. */
export const CONTROL_PLANE_BINARIES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kwok",
  "kubectl",
] as const;

/** projectRoot is the folder holding tools/control-plane (the checkout or the installed package). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "tools", "control-plane", "build.sh"))) return dir;
    dir = dirname(dir);
  }
  throw new ClusterError(
    "missing",
    "cannot find tools/control-plane/build.sh next to the kubewise installation",
  );
}

function buildScript(): string {
  return join(projectRoot(), "tools", "control-plane", "build.sh");
}

/** findBinaries returns the folder of already-built binaries, or undefined. */
export function findBinaries(): string | undefined {
  const res = spawnSync("bash", [buildScript(), "--print"], { encoding: "utf8" });
  return res.status === 0 ? res.stdout.trim() : undefined;
}

/**
 * ensureBinaries returns the folder of the control-plane binaries, building them first when they
 * are missing (several minutes the first time; each build step is passed to onLine). Without Go
 * it fails with what to install.
 */
export async function ensureBinaries(onLine: (line: string) => void): Promise<string> {
  const found = findBinaries();
  if (found) return found;
  if (spawnSync("go", ["version"]).status !== 0) {
    throw new ClusterError(
      "missing",
      "the local control plane is not built and Go is not installed: install Go >= 1.26 (https://go.dev/dl/, or your package manager) and run `kubewise cluster up` again",
    );
  }
  onLine("building the local control plane from the pinned Go modules (first time only, ~10 min on 2 cores)");
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [buildScript()], { stdio: ["ignore", "pipe", "pipe"] });
    let last = "";
    let errors = "";
    const feed = (chunk: Buffer, isErr: boolean): void => {
      for (const line of chunk.toString().split("\n")) {
        const text = line.trim();
        if (!text || text.includes("nodedir")) continue;
        if (isErr) errors = `${errors}\n${text}`.slice(-4000);
        else {
          last = text;
          onLine(text);
        }
      }
    };
    child.stdout.on("data", (c: Buffer) => feed(c, false));
    child.stderr.on("data", (c: Buffer) => feed(c, true));
    child.on("error", (err) =>
      reject(new ClusterError("build-failed", `cannot run the build: ${err.message}`)),
    );
    child.on("close", (code) => {
      if (code === 0) resolve(last);
      else
        reject(
          new ClusterError("build-failed", `building the control plane failed (exit ${code}):${errors}`),
        );
    });
  });
}
