// Route patterns: compiled once, matched on the path as sent (params decoded after), first match wins.
import { afterAll, describe, expect, test } from 'vitest'
import { compileRoute, type Route } from '../src/gate/routes.js'
import { compileRules, matchRequest, type Rule } from '../src/gate/rules.js'
import { closeAllFetches, ctx, errorOf, ok, tableResolver, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer } from './helpers/servers.js'

afterAll(async () => {
  await closeAllFetches()
  await closeAllServers()
})

// [pattern, path, params (or null for no match)]
const PATH_ROWS: Array<[string, string, Record<string, string> | null]> = [
  // literals
  ['/', '/', {}],
  ['/', '/a', null],
  ['/users', '/users', {}],
  ['/users', '/users/', null], // trailing slash is a different path
  ['/users/', '/users/', {}],
  ['/users/', '/users', null],
  ['/users', '/Users', null], // paths are case-sensitive
  ['/users', '/users/1', null],
  ['/users', '/userss', null],
  ['/a/b/c', '/a/b/c', {}],
  ['/a/b/c', '/a/b', null],
  ['/a/b/c', '/a//b/c', null], // empty segment
  ['/caf%C3%A9', '/caf%C3%A9', {}],
  ['/caf%C3%A9', '/caf%c3%a9', null], // the path as sent, byte for byte
  ['/v1.2/x', '/v1.2/x', {}],
  ['/a-b_c~d', '/a-b_c~d', {}],
  // params
  ['/users/:id', '/users/42', { id: '42' }],
  ['/users/:id', '/users/', null], // a param never matches an empty segment
  ['/users/:id', '/users', null],
  ['/users/:id', '/users/42/', null],
  ['/users/:id', '/users/42/posts', null],
  ['/users/:id', '/users/a%20b', { id: 'a b' }], // decoded after the match
  ['/users/:id', '/users/%C3%A9t%C3%A9', { id: 'été' }],
  ['/users/:id', '/users/%FF', null], // not UTF-8 once decoded: no match
  ['/users/:id', '/users/100%25', { id: '100%' }],
  ['/users/:id', '/users/a:b', { id: 'a:b' }],
  ['/users/:id', '/users/a@b', { id: 'a@b' }],
  ['/repos/:owner/:repo/issues/:n', '/repos/nodejs/node/issues/1', { owner: 'nodejs', repo: 'node', n: '1' }],
  ['/repos/:owner/:repo/issues/:n', '/repos/nodejs/node/issues', null],
  ['/repos/:owner/:repo/issues/:n', '/repos/nodejs//issues/1', null],
  ['/:a/:b', '/x/y', { a: 'x', b: 'y' }],
  ['/:a/:b', '/x', null],
  // constrained params
  ['/files/:ext(png|jpg)', '/files/png', { ext: 'png' }],
  ['/files/:ext(png|jpg)', '/files/jpg', { ext: 'jpg' }],
  ['/files/:ext(png|jpg)', '/files/gif', null],
  ['/files/:ext(png|jpg)', '/files/PNG', null],
  ['/files/:ext(png|jpg)', '/files/pngx', null],
  ['/files/:ext(png|jpg)', '/files/', null],
  ['/files/:ext(png|jpg)', '/files/p%6Eg', null], // compared as sent, not decoded
  ['/v/:n(1|2)/x', '/v/2/x', { n: '2' }],
  ['/v/:n(1|2)/x', '/v/3/x', null],
  // rest
  ['/api/**', '/api', {}], // zero segments
  ['/api/**', '/api/', {}],
  ['/api/**', '/api/a', {}],
  ['/api/**', '/api/a/b/c', {}],
  ['/api/**', '/api//a', {}],
  ['/api/**', '/apix', null],
  ['/api/**', '/ap', null],
  ['/api/**', '/', null],
  ['/**', '/', {}],
  ['/**', '/anything/at/all', {}],
  ['/users/:id/**', '/users/7', { id: '7' }],
  ['/users/:id/**', '/users/7/files/a', { id: '7' }],
  ['/users/:id/**', '/users//files', null],
]

describe('path patterns', () => {
  test.each(PATH_ROWS)('%s on %s', (pattern, path, params) => {
    expect(compileRoute({ path: pattern }).match(path) ?? null).toEqual(params)
  })
})

describe('invalid patterns are refused at creation with the fix', () => {
  test.each<[string, Route | unknown, string]>([
    ['no leading slash', { path: 'users' }, 'must start with "/"'],
    ['not a string', { path: 5 }, 'must start with "/"'],
    ['query', { path: '/a?b=1' }, 'must not contain a query or fragment'],
    ['fragment', { path: '/a#b' }, 'must not contain a query or fragment'],
    ['empty segment', { path: '/a//b' }, 'empty segment'],
    ['dot segment', { path: '/a/../b' }, 'resolved away'],
    ['rest not last', { path: '/a/**/b' }, '"**" may only be the last segment'],
    ['single star', { path: '/a/*' }, 'only allowed as a whole last segment'],
    ['star inside a segment', { path: '/a/b*' }, 'only allowed as a whole last segment'],
    ['bad param name', { path: '/a/:1x' }, 'is not a parameter'],
    ['empty param', { path: '/a/:' }, 'is not a parameter'],
    ['duplicate param', { path: '/:a/:a' }, 'appears twice'],
    ['empty alternative', { path: '/f/:e(png|)' }, 'alternatives are plain words'],
    ['alternative with a slash', { path: '/f/:e(a/b)' }, '":e(a" is not a parameter'],
    ['space (not as sent)', { path: '/a b' }, 'use "a%20b"'],
    ['unicode (not as sent)', { path: '/café' }, 'use "caf%C3%A9"'],
    ['encoded slash', { path: '/a%2Fb' }, 'no request path can contain'],
    ['malformed escape', { path: '/a%zz' }, 'no request path can contain'],
    ['unknown method', { path: '/a', methods: 'FETCH' }, 'unknown method "FETCH"'],
    ['TRACE is never allowed', { path: '/a', methods: ['GET', 'TRACE'] }, 'unknown method "TRACE"'],
    ['empty methods list', { path: '/a', methods: [] }, 'empty list'],
    ['unknown field', { path: '/a', verbs: ['GET'] }, 'unknown route field "verbs"'],
  ])('%s', (_name, route, message) => {
    expect(() => compileRoute(route as Route)).toThrow(message)
  })

  test('compileRules names the rule and the route', () => {
    expect(() => compileRules([{ host: 'api.test' }, { host: 'b.test', routes: [{ path: '/ok' }, { path: 'nope' }] }])).toThrow(
      'rules[1] (host "b.test"): routes[1] ("nope"): path "nope" must start with "/"',
    )
  })
})

describe('methods and first-match order', () => {
  const rules = compileRules([
    {
      host: 'api.test',
      routes: [
        { path: '/items/:id', methods: 'get' },
        { path: '/items/:id', methods: ['PUT', 'delete'] },
        { path: '/items/**', methods: ['POST'] },
        { path: '/open/**' },
      ],
    },
    { host: 'closed.test', routes: [] },
  ])
  const match = (host: string, method: string, path: string) =>
    matchRequest(rules, { host, scheme: 'https', port: 443, method, path })

  test.each<[string, string, string, string | null]>([
    ['GET', 'api.test', '/items/1', '/items/:id'], // the rule wrote "get": method case in rules does not matter
    ['PUT', 'api.test', '/items/1', '/items/:id'],
    ['DELETE', 'api.test', '/items/1', '/items/:id'], // the rule wrote "delete"
    ['POST', 'api.test', '/items/1', '/items/**'],
    ['PATCH', 'api.test', '/items/1', null],
    ['HEAD', 'api.test', '/items/1', null],
    ['OPTIONS', 'api.test', '/open/x', '/open/**'],
    ['GET', 'api.test', '/open', '/open/**'],
    ['GET', 'api.test', '/elsewhere', null],
    ['GET', 'closed.test', '/', null],
  ])('%s %s%s', (method, host, path, expected) => {
    const result = match(host, method, path)
    expect(result.allowed ? result.route?.path : null).toBe(expected)
  })

  test('the first matching route wins and its params are returned', () => {
    const result = match('api.test', 'PUT', '/items/abc')
    expect(result).toMatchObject({ allowed: true, params: { id: 'abc' } })
    expect(result.allowed && result.route?.methods).toEqual(new Set(['PUT', 'DELETE']))
  })

  test('the query string is not part of the match', () => {
    expect(match('api.test', 'GET', '/items/1?expand=true')).toMatchObject({ allowed: true, params: { id: '1' } })
  })

  test.each<[string, string, string, string, string]>([
    ['a method no route allows on a matched path', 'PATCH', '/items/1', 'method not allowed on the route', 'rule api.test allows GET, PUT, DELETE, POST on /items/1, not PATCH'],
    ['no route matches', 'GET', '/nothing', 'no route matches the path', 'no route of rule api.test matches /nothing'],
  ])('refusal reason: %s', (_name, method, path, reason, detail) => {
    const result = match('api.test', method, path)
    expect(result).toMatchObject({ allowed: false, reason, detail })
    expect(result.rule?.decider).toBe('rule:api.test')
  })

  test('routes: [] denies every path of that origin', () => {
    const result = match('closed.test', 'GET', '/anything')
    expect(result).toMatchObject({ allowed: false, reason: 'no route matches the path', detail: 'rule closed.test has no routes, so every path is denied' })
    expect(result.rule?.decider).toBe('rule:closed.test')
  })
})

describe('through the safe fetch', () => {
  test('a route refusal never reaches the upstream and the policy is not asked', async () => {
    const server = await startServer((req, res) => res.end(req.url))
    let policyAsked = 0
    const resolver = tableResolver({ 'api.test': ['127.0.0.1'] })
    const rule: Rule = { host: 'api.test', httpsOnly: false, port: server.port, routes: [{ path: '/v1/:thing', methods: 'GET' }] }
    const fetch = testFetch({ rules: [rule], resolver, policy: () => (policyAsked++, true) })
    const base = `http://api.test:${server.port}`
    expect(ok(await fetch.request({ url: `${base}/v1/users?x=1` }, ctx())).body).toBe('/v1/users?x=1')
    const refused = await fetch.request({ url: `${base}/v2/users` }, ctx())
    expect(errorOf(refused)).toMatchObject({ code: 'denied', message: `GET ${base}/v2/users is not allowed: no route of rule api.test matches /v2/users` })
    expect(errorOf(await fetch.request({ url: `${base}/v1/users`, method: 'POST' }, ctx()))?.code).toBe('denied')
    expect(server.requests.map((r) => r.url)).toEqual(['/v1/users?x=1'])
    expect(resolver.asked).toEqual(['api.test'])
    expect(policyAsked).toBe(0)
    expect(await fetch.explain({ url: `${base}/v1/users` }, ctx())).toEqual({
      allowed: true,
      decidedBy: 'rule:api.test',
      route: '/v1/:thing',
      addresses: [{ address: '127.0.0.1', class: 'loopback' }],
    })
    expect(await fetch.explain({ url: `${base}/v2` }, ctx())).toEqual({
      allowed: false,
      code: 'denied',
      decidedBy: 'rule:api.test',
      reason: 'no route matches the path',
      detail: 'no route of rule api.test matches /v2',
    })
  })
})
