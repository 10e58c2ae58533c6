// Tells whether a host name is itself a public suffix, as the Public Suffix List (ICANN and private sections, via tldts) names it.
import { parse } from 'tldts'

export type SuffixSection = 'ICANN' | 'private'

/**
 * The section of the Public Suffix List that names `hostname` (canonical: lower case, punycode,
 * no trailing dot) as a public suffix: `com` and `co.uk` (ICANN), `github.io` (private), or
 * `foo.ck` (matched by the rule `*.ck`). Undefined for a registrable name or anything below one,
 * and for names only the list's implicit default rule covers (`test`, `internal`, `localhost`):
 * those are not delegated to the public.
 */
export function publicSuffixSection(hostname: string): SuffixSection | undefined {
  const parsed = parse(hostname, { allowPrivateDomains: true, extractHostname: false, validateHostname: false })
  if (parsed.publicSuffix !== hostname) return undefined
  if (parsed.isIcann === true) return 'ICANN'
  if (parsed.isPrivate === true) return 'private'
  return undefined
}
