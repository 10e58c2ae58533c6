// The request metrics: duration histogram and count by decision and code, open streams, quota refusals.
import type { Counter, Histogram, Meter, MeterProvider, UpDownCounter } from '@opentelemetry/api'
import type { AuditEvent } from '../audit.js'
import { requestMetricAttributes } from './request-attributes.js'
import type { InstrumentationScope } from './scope.js'

/** The semconv's advised buckets for `http.client.request.duration`, in seconds. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

/** The instruments made on one meter. */
interface Instruments {
  readonly duration: Histogram
  readonly requests: Counter
  readonly openStreams: UpDownCounter
  readonly quotaRefusals: Counter
}

function instrumentsOn(meter: Meter): Instruments {
  return {
    duration: meter.createHistogram('http.client.request.duration', {
      description: 'Duration of HTTP client requests (capsule requests and streams, to their end).',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    requests: meter.createCounter('capsule_host.requests', { description: 'Capsule requests and streams, by decision and code.', unit: '{request}' }),
    openStreams: meter.createUpDownCounter('capsule_host.streams.open', { description: 'Capsule streams whose head arrived and that have not ended.', unit: '{stream}' }),
    quotaRefusals: meter.createCounter('capsule_host.quota.refusals', { description: 'Requests refused by a quota (rate_limited), by the quota that decided.', unit: '{request}' }),
  }
}

/**
 * The request metrics of one telemetry. The metrics API has no proxy provider (a meter taken
 * before the SDK is registered stays a no-op), so the instruments are made again whenever the
 * provider changes: a host that registers its SDK after creating the safe fetch still gets them.
 */
export class RequestMetrics {
  readonly #providerOf: () => MeterProvider
  readonly #scope: InstrumentationScope
  #provider: MeterProvider | undefined
  #instruments: Instruments | undefined

  constructor(providerOf: () => MeterProvider, scope: InstrumentationScope) {
    this.#providerOf = providerOf
    this.#scope = scope
  }

  #current(): Instruments {
    const provider = this.#providerOf()
    if (provider !== this.#provider || !this.#instruments) {
      this.#instruments = instrumentsOn(provider.getMeter(this.#scope.name, this.#scope.version))
      this.#provider = provider
    }
    return this.#instruments
  }

  /** A stream's head arrived: one more open stream. Returns the instrument to take it back from. */
  streamOpened(): UpDownCounter {
    const { openStreams } = this.#current()
    openStreams.add(1)
    return openStreams
  }

  /** Records a request's end; `opened` is the instrument its open stream was counted on, if it was. */
  ended(event: Readonly<AuditEvent>, durationS: number, opened: UpDownCounter | undefined): void {
    // On the instrument it was counted on, so a provider change never leaves a stream open.
    opened?.add(-1)
    const { duration, requests, quotaRefusals } = this.#current()
    const attributes = requestMetricAttributes(event)
    duration.record(durationS, attributes)
    requests.add(1, attributes)
    if (event.code === 'rate_limited') quotaRefusals.add(1, { 'capsule_host.decided_by': event.decidedBy })
  }
}
