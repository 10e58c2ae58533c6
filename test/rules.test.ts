// Origin rules: compileRules validates every rule up front (naming it and proposing the fix), matchOrigin picks the first rule that allows host + scheme + port.
import { describe, expect, test } from 'vitest'
import { compileCapabilities } from '../src/gate/capabilities.js'
import { compileRules, matchOrigin, type Rule } from '../src/gate/rules.js'
import { createSafeFetch } from '../src/index.js'

type Scheme = 'http' | 'https'
type Expected = { matched: true; id: string; decider: string } | { matched: false; reason: string; detail: string }

function outcome(rules: unknown, scheme: Scheme, host: string, port: number): Expected {
  const result = matchOrigin(compileRules(rules as Rule[]), { scheme, host, port })
  return result.matched
    ? { matched: true, id: result.rule.id, decider: result.rule.decider }
    : { matched: false, reason: result.reason, detail: result.detail }
}

/** The TypeError compileRules throws, as `TypeError: message`, or 'compiled'. */
function compileError(rules: unknown): string {
  try {
    compileRules(rules as Rule[])
    return 'compiled'
  } catch (error) {
    return error instanceof Error ? `${error.constructor.name}: ${error.message}` : `non-Error thrown: ${String(error)}`
  }
}

const API = 'api.example.com'
const PUBLIC = (p: string, suffix: string, section: 'ICANN' | 'private') =>
  `"${p}" would allow every site under "${suffix}", a public suffix (${section} section of the Public Suffix List); list the hosts, or put the wildcard under one registered domain, as in "*.example.${suffix}"`
const allowed = (id: string): Expected => ({ matched: true, id, decider: `rule:${id}` })
const refused = (reason: string, detail: string): Expected => ({ matched: false, reason, detail })

describe('matchOrigin', () => {
  test.each([
    // httpsOnly defaults to true
    { name: 'default: https on 443 allowed', rules: [{ host: API }], scheme: 'https', port: 443, host: API, expected: allowed(API) },
    { name: 'default: http on 80 refused, reason says https', rules: [{ host: API }], scheme: 'http', port: 80, host: API, expected: refused('scheme not allowed', `rule ${API} allows ${API} over https only`) },
    { name: 'default: http on 443 refused, reason says https', rules: [{ host: API }], scheme: 'http', port: 443, host: API, expected: refused('scheme not allowed', `rule ${API} allows ${API} over https only`) },
    { name: 'explicit httpsOnly: true: http refused', rules: [{ host: API, httpsOnly: true }], scheme: 'http', port: 80, host: API, expected: refused('scheme not allowed', `rule ${API} allows ${API} over https only`) },
    { name: 'explicit httpsOnly: true: https allowed', rules: [{ host: API, httpsOnly: true }], scheme: 'https', port: 443, host: API, expected: allowed(API) },
    // default ports and their boundaries
    { name: 'default port: https on 80 refused', rules: [{ host: API }], scheme: 'https', port: 80, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, not 80`) },
    { name: 'default port: https on 444 refused', rules: [{ host: API }], scheme: 'https', port: 444, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, not 444`) },
    { name: 'default port: https on 442 refused', rules: [{ host: API }], scheme: 'https', port: 442, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, not 442`) },
    { name: 'default port: https on 8443 refused', rules: [{ host: API }], scheme: 'https', port: 8443, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, not 8443`) },
    // httpsOnly: false
    { name: 'httpsOnly false: http on 80 allowed', rules: { host: API, httpsOnly: false }, scheme: 'http', port: 80, host: API, expected: allowed(API) },
    { name: 'httpsOnly false: https on 443 allowed', rules: { host: API, httpsOnly: false }, scheme: 'https', port: 443, host: API, expected: allowed(API) },
    { name: 'httpsOnly false: http on 443 refused (not listed)', rules: { host: API, httpsOnly: false }, scheme: 'http', port: 443, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 80, not 443`) },
    { name: 'httpsOnly false: https on 80 refused', rules: { host: API, httpsOnly: false }, scheme: 'https', port: 80, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, not 80`) },
    { name: 'httpsOnly false: http on 81 refused', rules: { host: API, httpsOnly: false }, scheme: 'http', port: 81, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 80, not 81`) },
    { name: 'httpsOnly false, port [80, 443]: http on 443 allowed (listed)', rules: { host: API, httpsOnly: false, port: [80, 443] }, scheme: 'http', port: 443, host: API, expected: allowed(API) },
    { name: 'httpsOnly false, port [80, 443]: https on 80 allowed (listed)', rules: { host: API, httpsOnly: false, port: [80, 443] }, scheme: 'https', port: 80, host: API, expected: allowed(API) },
    // explicit ports
    { name: 'port 8443: https on 8443 allowed', rules: [{ host: API, port: 8443 }], scheme: 'https', port: 8443, host: API, expected: allowed(API) },
    { name: 'port 8443: https on 443 refused (explicit list replaces the default)', rules: [{ host: API, port: 8443 }], scheme: 'https', port: 443, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 8443, not 443`) },
    { name: 'port 8443: http on 8443 refused (https only)', rules: [{ host: API, port: 8443 }], scheme: 'http', port: 8443, host: API, expected: refused('scheme not allowed', `rule ${API} allows ${API} over https only`) },
    { name: 'port [443, 8443]: 443 allowed', rules: [{ host: API, port: [443, 8443] }], scheme: 'https', port: 443, host: API, expected: allowed(API) },
    { name: 'port [443, 8443]: 8443 allowed', rules: [{ host: API, port: [443, 8443] }], scheme: 'https', port: 8443, host: API, expected: allowed(API) },
    { name: 'port [443, 8443]: 8444 refused, reason lists both', rules: [{ host: API, port: [443, 8443] }], scheme: 'https', port: 8444, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 443, 8443, not 8444`) },
    { name: 'port boundary: 1 allowed', rules: [{ host: API, port: 1 }], scheme: 'https', port: 1, host: API, expected: allowed(API) },
    { name: 'port boundary: 65535 allowed', rules: [{ host: API, port: 65535 }], scheme: 'https', port: 65535, host: API, expected: allowed(API) },
    { name: 'httpsOnly false, port 8080: http on 80 refused', rules: [{ host: API, httpsOnly: false, port: 8080 }], scheme: 'http', port: 80, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 8080, not 80`) },
    // hosts
    { name: 'no rule for the host', rules: [{ host: API }], scheme: 'https', port: 443, host: 'other.example.com', expected: refused('no rule matches the host', 'no rule allows host other.example.com') },
    { name: 'no rules at all', rules: [], scheme: 'https', port: 443, host: API, expected: refused('no rule matches the host', `no rule allows host ${API}`) },
    { name: 'wildcard rule: one label', rules: [{ host: '*.example.com' }], scheme: 'https', port: 443, host: API, expected: allowed('*.example.com') },
    { name: 'wildcard rule: apex refused', rules: [{ host: '*.example.com' }], scheme: 'https', port: 443, host: 'example.com', expected: refused('no rule matches the host', 'no rule allows host example.com') },
    { name: 'wildcard rule: two labels refused', rules: [{ host: '*.example.com' }], scheme: 'https', port: 443, host: 'a.b.example.com', expected: refused('no rule matches the host', 'no rule allows host a.b.example.com') },
    { name: 'IPv4 literal rule over http', rules: [{ host: '127.0.0.1', httpsOnly: false, port: 8080 }], scheme: 'http', port: 8080, host: '127.0.0.1', expected: allowed('127.0.0.1') },
    { name: 'IPv6 literal rule', rules: [{ host: '[::1]' }], scheme: 'https', port: 443, host: '[::1]', expected: allowed('[::1]') },
    // first matching rule wins
    { name: 'first match: wildcard before exact', rules: [{ host: '*.example.com' }, { host: API }], scheme: 'https', port: 443, host: API, expected: allowed('*.example.com') },
    { name: 'first match: exact before wildcard', rules: [{ host: API }, { host: '*.example.com' }], scheme: 'https', port: 443, host: API, expected: allowed(API) },
    { name: 'first match: a later rule for another host', rules: [{ host: 'a.example.org' }, { host: API }], scheme: 'https', port: 443, host: API, expected: allowed(API) },
    { name: 'first match: host matches rule 0 but port only rule 1', rules: [{ host: API, port: 8443 }, { host: '*.example.com' }], scheme: 'https', port: 443, host: API, expected: allowed('*.example.com') },
    { name: 'first match: rule 0 on its own port', rules: [{ host: API, port: 8443 }, { host: '*.example.com' }], scheme: 'https', port: 8443, host: API, expected: allowed(API) },
    { name: 'first match: scheme only in rule 1', rules: [{ host: API }, { host: API, httpsOnly: false }], scheme: 'http', port: 80, host: API, expected: allowed(`${API}#2`) },
    { name: 'no match: reason names the first rule for the host', rules: [{ host: 'a.example.org' }, { host: API, port: 8443 }, { host: API, port: 9443 }], scheme: 'https', port: 443, host: API, expected: refused('port not allowed', `rule ${API} allows ${API} on port 8443, not 443`) },
  ] satisfies { name: string; rules: unknown; scheme: Scheme; port: number; host: string; expected: Expected }[])(
    '$name',
    ({ rules, scheme, host, port, expected }) => {
      expect(outcome(rules, scheme, host, port)).toEqual(expected)
    },
  )
})

describe('compileRules: accepted shapes', () => {
  test.each([
    { name: 'undefined: no rules', rules: undefined, compiled: [] },
    { name: 'empty array: no rules', rules: [], compiled: [] },
    { name: 'single rule object (not an array)', rules: { host: API }, compiled: [{ id: API, decider: `rule:${API}`, schemes: ['https'], ports: undefined }] },
    { name: 'httpsOnly false: both schemes', rules: [{ host: API, httpsOnly: false }], compiled: [{ id: API, decider: `rule:${API}`, schemes: ['http', 'https'], ports: undefined }] },
    { name: 'single port becomes a list', rules: [{ host: API, port: 8443 }], compiled: [{ id: API, decider: `rule:${API}`, schemes: ['https'], ports: [8443] }] },
    { name: 'port list kept', rules: [{ host: API, port: [443, 8443] }], compiled: [{ id: API, decider: `rule:${API}`, schemes: ['https'], ports: [443, 8443] }] },
    { name: 'ids default to the host pattern', rules: [{ host: 'a.example.org' }, { host: '*.example.com' }], compiled: [
      { id: 'a.example.org', decider: 'rule:a.example.org', schemes: ['https'], ports: undefined },
      { id: '*.example.com', decider: 'rule:*.example.com', schemes: ['https'], ports: undefined },
    ] },
    { name: 'a repeated host pattern is numbered from #2', rules: [{ host: API }, { host: 'a.example.org' }, { host: API, port: 8443 }, { host: API, port: 9443 }], compiled: [
      { id: API, decider: `rule:${API}`, schemes: ['https'], ports: undefined },
      { id: 'a.example.org', decider: 'rule:a.example.org', schemes: ['https'], ports: undefined },
      { id: `${API}#2`, decider: `rule:${API}#2`, schemes: ['https'], ports: [8443] },
      { id: `${API}#3`, decider: `rule:${API}#3`, schemes: ['https'], ports: [9443] },
    ] },
    { name: 'an explicit id names the rule', rules: [{ id: 'payments', host: API }, { host: API, port: 8443 }], compiled: [
      { id: 'payments', decider: 'rule:payments', schemes: ['https'], ports: undefined },
      { id: API, decider: `rule:${API}`, schemes: ['https'], ports: [8443] },
    ] },
    { name: 'a default id never takes one a later rule asked for', rules: [{ host: API }, { id: API, host: 'a.example.org' }], compiled: [
      { id: `${API}#2`, decider: `rule:${API}#2`, schemes: ['https'], ports: undefined },
      { id: API, decider: `rule:${API}`, schemes: ['https'], ports: undefined },
    ] },
    { name: 'routes explicitly undefined is no route', rules: [{ host: API, routes: undefined }], compiled: [{ id: API, decider: `rule:${API}`, schemes: ['https'], ports: undefined }] },
  ])('$name', ({ rules, compiled }) => {
    const result = compileRules(rules as Rule[]).map((r) => ({
      id: r.id,
      decider: r.decider,
      schemes: [...r.schemes].sort(),
      ports: r.ports ? [...r.ports] : undefined,
    }))
    expect(result).toEqual(compiled)
  })
})

describe('compileRules: invalid rules throw a TypeError naming rules[N] and proposing the fix', () => {
  const R0 = `TypeError: rules[0] (host "${API}"): `
  const PORT = (shown: string) => `${R0}port ${shown} is not a port; use a whole number from 1 to 65535`
  const NOT_OBJECT = 'a rule must be an object such as { host: "api.example.com" }'

  test.each([
    { name: 'port 0', rules: [{ host: API, port: 0 }], message: PORT('0') },
    { name: 'port 65536', rules: [{ host: API, port: 65536 }], message: PORT('65536') },
    { name: 'port -1', rules: [{ host: API, port: -1 }], message: PORT('-1') },
    { name: 'port 1.5', rules: [{ host: API, port: 1.5 }], message: PORT('1.5') },
    { name: 'port NaN is shown as NaN', rules: [{ host: API, port: Number.NaN }], message: PORT('NaN') },
    { name: 'port Infinity', rules: [{ host: API, port: Number.POSITIVE_INFINITY }], message: PORT('Infinity') },
    { name: "port '443' (string)", rules: [{ host: API, port: '443' }], message: PORT('"443"') },
    { name: 'port null', rules: [{ host: API, port: null }], message: PORT('null') },
    { name: 'one bad port in a list', rules: [{ host: API, port: [443, 0] }], message: PORT('0') },
    { name: 'string port in a list', rules: [{ host: API, port: [443, '8443'] }], message: PORT('"8443"') },
    { name: 'empty port list', rules: [{ host: API, port: [] }], message: `${R0}port is an empty list; omit it for the default port or list the ports` },
    { name: 'unknown field', rules: [{ host: API, ports: 443 }], message: `${R0}unknown field "ports"; a rule has id, host, httpsOnly, port, routes, middleware` },
    { name: 'unknown field (methods)', rules: [{ host: API, methods: ['GET'] }], message: `${R0}unknown field "methods"; a rule has id, host, httpsOnly, port, routes, middleware` },
    { name: 'routes not a list', rules: [{ host: API, routes: { path: '/' } }], message: `${R0}routes must be a list, such as [{ path: "/v1/**" }]; [] denies every path` },
    { name: 'middleware not a function', rules: [{ host: API, middleware: 'auth' }], message: `${R0}middleware: middleware must be a function (ctx, next) => ...` },
    { name: 'middleware list with a non-function', rules: [{ host: API, middleware: [async () => undefined, 5] }], message: `${R0}middleware[1]: middleware must be a function (ctx, next) => ...` },
    { name: 'httpsOnly as a string', rules: [{ host: API, httpsOnly: 'false' }], message: `${R0}httpsOnly must be true or false` },
    { name: 'httpsOnly as a number', rules: [{ host: API, httpsOnly: 0 }], message: `${R0}httpsOnly must be true or false` },
    { name: 'rule is a string', rules: [API], message: `TypeError: rules[0]: ${NOT_OBJECT}` },
    { name: 'rule is null', rules: [null], message: `TypeError: rules[0]: ${NOT_OBJECT}` },
    { name: 'rule is a number', rules: [443], message: `TypeError: rules[0]: ${NOT_OBJECT}` },
    { name: 'single rule is null', rules: null, message: `TypeError: rules[0]: ${NOT_OBJECT}` },
    { name: 'bad rule at index 2 is named rules[2]', rules: [{ host: 'a.example.org' }, { host: API }, null], message: `TypeError: rules[2]: ${NOT_OBJECT}` },
    { name: 'missing host', rules: [{}], message: 'TypeError: rules[0]: host must be a non-empty string' },
    { name: 'host not a string', rules: [{ host: 42 }], message: 'TypeError: rules[0]: host must be a non-empty string' },
    { name: 'bad host at index 1 proposes the canonical host', rules: [{ host: API }, { host: 'API.Example.com' }], message: 'TypeError: rules[1] (host "API.Example.com"): write the host in canonical form: use "api.example.com"' },
    { name: 'bare * host', rules: [{ host: '*' }], message: 'TypeError: rules[0] (host "*"): a bare "*" would allow every host; list the hosts, or use "*.example.com" for one label under a domain' },
    { name: 'host with port', rules: [{ host: 'a.com:443' }], message: 'TypeError: rules[0] (host "a.com:443"): "a.com:443" is not a host; give the host name only and put ports in "port"' },
    { name: 'wildcard over a TLD', rules: [{ host: '*.com' }], message: `TypeError: rules[0] (host "*.com"): ${PUBLIC('*.com', 'com', 'ICANN')}` },
    { name: 'wildcard over a second-level suffix at index 1', rules: [{ host: API }, { host: '*.co.uk' }], message: `TypeError: rules[1] (host "*.co.uk"): ${PUBLIC('*.co.uk', 'co.uk', 'ICANN')}` },
    { name: 'wildcard over a private-section suffix', rules: [{ host: '*.github.io', routes: [{ path: '/**' }] }], message: `TypeError: rules[0] (host "*.github.io"): ${PUBLIC('*.github.io', 'github.io', 'private')}` },
    { name: 'id not a string', rules: [{ host: API, id: 7 }], message: `${R0}id must be 1 to 128 letters, digits or ._:*@/#- characters` },
    { name: 'empty id', rules: [{ host: API, id: '' }], message: `${R0}id must be 1 to 128 letters, digits or ._:*@/#- characters` },
    { name: 'id with a space', rules: [{ host: API, id: 'my rule' }], message: `${R0}id must be 1 to 128 letters, digits or ._:*@/#- characters` },
    { name: 'id of 129 characters', rules: [{ host: API, id: 'a'.repeat(129) }], message: `${R0}id must be 1 to 128 letters, digits or ._:*@/#- characters` },
    { name: 'id of 128 characters compiles (boundary)', rules: [{ host: API, id: 'a'.repeat(128) }], message: 'compiled' },
    { name: 'the same id on two rules', rules: [{ host: API, id: 'api' }, { host: 'a.example.org', id: 'api' }], message: 'TypeError: rules[1]: id "api" is used by another rule; give each rule its own id' },
    { name: 'wildcard one label under a public suffix compiles (boundary)', rules: [{ host: '*.example.co.uk' }, { host: '*.example.github.io' }], message: 'compiled' },
  ])('$name', ({ rules, message }) => {
    expect(compileError(rules)).toBe(message)
  })
})

describe('a wildcard over a public suffix is refused wherever a host pattern is written', () => {
  test('createSafeFetch throws the TypeError that names the rule', () => {
    expect(() => createSafeFetch({ rules: [{ host: API }, { host: '*.github.io' }] })).toThrow(
      new TypeError(`rules[1] (host "*.github.io"): ${PUBLIC('*.github.io', 'github.io', 'private')}`),
    )
  })

  test.each([
    { entry: '*.com', message: `capabilities.http[0]: ${PUBLIC('*.com', 'com', 'ICANN')}` },
    { entry: 'https://*.co.uk', message: `capabilities.http[0]: ${PUBLIC('*.co.uk', 'co.uk', 'ICANN')}` },
    { entry: 'http://*.github.io:8080', message: `capabilities.http[0]: ${PUBLIC('*.github.io', 'github.io', 'private')}` },
  ])('manifest capability $entry', ({ entry, message }) => {
    expect(() => compileCapabilities([entry])).toThrow(new TypeError(message))
  })

  test('a manifest capability one label under a public suffix compiles (boundary)', () => {
    const capabilities = compileCapabilities(['https://*.example.co.uk'])
    expect(capabilities.undeclared({ host: 'a.example.co.uk', scheme: 'https', port: 443 })).toBeUndefined()
    expect(capabilities.undeclared({ host: 'a.b.example.co.uk', scheme: 'https', port: 443 })).toBe(
      "the capsule's manifest does not declare https://a.b.example.co.uk:443",
    )
  })
})
