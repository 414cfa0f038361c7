import { test } from "node:test";
import assert from "node:assert/strict";
import { quantityValue, resourceValue } from "./quantity.js";

test("Verifies that resource quantities get the resource's unit and garbage gives undefined", () => {
  assert.equal(resourceValue("cpu", "100m"), 0.1);
  assert.equal(resourceValue("cpu", 2), 2);
  assert.equal(resourceValue("memory", "1.5Gi"), 1.5 * 2 ** 30);
  assert.equal(resourceValue("hugepages-2Mi", "4Mi"), 4 * 2 ** 20);
  assert.equal(resourceValue("nvidia.com/gpu", "2"), 2);
  assert.equal(resourceValue("cpu", "-1"), undefined);
  assert.equal(resourceValue("cpu", "lots"), undefined);
  assert.equal(quantityValue("1e400"), undefined);
  assert.equal(quantityValue(undefined), undefined);
});
