// Compiles and matches host patterns: an exact host, or `*.example.com` (exactly one label, never the apex).

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
 * bare `*`, a wildcard anywhere but the first label, a port or path in the host, and any
 * non-canonical spelling (upper case, trailing dot, Unicode instead of punycode).
 */
export function compileHostPattern(pattern: string): HostPattern {
  if (typeof pattern !== 'string' || pattern === '') throw new Error('host must be a non-empty string')
  if (pattern === '*' || pattern === '*.') {
    throw new Error('a bare "*" would allow every host; list the hosts, or use "*.example.com" for one label under a domain')
  }
  const wildcard = pattern.startsWith('*.')
  const rest = wildcard ? pattern.slice(2) : pattern
  if (rest.includes('*')) {
    throw new Error(`"*" may only be the whole first label, as in "*.${rest.split('*').pop()?.replace(/^\.+/, '') || 'example.com'}"`)
  }
  if (/[/?#@\s\\]/.test(rest) || (!rest.startsWith('[') && rest.includes(':'))) {
    throw new Error(`"${pattern}" is not a host; give the host name only and put ports in "port"`)
  }
  const canonical = canonicalHost(rest)
  if (canonical === undefined || canonical === '') throw new Error(`"${pattern}" is not a valid host name`)
  if (canonical !== rest) throw new Error(`write the host in canonical form: use "${wildcard ? '*.' : ''}${canonical}"`)
  if (wildcard && (canonical.startsWith('[') || /^[\d.]+$/.test(canonical))) {
    throw new Error(`"${pattern}" puts a wildcard on an IP address; list the address itself`)
  }

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
