// npm's rules for a new package's name, as `capsule-host new` checks the name it is given.
import { builtinModules } from 'node:module'

/** npm's longest name. */
export const MAX_NAME_LENGTH = 214
const RESERVED = new Set(['node_modules', 'favicon.ico'])
/** What every template depends on: a project of the same name could not install it. */
const DEPENDENCIES = new Set(['capsule-host', 'assemblyscript', '@extism/as-pdk'])
/** Allowed in old packages' names, refused in new ones. */
const SPECIAL = /[~'!()*]/
const SCOPED = /^@([^/]+)\/([^/]+)$/

const urlSafe = (part: string) => part !== '' && encodeURIComponent(part) === part

/** Why `name` cannot be a new npm package's name, or undefined when it can. */
export function packageNameProblem(name: string): string | undefined {
  if (name === '') return 'a name cannot be empty'
  if (name.trim() !== name) return 'a name cannot start or end with a space'
  if (name.length > MAX_NAME_LENGTH) return `a name can have at most ${MAX_NAME_LENGTH} characters`
  if (name.startsWith('.')) return 'a name cannot start with "."'
  if (name.startsWith('_')) return 'a name cannot start with "_"'
  if (name.startsWith('-')) return 'a name cannot start with "-"'
  if (DEPENDENCIES.has(name)) return `"${name}" is a dependency of the project (npm cannot install a package into itself)`
  if (RESERVED.has(name)) return `"${name}" is reserved`
  if (builtinModules.includes(name)) return `"${name}" is a Node.js core module`
  if (name.toLowerCase() !== name) return 'a name must be lower case'
  const scoped = SCOPED.exec(name)
  const parts = scoped ? [scoped[1]!, scoped[2]!] : [name]
  if (parts.some((part) => SPECIAL.test(part))) return `a name cannot contain any of ~'!()*`
  if (!parts.every(urlSafe)) return 'a name may hold only URL-safe characters (a-z, 0-9, "-", "_", "."), and one "/" after an @scope'
  if (scoped && (parts[1]!.startsWith('.') || parts[1]!.startsWith('_'))) return 'a name cannot start with "." or "_" after its scope'
  return undefined
}

/** The name without its scope: the project's default folder and its .wasm file's name. */
export const unscoped = (name: string) => name.slice(name.indexOf('/') + 1)
