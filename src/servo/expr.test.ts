import { test } from "node:test";
import assert from "node:assert/strict";
import { adjustParamSchema, ServoError } from "./protocol.js";
import { adjustOnData, compileAdjustOn } from "./expr.js";

const MAIN = 'data["control"]["userdata"]["deploy_to"] == "main"';
const TUNING = 'data["control"]["userdata"]["deploy_to"] == "tuning"';

function adjustParam(userdata?: Record<string, unknown>) {
  return adjustParamSchema.parse({
    state: { application: { components: { "opsani-tuning": { settings: { cpu: { value: 0.5 } } } } } },
    control: userdata === undefined ? {} : { userdata },
  });
}

test("Verifies that the seed's expressions work verbatim over an ADJUST param", () => {
  const main = compileAdjustOn(MAIN);
  const tuning = compileAdjustOn(TUNING);
  const toMain = adjustOnData(adjustParam({ deploy_to: "main" }));
  const toTuning = adjustOnData(adjustParam({ deploy_to: "tuning" }));
  assert.deepEqual(main.matches(toMain), { matched: true });
  assert.deepEqual(tuning.matches(toTuning), { matched: true });
  assert.deepEqual(main.matches(toTuning), { matched: false, reason: `adjust_on is false: ${MAIN}` });
  assert.equal(main.source, MAIN);
});

test("Verifies that a missing key does not match, with the reason, instead of throwing", () => {
  const main = compileAdjustOn(MAIN);
  const noUserdata = main.matches(adjustOnData(adjustParam()));
  assert.equal(noUserdata.matched, false);
  assert.ok(!noUserdata.matched);
  assert.equal(noUserdata.reason, `adjust_on could not be evaluated (No such key: userdata): ${MAIN}`);
  const nothing = main.matches(undefined);
  assert.ok(!nothing.matched && /No such key: control/.test(nothing.reason));
});

test("Verifies that data offers both the wire param and the old servo's view (application beside control)", () => {
  const data = adjustOnData(adjustParam({ deploy_to: "tuning" }));
  const old = compileAdjustOn(
    'data["application"]["components"]["opsani-tuning"]["settings"]["cpu"]["value"] > 0.25',
  );
  const wire = compileAdjustOn('has(data.state.application) && data.control.userdata.deploy_to == "tuning"');
  assert.deepEqual(old.matches(data), { matched: true });
  assert.deepEqual(wire.matches(data), { matched: true });
});

test("Verifies that numbers from JSON compare with CEL int and double literals", () => {
  const data = { control: { userdata: { replicas: 1, ratio: 0.5 } } };
  assert.deepEqual(compileAdjustOn('data["control"]["userdata"]["replicas"] == 1').matches(data), {
    matched: true,
  });
  assert.deepEqual(compileAdjustOn("data.control.userdata.ratio < 1.0").matches(data), { matched: true });
});

test("Verifies that a non-bool result at run time does not match and says what it was", () => {
  const expr = compileAdjustOn('data["control"]["userdata"]["deploy_to"]');
  const result = expr.matches({ control: { userdata: { deploy_to: "main" } } });
  assert.deepEqual(result, {
    matched: false,
    reason: 'adjust_on yielded "main" (string), not a bool: data["control"]["userdata"]["deploy_to"]',
  });
  const mistyped = compileAdjustOn('data["n"] > 1').matches({ n: "x" });
  assert.ok(!mistyped.matched && /could not be evaluated \(no such overload/.test(mistyped.reason));
});

test("Verifies that syntax errors, unknown variables and non-bool expressions fail to compile", () => {
  const cases: [string, RegExp][] = [
    ['data["control" == "main"', /^is not a valid CEL expression: .+ at column \d+$/],
    ['deploy_to == "main"', /^is not a valid CEL expression: Unknown variable: deploy_to at column 1$/],
    ["1 + 2", /^must be a condition \(a bool\), but it yields int$/],
    ['"main"', /yields string/],
    ["", /is not a valid CEL expression/],
  ];
  for (const [source, message] of cases) {
    assert.throws(
      () => compileAdjustOn(source),
      (err: unknown) =>
        err instanceof ServoError && err.reason === "invalid-expression" && message.test(err.message),
      source,
    );
  }
});
