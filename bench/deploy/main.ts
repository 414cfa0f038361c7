/**
 * The deploy benchmarks in one run: the render part (1,000 specs, no cluster) and then the apply
 * part (plan and apply of 50 services on the embedded cluster against kubectl). Each runs in its
 * own process, so one's warm-up and garbage do not colour the other's figures. Arguments after
 * `--` go to both, e.g. `npx tsx bench/deploy/main.ts`.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function run(file: string, args: string[]): number {
  console.log(`\n=== ${file} ${args.join(" ")}`.trimEnd());
  const r = spawnSync(process.execPath, ["--import", "tsx", join(here, file), ...args], { stdio: "inherit" });
  return r.status ?? 1;
}

const renderStatus = run("render.ts", []);
const applyStatus = run("apply.ts", process.argv.slice(2));
process.exitCode = renderStatus || applyStatus;
