// `capsule-host new <name>`: a capsule project written from templates/<lang>/, ready for npm install, build and test.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { packageNameProblem, unscoped } from './package-name.js'
import { installSteps } from './npm-steps.js'
import { progressOn } from './progress.js'
import { TEMPLATES, templateNames } from './templates.js'
import { ownPackage } from '../own-package.js'
import { parse, print, usage, UsageError } from './usage.js'

const OPTIONS = {
  lang: { type: 'string' },
  dir: { type: 'string' },
  install: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

const DEFAULT_LANG = 'assemblyscript'
/** Template files stored under another name, because `npm pack` leaves out every `.gitignore`. */
const RENAMED: Readonly<Record<string, string>> = { gitignore: '.gitignore' }

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(dir, join(prefix, entry.name)) : [join(prefix, entry.name)]))
}

/** The project's values the templates name as `{{key}}`. */
type Values = Readonly<Record<'name' | 'wasmName' | 'capsuleHostVersion', string>>

function fill(text: string, values: Values, file: string): string {
  return text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => {
    if (!Object.hasOwn(values, key)) throw new Error(`template ${file}: unknown placeholder ${whole}`)
    return values[key as keyof Values]
  })
}

/** The flags; a --lang without a value is told which languages there are. */
function parseNew(args: string[]) {
  try {
    return parse(OPTIONS, args)
  } catch (error) {
    if (error instanceof UsageError && error.message.includes("'--lang")) throw new UsageError(`${error.message}; templates: ${templateNames().join(', ')}`)
    throw error
  }
}

/** What `new` was asked for, checked before anything is written. */
function newPlan(args: string[]) {
  const { values, positionals } = parseNew(args)
  if (values.help) return undefined
  if (positionals.length !== 1) throw new UsageError('new needs exactly one project name, such as: capsule-host new my-capsule')
  const name = positionals[0]!
  const problem = packageNameProblem(name)
  if (problem) throw new UsageError(`"${name}" is not a valid npm package name: ${problem}`)
  const lang = values.lang ?? DEFAULT_LANG
  const langs = templateNames()
  if (!langs.includes(lang)) throw new UsageError(`--lang ${lang}: there is no template for it; templates: ${langs.join(', ') || 'none (templates/ is missing)'}`)
  const dir = resolve(values.dir ?? unscoped(name))
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UsageError(`${dir} exists and is not an empty folder: give another --dir or name`)
  }
  return { name, lang, dir, install: values.install === true }
}

/** The next steps, printed on stdout (the command's result, in a pipe too); `installed` after --install. */
function nextSteps(name: string, dir: string, installed: boolean): string {
  const shown = relative(process.cwd(), dir) || '.'
  return [
    `Created ${name} in ${shown}${installed ? ', installed and built' : ''}`,
    '',
    'Next:',
    `  cd ${shown.includes(' ') ? JSON.stringify(shown) : shown}`,
    ...(installed ? [] : ['  npm install', `  npm run build      # assembly/index.ts -> build/${unscoped(name)}.wasm`]),
    '  npm test           # runs the capsule against the mock upstreams in mocks.json',
    '  npm run try        # capsule-host run ... --mock mocks.json',
  ].join('\n')
}

export async function newProject(args: string[]): Promise<number> {
  const plan = newPlan(args)
  if (!plan) return print(usage('new'))
  const from = join(TEMPLATES, plan.lang)
  const values: Values = { name: plan.name, wasmName: unscoped(plan.name), capsuleHostVersion: ownPackage().version }
  const progress = progressOn(process.stderr)
  for (const file of filesUnder(from)) {
    const target = join(plan.dir, dirname(file), RENAMED[basename(file)] ?? basename(file))
    progress.step(`write ${relative(plan.dir, target)}`)
    try {
      mkdirSync(dirname(target), { recursive: true })
      writeFileSync(target, fill(readFileSync(join(from, file), 'utf8'), values, file), { flag: 'wx' })
    } catch (error) {
      progress.fail()
      process.stderr.write(`capsule-host: cannot write ${target}: ${(error as Error).message}\n`)
      return 1
    }
  }
  progress.done()
  if (plan.install) {
    const code = await installSteps(plan.dir, progress)
    if (code !== 0) return code
  }
  return print(nextSteps(plan.name, plan.dir, plan.install))
}
