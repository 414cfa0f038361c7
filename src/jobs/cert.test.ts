import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  checkServingPair,
  createServingCertificate,
  dnsLabelProblem,
  ipAddressProblem,
  webhookDnsNames,
} from "./cert.js";
import { JobsError } from "./errors.js";

const files = { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key" };

function certificateError(pattern: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof JobsError, String(err));
    assert.equal(err.reason, "certificate");
    assert.match(err.message, pattern);
    return true;
  };
}

test("Verifies that a generated serving pair passes the check and serves the given names", async () => {
  const pair = await createServingCertificate({
    dnsNames: webhookDnsNames("hook", "ns"),
    ipAddresses: ["::1"],
  });
  checkServingPair(pair.certPem, pair.keyPem, files);
  const cert = new X509Certificate(pair.certPem);
  assert.match(cert.subjectAltName ?? "", /DNS:hook\.ns\.svc/);
  assert.match(cert.subjectAltName ?? "", /IP Address:0:0:0:0:0:0:0:1/);
});

test("Verifies that a serving pair that is not PEM, or whose key is another certificate's, is refused naming the flag, the file and what is expected", async () => {
  const pair = await createServingCertificate({ dnsNames: ["a"] });
  const other = await createServingCertificate({ dnsNames: ["b"] });
  assert.throws(
    () => checkServingPair("not a certificate", pair.keyPem, files),
    certificateError(
      /^--cert-file \/tls\/tls\.crt is not a PEM certificate: expected a "-----BEGIN CERTIFICATE-----" block/,
    ),
  );
  assert.throws(
    () => checkServingPair(pair.keyPem, pair.keyPem, files),
    certificateError(/^--cert-file \/tls\/tls\.crt is not a PEM certificate/),
    "a key where the certificate belongs",
  );
  assert.throws(
    () => checkServingPair(pair.certPem, pair.certPem, files),
    certificateError(
      /^--key-file \/tls\/tls\.key is not an unencrypted PEM private key: expected a "-----BEGIN PRIVATE KEY-----"/,
    ),
    "a certificate where the key belongs",
  );
  assert.throws(
    () => checkServingPair(pair.certPem, other.keyPem, files),
    certificateError(
      /^--key-file \/tls\/tls\.key is not the private key of the certificate in --cert-file \/tls\/tls\.crt: expected the key the certificate was issued for/,
    ),
  );
  assert.throws(
    () => checkServingPair(pair.certPem, "", { ...files, keyFlag: "TLS_KEY" }),
    certificateError(/^TLS_KEY \/tls\/tls\.key is not/),
  );
});

test("Verifies that Service and namespace names must be DNS labels and --ip an IP address, naming flag, value and what is allowed", () => {
  for (const good of ["kubewise-jobs-webhook", "a", "x1", "a".repeat(63)])
    assert.equal(dnsLabelProblem("--service", good), "");
  for (const bad of ["Bad Name", "UPPER", "-lead", "trail-", "dots.in.it", "", "a".repeat(64)]) {
    assert.equal(
      dnsLabelProblem("--service", bad),
      `--service ${JSON.stringify(bad)} is not a valid name: expected a DNS label, lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
    );
  }
  for (const good of ["127.0.0.1", "10.0.0.7", "::1", "fd00::5"])
    assert.equal(ipAddressProblem("--ip", good), "");
  for (const bad of ["notanip", "256.1.1.1", "10.0.0", "", "::g"]) {
    assert.equal(
      ipAddressProblem("--ip", bad),
      `--ip ${JSON.stringify(bad)} is not an IP address: expected IPv4 (e.g. 10.0.0.7) or IPv6 (e.g. ::1)`,
    );
  }
});
