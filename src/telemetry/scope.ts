// The instrumentation scope capsule-host's tracer and meter report: the package's name and version.
import { ownPackage } from '../own-package.js'

export interface InstrumentationScope {
  readonly name: string
  readonly version: string | undefined
}

let scope: InstrumentationScope | undefined

/** `capsule-host` and this package's version (read once; undefined when package.json cannot be read). */
export function instrumentationScope(): InstrumentationScope {
  if (!scope) {
    let version: string | undefined
    try {
      version = ownPackage().version
    } catch {
      version = undefined
    }
    scope = { name: 'capsule-host', version }
  }
  return scope
}
