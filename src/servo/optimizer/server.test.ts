import { test } from "node:test";
import assert from "node:assert/strict";
import type { ServoEvent } from "../protocol.js";
import { optimizerConfigSchema } from "./config.js";
import { LocalOptimizer } from "./optimizer.js";
import { startOptimizerServer } from "./server.js";
import { TrialStore } from "./store.js";
import { simulateServo, type SimulatedApp } from "./testing.js";

const app: SimulatedApp = {
  descriptor: {
    application: {
      components: {
        main: {
          settings: {
            cpu: { type: "range", unit: "cores", min: 0.25, max: 2, step: 0.25, pinned: false, value: 1 },
            mode: { type: "enum", unit: "", values: ["a", "b"], pinned: false, value: "a" },
          },
        },
      },
    },
  },
  metrics: (v) => ({ rps: 100 * Number(v.main?.cpu) + (v.main?.mode === "b" ? 20 : 0) }),
};

async function withServer(
  token: string | undefined,
  body: (url: string, store: TrialStore) => Promise<void>,
): Promise<void> {
  const store = TrialStore.open(":memory:");
  const server = await startOptimizerServer({
    token,
    optimizerFor: (account, name) =>
      new LocalOptimizer({
        config: optimizerConfigSchema.parse({
          study: `${account}/${name}`,
          objective: "metrics.rps / settings.cpu",
          max_trials: 4,
        }),
        store,
      }),
  });
  try {
    await body(server.servoUrl("acme.example", "web"), store);
  } finally {
    await server.close();
    store.close();
  }
}

function poster(url: string, token?: string) {
  return async (event: ServoEvent, param: unknown): Promise<unknown> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ event, param }) });
    assert.equal(res.status, 200, `${event} got HTTP ${res.status}`);
    return res.json();
  };
}

void test("Verifies that a whole study runs over HTTP on 127.0.0.1 with a bearer token", async () => {
  await withServer("s3cret", async (url, store) => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/accounts\/acme\.example\/applications\/web\/servo$/);
    const log = await simulateServo(poster(url, "s3cret"), app);
    assert.equal(log.commands[0]?.cmd, "DESCRIBE");
    assert.equal(log.commands.at(-1)?.cmd, "SLEEP");
    assert.equal(store.trials("acme.example/web").length, 4);
  });
});

void test("Verifies that the server refuses a wrong token, a wrong path, GET and a non-JSON body", async () => {
  await withServer("s3cret", async (url) => {
    const post = (u: string, body: string, auth?: string) =>
      fetch(u, { method: "POST", body, headers: auth ? { authorization: auth } : {} });
    assert.equal((await post(url, '{"event":"HELLO"}')).status, 401);
    assert.equal((await post(url, '{"event":"HELLO"}', "Bearer nope")).status, 401);
    assert.equal((await post(url.replace("/servo", "/other"), "{}", "Bearer s3cret")).status, 404);
    assert.equal((await fetch(url, { headers: { authorization: "Bearer s3cret" } })).status, 405);
    const bad = await post(url, "{not json", "Bearer s3cret");
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { status: string }).status, "invalid");
    assert.equal((await post(url, '{"event":"DANCE"}', "Bearer s3cret")).status, 400);
  });
});

void test("Verifies that without a token configured, requests need no Authorization header", async () => {
  await withServer(undefined, async (url) => {
    const reply = await poster(url)("HELLO", { agent: "test" });
    assert.deepEqual(reply, { status: "ok" });
  });
});
