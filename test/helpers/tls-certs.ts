// Generates the certificates of TLS failure tests with openssl, at test time, in a temporary folder.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface KeyPair {
  readonly cert: string
  readonly key: string
}

/** One CA the client trusts and a certificate for each way a handshake can fail (all for `api.test` unless said). */
export interface FailureCerts {
  /** The CA to pass as `tls.ca`. */
  readonly trustedCa: string
  /** `api.test`, issued by the trusted CA and valid now: the control. */
  readonly valid: KeyPair
  /** `api.test`, issued by a CA the client does not trust; the server sends the leaf only. */
  readonly unknownCa: KeyPair
  /** `wrong.test` only, issued by the trusted CA. */
  readonly wrongName: KeyPair
  /** Issued by the trusted CA; ended a day ago. */
  readonly expired: KeyPair
  /** Issued by the trusted CA; starts in a day. */
  readonly notYetValid: KeyPair
  /** `api.test`, signed by its own key. */
  readonly selfSigned: KeyPair
}

/** The certificates, or why they could not be made (the tests that need them are then skipped). */
export type FailureCertsResult =
  | { readonly certs: FailureCerts; readonly unavailable?: undefined }
  | { readonly certs?: undefined; readonly unavailable: string }

const DAY_MS = 24 * 60 * 60 * 1000

// No system openssl.cnf is read: every command names one of these.
const REQ_CONFIG = `[ req ]
distinguished_name = dn
[ dn ]
[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ self_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:api.test
`

const leafSection = (name: string, host: string) => `[ ${name} ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${host}
`

// `openssl ca` rather than `x509 -req`: OpenSSL 3.0 can only set both dates (past or future) there.
const CA_CONFIG = `[ ca ]
default_ca = test
[ test ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
${leafSection('leaf_api', 'api.test')}
${leafSection('leaf_wrong', 'wrong.test')}`

/** `2026-12-01T12:00:00.000Z` as openssl's `20261201120000Z`. */
const opensslTime = (ms: number) => `${new Date(ms).toISOString().slice(0, 19).replace(/[-:T]/g, '')}Z`

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

/**
 * Makes a trusted CA, an untrusted CA and the leaf certificates of `FailureCerts` with the
 * `openssl` command (a few EC P-256 keys: well under a second). Synchronous, so a test file can
 * call it at load time and skip its suite when openssl is missing or fails.
 */
export function makeFailureCerts(now = Date.now()): FailureCertsResult {
  const dir = mkdtempSync(join(tmpdir(), 'capsule-host-tls-'))
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: 30_000 })
  const read = (name: string) => readFileSync(join(dir, name), 'utf8')
  const pair = (name: string): KeyPair => ({ cert: read(`${name}.pem`), key: read(`${name}-key.pem`) })
  try {
    writeFileSync(join(dir, 'req.cnf'), REQ_CONFIG)
    writeFileSync(join(dir, 'ca.cnf'), CA_CONFIG)
    writeFileSync(join(dir, 'index.txt'), '')
    writeFileSync(join(dir, 'serial'), '01\n')
    const selfSigned = (name: string, subject: string, extensions: string) =>
      openssl('req', '-x509', ...EC_KEY, '-days', '2', '-subj', subject, '-config', 'req.cnf', '-extensions', extensions,
        '-keyout', `${name}-key.pem`, '-out', `${name}.pem`)
    selfSigned('trusted-ca', '/CN=capsule-host tls-causes trusted CA', 'ca_ext')
    selfSigned('other-ca', '/CN=capsule-host tls-causes unknown CA', 'ca_ext')
    selfSigned('self-signed', '/CN=api.test', 'self_ext')
    const issue = (name: string, ca: string, section: string, from: number, to: number) => {
      openssl('req', '-new', ...EC_KEY, '-subj', `/CN=${name}`, '-config', 'req.cnf', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`)
      openssl('ca', '-batch', '-config', 'ca.cnf', '-cert', `${ca}.pem`, '-keyfile', `${ca}-key.pem`, '-in', `${name}.csr`,
        '-out', `${name}.pem`, '-extensions', section, '-notext', '-startdate', opensslTime(from), '-enddate', opensslTime(to))
    }
    issue('valid', 'trusted-ca', 'leaf_api', now - DAY_MS, now + DAY_MS)
    issue('unknown-ca', 'other-ca', 'leaf_api', now - DAY_MS, now + DAY_MS)
    issue('wrong-name', 'trusted-ca', 'leaf_wrong', now - DAY_MS, now + DAY_MS)
    issue('expired', 'trusted-ca', 'leaf_api', now - 30 * DAY_MS, now - DAY_MS)
    issue('not-yet-valid', 'trusted-ca', 'leaf_api', now + DAY_MS, now + 30 * DAY_MS)
    return {
      certs: {
        trustedCa: read('trusted-ca.pem'),
        valid: pair('valid'),
        unknownCa: pair('unknown-ca'),
        wrongName: pair('wrong-name'),
        expired: pair('expired'),
        notYetValid: pair('not-yet-valid'),
        selfSigned: pair('self-signed'),
      },
    }
  } catch (error) {
    const { code, stderr } = error as { code?: unknown; stderr?: Buffer }
    if (code === 'ENOENT') return { unavailable: 'openssl is not installed' }
    return { unavailable: `openssl failed: ${stderr?.toString().trim() || String(error)}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
