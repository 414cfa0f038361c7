import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateTrials, toObservations } from "./history.js";
import { compileObjective } from "./objective.js";
import { spaceFromDescriptor } from "./space.js";
import { parseDescriptor } from "../protocol.js";
import type { Trial } from "./store.js";

const space = spaceFromDescriptor(
  parseDescriptor({
    application: {
      components: { web: { settings: { cpu: { type: "range", min: 0.5, max: 2, step: 0.5, value: 1 } } } },
    },
  }),
);

function trial(
  number: number,
  cpu: number,
  metrics: Record<string, number>,
  status: Trial["status"] = "ok",
): Trial {
  const at = "2024-01-02T03:04:05Z";
  return { number, values: { web: { cpu } }, status, metrics, startedAt: at, finishedAt: at };
}

void test("Verifies that observations carry the constraint slacks of measured trials, and failed trials have none", () => {
  const objective = compileObjective({
    objective: "settings.cpu",
    direction: "minimize",
    constraints: [{ name: "latency", expression: "metrics.p90 <= 50.0" }],
  });
  const trials = [trial(0, 1, { p90: 30 }), trial(1, 0.5, { p90: 80 }), trial(2, 2, {}, "failed")];
  const observations = toObservations(space, trials, evaluateTrials(objective, trials));
  assert.deepEqual(
    observations.map((o) => [o.point, o.feasible]),
    [
      [[1], true],
      [[0.5], false],
      [[2], false],
    ],
  );
  assert.ok((observations[0]?.slacks?.latency ?? 0) > 0);
  assert.ok((observations[1]?.slacks?.latency ?? 0) < 0);
  assert.equal(observations[2]?.slacks, undefined);
});
