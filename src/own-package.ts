// This package's own package.json: its name and version, for the CLI and the telemetry's instrumentation scope.
import { readFileSync } from 'node:fs'

/** This package's package.json (read from beside dist/ or src/). Throws when it cannot be read. */
export function ownPackage(): { name: string; version: string } {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string }
}
