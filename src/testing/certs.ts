// Makes a throwaway CA and a server certificate for test names, in memory (DER by hand, keys and signatures by node:crypto).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

/** A CA to trust (`tls.ca`) and the certificate an HTTPS upstream serves, all PEM. */
export interface TestCertificates {
  /** The CA's certificate: what a client passes as `tls.ca`. */
  readonly ca: string
  /** The server certificate, issued by the CA for every name asked for. */
  readonly cert: string
  /** The server certificate's private key (PKCS #8). */
  readonly key: string
}

const HOUR_MS = 60 * 60 * 1000
/** How long the certificates are valid: from an hour ago (clock skew) to a week from now. */
const VALID_BEFORE_MS = HOUR_MS
const VALID_AFTER_MS = 7 * 24 * HOUR_MS

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

const der = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content)
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body])
}
const sequence = (...parts: Buffer[]) => der(0x30, ...parts)
const set = (...parts: Buffer[]) => der(0x31, ...parts)
const octets = (bytes: Buffer) => der(0x04, bytes)
const bits = (bytes: Buffer, unusedBits = 0) => der(0x03, Buffer.from([unusedBits]), bytes)
const TRUE = der(0x01, Buffer.from([0xff]))

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]]
  const bytes = [40 * first + second]
  for (const arc of rest) {
    const groups = [arc & 0x7f]
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) groups.unshift(0x80 | (value & 0x7f))
    bytes.push(...groups)
  }
  return der(0x06, Buffer.from(bytes))
}


/**
 * The serial number INTEGER from 16 random bytes, with the first byte's top bits set to 01: a
 * positive number whose DER has no padding byte (a 0x00 first byte would be rejected by OpenSSL).
 */
export function serialInteger(random: Buffer): Buffer {
  const serial = Buffer.from(random)
  serial[0] = (serial[0]! & 0x7f) | 0x40
  return der(0x02, serial)
}

/** UTCTime (`YYMMDDHHMMSSZ`), which covers 1950-2049. */
const utcTime = (ms: number) => der(0x17, Buffer.from(new Date(ms).toISOString().slice(2, 19).replace(/[-:T]/g, '') + 'Z'))

const commonName = (name: string) => sequence(set(sequence(oid('2.5.4.3'), der(0x0c, Buffer.from(name, 'utf8')))))

const ECDSA_SHA256 = sequence(oid('1.2.840.10045.4.3.2'))

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), TRUE, octets(value)) : sequence(oid(id), octets(value))
}

/** The SHA-1 of the key's SubjectPublicKeyInfo: what subject and authority key identifiers carry. */
const keyId = (spki: Buffer) => createHash('sha1').update(spki).digest()

interface Issued {
  readonly subject: string
  readonly spki: Buffer
  readonly extensions: readonly Buffer[]
}

interface Issuer {
  readonly name: string
  readonly spki: Buffer
  readonly key: KeyObject
}

/** The certificate `issuer` signs for `issued`, in DER. */
function certificate(issued: Issued, issuer: Issuer, now: number): Buffer {
  const tbs = sequence(
    der(0xa0, der(0x02, Buffer.from([2]))), // version 3
    serialInteger(randomBytes(16)),
    ECDSA_SHA256,
    commonName(issuer.name),
    sequence(utcTime(now - VALID_BEFORE_MS), utcTime(now + VALID_AFTER_MS)),
    commonName(issued.subject),
    issued.spki,
    der(0xa3, sequence(...issued.extensions, extension('2.5.29.35', false, sequence(der(0x80, keyId(issuer.spki)))))),
  )
  return sequence(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, issuer.key)))
}

const pem = (label: string, body: Buffer) =>
  `-----BEGIN ${label}-----\n${body.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`

function newKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return { key: privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) }
}

/**
 * A fresh CA (its key is dropped once the server certificate is signed) and a server certificate
 * for `names` (EC P-256, valid from an hour ago for a week). Takes a few milliseconds.
 */
export function makeTestCertificates(names: readonly string[], now = Date.now()): TestCertificates {
  if (names.length === 0) throw new TypeError('makeTestCertificates: give at least one name for the server certificate')
  const ca = { name: `capsule-host/testing CA ${randomBytes(4).toString('hex')}`, ...newKey() }
  const caCert = certificate(
    {
      subject: ca.name,
      spki: ca.spki,
      extensions: [
        extension('2.5.29.19', true, sequence(TRUE)), // basicConstraints CA:TRUE
        extension('2.5.29.15', true, bits(Buffer.from([0x06]), 1)), // keyUsage keyCertSign, cRLSign
        extension('2.5.29.14', false, octets(keyId(ca.spki))),
      ],
    },
    ca,
    now,
  )
  const server = newKey()
  const serverCert = certificate(
    {
      subject: names[0]!,
      spki: server.spki,
      extensions: [
        extension('2.5.29.19', true, sequence()), // basicConstraints CA:FALSE
        extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage digitalSignature
        extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage serverAuth
        extension('2.5.29.17', false, sequence(...names.map((name) => der(0x82, Buffer.from(name, 'ascii'))))),
        extension('2.5.29.14', false, octets(keyId(server.spki))),
      ],
    },
    ca,
    now,
  )
  return {
    ca: pem('CERTIFICATE', caCert),
    cert: pem('CERTIFICATE', serverCert),
    key: server.key.export({ type: 'pkcs8', format: 'pem' }) as string,
  }
}
