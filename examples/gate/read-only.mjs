// A gate: a host check every request must pass, allowing or denying with a reason (here: read-only, and no /admin paths).
import { createServer } from 'node:http'
import { createSafeFetch } from 'capsule-host'

/** Allows only reads. A denial's reason is the audit event's detail and ends the capsule's `denied` message: keep secrets out of it. */
const readOnly = {
  name: 'read-only',
  check: (request) =>
    request.method === 'GET' || request.method === 'HEAD'
      ? { allow: true }
      : { allow: false, reason: `${request.method} would change data; this host is read-only` },
}

/** Denies the admin area of any origin. A gate may be async (look up a tenant, a quota, ...). */
const noAdmin = {
  name: 'no-admin',
  check: async (request) => (request.path.startsWith('/admin') ? { allow: false, reason: 'the admin area is off limits' } : { allow: true }),
}

const api = createServer((req, res) => res.end(`you reached ${req.method} ${req.url}`))
await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve))
const port = api.address().port

const events = []
const safeFetch = createSafeFetch({
  rules: { host: 'api.local', httpsOnly: false, port },
  gates: [readOnly, noAdmin],   // every gate must allow; they run after the rules, before any DNS lookup
  resolver: async (name) => (name === 'api.local' ? ['127.0.0.1'] : []),
  addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
  onRequest: (event) => events.push(event),
})

const base = `http://api.local:${port}`
try {
  for (const request of [
    { url: `${base}/items` },
    { url: `${base}/items`, method: 'POST', body: '{"name":"x"}' },
    { url: `${base}/admin/users` },
  ]) {
    // explain(): the same decision, connecting to nothing.
    const why = await safeFetch.explain(request, { capsuleId: 'demo' })
    const reply = await safeFetch.request(request, { capsuleId: 'demo' })
    const outcome = 'error' in reply ? `${reply.error.code}: ${reply.error.message}` : `${reply.status} ${reply.body}`
    const event = events.at(-1)
    console.log(`${request.method ?? 'GET'} ${new URL(request.url).pathname}: allowed=${why.allowed} by ${why.decidedBy}`)
    console.log(`  capsule gets: ${outcome}`)
    if (!event.allowed) console.log(`  audit: reason "${event.reason}", detail "${event.detail}"`)
  }
} finally {
  await safeFetch.close()
  api.close()
}
