// The project templates shipped in the package (templates/<lang>/): where they are and which languages exist.
import { existsSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** templates/ of the installed package (dist/cli/ and src/cli/ alike are two folders down). */
export const TEMPLATES = fileURLToPath(new URL('../../templates/', import.meta.url))

/** The languages there are templates for, sorted. */
export function templateNames(): string[] {
  if (!existsSync(TEMPLATES)) return []
  return readdirSync(TEMPLATES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
}
