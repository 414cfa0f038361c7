import { test } from "node:test";
import assert from "node:assert/strict";
import { KubeError } from "../../kube/index.js";
import { failureOf } from "./k8slive.js";

void test("Verifies the tuning pod's failure vocabulary: each pod problem maps to the original's status and reason", () => {
  const problem = (p: ConstructorParameters<typeof KubeError>[2]) => new KubeError("Unknown", "x", p);
  const cases: [KubeError, "start" | "settlement", [string, string]][] = [
    [problem({ podProblem: "restarted" }), "start", ["rejected", "unstable"]],
    [problem({ podProblem: "crash-loop" }), "settlement", ["rejected", "unstable"]],
    [problem({ podProblem: "unready" }), "settlement", ["rejected", "unstable"]],
    [problem({ podProblem: "unschedulable" }), "start", ["rejected", "scheduling-failed"]],
    [problem({ podProblem: "image-pull" }), "start", ["failed", "image-pull-failed"]],
    [problem({ podProblem: "config" }), "start", ["rejected", "start-failed"]],
    [problem({ podProblem: "failed" }), "start", ["rejected", "start-failed"]],
    // As servox re-labels it: a pod that fails after it was ready is unstable, not a failed start.
    [problem({ podProblem: "failed" }), "settlement", ["rejected", "unstable"]],
    [new KubeError("Timeout", "not ready in 60 s"), "start", ["failed", "start-failed"]],
    [new KubeError("Forbidden", "pods is forbidden"), "start", ["failed", "adjust-failed"]],
  ];
  for (const [err, during, want] of cases) {
    assert.deepEqual(failureOf(err, during), want, `${err.podProblem ?? err.reason} during ${during}`);
  }
});
