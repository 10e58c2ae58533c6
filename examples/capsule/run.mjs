// Runs the built capsule against a scripted forecast API on loopback (capsule-host/testing), then against a host no rule allows.
import { fileURLToPath } from 'node:url'
import { createTestHost } from 'capsule-host/testing'

const wasm = fileURLToPath(new URL('build/forecast.wasm', import.meta.url))
const mocks = {
  upstreams: {
    'forecast.test': {
      routes: [{ path: '/forecast/oslo', json: { city: 'Oslo', hours: [{ tempC: -3.5 }, { tempC: -1 }, { tempC: 2.25 }] } }],
    },
  },
}

const host = await createTestHost({ mocks })
try {
  const ok = await host.run(wasm, 'forecast_summary', host.url('forecast.test', '/forecast/oslo'))
  console.log(`summary: ${ok.output}`)
  console.log(`its request: ${ok.audit.map((e) => `${e.method} ${e.url} -> ${e.status} (${e.decidedBy})`).join(', ')}`)

  // No rule allows this host: the capsule gets the refusal as a value and reports it.
  const refused = await host.run(wasm, 'forecast_summary', 'https://weather.example/forecast/oslo')
  console.log(`refused: ${refused.output}`)
  console.log(`its request: ${refused.audit.map((e) => `allowed ${e.allowed}, ${e.decidedBy}: ${e.reason}`).join(', ')}`)
} finally {
  await host.close()
}
