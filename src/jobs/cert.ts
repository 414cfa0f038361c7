/**
 * TLS material for the admission webhook: a private CA and a serving certificate signed by it.
 * The API server only calls webhooks over TLS and checks the certificate against the caBundle
 * in the MutatingWebhookConfiguration, so the CA's PEM goes there and the serving pair to the
 * webhook server. ECDSA P-256 keys: small, fast, and accepted by every Kubernetes release.
 */
// @peculiar/x509 uses tsyringe, which needs the Reflect metadata polyfill loaded first.
import "reflect-metadata";
import { X509Certificate, createPrivateKey, webcrypto, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
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

/** ServingPairFiles names where a serving certificate and its key were read from, for messages. */
export interface ServingPairFiles {
  certFile: string;
  keyFile: string;
  /** the flags that named the files. @default --cert-file, --key-file */
  certFlag?: string;
  keyFlag?: string;
}

/**
 * checkServingPair makes sure certPem holds a PEM certificate and keyPem the PEM private key it
 * was issued for, before TLS is set up with them: OpenSSL's own errors for a wrong file
 * ("error:1E08010C:DECODER routines::unsupported") name neither the file nor what was expected.
 * It throws a JobsError (`certificate`) naming the flag, the file and what it should hold.
 */
export function checkServingPair(certPem: string, keyPem: string, files: ServingPairFiles): void {
  const certFlag = files.certFlag ?? "--cert-file";
  const keyFlag = files.keyFlag ?? "--key-file";
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new JobsError(
      "certificate",
      `${certFlag} ${files.certFile} is not a PEM certificate: expected a "-----BEGIN CERTIFICATE-----" block ` +
        "(tls.crt of `kubewise jobs cert`)",
      { cause: err },
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new JobsError(
      "certificate",
      `${keyFlag} ${files.keyFile} is not an unencrypted PEM private key: expected a "-----BEGIN PRIVATE KEY-----" ` +
        "(or EC / RSA PRIVATE KEY) block (tls.key of `kubewise jobs cert`)",
      { cause: err },
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new JobsError(
      "certificate",
      `${keyFlag} ${files.keyFile} is not the private key of the certificate in ${certFlag} ${files.certFile}: ` +
        "expected the key the certificate was issued for (tls.key and tls.crt of the same `kubewise jobs cert`)",
    );
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * dnsLabelProblem says what is wrong with `value` as the name of a Service or namespace (an RFC
 * 1123 DNS label, which the certificate's DNS names are built from), "" when nothing: it names
 * the flag, the value and what is allowed.
 */
export function dnsLabelProblem(flag: string, value: string): string {
  if (value.length <= 63 && DNS_LABEL.test(value)) return "";
  return (
    `${flag} ${JSON.stringify(value)} is not a valid name: expected a DNS label, lower-case letters, ` +
    "digits and '-', starting and ending with a letter or digit, at most 63 characters"
  );
}

/** ipAddressProblem says what is wrong with `value` as an IP address ("" when nothing). */
export function ipAddressProblem(flag: string, value: string): string {
  if (isIP(value) !== 0) return "";
  return `${flag} ${JSON.stringify(value)} is not an IP address: expected IPv4 (e.g. 10.0.0.7) or IPv6 (e.g. ::1)`;
}
