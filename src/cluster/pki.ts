// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

/**
 * PKI for the local control plane: one CA, and certificates signed by it. Keys are ECDSA P-256
 * (fast to generate, accepted by every component). Everything is returned as PEM text.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const serverAuth = "1.3.6.1.5.5.7.3.1";
const clientAuth = "1.3.6.1.5.5.7.3.2";

/** KeyPair is a certificate and its private key, both PEM. */
export interface KeyPair {
  cert: string;
  key: string;
}

/** CertificateAuthority can sign further certificates. */
export interface CertificateAuthority extends KeyPair {
  sign(request: CertificateRequest): Promise<KeyPair>;
}

/** CertificateRequest describes a leaf certificate. */
export interface CertificateRequest {
  /** commonName becomes CN; for client certificates it is the Kubernetes user name. */
  commonName: string;
  /** organizations become O; for client certificates they are the Kubernetes groups. */
  organizations?: string[];
  /** dnsNames and ipAddresses become subject alternative names (needed for serving certs). */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** usages: "server", "client" or both. @default ["server", "client"] */
  usages?: ("server" | "client")[];
  /** validDays @default 3650 */
  validDays?: number;
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Date.now() - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * 86_400_000) };
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

function subjectName(req: CertificateRequest): string {
  const parts = [`CN=${req.commonName}`, ...(req.organizations ?? []).map((o) => `O=${o}`)];
  return parts.join(", ");
}

/** createCertificateAuthority makes a self-signed CA named commonName. */
export async function createCertificateAuthority(
  commonName: string,
  validDays = 3650,
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    ...validity(validDays),
    signingAlgorithm: algorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return caFrom(cert, keys.privateKey, await privateKeyPem(keys.privateKey));
}

function caFrom(cert: x509.X509Certificate, privateKey: CryptoKey, keyPem: string): CertificateAuthority {
  return {
    cert: cert.toString("pem"),
    key: keyPem,
    async sign(req: CertificateRequest): Promise<KeyPair> {
      const keys = await generateKeys();
      const usages = req.usages ?? ["server", "client"];
      const sans: x509.JsonGeneralName[] = [
        ...(req.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(req.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
      ];
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(
          usages.map((u) => (u === "server" ? serverAuth : clientAuth)),
          false,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(cert, false),
      ];
      if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: subjectName(req),
        issuer: cert.subject,
        ...validity(req.validDays ?? 3650),
        signingAlgorithm: algorithm,
        publicKey: keys.publicKey,
        signingKey: privateKey,
        extensions,
      });
      return { cert: leaf.toString("pem"), key: await privateKeyPem(keys.privateKey) };
    },
  };
}

/** loadCertificateAuthority rebuilds a CA from its PEM files, so it can sign again later. */
export async function loadCertificateAuthority(pair: KeyPair): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(pair.cert);
  const der = x509.PemConverter.decodeFirst(pair.key);
  const key = await webcrypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
  return caFrom(cert, key as CryptoKey, pair.key);
}

/** createSigningKey makes a key pair for signing service-account tokens (private + public PEM). */
export async function createSigningKey(): Promise<{ key: string; publicKey: string }> {
  const keys = await generateKeys();
  const spki = await webcrypto.subtle.exportKey("spki", keys.publicKey);
  return {
    key: await privateKeyPem(keys.privateKey),
    publicKey: x509.PemConverter.encode(spki, "PUBLIC KEY"),
  };
}
