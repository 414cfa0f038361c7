/**
 * The baseline of bench/jobs: a watch-and-post reporter as servo-k8s-multijob's w2.py does it
 * (research/servo.md §4), run as its own process so the bench can kill it.
 *
 * - It watches pods in one namespace and keeps the uids it reported in memory only.
 * - A pod whose container 0 has terminated and whose uid is not in that set is reported at once,
 *   in the watch loop: one report at a time, later events wait (the original posts synchronously).
 * - A 502 or 503 is retried after 2, 1 and 1 s, then the report is dropped; a connection error is
 *   not retried; a DELETED event forgets the uid.
 * - `original` mode reacts only to watch events after the startup list, as w2.py did (its list only
 *   handled initializers), so a pod that finished while it was down is never reported;
 *   `list` mode also reports the finished pods of the startup list, the obvious fix, which then
 *   reports again every pod reported before a restart.
 *
 * Run: npx tsx bench/jobs/naive.ts <kubeconfig> <namespace> <url template> <original|list>
 * It prints "ready" once the startup list is in.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { KubeClient, ResourceWatcher, type V1Pod } from "../../src/kube/index.js";

const [kubeconfig, namespace, urlTemplate, mode] = process.argv.slice(2);
if (!kubeconfig || !namespace || !urlTemplate || (mode !== "original" && mode !== "list")) {
  console.error("usage: naive.ts <kubeconfig> <namespace> <url template> <original|list>");
  process.exit(2);
}
const template: string = urlTemplate;

const client = KubeClient.connect({ kubeconfig });
const reported = new Set<string>();
let queue: Promise<void> = Promise.resolve();
let synced = false;

function finishedRun(pod: V1Pod): { seconds: number } | undefined {
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  if (!terminated?.startedAt || !terminated.finishedAt) return undefined;
  const ms = new Date(terminated.finishedAt).getTime() - new Date(terminated.startedAt).getTime();
  return { seconds: Math.round(ms / 1000) };
}

async function post(pod: V1Pod, seconds: number): Promise<void> {
  const appId = pod.spec?.containers[0]?.env?.find((e) => e.name === "JOBID")?.value ?? "";
  const url = template.replaceAll("{acct}", "bench").replaceAll("{app_id}", encodeURIComponent(appId));
  const body = JSON.stringify({
    event: "MEASUREMENT",
    param: {
      metrics: { duration: { value: seconds, unit: "s" } },
      // pod_uid is for the bench's receiver to count by; the original sent no identity at all.
      annotations: { pod_uid: pod.metadata?.uid ?? "", pod: pod.metadata?.name ?? "" },
    },
  });
  for (const pause of [2, 1, 1, undefined]) {
    let status: number;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      await res.text();
    } catch {
      return; // connection errors are not retried
    }
    if ((status !== 502 && status !== 503) || pause === undefined) return;
    await sleep(pause * 1000);
  }
}

const watcher = new ResourceWatcher<V1Pod>(client, { apiVersion: "v1", kind: "Pod", namespace });
watcher.on(({ type, object: pod }) => {
  const uid = pod.metadata?.uid ?? "";
  if (type === "deleted") {
    reported.delete(uid);
    return;
  }
  if (!synced && mode === "original") return;
  const run = finishedRun(pod);
  if (run === undefined || reported.has(uid)) return;
  reported.add(uid);
  queue = queue.then(() => post(pod, run.seconds));
});
watcher.start();
await watcher.synced();
synced = true;
console.log("ready");
process.on("SIGTERM", () => {
  void watcher.stop().then(() => process.exit(0));
});
