// Middleware recipe: inject an API key for one origin only, as a secret the capsule never sees.
import { createServer } from 'node:http'
import { createSafeFetch, secret } from 'capsule-host'

const API_KEY = process.env.EXAMPLE_API_KEY ?? 'k-123-example'

/** A loopback server that answers with the x-api-key it received (to show where the key went). */
async function echoKeyServer() {
  const server = createServer((req, res) => {
    const received = req.headers['x-api-key'] ?? null
    res.writeHead(received === API_KEY ? 200 : 401, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ received }))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: server.address().port }
}

const api = await echoKeyServer()     // api.local: wants the key
const other = await echoKeyServer()   // other.local: must never get it

/** Origin-level middleware: runs only for requests the api.local rule allowed, on every hop it allows. */
const injectApiKey = async (ctx, next) => {
  // x-api-key is not a credential header, so mark its value: it is then scrubbed from everything
  // the capsule receives (body, headers, error messages) and from the audit event.
  ctx.req.header('x-api-key', secret(API_KEY))
  return next()
}

const safeFetch = createSafeFetch({
  rules: [
    { host: 'api.local', httpsOnly: false, port: api.port, middleware: injectApiKey },
    { host: 'other.local', httpsOnly: false, port: other.port },
  ],
  resolver: async (name) => (['api.local', 'other.local'].includes(name) ? ['127.0.0.1'] : []),
  addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
})

try {
  // What a capsule's http_request does, called from host code here: the same checks and middleware.
  for (const url of [`http://api.local:${api.port}/v1/me`, `http://other.local:${other.port}/v1/me`]) {
    const reply = await safeFetch.request({ url }, { capsuleId: 'demo' })
    console.log(`${new URL(url).hostname}: status ${reply.status}, body the capsule sees: ${reply.body}`)
  }
  const events = []
  safeFetch.audit.on('request', (event) => events.push(event))
  await safeFetch.request({ url: `http://api.local:${api.port}/v1/me` }, { capsuleId: 'demo' })
  console.log(`audit: redactions=${events[0].redactions} (the echoed key was replaced before the capsule got it)`)
} finally {
  await safeFetch.close()
  api.server.close()
  other.server.close()
}
