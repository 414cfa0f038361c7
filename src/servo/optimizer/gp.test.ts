import { test } from "node:test";
import assert from "node:assert/strict";
import { fitGp } from "./gp.js";

const xs = [[0], [0.05], [0.1], [0.15]];

void test("Verifies that far from every point the process predicts its prior mean: the targets' mean unless one is given", () => {
  const ys = [1, 0.8, 1.1, 0.9];
  const plain = fitGp(xs, ys, [false]);
  const pessimistic = fitGp(xs, ys, [false], { priorMean: -0.5 });
  assert.ok(Math.abs(plain.predict([40]).mean - 0.95) < 1e-6, `default prior: ${plain.predict([40]).mean}`);
  assert.ok(Math.abs(pessimistic.predict([40]).mean + 0.5) < 1e-6);
  // Near the data both follow it.
  assert.ok(Math.abs(pessimistic.predict([0.05]).mean - 0.8) < 0.15, `${pessimistic.predict([0.05]).mean}`);
});

void test("Verifies that the fitted noise is reported in the units of the targets", () => {
  const ys = [1, 0.2, 1.3, 0.1];
  const a = fitGp(xs, ys, [false]);
  const b = fitGp(
    xs,
    ys.map((y) => 10 * y),
    [false],
  );
  assert.equal(a.noise, b.noise);
  assert.ok(Math.abs(b.noiseVariance - 100 * a.noiseVariance) < 1e-9 * Math.max(1, b.noiseVariance));
});
