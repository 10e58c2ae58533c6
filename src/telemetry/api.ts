// Loads the optional peer @opentelemetry/api once per process, synchronously; undefined when it is not installed.
import { createRequire } from 'node:module'
import type * as OtelApi from '@opentelemetry/api'

/** The OpenTelemetry API module, as far as capsule-host uses it. */
export type OpenTelemetryApi = typeof OtelApi

let loaded: { api: OpenTelemetryApi | undefined } | undefined

/** The installed @opentelemetry/api, or undefined (asked once; a failed load is not retried). */
export function openTelemetryApi(): OpenTelemetryApi | undefined {
  if (!loaded) {
    try {
      loaded = { api: createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi }
    } catch {
      loaded = { api: undefined }
    }
  }
  return loaded.api
}
