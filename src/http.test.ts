import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, createServer, request } from "node:http";
import { KubewiseError } from "./errors.js";
import { closeServer, listen } from "./http.js";

test("Verifies that listen binds a free port and a taken port fails naming the address", async (t) => {
  const first = createServer((_req, res) => res.end("ok"));
  const bound = await listen(first, { host: "127.0.0.1", port: 0 });
  t.after(() => closeServer(first));
  assert.equal(bound.host, "127.0.0.1");
  assert.ok(bound.port > 0);
  const second = createServer();
  await assert.rejects(
    listen(second, bound),
    (err: unknown) =>
      err instanceof KubewiseError &&
      err.reason === "listen" &&
      err.message.startsWith(`cannot listen on 127.0.0.1:${bound.port}: `) &&
      /EADDRINUSE/.test(err.message),
  );
});

/** get sends a keep-alive GET and resolves with the body. */
function get(port: number, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent }, (res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

test("Verifies that closeServer closes despite a kept-alive connection, gracefully answers the request in flight first, and is a no-op when closed", async () => {
  const agent = new Agent({ keepAlive: true });
  const server = createServer((_req, res) => res.end("ok"));
  const { port } = await listen(server, { host: "127.0.0.1", port: 0 });
  assert.equal(await get(port, agent), "ok");
  await closeServer(server);
  assert.equal(server.listening, false);
  await closeServer(server);

  let answer: (() => void) | undefined;
  const slow = createServer((_req, res) => {
    answer = () => res.end("late");
  });
  const bound = await listen(slow, { host: "127.0.0.1", port: 0 });
  const inFlight = get(bound.port, agent);
  while (answer === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
  const closed = closeServer(slow, { graceful: true });
  answer();
  assert.equal(await inFlight, "late");
  await closed;
  agent.destroy();
});
