/**
 * TLS material for the admission webhook: a private CA and a serving certificate signed by it.
 * The API server only calls webhooks over TLS and checks the certificate against the caBundle
 * in the MutatingWebhookConfiguration, so the CA's PEM goes there and the serving pair to the
 * webhook server. ECDSA P-256 keys: small, fast, and accepted by every Kubernetes release.
 */
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { JobsError } from "./errors.js";

/** ServingCertificate is a CA certificate and a serving certificate with its private key, in PEM. */
export interface ServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

/** ServingCertificateOptions say whom the certificate serves. */
export interface ServingCertificateOptions {
  /** dnsNames go in the subjectAltName; the first is also the common name. */
  dnsNames: string[];
  /** ipAddresses go in the subjectAltName too, e.g. "127.0.0.1" for a local test. */
  ipAddresses?: string[];
  /** validDays is how long both certificates are valid. @default 365 */
  validDays?: number;
  /** now is the start of validity (backdated one hour for clock skew). @default new Date() */
  now?: Date;
}

const crypto = webcrypto;
const keyAlgorithm = { name: "ECDSA", namedCurve: "P-256" };
const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" };

/** webhookDnsNames are the names the API server may use for a Service: short to fully qualified. */
export function webhookDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/**
 * createServingCertificate makes a new CA and a serving certificate for the given names. It
 * throws a JobsError (`certificate`) when there is no name to serve or the generation fails.
 */
export async function createServingCertificate(
  options: ServingCertificateOptions,
): Promise<ServingCertificate> {
  const [commonName] = options.dnsNames;
  if (commonName === undefined)
    throw new JobsError("certificate", "a serving certificate needs at least one DNS name");
  const notBefore = new Date((options.now ?? new Date()).getTime() - 3600_000);
  const notAfter = new Date(notBefore.getTime() + (options.validDays ?? 365) * 86_400_000);
  try {
    const caKeys = await generateKeys();
    const ca = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serial(),
        name: `CN=kubewise jobs webhook CA`,
        notBefore,
        notAfter,
        keys: caKeys,
        signingAlgorithm,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const leafKeys = await generateKeys();
    const altNames = [
      ...options.dnsNames.map((value) => ({ type: "dns" as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
    ];
    const leaf = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: `CN=${commonName}`,
        issuer: ca.subject,
        notBefore,
        notAfter,
        publicKey: leafKeys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension(altNames, false),
          await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const keyDer = await crypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
    return {
      caPem: ca.toString("pem"),
      certPem: leaf.toString("pem"),
      keyPem: x509.PemConverter.encode(keyDer, "PRIVATE KEY"),
      notAfter,
    };
  } catch (err) {
    throw new JobsError("certificate", `cannot create the webhook's certificate: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlgorithm, true, ["sign", "verify"]);
}

// serial is 16 random bytes with the top bit clear: positive, and unique enough that a browser
// or client never sees two certificates from this CA with one serial.
function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}
