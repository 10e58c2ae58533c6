// Checks a host's option object against a table of option names to checkers; unknown names get a suggestion.

/**
 * Returns the whole problem with one option ("policy must be a function, not a string"), or
 * undefined when it is fine. `path` is the option's name in messages (`addressPolicy.unsafeAllow`).
 */
export type OptionCheck = (value: unknown, path: string) => string | undefined

/** Option name to its checker. A checker runs only when the option is given (not undefined). */
export type OptionTable = Readonly<Record<string, OptionCheck>>

/** Deprecated option name to the name that replaced it: suggestions name the new one. */
export type OptionAliases = Readonly<Record<string, string>>

/** "a string", "an array", "null", "an object", ... : what a host passed, for messages. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (value === undefined) return 'undefined'
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** An object of named fields: not null, an array or bytes. */
const isObject = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value)

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/** The known name closest to `name` (case ignored), if it is close enough to be a likely typo. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    const allowed = Math.min(3, Math.max(1, Math.floor(Math.max(name.length, candidate.length) / 3)))
    if (distance <= allowed && (!best || distance < best.distance)) best = { name: candidate, distance }
  }
  return best?.name
}

/** `unknown option "rule"; did you mean "rules"?`, or the list of options when nothing is close. */
function unknownOption(key: string, table: OptionTable, aliases: OptionAliases, prefix: string): string {
  const current = Object.keys(table).filter((name) => !(name in aliases))
  const near = closestName(key, Object.keys(table))
  const suggestion = near === undefined ? undefined : (aliases[near] ?? near)
  if (suggestion !== undefined) return `unknown option "${prefix}${key}"; did you mean "${prefix}${suggestion}"?`
  return `unknown option "${prefix}${key}"; the options are ${current.map((name) => prefix + name).join(', ')}`
}

/**
 * The first problem with `options`: not an object, an unknown key, or a value its checker refuses.
 * `prefix` names a nested object in messages (`"addressPolicy."`).
 */
export function optionProblem(options: unknown, table: OptionTable, prefix = '', aliases: OptionAliases = {}): string | undefined {
  if (options === undefined) return undefined
  if (!isObject(options)) {
    return `${prefix === '' ? 'options' : prefix.slice(0, -1)} must be an object, not ${describeValue(options)}`
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(table, key)) return unknownOption(key, table, aliases, prefix)
  }
  for (const [key, check] of Object.entries(table)) {
    const value = (options as Record<string, unknown>)[key]
    const problem = value === undefined ? undefined : check(value, prefix + key)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** Throws a TypeError `${where}: ${problem}` for the first problem with `options`. */
export function checkOptions(where: string, options: unknown, table: OptionTable, aliases?: OptionAliases): void {
  const problem = optionProblem(options, table, '', aliases)
  if (problem !== undefined) throw new TypeError(`${where}: ${problem}`)
}


/** Checkers shared by the option tables. */
export const is = {
  function: (value: unknown, path: string) =>
    typeof value === 'function' ? undefined : `${path} must be a function, not ${describeValue(value)}`,
  object: (value: unknown, path: string) => (isObject(value) ? undefined : `${path} must be an object, not ${describeValue(value)}`),
  /** An object checked by its own table, its keys named `path.key`. */
  nested:
    (table: OptionTable, aliases?: OptionAliases): OptionCheck =>
    (value, path) =>
      optionProblem(value, table, `${path}.`, aliases),
  /** The message of the TypeError a builder (such as middlewareList) throws for the value, as the problem. */
  thrownBy:
    (build: (value: unknown, path: string) => unknown): OptionCheck =>
    (value, path) => {
      try {
        build(value, path)
        return undefined
      } catch (error) {
        if (error instanceof TypeError) return error.message
        throw error
      }
    },
} as const
