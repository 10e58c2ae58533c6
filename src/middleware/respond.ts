// Responses a middleware makes up: respond(), json(), and the one rule that turns any body value into bytes.

/** A body a middleware may give: text, bytes, or a JSON value (object, array, number, boolean, null). */
export type ResponseBody = string | Uint8Array | ArrayBuffer | number | boolean | null | object

export interface RespondInit {
  status: number
  headers?: Record<string, string>
  /** A string is text, bytes are bytes, any other value is JSON (the capsule gets `bodyEncoding: "json"`). */
  body?: ResponseBody
}

/** A body as the capsule gets it: its bytes, and for JSON the value itself (its JSON form, parsed back). */
export type BodyContent =
  | { readonly kind: 'bytes' | 'text'; readonly bytes: Uint8Array }
  | { readonly kind: 'json'; readonly bytes: Uint8Array; readonly value: unknown }

const encoder = new TextEncoder()
const EMPTY: BodyContent = Object.freeze({ kind: 'bytes', bytes: new Uint8Array(0) })

/**
 * The one body rule of synthetic and rewritten responses: a string is text, bytes are bytes,
 * undefined is empty, and any other value is JSON. A value with no JSON form (a function, a
 * symbol, a BigInt, a cycle) is a TypeError naming `where`.
 */
export function bodyContent(body: unknown, where: string): BodyContent {
  if (body === undefined) return EMPTY
  if (typeof body === 'string') return { kind: 'text', bytes: encoder.encode(body) }
  if (body instanceof Uint8Array) return { kind: 'bytes', bytes: body }
  if (body instanceof ArrayBuffer) return { kind: 'bytes', bytes: new Uint8Array(body) }
  if (ArrayBuffer.isView(body)) return { kind: 'bytes', bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) }
  return jsonContent(body, where)
}

/** `value` as a JSON body, whatever its type (a string becomes a JSON string). */
export function jsonContent(value: unknown, where: string): BodyContent {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw new TypeError(`${where}: the body has no JSON form (${(error as Error).message})`)
  }
  if (text === undefined) throw new TypeError(`${where}: the body has no JSON form (a ${typeof value})`)
  return { kind: 'json', bytes: encoder.encode(text), value: JSON.parse(text) as unknown }
}

/** The content-type a made-up body gets when its headers name none. */
function defaultContentType(content: BodyContent): string | undefined {
  return content.kind === 'json' ? 'application/json' : content.kind === 'text' ? 'text/plain; charset=utf-8' : undefined
}

/** Checks a status and a headers object a middleware gave; names are lower-cased. */
export function checkedHead(status: unknown, headers: unknown, where: string): { status: number; headers: Record<string, string> } {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new TypeError(`${where}: status must be a whole number from 100 to 599, not ${JSON.stringify(status)}`)
  }
  const checked: Record<string, string> = {}
  if (headers !== undefined && (headers === null || typeof headers !== 'object')) throw new TypeError(`${where}: headers must be an object`)
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value !== 'string') throw new TypeError(`${where}: header "${name}" must be a string`)
    checked[name.toLowerCase()] = value
  }
  return { status, headers: checked }
}

/** A response the host made up; what `respond()` and `json()` return. */
export class SyntheticResponse {
  readonly status: number
  /** As given, plus a content-type for a text or JSON body when none was given. */
  readonly headers: Readonly<Record<string, string>>
  readonly content: BodyContent

  constructor(init: RespondInit, where = 'respond()', content?: BodyContent) {
    if (init === null || typeof init !== 'object') throw new TypeError(`${where}: expected { status, headers?, body? }`)
    const { status, headers } = checkedHead(init.status, init.headers, where)
    this.status = status
    this.content = content ?? bodyContent(init.body, where)
    const type = defaultContentType(this.content)
    if (type && !('content-type' in headers)) headers['content-type'] = type
    this.headers = Object.freeze(headers)
  }
}

/** A synthetic response: `return respond({ status: 202, body: { queued: true } })` answers without any network call. */
export function respond(init: RespondInit): SyntheticResponse {
  return new SyntheticResponse(init)
}

/** A JSON response: `return json({ queued: true, id }, { status: 202 })`. Status 200 unless given. */
export function json(value: unknown, init: { status?: number; headers?: Record<string, string> } = {}): SyntheticResponse {
  return new SyntheticResponse({ status: init.status ?? 200, headers: init.headers }, 'json()', jsonContent(value, 'json()'))
}
