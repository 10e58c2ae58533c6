// Host patterns: which hosts an exact, wildcard or IP-literal pattern matches, and which patterns are refused with a fix.
import { describe, expect, test } from 'vitest'
import { compileHostPattern } from '../src/gate/host-pattern.js'

/** The message compileHostPattern throws for `pattern`, or 'compiled' when it does not throw. */
function compileError(pattern: unknown): string {
  try {
    compileHostPattern(pattern as string)
    return 'compiled'
  } catch (error) {
    return error instanceof Error ? error.message : `non-Error thrown: ${String(error)}`
  }
}

describe('compileHostPattern: matching', () => {
  test.each([
    // exact host names
    { name: 'exact: same host', pattern: 'api.example.com', host: 'api.example.com', matches: true },
    { name: 'exact: apex is a different host', pattern: 'api.example.com', host: 'example.com', matches: false },
    { name: 'exact: subdomain is a different host', pattern: 'api.example.com', host: 'x.api.example.com', matches: false },
    { name: 'exact: host as a prefix of another name', pattern: 'api.example.com', host: 'api.example.com.evil.net', matches: false },
    { name: 'exact: longer last label', pattern: 'api.example.com', host: 'api.example.comm', matches: false },
    { name: 'exact: shorter last label', pattern: 'api.example.com', host: 'api.example.co', matches: false },
    { name: 'exact: dot is not a wildcard character', pattern: 'api.example.com', host: 'apixexample.com', matches: false },
    { name: 'exact: punycode host', pattern: 'xn--bcher-kva.example', host: 'xn--bcher-kva.example', matches: true },
    { name: 'exact: single-label host', pattern: 'localhost', host: 'localhost', matches: true },
    { name: 'exact: single-label host, other name', pattern: 'localhost', host: 'localhost2', matches: false },
    // `*.example.com`: exactly one label, never the apex
    { name: 'wildcard: one label', pattern: '*.example.com', host: 'a.example.com', matches: true },
    { name: 'wildcard: one longer label', pattern: '*.example.com', host: 'api-v2.example.com', matches: true },
    { name: 'wildcard: one punycode label', pattern: '*.example.com', host: 'xn--bcher-kva.example.com', matches: true },
    { name: 'wildcard: apex never matches', pattern: '*.example.com', host: 'example.com', matches: false },
    { name: 'wildcard: two labels do not match', pattern: '*.example.com', host: 'a.b.example.com', matches: false },
    { name: 'wildcard: name ending in the suffix without a dot', pattern: '*.example.com', host: 'xexample.com', matches: false },
    { name: 'wildcard: empty label', pattern: '*.example.com', host: '.example.com', matches: false },
    { name: 'wildcard: two empty labels', pattern: '*.example.com', host: '..example.com', matches: false },
    { name: 'wildcard: suffix followed by more labels', pattern: '*.example.com', host: 'a.example.com.evil.net', matches: false },
    { name: 'wildcard: other TLD', pattern: '*.example.com', host: 'a.example.org', matches: false },
    { name: 'wildcard: label glued to the domain', pattern: '*.example.com', host: 'a.xexample.com', matches: false },
    { name: 'wildcard: deeper pattern, one label', pattern: '*.api.example.com', host: 'eu.api.example.com', matches: true },
    { name: 'wildcard: deeper pattern, its apex', pattern: '*.api.example.com', host: 'api.example.com', matches: false },
    { name: 'wildcard: deeper pattern, sibling', pattern: '*.api.example.com', host: 'eu.web.example.com', matches: false },
    // IP literal patterns (exact only)
    { name: 'IPv4 literal: same address', pattern: '127.0.0.1', host: '127.0.0.1', matches: true },
    { name: 'IPv4 literal: neighbour address', pattern: '127.0.0.1', host: '127.0.0.2', matches: false },
    { name: 'IPv4 literal: prefix of a longer address', pattern: '127.0.0.1', host: '127.0.0.10', matches: false },
    { name: 'IPv6 literal: same address', pattern: '[::1]', host: '[::1]', matches: true },
    { name: 'IPv6 literal: unbracketed spelling is not the host form', pattern: '[::1]', host: '::1', matches: false },
    { name: 'IPv6 literal: neighbour address', pattern: '[::1]', host: '[::2]', matches: false },
    // a wildcard never matches an IP literal host
    { name: 'wildcard vs IPv4 host', pattern: '*.example.com', host: '127.0.0.1', matches: false },
    { name: 'wildcard vs IPv6 host', pattern: '*.example.com', host: '[::1]', matches: false },
    { name: 'deep wildcard vs IPv4 host', pattern: '*.113.0.203.in-addr.arpa', host: '203.0.113.1', matches: false },
    // a wildcard right under a public suffix is refused; one label deeper, or a name the list does not know, is not
    { name: 'wildcard under a registered .co.uk domain', pattern: '*.example.co.uk', host: 'a.example.co.uk', matches: true },
    { name: 'wildcard under a github.io site', pattern: '*.example.github.io', host: 'a.example.github.io', matches: true },
    { name: 'wildcard under a name the list does not know (.test)', pattern: '*.test', host: 'api.test', matches: true },
    { name: 'wildcard under .internal (not in the list)', pattern: '*.internal', host: 'db.internal', matches: true },
    { name: 'wildcard under the exception www.ck (!www.ck)', pattern: '*.www.ck', host: 'a.www.ck', matches: true },
    { name: 'exact host that is a public suffix is one host', pattern: 'github.io', host: 'github.io', matches: true },
    { name: 'exact host that is a public suffix, another site', pattern: 'github.io', host: 'a.github.io', matches: false },
    { name: 'wildcard vs IPv4-mapped IPv6 host', pattern: '*.example.com', host: '[::ffff:7f00:1]', matches: false },
  ])('$name', ({ pattern, host, matches }) => {
    expect(compileHostPattern(pattern).matches(host)).toBe(matches)
  })
})

describe('compileHostPattern: accepted patterns keep their source', () => {
  test.each([
    { name: 'exact host', pattern: 'api.example.com' },
    { name: 'wildcard', pattern: '*.example.com' },
    { name: 'punycode', pattern: 'xn--bcher-kva.example' },
    { name: 'IPv4 literal', pattern: '127.0.0.1' },
    { name: 'IPv6 literal', pattern: '[::1]' },
    { name: 'IPv6 literal, long canonical form', pattern: '[2001:db8::1]' },
  ])('$name', ({ pattern }) => {
    expect(compileHostPattern(pattern).source).toBe(pattern)
  })
})

describe('compileHostPattern: refused at compile with a message that proposes the fix', () => {
  const BARE = 'a bare "*" would allow every host; list the hosts, or use "*.example.com" for one label under a domain'
  const NOT_A_HOST = (p: string) => `"${p}" is not a host; give the host name only and put ports in "port"`
  const CANONICAL = (fix: string) => `write the host in canonical form: use "${fix}"`
  const WILDCARD_IP = (p: string) => `"${p}" puts a wildcard on an IP address; list the address itself`
  const NON_EMPTY = 'host must be a non-empty string'
  const PUBLIC = (p: string, suffix: string, section: 'ICANN' | 'private') =>
    `"${p}" would allow every site under "${suffix}", a public suffix (${section} section of the Public Suffix List); list the hosts, or put the wildcard under one registered domain, as in "*.example.${suffix}"`
  const LIST_HOSTS = (p: string) => `"*" may only be the whole first label, as in "*.example.com"; list the hosts "${p}" should reach`

  test.each([
    // wildcards in the wrong place
    { name: 'bare *', pattern: '*', message: BARE },
    { name: 'bare *.', pattern: '*.', message: BARE },
    { name: 'wildcard in a middle label (a.*.com)', pattern: 'a.*.com', message: '"*" may only be the whole first label, as in "*.example.com"; list the hosts "a.*.com" should reach' },
    { name: 'two wildcards (*.*.x)', pattern: '*.*.x', message: '"*" may only be the whole first label, as in "*.x"' },
    { name: 'two wildcards over a domain', pattern: '*.*.example.com', message: '"*" may only be the whole first label, as in "*.example.com"' },
    { name: 'double star label', pattern: '**.example.com', message: '"*" may only be the whole first label, as in "*.example.com"' },
    { name: 'partial-label wildcard before (*foo.com)', pattern: '*foo.com', message: '"*" may only be the whole first label, as in "*.foo.com"' },
    { name: 'partial-label wildcard after (foo*.com)', pattern: 'foo*.com', message: '"*" may only be the whole first label, as in "*.example.com"; list the hosts "foo*.com" should reach' },
    { name: 'wildcard as last label', pattern: 'example.*', message: '"*" may only be the whole first label, as in "*.example.com"; list the hosts "example.*" should reach' },
    // non-canonical spellings
    { name: 'upper case', pattern: 'API.Example.com', message: CANONICAL('api.example.com') },
    { name: 'upper case under a wildcard', pattern: '*.EXAMPLE.com', message: CANONICAL('*.example.com') },
    { name: 'trailing dot', pattern: 'example.com.', message: CANONICAL('example.com') },
    { name: 'trailing dot under a wildcard', pattern: '*.example.com.', message: CANONICAL('*.example.com') },
    { name: 'Unicode host', pattern: 'bücher.example', message: CANONICAL('xn--bcher-kva.example') },
    { name: 'Unicode host under a wildcard', pattern: '*.bücher.example', message: CANONICAL('*.xn--bcher-kva.example') },
    { name: 'percent-encoded letter', pattern: '%41.com', message: CANONICAL('a.com') },
    { name: 'short IPv4 form', pattern: '127.1', message: CANONICAL('127.0.0.1') },
    { name: 'hex IPv4 form', pattern: '0x7f.0.0.1', message: CANONICAL('127.0.0.1') },
    { name: 'long IPv6 form', pattern: '[0:0:0:0:0:0:0:1]', message: CANONICAL('[::1]') },
    { name: 'IPv4-mapped IPv6 in dotted form', pattern: '[::ffff:127.0.0.1]', message: CANONICAL('[::ffff:7f00:1]') },
    { name: 'IPv6 literal with a port', pattern: '[::1]:443', message: CANONICAL('[::1]') },
    // not a host at all
    { name: 'host with port', pattern: 'a.com:443', message: NOT_A_HOST('a.com:443') },
    { name: 'host with path', pattern: 'a.com/x', message: NOT_A_HOST('a.com/x') },
    { name: 'host with query', pattern: 'a.com?x', message: NOT_A_HOST('a.com?x') },
    { name: 'host with fragment', pattern: 'a.com#x', message: NOT_A_HOST('a.com#x') },
    { name: 'userinfo', pattern: 'user@a.com', message: NOT_A_HOST('user@a.com') },
    { name: 'userinfo with password', pattern: 'user:pw@a.com', message: NOT_A_HOST('user:pw@a.com') },
    { name: 'whitespace', pattern: 'a b.com', message: NOT_A_HOST('a b.com') },
    { name: 'backslash', pattern: 'a.com\\x', message: NOT_A_HOST('a.com\\x') },
    { name: 'URL instead of host', pattern: 'https://a.com', message: NOT_A_HOST('https://a.com') },
    { name: 'numeric last label that is no IPv4', pattern: 'a.1', message: '"a.1" is not a valid host name' },
    // empty labels
    { name: 'leading dot', pattern: '.example.com', message: '".example.com" has an empty label; use "example.com", or "*.example.com" for one label under it' },
    { name: 'empty middle label', pattern: 'example..com', message: '"example..com" has an empty label; use "example.com"' },
    { name: 'empty label under a wildcard', pattern: '*..example.com', message: '"*..example.com" has an empty label; use "*.example.com"' },
    // a wildcard over an IP address
    { name: 'wildcard over an IPv4 address', pattern: '*.1.2.3.4', message: WILDCARD_IP('*.1.2.3.4') },
    { name: 'wildcard over a short IPv4 form (no canonical proposal)', pattern: '*.1.2.3', message: WILDCARD_IP('*.1.2.3') },
    { name: 'wildcard over a one-number IPv4 form', pattern: '*.1', message: WILDCARD_IP('*.1') },
    { name: 'wildcard over an IPv6 literal', pattern: '*.[::1]', message: WILDCARD_IP('*.[::1]') },
    { name: 'two wildcards over a public suffix: no "*.com" proposed', pattern: '*.*.com', message: LIST_HOSTS('*.*.com') },
    { name: 'partial-label wildcard over a public suffix', pattern: '*co.uk', message: LIST_HOSTS('*co.uk') },
    { name: 'leading dot on a public suffix: no "*.com" proposed', pattern: '.com', message: '".com" has an empty label; use "com"' },
    // not a string
    { name: 'empty string', pattern: '', message: NON_EMPTY },
    { name: 'undefined', pattern: undefined, message: NON_EMPTY },
    { name: 'null', pattern: null, message: NON_EMPTY },
    { name: 'number', pattern: 42, message: NON_EMPTY },
    { name: 'array of hosts', pattern: ['a.com'], message: NON_EMPTY },
    { name: 'object', pattern: { host: 'a.com' }, message: NON_EMPTY },
  ])('$name', ({ pattern, message }) => {
    expect(compileError(pattern)).toBe(message)
  })

  // A wildcard directly over a public suffix, ICANN or private section: [pattern, suffix named, section].
  test.each([
    ['*.com', 'com', 'ICANN'],
    ['*.uk', 'uk', 'ICANN'],
    ['*.co.uk', 'co.uk', 'ICANN'],
    ['*.github.io', 'github.io', 'private'],
    ['*.s3.amazonaws.com', 's3.amazonaws.com', 'private'],
    // a suffix the list's own wildcard makes (rule `*.ck`)
    ['*.foo.ck', 'foo.ck', 'ICANN'],
    ['*.xn--p1ai', 'xn--p1ai', 'ICANN'],
    // Unicode is told the punycode suffix; upper case, a trailing dot or an empty label are told about the suffix, not the spelling
    ['*.рф', 'xn--p1ai', 'ICANN'],
    ['*.in-addr.arpa', 'in-addr.arpa', 'ICANN'],
    ['*.COM', 'com', 'ICANN'],
    ['*.co.uk.', 'co.uk', 'ICANN'],
    ['*..com', 'com', 'ICANN'],
  ] as const)('%s is a wildcard over the public suffix %s (%s section)', (pattern, suffix, section) => {
    expect(compileError(pattern)).toBe(PUBLIC(pattern, suffix, section))
  })

  test('every proposed canonical spelling compiles (the fix is never itself refused)', () => {
    const proposals = ['API.Example.com', '*.EXAMPLE.com', 'example.com.', 'bücher.example', '*.bücher.example', '127.1', '[0:0:0:0:0:0:0:1]', '*foo.com', '*.*.example.com', '.example.com', 'example..com', '*..example.com', '*.com', '*.co.uk', '*.github.io', '*.COM', '*..com', '.com', '*foo.co.uk']
      .map((p) => compileError(p).match(/(?:use|as in) "([^"]+)"/)?.[1] ?? `no proposal for ${p}`)
    expect(proposals.map(compileError)).toEqual(proposals.map(() => 'compiled'))
  })
})
