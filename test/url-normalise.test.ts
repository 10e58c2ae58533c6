// Table-driven tests for URL normalisation and refusal: normaliseUrl, resolveLocation, checkRawReference.
import { describe, expect, test } from 'vitest'
import { isCapsuleHostError, type CapsuleHostError } from '../src/errors.js'
import { checkRawReference, normaliseUrl, resolveLocation, type NormalisedUrl } from '../src/url/normalise.js'

/** One accepted input and every field it must normalise to. */
interface Accepted {
  name: string
  url: string
  href: string
  hostname: string
  host: string
  port: number
  path: string
  ipLiteral: string | undefined
}

/** One refused input; `why` is a fragment of the message, so a row fails if it is refused for another reason. */
interface Refused {
  name: string
  url: string
  why: string
}

/** Runs `fn`, which must throw a CapsuleHostError; returns it. Anything else fails the test. */
function refusal(fn: () => unknown): CapsuleHostError {
  let result: unknown
  try {
    result = fn()
  } catch (error) {
    if (isCapsuleHostError(error)) return error
    throw error
  }
  throw new Error(`expected a refusal, got ${JSON.stringify(result)}`)
}

/** Asserts every field of a normalised URL, plus the invariants that tie them together. */
function expectNormalised(actual: NormalisedUrl, row: Omit<Accepted, 'name' | 'url'>): void {
  const protocol = row.href.startsWith('https:') ? 'https:' : 'http:'
  expect(actual).toEqual({
    href: row.href,
    protocol,
    hostname: row.hostname,
    host: row.host,
    port: row.port,
    path: row.path,
    origin: `${protocol}//${row.host}`,
    ipLiteral: row.ipLiteral,
  })
  expect(actual.href).toBe(actual.origin + actual.path)
  // The normalised form is a fixed point: sending it through again changes nothing.
  expect(normaliseUrl(actual.href)).toEqual(actual)
}

/** Shorthand for a plain `http://h` row (default port, not an IP literal). */
function plain(name: string, url: string, path: string, hostname = 'h'): Accepted {
  return { name, url, href: `http://${hostname}${path}`, hostname, host: hostname, port: 80, path, ipLiteral: undefined }
}

/** Shorthand for an IPv4-literal row: `url` must normalise to `http://<quad>/`. */
function ipv4(name: string, url: string, quad: string): Accepted {
  return { name, url, href: `http://${quad}/`, hostname: quad, host: quad, port: 80, path: '/', ipLiteral: quad }
}

const accepted: Accepted[] = [
  // schemes, case, host spelling
  plain('http, lower case', 'http://example.com/', '/', 'example.com'),
  {
    name: 'https, lower case',
    url: 'https://example.com/',
    href: 'https://example.com/',
    hostname: 'example.com',
    host: 'example.com',
    port: 443,
    path: '/',
    ipLiteral: undefined,
  },
  plain('scheme in upper case', 'HTTP://example.com/', '/', 'example.com'),
  {
    name: 'scheme in mixed case, host in upper case, path case kept',
    url: 'hTTpS://Example.COM/Path/To',
    href: 'https://example.com/Path/To',
    hostname: 'example.com',
    host: 'example.com',
    port: 443,
    path: '/Path/To',
    ipLiteral: undefined,
  },
  plain('no path becomes /', 'http://h', '/'),
  plain('trailing dot removed', 'http://example.com./a', '/a', 'example.com'),
  plain('trailing dot removed, upper case host', 'http://EXAMPLE.com./', '/', 'example.com'),
  plain('single-label host', 'http://localhost/', '/', 'localhost'),
  plain('IDN to punycode', 'http://bücher.example/', '/', 'xn--bcher-kva.example'),
  plain('IDN in upper case with trailing dot', 'http://BÜCHER.example./', '/', 'xn--bcher-kva.example'),
  plain('punycode kept as is', 'http://xn--bcher-kva.example/', '/', 'xn--bcher-kva.example'),
  plain('full-width letters and ideographic full stop mapped', 'http://ｅｘａｍｐｌｅ。com/', '/', 'example.com'),
  plain('percent-encoded host decoded', 'http://ex%41mple.com/', '/', 'example.com'),

  // every IPv4 spelling the WHATWG parser accepts ends as a dotted quad
  ipv4('IPv4 dotted quad', 'http://127.0.0.1/', '127.0.0.1'),
  ipv4('IPv4 decimal', 'http://2130706433/', '127.0.0.1'),
  ipv4('IPv4 octal first part', 'http://0177.0.0.1/', '127.0.0.1'),
  ipv4('IPv4 octal every part', 'http://0177.00.00.01/', '127.0.0.1'),
  ipv4('IPv4 hex first part', 'http://0x7f.0.0.1/', '127.0.0.1'),
  ipv4('IPv4 hex upper case', 'http://0X7F.0.0.1/', '127.0.0.1'),
  ipv4('IPv4 short form a.b', 'http://127.1/', '127.0.0.1'),
  ipv4('IPv4 short form a.b.c', 'http://127.0.1/', '127.0.0.1'),
  ipv4('IPv4 short form 1.2.3 spreads the last part', 'http://1.2.3/', '1.2.0.3'),
  ipv4('IPv4 single hex number', 'http://0x7f000001/', '127.0.0.1'),
  ipv4('IPv4 single octal number', 'http://017700000001/', '127.0.0.1'),
  ipv4('IPv4 mixed hex, octal, decimal', 'http://0x7f.0.00.1/', '127.0.0.1'),
  ipv4('IPv4 mixed hex and octal short form', 'http://0x7f.01/', '127.0.0.1'),
  ipv4('IPv4 hex short form for 10/8', 'http://0xa.1/', '10.0.0.1'),
  ipv4('IPv4 trailing dot', 'http://127.0.0.1./', '127.0.0.1'),
  ipv4('IPv4 hex with trailing dot', 'http://0x7f.0.0.1./', '127.0.0.1'),
  ipv4('IPv4 percent-encoded digits', 'http://%31%32%37.0.0.1/', '127.0.0.1'),
  ipv4('IPv4 zero', 'http://0/', '0.0.0.0'),
  ipv4('IPv4 bare 0x is zero', 'http://0x/', '0.0.0.0'),
  ipv4('IPv4 largest decimal (boundary)', 'http://4294967295/', '255.255.255.255'),
  ipv4('IPv4 largest hex (boundary)', 'http://0xffffffff/', '255.255.255.255'),
  ipv4('IPv4 public address', 'http://93.184.216.34/', '93.184.216.34'),
  {
    name: 'IPv4 with explicit port',
    url: 'http://2130706433:8080/x',
    href: 'http://127.0.0.1:8080/x',
    hostname: '127.0.0.1',
    host: '127.0.0.1:8080',
    port: 8080,
    path: '/x',
    ipLiteral: '127.0.0.1',
  },
  plain('name that ends in a letter is not an IPv4 literal', 'http://1.2.3.4.example/', '/', '1.2.3.4.example'),

  // IPv6 literals: hostname bracketed, ipLiteral not
  {
    name: 'IPv6 loopback',
    url: 'http://[::1]/',
    href: 'http://[::1]/',
    hostname: '[::1]',
    host: '[::1]',
    port: 80,
    path: '/',
    ipLiteral: '::1',
  },
  {
    name: 'IPv6 loopback spelled out in full',
    url: 'http://[0:0:0:0:0:0:0:1]/',
    href: 'http://[::1]/',
    hostname: '[::1]',
    host: '[::1]',
    port: 80,
    path: '/',
    ipLiteral: '::1',
  },
  {
    name: 'IPv6 mapped IPv4 rendered in hex',
    url: 'http://[::ffff:127.0.0.1]/',
    href: 'http://[::ffff:7f00:1]/',
    hostname: '[::ffff:7f00:1]',
    host: '[::ffff:7f00:1]',
    port: 80,
    path: '/',
    ipLiteral: '::ffff:7f00:1',
  },
  {
    name: 'IPv6 compatible IPv4 rendered in hex',
    url: 'http://[::127.0.0.1]/',
    href: 'http://[::7f00:1]/',
    hostname: '[::7f00:1]',
    host: '[::7f00:1]',
    port: 80,
    path: '/',
    ipLiteral: '::7f00:1',
  },
  {
    name: 'IPv6 NAT64 with embedded IPv4',
    url: 'http://[64:ff9b::1.2.3.4]/',
    href: 'http://[64:ff9b::102:304]/',
    hostname: '[64:ff9b::102:304]',
    host: '[64:ff9b::102:304]',
    port: 80,
    path: '/',
    ipLiteral: '64:ff9b::102:304',
  },
  {
    name: 'IPv6 upper case with explicit port',
    url: 'https://[2001:DB8::1]:8443/p',
    href: 'https://[2001:db8::1]:8443/p',
    hostname: '[2001:db8::1]',
    host: '[2001:db8::1]:8443',
    port: 8443,
    path: '/p',
    ipLiteral: '2001:db8::1',
  },
  {
    name: 'IPv6 default https port omitted',
    url: 'https://[::FFFF:7F00:1]:443/',
    href: 'https://[::ffff:7f00:1]/',
    hostname: '[::ffff:7f00:1]',
    host: '[::ffff:7f00:1]',
    port: 443,
    path: '/',
    ipLiteral: '::ffff:7f00:1',
  },

  // ports
  plain('http default port 80 omitted', 'http://h:80/', '/'),
  plain('http default port with leading zero omitted', 'http://h:080/', '/'),
  plain('empty port means the default', 'http://h:/', '/'),
  {
    name: 'https default port 443 omitted',
    url: 'https://h:443/',
    href: 'https://h/',
    hostname: 'h',
    host: 'h',
    port: 443,
    path: '/',
    ipLiteral: undefined,
  },
  {
    name: 'port 443 on http is not a default and is kept',
    url: 'http://h:443/',
    href: 'http://h:443/',
    hostname: 'h',
    host: 'h:443',
    port: 443,
    path: '/',
    ipLiteral: undefined,
  },
  {
    name: 'port 80 on https is not a default and is kept',
    url: 'https://h:80/',
    href: 'https://h:80/',
    hostname: 'h',
    host: 'h:80',
    port: 80,
    path: '/',
    ipLiteral: undefined,
  },
  {
    name: 'lowest port 1 (boundary)',
    url: 'http://h:1/',
    href: 'http://h:1/',
    hostname: 'h',
    host: 'h:1',
    port: 1,
    path: '/',
    ipLiteral: undefined,
  },
  {
    name: 'highest port 65535 (boundary)',
    url: 'https://h:65535/',
    href: 'https://h:65535/',
    hostname: 'h',
    host: 'h:65535',
    port: 65535,
    path: '/',
    ipLiteral: undefined,
  },
  {
    name: 'explicit port with trailing-dot host',
    url: 'http://Example.com.:8080/a',
    href: 'http://example.com:8080/a',
    hostname: 'example.com',
    host: 'example.com:8080',
    port: 8080,
    path: '/a',
    ipLiteral: undefined,
  },

  // path
  plain('dot-segments resolved', 'http://h/a/./b/../c', '/a/c'),
  plain('leading .. cannot climb above the root', 'http://h/../x', '/x'),
  plain('trailing .. leaves the directory', 'http://h/a/b/..', '/a/'),
  plain('trailing . keeps the directory', 'http://h/a/.', '/a/'),
  plain('.. back to the root', 'http://h/a/..', '/'),
  plain('%2e inside a longer segment is not a dot-segment (boundary)', 'http://h/a%2eb', '/a%2eb'),
  plain('%2e%2e inside a longer segment is not a dot-segment', 'http://h/x%2e%2e/y', '/x%2e%2e/y'),
  plain('three dots are a plain segment', 'http://h/.../a', '/.../a'),
  plain('%25 followed by no hex pair is a literal percent (boundary)', 'http://h/100%25', '/100%25'),
  plain('%25 followed by non-hex is a literal percent', 'http://h/100%25zz', '/100%25zz'),
  plain('ordinary escape kept as written', 'http://h/%41%7e', '/%41%7e'),
  plain('parser percent-encodes " < > ` { }', 'http://h/a"b<c>d`e{f}g', '/a%22b%3Cc%3Ed%60e%7Bf%7Dg'),
  plain('non-ASCII path encoded as UTF-8', 'http://h/é', '/%C3%A9'),
  // '^' is left out: newer WHATWG parsers (Node 26) percent-encode it in paths, older ones keep it.
  plain('| ; = and @ kept in the path', 'http://h/a|c;d=e@f', '/a|c;d=e@f'),
  plain('empty segments kept', 'http://h/a//b', '/a//b'),
  // path parameters: only a dot-segment before the first ';' is refused (boundaries)
  plain('parameters on an ordinary segment', 'http://h/a;b/c', '/a;b/c'),
  plain('parameters on the last segment', 'http://h/file;jsessionid=x', '/file;jsessionid=x'),
  plain('two dots then a letter before ; is not a dot-segment', 'http://h/..a;/x', '/..a;/x'),
  plain('three dots before ; is not a dot-segment', 'http://h/...;/x', '/...;/x'),
  plain('a dot after the letters before ;', 'http://h/a.;/x', '/a.;/x'),
  plain('empty part before ;', 'http://h/;/x', '/;/x'),
  plain('dots after the ; are parameters', 'http://h/a;../x', '/a;../x'),
  plain('encoded dot inside a longer part before ;', 'http://h/%2ea;/x', '/%2ea;/x'),
  plain('dot-segment with ; in the query is not checked', 'http://h/p?u=/..;/admin', '/p?u=/..;/admin'),
  plain('dots inside a longer name before ;', 'http://h/files/x..y;v=1', '/files/x..y;v=1'),
  plain('dots inside a longer name before %3b', 'http://h/files/x..y%3bv=1', '/files/x..y%3bv=1'),
  plain('encoded ; on an ordinary segment', 'http://h/a%3bb/c', '/a%3bb/c'),
  plain('encoded ; in upper case on an ordinary segment', 'http://h/a%3Bb', '/a%3Bb'),
  plain('two dots then a letter before %3b is not a dot-segment', 'http://h/..a%3b/x', '/..a%3b/x'),
  plain('three dots before %3B is not a dot-segment', 'http://h/...%3B/x', '/...%3B/x'),
  plain('empty part before %3b', 'http://h/%3b/x', '/%3b/x'),
  plain('dots after an encoded ; are parameters', 'http://h/a%3b../x', '/a%3b../x'),
  plain('dot-segment with %3b in the query is not checked', 'http://h/p?u=/..%3b/admin', '/p?u=/..%3b/admin'),
  // Node 20.20's URL (ada 2.9.2, ada-url/ada#935) leaves these unresolved; normaliseUrl resolves them
  plain('.. after a segment that starts with a dot', 'http://h/public/.well-known/../../admin', '/admin'),
  plain('.. after a dot-file segment, one level', 'http://h/a/.x/../b', '/a/b'),
  plain('. after a segment that starts with a dot', 'http://h/a/.x/./b', '/a/.x/b'),
  plain('trailing .. after a dot-file segment', 'http://h/a/.x/..', '/a/'),
  plain('trailing . after a dot-file segment', 'http://h/a/.x/.', '/a/.x/'),
  plain('.. after a dot-file segment cannot climb above the root', 'http://h/.x/../../../b', '/b'),
  plain('a dot-file segment alone is kept', 'http://h/.well-known/acme', '/.well-known/acme'),

  // query and fragment
  plain('fragment dropped', 'http://h/a#frag', '/a'),
  plain('fragment dropped, query kept', 'http://h/a?q=1#frag', '/a?q=1'),
  plain('fragment with %2f is not checked and dropped', 'http://h/a#%2f', '/a'),
  plain('query kept byte for byte, %2F allowed', 'http://h/p?next=%2Fhome&x=%2f', '/p?next=%2Fhome&x=%2f'),
  plain('query may hold encoded dots and double encoding', 'http://h/p?a=%2e%2e&b=%252e', '/p?a=%2e%2e&b=%252e'),
  plain('query keeps a malformed escape as written', 'http://h/?c=%zz&d=%', '/?c=%zz&d=%'),
  plain('query keeps / and .. unresolved', 'http://h/p?u=/a/../b', '/p?u=/a/../b'),
  plain('parser percent-encodes a quote in a special-scheme query', "http://h/?a='b'", '/?a=%27b%27'),
  plain('empty query dropped', 'http://h/a?', '/a'),
]

/** The exact refusal of a dot-segment with path parameters (`..;`, `.%2e;x=1`). */
const PARAMETERS = 'a dot-segment with path parameters (such as "..;", "..%3B" or ".;x=1") in the path is not allowed: servers that strip parameters resolve it as a dot-segment'

const refused: Refused[] = [
  // schemes and shape
  { name: 'ftp scheme', url: 'ftp://h/file', why: 'scheme "ftp:" is not allowed' },
  { name: 'file scheme', url: 'file:///etc/passwd', why: 'scheme "file:" is not allowed' },
  { name: 'javascript scheme', url: 'javascript:alert(1)', why: 'scheme "javascript:" is not allowed' },
  { name: 'data scheme', url: 'data:text/plain,hi', why: 'scheme "data:" is not allowed' },
  { name: 'ws scheme', url: 'ws://h/socket', why: 'scheme "ws:" is not allowed' },
  { name: 'wss scheme', url: 'wss://h/socket', why: 'scheme "wss:" is not allowed' },
  { name: 'httpx is not http', url: 'httpx://h/', why: 'scheme "httpx:" is not allowed' },
  { name: 'missing // after scheme', url: 'http:example.com/', why: 'expected "//" after the scheme' },
  { name: 'single slash after scheme', url: 'https:/example.com/', why: 'expected "//" after the scheme' },
  { name: 'relative path', url: '/a/b', why: 'an absolute http(s) URL is required' },
  { name: 'network-path reference', url: '//h/a', why: 'an absolute http(s) URL is required' },
  { name: 'bare host name', url: 'example.com', why: 'an absolute http(s) URL is required' },
  { name: 'empty string', url: '', why: 'an absolute http(s) URL is required' },

  // userinfo
  { name: 'username', url: 'http://user@h/', why: 'credentials' },
  { name: 'username and password', url: 'https://user:pw@h/', why: 'credentials' },
  { name: 'bare @', url: 'http://@h/', why: 'credentials' },
  { name: 'empty username and password', url: 'http://:@h/', why: 'credentials' },
  { name: 'userinfo that looks like the host', url: 'http://trusted.test@evil.test/', why: 'credentials' },

  // path encodings
  { name: 'encoded slash lower case', url: 'http://h/a%2fb', why: 'encoded slash' },
  { name: 'encoded slash upper case', url: 'http://h/a%2Fb', why: 'encoded slash' },
  { name: 'encoded slash as a whole segment', url: 'http://h/%2F', why: 'encoded slash' },
  { name: 'encoded backslash lower case', url: 'http://h/a%5cb', why: 'encoded backslash' },
  { name: 'encoded backslash upper case', url: 'http://h/a%5Cb', why: 'encoded backslash' },
  { name: 'raw backslash in the path', url: 'http://h/a\\b', why: 'backslashes' },
  { name: 'raw backslash after the host', url: 'http://h\\evil.test/', why: 'backslashes' },
  { name: 'encoded single dot segment', url: 'http://h/a/%2e/b', why: 'encoded dot-segment' },
  { name: 'encoded double dot segment', url: 'http://h/a/%2e%2e/b', why: 'encoded dot-segment' },
  { name: 'encoded double dot segment, mixed case', url: 'http://h/a/%2E%2e/b', why: 'encoded dot-segment' },
  { name: 'half-encoded .%2e', url: 'http://h/a/.%2e/b', why: 'encoded dot-segment' },
  { name: 'half-encoded %2e.', url: 'http://h/a/%2e./b', why: 'encoded dot-segment' },
  { name: 'encoded dot segment at the end', url: 'http://h/a/%2E%2E', why: 'encoded dot-segment' },
  { name: 'encoded dot segment before the query', url: 'http://h/a/%2e%2e?x=1', why: 'encoded dot-segment' },
  { name: 'double-encoded dot', url: 'http://h/%252e%252e/x', why: 'double percent-encoding' },
  { name: '..; (Tomcat, Jetty, Spring read ..)', url: 'http://h/public/..;/admin', why: PARAMETERS },
  { name: '..; with parameters', url: 'http://h/public/..;jsessionid=x/admin', why: PARAMETERS },
  { name: '.;', url: 'http://h/public/.;/admin', why: PARAMETERS },
  { name: '.; with parameters', url: 'http://h/a/.;x=1/b', why: PARAMETERS },
  { name: '.%2e;', url: 'http://h/public/.%2e;/admin', why: PARAMETERS },
  { name: '%2e.;', url: 'http://h/public/%2e.;/admin', why: PARAMETERS },
  { name: '%2e%2e;', url: 'http://h/public/%2e%2e;/admin', why: PARAMETERS },
  { name: '%2E%2E; in upper case with parameters', url: 'http://h/public/%2E%2E;a=b;c=d/admin', why: PARAMETERS },
  { name: '%2e; single encoded dot', url: 'http://h/a/%2e;/b', why: PARAMETERS },
  { name: '..; as the last segment', url: 'http://h/public/..;', why: PARAMETERS },
  { name: '..; before the query', url: 'http://h/public/..;?x=1', why: PARAMETERS },
  { name: '..;; two semicolons', url: 'http://h/public/..;;/admin', why: PARAMETERS },
  { name: '..; as the first segment', url: 'http://h/..;/admin', why: PARAMETERS },
  { name: '.; then .. (here /public/admin, to Tomcat /admin)', url: 'http://h/public/.;/../admin', why: PARAMETERS },
  // the ; percent-encoded: a proxy or framework that decodes before stripping parameters reads ..;
  { name: '..%3b', url: 'http://h/public/..%3b/admin', why: PARAMETERS },
  { name: '..%3B in upper case', url: 'http://h/public/..%3B/admin', why: PARAMETERS },
  { name: '..%3b with parameters', url: 'http://h/public/..%3bjsessionid=1/admin', why: PARAMETERS },
  { name: '..%3B with parameters', url: 'http://h/public/..%3Bjsessionid=1/admin', why: PARAMETERS },
  { name: '.%2e%3b', url: 'http://h/public/.%2e%3b/admin', why: PARAMETERS },
  { name: '.%2E%3b', url: 'http://h/public/.%2E%3b/admin', why: PARAMETERS },
  { name: '%2e.%3b', url: 'http://h/public/%2e.%3b/admin', why: PARAMETERS },
  { name: '%2e%2e%3B', url: 'http://h/public/%2e%2e%3B/admin', why: PARAMETERS },
  { name: '%2E%2E%3B with parameters', url: 'http://h/public/%2E%2E%3Bjsessionid=1/admin', why: PARAMETERS },
  { name: '..%3b as the last segment', url: 'http://h/public/..%3b', why: PARAMETERS },
  { name: '..%3B with parameters as the last segment', url: 'http://h/public/..%3Bjsessionid=1', why: PARAMETERS },
  { name: '%2e%2e%3B/ before a trailing slash', url: 'http://h/public/%2e%2e%3B/', why: PARAMETERS },
  { name: '..%3b before the query', url: 'http://h/public/..%3b?x=1', why: PARAMETERS },
  { name: '..%3b as the first segment', url: 'http://h/..%3b/admin', why: PARAMETERS },
  { name: '..%3b then a literal ;', url: 'http://h/public/..%3b;x/admin', why: PARAMETERS },
  { name: '..; then an encoded ;', url: 'http://h/public/..;%3bx/admin', why: PARAMETERS },
  // single dot with an encoded ;
  { name: '.%3b', url: 'http://h/public/.%3b/admin', why: PARAMETERS },
  { name: '.%3B with parameters', url: 'http://h/a/.%3Bx=1/b', why: PARAMETERS },
  { name: '%2e%3b', url: 'http://h/a/%2e%3b/b', why: PARAMETERS },
  { name: '.%3b then ..', url: 'http://h/public/.%3b/../admin', why: PARAMETERS },
  { name: '.%3b as the last segment', url: 'http://h/public/.%3b', why: PARAMETERS },
  { name: 'double-encoded letter', url: 'http://h/%2541', why: 'double percent-encoding' },
  { name: 'double-encoded slash', url: 'http://h/a%252fb', why: 'double percent-encoding' },
  { name: 'encoded NUL', url: 'http://h/a%00b', why: 'encoded NUL' },
  { name: 'lone % at the end', url: 'http://h/a%', why: 'malformed percent-escape' },
  { name: 'percent with a non-hex digit', url: 'http://h/%g1', why: 'malformed percent-escape' },
  { name: 'percent with one hex digit', url: 'http://h/%2', why: 'malformed percent-escape' },
  { name: 'percent with one hex digit before the query', url: 'http://h/a%2?x', why: 'malformed percent-escape' },

  // control characters and spaces, anywhere
  { name: 'space in the path', url: 'http://h/a b', why: 'control characters or spaces' },
  { name: 'tab in the path', url: 'http://h/a\tb', why: 'control characters or spaces' },
  { name: 'newline in the path', url: 'http://h/a\nb', why: 'control characters or spaces' },
  { name: 'CR LF in the query', url: 'http://h/a?x=1\r\nHost: evil', why: 'control characters or spaces' },
  { name: 'NUL in the host', url: 'http://h\u0000.test/', why: 'control characters or spaces' },
  { name: 'tab in the host', url: 'http://ex\tample.com/', why: 'control characters or spaces' },
  { name: 'DEL in the path', url: 'http://h/a\u007fb', why: 'control characters or spaces' },
  { name: 'leading space', url: ' http://h/', why: 'an absolute http(s) URL is required' },
  { name: 'trailing space', url: 'http://h/ ', why: 'control characters or spaces' },
  { name: 'trailing newline', url: 'http://h/\n', why: 'control characters or spaces' },
  { name: 'unit separator 0x1f in the fragment', url: 'http://h/#a\u001fb', why: 'control characters or spaces' },

  // host and port
  { name: 'port 0', url: 'http://h:0/', why: 'port 0' },
  { name: 'port 0 with leading zero', url: 'http://h:00/', why: 'port 0' },
  { name: 'port 65536 (boundary)', url: 'http://h:65536/', why: 'not a valid URL' },
  { name: 'negative port', url: 'http://h:-1/', why: 'not a valid URL' },
  { name: 'non-numeric port', url: 'http://h:8o/', why: 'not a valid URL' },
  { name: 'IPv4 part over 255', url: 'http://256.0.0.1/', why: 'not a valid URL' },
  { name: 'IPv4 last part over 255', url: 'http://1.2.3.256/', why: 'not a valid URL' },
  { name: 'IPv4 decimal over 32 bits (boundary)', url: 'http://4294967296/', why: 'not a valid URL' },
  { name: 'IPv4 hex over 32 bits', url: 'http://0x100000000/', why: 'not a valid URL' },
  { name: 'IPv4 with five parts', url: 'http://1.2.3.4.5/', why: 'not a valid URL' },
  { name: 'IPv4 with a bad octal digit', url: 'http://09.0.0.1/', why: 'not a valid URL' },
  { name: 'name ending in a number that is not IPv4', url: 'http://example.1/', why: 'not a valid URL' },
  { name: 'empty host', url: 'http:///a', why: 'the host is empty' },
  { name: 'empty host, extra slashes', url: 'https:////evil.test/x', why: 'the host is empty' },
  { name: 'empty host with no path', url: 'http://', why: 'the host is empty' },
  { name: 'empty host before the query', url: 'http://?x=1', why: 'the host is empty' },
  { name: 'port without a host', url: 'http://:80/', why: 'not a valid URL' },
  { name: 'host is a single dot', url: 'http://./', why: 'the host is empty' },
  { name: 'empty label in the middle', url: 'http://a..b/', why: 'empty label' },
  { name: 'empty first label', url: 'http://.example.com/', why: 'empty label' },
  { name: 'host ending in two dots', url: 'http://example.com../', why: 'empty label' },
  { name: 'encoded slash in the host', url: 'http://a%2fb/', why: 'not a valid URL' },
  { name: 'IPv6 with a zone id', url: 'http://[fe80::1%25eth0]/', why: 'not a valid URL' },
  { name: 'IPv6 without the closing bracket', url: 'http://[::1/', why: 'not a valid URL' },
  { name: 'IPv6 with two ::', url: 'http://[1::2::3]/', why: 'not a valid URL' },
  { name: 'IPv6 without brackets', url: 'http://::1/', why: 'not a valid URL' },
]

describe('normaliseUrl accepts', () => {
  test.each(accepted)('$name: $url', ({ name: _name, url, ...expected }) => {
    expectNormalised(normaliseUrl(url), expected)
  })
})

describe('normaliseUrl refuses with invalid_request', () => {
  test('a dot-segment with path parameters, word for word', () => {
    const error = refusal(() => normaliseUrl('https://api.test/public/..;jsessionid=x/admin'))
    expect({ code: error.code, message: error.message }).toEqual({ code: 'invalid_request', message: `invalid url: ${PARAMETERS}` })
  })

  test.each(refused)('$name', ({ url, why }) => {
    expect(() => normaliseUrl(url)).toThrow(expect.objectContaining({ code: 'invalid_request' }))
    const error = refusal(() => normaliseUrl(url))
    expect(error.code).toBe('invalid_request')
    expect(error.message).toContain(why)
  })
})

const BASE = 'https://api.test/a/b?x=1'

const locations: Accepted[] = [
  {
    name: 'absolute path',
    url: '/next',
    href: 'https://api.test/next',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/next',
    ipLiteral: undefined,
  },
  {
    name: 'relative path replaces the last segment',
    url: 'next',
    href: 'https://api.test/a/next',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/a/next',
    ipLiteral: undefined,
  },
  {
    name: 'relative path climbs with ..',
    url: '../up',
    href: 'https://api.test/up',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/up',
    ipLiteral: undefined,
  },
  {
    name: 'relative path cannot climb above the root',
    url: '../../../../etc',
    href: 'https://api.test/etc',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/etc',
    ipLiteral: undefined,
  },
  {
    name: 'query only keeps the path',
    url: '?q=1',
    href: 'https://api.test/a/b?q=1',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/a/b?q=1',
    ipLiteral: undefined,
  },
  {
    name: 'fragment only keeps path and query',
    url: '#top',
    href: 'https://api.test/a/b?x=1',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/a/b?x=1',
    ipLiteral: undefined,
  },
  {
    name: 'network-path reference keeps the scheme',
    url: '//other.test/p',
    href: 'https://other.test/p',
    hostname: 'other.test',
    host: 'other.test',
    port: 443,
    path: '/p',
    ipLiteral: undefined,
  },
  {
    name: 'network-path reference to an IPv4 literal in hex',
    url: '//0x7f.1:8443/p',
    href: 'https://127.0.0.1:8443/p',
    hostname: '127.0.0.1',
    host: '127.0.0.1:8443',
    port: 8443,
    path: '/p',
    ipLiteral: '127.0.0.1',
  },
  {
    name: 'absolute URL to another scheme and host',
    url: 'http://Other.Test./x?y=%2F',
    href: 'http://other.test/x?y=%2F',
    hostname: 'other.test',
    host: 'other.test',
    port: 80,
    path: '/x?y=%2F',
    ipLiteral: undefined,
  },
  {
    name: 'absolute URL in upper case with an explicit port',
    url: 'HTTPS://API.TEST:8443/v2',
    href: 'https://api.test:8443/v2',
    hostname: 'api.test',
    host: 'api.test:8443',
    port: 8443,
    path: '/v2',
    ipLiteral: undefined,
  },
  {
    name: 'absolute URL to an IPv6 literal',
    url: 'http://[::1]:8080/',
    href: 'http://[::1]:8080/',
    hostname: '[::1]',
    host: '[::1]:8080',
    port: 8080,
    path: '/',
    ipLiteral: '::1',
  },
  {
    name: 'dot-segments in a relative location resolved',
    url: './c/./d/../e',
    href: 'https://api.test/a/c/e',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/a/c/e',
    ipLiteral: undefined,
  },
  {
    name: '%2e inside a longer segment of a relative location',
    url: 'v%2e2',
    href: 'https://api.test/a/v%2e2',
    hostname: 'api.test',
    host: 'api.test',
    port: 443,
    path: '/a/v%2e2',
    ipLiteral: undefined,
  },
]

const refusedLocations: Refused[] = [
  { name: 'encoded dot segment in a relative location', url: '%2e%2e/x', why: 'encoded dot-segment' },
  { name: 'encoded dot segment in an absolute path', url: '/a/%2E%2E/b', why: 'encoded dot-segment' },
  { name: 'encoded slash in a relative location', url: '/a%2fb', why: 'encoded slash' },
  { name: 'double encoding in a relative location', url: '/%252e', why: 'double percent-encoding' },
  { name: '..; in an absolute-path location', url: '/public/..;/admin', why: PARAMETERS },
  { name: '%2e%2e; in a relative location', url: '%2e%2e;x/admin', why: PARAMETERS },
  { name: '.; in an absolute location', url: 'https://api.test/a/.;/b', why: PARAMETERS },
  { name: '..%3b in an absolute-path location', url: '/public/..%3b/admin', why: PARAMETERS },
  { name: '%2e%2e%3B in a relative location', url: '%2e%2e%3Bjsessionid=1/admin', why: PARAMETERS },
  { name: '.%3b in an absolute location', url: 'https://api.test/a/.%3b/b', why: PARAMETERS },
  { name: 'ftp location', url: 'ftp://other.test/f', why: 'scheme "ftp:" is not allowed' },
  { name: 'javascript location', url: 'javascript:alert(1)', why: 'scheme "javascript:" is not allowed' },
  { name: 'userinfo in a network-path location', url: '//user@other.test/', why: 'credentials' },
  { name: 'userinfo in an absolute location', url: 'https://user:pw@other.test/', why: 'credentials' },
  { name: 'backslash location', url: '/\\evil.test/', why: 'backslashes' },
  { name: 'CR LF in a location', url: '/a\r\nSet-Cookie: x', why: 'control characters or spaces' },
  { name: 'empty host in a network-path location', url: '///evil.test/x', why: 'the host is empty' },
  { name: 'scheme without // (host guessed)', url: 'http:evil.test', why: 'expected "//" after the scheme' },
  { name: 'same scheme without // (path guessed)', url: 'https:foo', why: 'expected "//" after the scheme' },
  { name: 'scheme with one slash', url: 'http:/evil.test/p', why: 'expected "//" after the scheme' },
  { name: 'port 0 in an absolute location', url: 'http://other.test:0/', why: 'port 0' },
  { name: 'invalid IPv4 in a network-path location', url: '//256.0.0.1/', why: 'not a valid URL' },
]

describe('resolveLocation', () => {
  const base = normaliseUrl(BASE)

  test.each(locations)('resolves $name: $url', ({ name: _name, url, ...expected }) => {
    expectNormalised(resolveLocation(url, base), expected)
  })

  test.each(refusedLocations)('refuses $name', ({ url, why }) => {
    expect(() => resolveLocation(url, base)).toThrow(expect.objectContaining({ code: 'invalid_request' }))
    const error = refusal(() => resolveLocation(url, base))
    expect(error.code).toBe('invalid_request')
    expect(error.message).toContain(why)
  })

  test('keeps the base port for a relative location', () => {
    expectNormalised(resolveLocation('/n', normaliseUrl('http://api.test:8080/a')), {
      href: 'http://api.test:8080/n',
      hostname: 'api.test',
      host: 'api.test:8080',
      port: 8080,
      path: '/n',
      ipLiteral: undefined,
    })
  })
})

interface RawRow {
  name: string
  reference: string
}

const rawAllowed: RawRow[] = [
  { name: 'absolute URL', reference: 'https://h/a/b?c=%2F' },
  { name: 'absolute path', reference: '/a/b' },
  { name: 'relative path', reference: 'a/b' },
  { name: 'plain dot-segments', reference: '../a/./b' },
  { name: 'query only, with encoded slash', reference: '?next=%2Fhome' },
  { name: 'fragment with encodings', reference: '#%2e%2e%2f' },
  { name: 'network-path reference', reference: '//other.test/p' },
  { name: '@ in the path, not the authority', reference: 'http://h/a@b' },
  { name: '@ in the query, not the authority', reference: 'http://h/?u=a@b' },
  { name: '%2e inside a longer segment', reference: '/a%2eb/c' },
  { name: 'literal percent as %25', reference: '/100%25' },
  { name: 'parameters on an ordinary segment', reference: '/a;b/c' },
  { name: 'three dots then ;', reference: '/...;/c' },
  { name: '..; in the query only', reference: '/p?next=/..;/admin' },
  { name: 'encoded ; on an ordinary segment', reference: '/a%3Bb/c' },
  { name: 'dots inside a longer name before ;', reference: '/files/x..y;v=1' },
  { name: 'two dots then a letter before %3b', reference: '/..a%3b' },
  { name: '..%3b in the query only', reference: '/p?next=/..%3b/admin' },
  { name: 'empty reference', reference: '' },
]

const rawRefused: Array<RawRow & { why: string }> = [
  { name: 'encoded dot segment', reference: '/a/%2e/b', why: 'encoded dot-segment' },
  { name: 'half-encoded dot segment', reference: '.%2E', why: 'encoded dot-segment' },
  { name: 'dot-segment with parameters', reference: '..;x=1/admin', why: PARAMETERS },
  { name: 'encoded dot-segment with parameters, mixed case', reference: '/%2E%2e;/admin', why: PARAMETERS },
  { name: 'dot-segment with an encoded ;', reference: '..%3b/admin', why: PARAMETERS },
  { name: 'encoded dot-segment with an encoded ; and parameters', reference: '/.%2E%3bjsessionid=1', why: PARAMETERS },
  { name: 'single dot with an encoded ;', reference: './.%3B', why: PARAMETERS },
  { name: 'encoded slash', reference: 'a%2Fb', why: 'encoded slash' },
  { name: 'encoded backslash', reference: '/a%5cb', why: 'encoded backslash' },
  { name: 'double encoding', reference: '/%2541', why: 'double percent-encoding' },
  { name: 'encoded NUL', reference: '/%00', why: 'encoded NUL' },
  { name: 'malformed escape', reference: '/%g1', why: 'malformed percent-escape' },
  { name: 'userinfo in a network-path reference', reference: '//u:p@h/', why: 'credentials' },
  { name: 'empty authority', reference: '///h/', why: 'the host is empty' },
  { name: 'raw backslash', reference: '/a\\b', why: 'backslashes' },
  { name: 'space', reference: '/a b', why: 'control characters or spaces' },
  { name: 'DEL', reference: '/\u007f', why: 'control characters or spaces' },
]

describe('checkRawReference', () => {
  test.each(rawAllowed)('allows $name', ({ reference }) => {
    expect(checkRawReference(reference)).toBeUndefined()
  })

  test.each(rawRefused)('refuses $name', ({ reference, why }) => {
    const error = refusal(() => checkRawReference(reference))
    expect(error.code).toBe('invalid_request')
    expect(error.message).toContain(why)
  })
})
