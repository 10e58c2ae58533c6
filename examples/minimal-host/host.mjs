// A minimal host: one safe fetch, one runtime, one capsule, one call, against an API on loopback it starts itself.
//
//   node host.mjs [capsule.wasm]     (default: the forecast capsule of ../capsule, built with its build.mjs)
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { createRuntime, createSafeFetch } from 'capsule-host'

const wasm = process.argv[2] ?? fileURLToPath(new URL('../capsule/build/forecast.wasm', import.meta.url))

// The "API": a local HTTP server on 127.0.0.1, standing in for a real forecast service.
const api = createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ city: 'Bergen', hours: [{ tempC: 7 }, { tempC: 9.5 }] }))
})
await new Promise((resolve) => api.listen(0, '127.0.0.1', resolve))
const port = api.address().port

const safeFetch = createSafeFetch({
  // Capsules may reach this one origin, with GET on /forecast/... only.
  rules: { host: 'forecast.local', httpsOnly: false, port, routes: [{ path: '/forecast/:city', methods: 'GET' }] },
  // forecast.local is not in DNS: this host resolves it to the loopback server, and exempts exactly
  // that address from the SSRF blocklist (loopback is refused by default).
  resolver: async (name) => (name === 'forecast.local' ? ['127.0.0.1'] : []),
  addressPolicy: { unsafeAllow: ['127.0.0.1/32'] },
  onRequest: (event) => console.log(`audit: ${event.capsuleId} ${event.method} ${event.url} allowed=${event.allowed} by ${event.decidedBy} status=${event.status}`),
})
const runtime = createRuntime({ fetch: safeFetch })

try {
  const capsule = await runtime.load({ wasm, id: 'forecast' })
  const output = await capsule.call('forecast_summary', `http://forecast.local:${port}/forecast/bergen`)
  console.log(`output: ${output.text()}`)
} finally {
  await runtime.close()
  await safeFetch.close()
  api.close()
}
