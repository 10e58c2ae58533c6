// Checks `SafeFetchOptions.telemetry`: `false` or an object of known options, each of the right shape.
import { describeValue, optionProblem, type OptionCheck } from '../options.js'

const boolean: OptionCheck = (value, path) => (typeof value === 'boolean' ? undefined : `${path} must be true or false, not ${describeValue(value)}`)

/** An object with the method `name` (an OpenTelemetry provider, as its API or SDK makes it). */
const withMethod =
  (name: string, what: string): OptionCheck =>
  (value, path) =>
    typeof (value as Record<string, unknown> | null)?.[name] === 'function' ? undefined : `${path} must be ${what} (an object with ${name}()), not ${describeValue(value)}`

const TELEMETRY_OPTIONS = {
  propagateTraceContext: boolean,
  tracerProvider: withMethod('getTracer', 'a TracerProvider'),
  meterProvider: withMethod('getMeter', 'a MeterProvider'),
}

/** The first problem with the telemetry option (`telemetry.propagateTraceContxt`: unknown, with a suggestion), or undefined. */
export function telemetryOptionsProblem(value: unknown, path = 'telemetry'): string | undefined {
  return value === false ? undefined : optionProblem(value, TELEMETRY_OPTIONS, `${path}.`)
}
