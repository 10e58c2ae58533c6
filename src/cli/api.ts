// Loads the runtime's API for a command (late, so that help and usage errors never load Extism), and builds its safe fetch.
import { UsageError } from './usage.js'

export type Api = Awaited<ReturnType<typeof loadApi>>

export async function loadApi() {
  // Extism imports node:wasi, which prints an ExperimentalWarning that means nothing here.
  process.removeAllListeners('warning')
  process.on('warning', (warning) => {
    if (warning.name !== 'ExperimentalWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`)
  })
  return import('../index.js')
}

/** createSafeFetch, with a bad rule or CIDR from the command line reported as a usage error. */
export function createFetch(api: Api, options: Parameters<Api['createSafeFetch']>[0]) {
  try {
    return api.createSafeFetch(options)
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(error.message)
    throw error
  }
}
