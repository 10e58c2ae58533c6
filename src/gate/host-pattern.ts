// Compiles and matches host patterns: an exact host, or `*.example.com` (exactly one label, never the apex).
import { publicSuffixSection } from './public-suffix.js'

export interface HostPattern {
  /** The pattern as written (and already canonical). */
  readonly source: string
  matches(hostname: string): boolean
}

function canonicalHost(host: string): string | undefined {
  try {
    const hostname = new URL(`http://${host}/`).hostname
    return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname
  } catch {
    return undefined
  }
}

/**
 * Validates a host pattern and returns its matcher. Throws a message that proposes the fix for a
 * bare `*`, a wildcard anywhere but the first label, a wildcard over a public suffix (`*.co.uk`),
 * a port or path in the host, and any non-canonical spelling (upper case, trailing dot, Unicode
 * instead of punycode).
 */
export function compileHostPattern(pattern: string): HostPattern {
  if (typeof pattern !== 'string' || pattern === '') throw new Error('host must be a non-empty string')
  if (pattern === '*' || pattern === '*.') {
    throw new Error('a bare "*" would allow every host; list the hosts, or use "*.example.com" for one label under a domain')
  }
  const wildcard = pattern.startsWith('*.')
  const rest = wildcard ? pattern.slice(2) : pattern
  if (rest.includes('*')) {
    // Only a misspelt leading wildcard (`*foo.com`, `*.*.foo.com`) has an obvious fix; for `a.*.com`
    // the suffix alone (`*.com`) would widen the rule to a whole TLD, so ask for the hosts instead;
    // so too for `*.*.co.uk`, whose tail is a public suffix.
    const tail = pattern.slice(pattern.lastIndexOf('*') + 1).replace(/^\.+/, '')
    if (pattern.startsWith('*') && tail !== '' && !publicSuffixSection(tail.toLowerCase())) throw new Error(`"*" may only be the whole first label, as in "*.${tail}"`)
    throw new Error(`"*" may only be the whole first label, as in "*.example.com"; list the hosts "${pattern}" should reach`)
  }
  if (/[/?#@\s\\]/.test(rest) || (!rest.startsWith('[') && rest.includes(':'))) {
    throw new Error(`"${pattern}" is not a host; give the host name only and put ports in "port"`)
  }
  const canonical = canonicalHost(rest)
  if (canonical === undefined || canonical === '') throw new Error(`"${pattern}" is not a valid host name`)
  // `*.com`, `*.co.uk` or `*.github.io` is one step from the bare `*`: anyone can register a name
  // there. Checked before the empty labels and the spelling, so `*..com` and `*.COM` are told
  // about the suffix rather than to write `*.com`.
  const labels = canonical.startsWith('[') ? canonical : canonical.split('.').filter(Boolean).join('.')
  const section = wildcard ? publicSuffixSection(labels) : undefined
  if (section) {
    throw new Error(
      `"${pattern}" would allow every site under "${labels}", a public suffix (${section} section of the Public Suffix List); list the hosts, or put the wildcard under one registered domain, as in "*.example.${labels}"`,
    )
  }
  // Checked before the spelling, so the proposed fix is never itself a refused pattern.
  if (!canonical.startsWith('[') && canonical.split('.').includes('')) {
    const fixed = `${wildcard ? '*.' : ''}${labels}`
    const sub = !wildcard && pattern.startsWith('.') && !publicSuffixSection(labels) ? `, or "*.${fixed}" for one label under it` : ''
    throw new Error(`"${pattern}" has an empty label; use "${fixed}"${sub}`)
  }
  if (wildcard && (canonical.startsWith('[') || /^[\d.]+$/.test(canonical))) {
    throw new Error(`"${pattern}" puts a wildcard on an IP address; list the address itself`)
  }
  if (canonical !== rest) throw new Error(`write the host in canonical form: use "${wildcard ? '*.' : ''}${canonical}"`)

  if (!wildcard) return { source: pattern, matches: (hostname) => hostname === canonical }
  const suffix = `.${canonical}`
  return {
    source: pattern,
    matches: (hostname) =>
      hostname.endsWith(suffix) &&
      hostname.length > suffix.length &&
      !hostname.slice(0, -suffix.length).includes('.') &&
      !hostname.startsWith('['),
  }
}
