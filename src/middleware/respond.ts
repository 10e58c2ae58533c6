// respond(): a synthetic response a middleware returns instead of (or after) calling next().

export interface RespondInit {
  status: number
  headers?: Record<string, string>
  body?: string | Uint8Array
}

/** A response the host made up; what `respond()` returns. */
export class SyntheticResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array

  constructor(init: RespondInit) {
    if (!Number.isInteger(init?.status) || init.status < 100 || init.status > 599) {
      throw new TypeError(`respond(): status must be a whole number from 100 to 599, not ${JSON.stringify(init?.status)}`)
    }
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(init.headers ?? {})) {
      if (typeof value !== 'string') throw new TypeError(`respond(): header "${name}" must be a string`)
      headers[name.toLowerCase()] = value
    }
    this.status = init.status
    this.headers = Object.freeze(headers)
    this.body = typeof init.body === 'string' ? new TextEncoder().encode(init.body) : (init.body ?? new Uint8Array(0))
  }
}

/** A synthetic response: `return respond({ status: 202 })` answers without any network call. */
export function respond(init: RespondInit): SyntheticResponse {
  return new SyntheticResponse(init)
}
