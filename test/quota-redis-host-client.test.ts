// A host's own ioredis client: refused unless made without the offline queue and resends, which would count requests the store answered unavailable.
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll, describe, expect, test } from 'vitest'
import { redisQuotaStore } from '../src/index.js'

const MESSAGE = 'redisQuotaStore: client must be made with enableOfflineQueue: false and autoResendUnfulfilledCommands: false'
const clients: Redis[] = []
/** A client that never connects (lazyConnect): only its options are read. */
function client(options: RedisOptions): Redis {
  const made = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, ...options })
  clients.push(made)
  return made
}
afterAll(() => {
  for (const made of clients.splice(0)) made.disconnect()
})

describe('redisQuotaStore({ client })', () => {
  test.each<[string, RedisOptions]>([
    ["ioredis' defaults (offline queue and resends on)", {}],
    ['the offline queue off, resends on (docs/fleet.md before the fix)', { enableOfflineQueue: false }],
    ['resends off, the offline queue on', { autoResendUnfulfilledCommands: false }],
  ])('%s: a TypeError', (_name, options) => {
    expect(() => redisQuotaStore({ client: client(options) })).toThrow(new TypeError(MESSAGE))
  })

  test('both off: accepted, and left open by close()', async () => {
    const made = client({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
    await redisQuotaStore({ client: made }).close()
    expect(made.status).toBe('wait')
  })
})
