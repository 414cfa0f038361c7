import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createCertificateAuthority, loadCertificateAuthority } from "./pki.js";

test("Verifies that a signed serving+client certificate chains to its CA and carries the SANs", async () => {
  const ca = await createCertificateAuthority("test-ca");
  const pair = await ca.sign({
    commonName: "admin",
    organizations: ["system:masters"],
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const caCert = new X509Certificate(ca.cert);
  const leaf = new X509Certificate(pair.cert);
  assert.ok(leaf.checkIssued(caCert));
  assert.ok(leaf.verify(caCert.publicKey));
  assert.match(leaf.subject, /CN=admin/);
  assert.match(leaf.subject, /O=system:masters/);
  assert.match(leaf.subjectAltName ?? "", /DNS:localhost/);
  assert.match(leaf.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
  assert.ok(caCert.ca);
  assert.equal(leaf.ca, false);
});

test("Verifies that a CA reloaded from PEM signs certificates that verify against it", async () => {
  const ca = await createCertificateAuthority("reload-ca");
  const again = await loadCertificateAuthority({ cert: ca.cert, key: ca.key });
  const pair = await again.sign({ commonName: "webhook", dnsNames: ["127.0.0.1"], usages: ["server"] });
  assert.ok(new X509Certificate(pair.cert).verify(new X509Certificate(ca.cert).publicKey));
});
