import { test } from "node:test";
import assert from "node:assert/strict";
import { KubeError } from "./errors.js";
import { LeaderElector, decideLease, releasedRecord, type LeaseRecord, type LeaseStore } from "./lease.js";

const T0 = 1_234_567_890_000;

function held(holder: string, extra: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    acquireTimeMs: T0 - 60_000,
    renewTimeMs: T0 - 1_000,
    leaseTransitions: 3,
    resourceVersion: "42",
    ...extra,
  };
}

test("Verifies that decideLease creates a missing Lease with this candidate as holder and no transitions", () => {
  const d = decideLease({
    current: undefined,
    observedAtMs: T0,
    nowMs: T0,
    identity: "a",
    leaseDurationMs: 15_000,
  });
  assert.deepEqual(d, {
    action: "create",
    record: {
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTimeMs: T0,
      renewTimeMs: T0,
      leaseTransitions: 0,
    },
  });
});

test("Verifies that decideLease renews its own lease, keeping acquire time, transitions and resourceVersion", () => {
  const d = decideLease({
    current: held("a"),
    observedAtMs: T0,
    nowMs: T0 + 5,
    identity: "a",
    leaseDurationMs: 15_000,
  });
  assert.equal(d.action, "renew");
  assert.ok(d.action === "renew");
  assert.equal(d.record.renewTimeMs, T0 + 5);
  assert.equal(d.record.acquireTimeMs, T0 - 60_000);
  assert.equal(d.record.leaseTransitions, 3);
  assert.equal(d.record.resourceVersion, "42");
});

test("Verifies that decideLease waits while another holder's lease runs, measured from when it was observed", () => {
  // renewTime says the holder renewed long ago, but expiry counts from our own observation, so a
  // skewed clock on either side cannot make us take the lease early.
  const current = held("b", { renewTimeMs: T0 - 3_600_000 });
  const d = decideLease({
    current,
    observedAtMs: T0,
    nowMs: T0 + 14_999,
    identity: "a",
    leaseDurationMs: 15_000,
  });
  assert.deepEqual(d, { action: "wait", holder: "b", expiresInMs: 1 });
});

test("Verifies that decideLease acquires an expired lease and counts one more transition", () => {
  const current = held("b");
  const d = decideLease({
    current,
    observedAtMs: T0,
    nowMs: T0 + 15_000,
    identity: "a",
    leaseDurationMs: 15_000,
  });
  assert.deepEqual(d, {
    action: "acquire",
    record: {
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      acquireTimeMs: T0 + 15_000,
      renewTimeMs: T0 + 15_000,
      leaseTransitions: 4,
      resourceVersion: "42",
    },
  });
});

test("Verifies that decideLease acquires a released lease (empty holder) at once", () => {
  const released = releasedRecord(held("b"), T0);
  assert.equal(released.holderIdentity, "");
  assert.equal(released.leaseDurationSeconds, 1);
  const d = decideLease({
    current: released,
    observedAtMs: T0,
    nowMs: T0,
    identity: "a",
    leaseDurationMs: 2_000,
  });
  assert.equal(d.action, "acquire");
  assert.ok(d.action === "acquire");
  assert.equal(d.record.leaseDurationSeconds, 2);
  assert.equal(d.record.leaseTransitions, 4);
});

test("Verifies that decideLease rounds sub-second durations up to whole seconds, at least one", () => {
  const d = decideLease({
    current: undefined,
    observedAtMs: T0,
    nowMs: T0,
    identity: "a",
    leaseDurationMs: 300,
  });
  assert.ok(d.action === "create");
  assert.equal(d.record.leaseDurationSeconds, 1);
});

/** MemoryLeaseStore is a Lease in memory with the API server's optimistic concurrency. */
class MemoryLeaseStore implements LeaseStore {
  record: LeaseRecord | undefined;
  private version = 0;
  failing = false;

  async read(): Promise<LeaseRecord | undefined> {
    this.check();
    return this.record && { ...this.record };
  }
  async create(record: LeaseRecord): Promise<LeaseRecord> {
    this.check();
    if (this.record) throw new KubeError("AlreadyExists", "lease exists");
    this.record = { ...record, resourceVersion: String(++this.version) };
    return { ...this.record };
  }
  async update(record: LeaseRecord): Promise<LeaseRecord> {
    this.check();
    if (record.resourceVersion !== this.record?.resourceVersion) throw new KubeError("Conflict", "stale");
    this.record = { ...record, resourceVersion: String(++this.version) };
    return { ...this.record };
  }
  private check(): void {
    if (this.failing) throw new KubeError("Unavailable", "API server unreachable");
  }
}

function candidate(
  store: LeaseStore,
  identity: string,
  clock: { now: number },
  events: string[],
): LeaderElector {
  return new LeaderElector(store, {
    namespace: "ns",
    name: "lease",
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    now: () => clock.now,
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
}

test("Verifies that of two candidates only one leads, and the other takes over only after the lease expires", async () => {
  const store = new MemoryLeaseStore();
  const clock = { now: T0 };
  const events: string[] = [];
  const a = candidate(store, "a", clock, events);
  const b = candidate(store, "b", clock, events);
  assert.equal(await a.tryOnce(), true);
  assert.equal(await b.tryOnce(), false);
  assert.equal(b.leader(), "a");
  // a goes quiet (crashed, partitioned); b must wait a whole lease duration from its first look.
  clock.now += 14_999;
  assert.equal(await b.tryOnce(), false);
  assert.equal(a.isLeader(), false, "a's renew deadline (10 s) passed without a renewal");
  clock.now += 1;
  assert.equal(await b.tryOnce(), true);
  assert.equal(store.record?.holderIdentity, "b");
  assert.equal(store.record?.leaseTransitions, 1);
  // a comes back: it sees b holding the lease and steps down at once.
  assert.equal(await a.tryOnce(), false);
  assert.deepEqual(events, ["a started", "b started", "a stopped"]);
});

test("Verifies that a leader keeps leading while it renews, and steps down when it cannot renew for the deadline", async () => {
  const store = new MemoryLeaseStore();
  const clock = { now: T0 };
  const events: string[] = [];
  const a = candidate(store, "a", clock, events);
  assert.equal(await a.tryOnce(), true);
  clock.now += 2_000;
  assert.equal(await a.tryOnce(), true);
  store.failing = true;
  clock.now += 2_000;
  assert.equal(await a.tryOnce(), true, "one failed renewal is within the deadline");
  clock.now += 7_999;
  assert.equal(await a.tryOnce(), true);
  clock.now += 1;
  assert.equal(await a.tryOnce(), false);
  assert.deepEqual(events, ["a started", "a stopped"]);
  store.failing = false;
  assert.equal(await a.tryOnce(), true, "its own lease is still its own: it renews and leads again");
  assert.deepEqual(events, ["a started", "a stopped", "a started"]);
});

test("Verifies that stop() releases the lease so a standby acquires it at its next try", async () => {
  const store = new MemoryLeaseStore();
  const clock = { now: T0 };
  const events: string[] = [];
  const a = candidate(store, "a", clock, events);
  const b = candidate(store, "b", clock, events);
  a.start();
  await waitFor(() => a.isLeader());
  assert.equal(await b.tryOnce(), false);
  await a.stop();
  assert.equal(a.isLeader(), false);
  assert.equal(store.record?.holderIdentity, "");
  assert.equal(await b.tryOnce(), true, "no need to wait out the lease duration");
  assert.equal(store.record?.leaseTransitions, 1);
  assert.deepEqual(events, ["a started", "a stopped", "b started"]);
});

test("Verifies that a write based on a stale read loses: two candidates racing for an expired lease", async () => {
  const store = new MemoryLeaseStore();
  store.record = { ...held(""), resourceVersion: "0" };
  const stale = await store.read();
  const clock = { now: T0 };
  const b = candidate(store, "b", clock, []);
  assert.equal(await b.tryOnce(), true);
  // a read before b wrote; its acquire carries the old resourceVersion and must be refused.
  const d = decideLease({
    current: stale,
    observedAtMs: T0,
    nowMs: T0,
    identity: "a",
    leaseDurationMs: 15_000,
  });
  assert.ok(d.action === "acquire");
  await assert.rejects(
    store.update(d.record),
    (err: unknown) => err instanceof KubeError && err.reason === "Conflict",
  );
  assert.equal(store.record?.holderIdentity, "b");
});

test("Verifies that inconsistent durations are refused", () => {
  assert.throws(
    () =>
      new LeaderElector(new MemoryLeaseStore(), {
        namespace: "n",
        name: "l",
        identity: "a",
        renewDeadlineMs: 20_000,
      }),
    /retryPeriod < renewDeadline < leaseDuration/,
  );
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "condition not met");
}
