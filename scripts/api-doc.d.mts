// Types of scripts/api-doc.mjs for the tests that import it.

/** One declaration docs/api.md documents (see SECTIONS in api-doc.mjs). */
export interface Section {
  readonly name: string
  readonly file: string
  readonly defaults?: string
  readonly example?: boolean
  readonly output?: boolean
}
export const SECTIONS: readonly Section[]
/** The markdown between a section's markers, from the sources under `root` (default: this repository). */
export function renderSection(section: Section, root?: string): string
/** Every problem with the page (stale, missing or unknown tables, options without an example). */
export function problemsOf(doc: string, root?: string): string[]
/** The page with every table regenerated. */
export function regenerate(doc: string, root?: string): string
