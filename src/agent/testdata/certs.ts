import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Test PKI made with the openssl CLI: a CA, a kubelet serving certificate for 127.0.0.1 and
 * "kubelet.test", a client certificate signed by the same CA, and a second, unrelated CA with
 * its own client certificate (to check that the server refuses strangers).
 */

/** TestPki holds the paths of the files and their PEM text. */
export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  otherClientCert: string;
  otherClientKey: string;
  pem(path: string): Buffer;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function newKey(dir: string, name: string): void {
  openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]);
}

function ca(dir: string, name: string): void {
  newKey(dir, `${name}.key`);
  openssl(dir, ["req", "-x509", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-days", "2", "-out", `${name}.crt`]);
}

function leaf(dir: string, caName: string, name: string, cn: string, ext: string): void {
  newKey(dir, `${name}.key`);
  openssl(dir, ["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`,
    "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`,
  ]);
}

/** makeTestPki writes the PKI into dir (which must exist). */
export function makeTestPki(dir: string): TestPki {
  ca(dir, "ca");
  ca(dir, "other-ca");
  leaf(dir, "ca", "server", "kubelet", "subjectAltName=IP:127.0.0.1,DNS:kubelet.test\nextendedKeyUsage=serverAuth\n");
  leaf(dir, "ca", "client", "kubewise-agent", "extendedKeyUsage=clientAuth\n");
  leaf(dir, "other-ca", "other-client", "stranger", "extendedKeyUsage=clientAuth\n");
  const at = (f: string): string => join(dir, f);
  return {
    dir,
    caCert: at("ca.crt"),
    serverCert: at("server.crt"),
    serverKey: at("server.key"),
    clientCert: at("client.crt"),
    clientKey: at("client.key"),
    otherCaCert: at("other-ca.crt"),
    otherClientCert: at("other-client.crt"),
    otherClientKey: at("other-client.key"),
    pem: (path: string) => readFileSync(path),
  };
}
