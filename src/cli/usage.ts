// The CLI's help texts, its usage error, and argument parsing that turns a bad flag into that error.
import { readFileSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { templateNames } from './templates.js'

/** A mistake in how the command was called: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

export const COMMANDS = ['run', 'explain', 'new'] as const
export type Command = (typeof COMMANDS)[number]

const MAIN = `Usage: capsule-host <command> [options]

Commands:
  new <name>                    create a capsule project (AssemblyScript) in ./<name>
  run <capsule.wasm> <export>   call an export of a capsule, printing its output
  explain <url>                 print what the rules decide for a request, without connecting

Options:
  --version                     print the version
  -h, --help                    this help

Run "capsule-host <command> --help" for the options of a command.`

const RUN = `Usage: capsule-host run <capsule.wasm> <export> [options]
       capsule-host run --manifest <manifest.json> <export> [options]

Prints the export's output on stdout and one decision line per request on stderr.
The module may be a file or an http(s) URL (downloaded first, with progress on a terminal).

Options:
  --input TEXT|@file       the export's input (text, or the contents of a file)
  --stdin                  read the export's input from stdin
  --manifest FILE          a capsule.json or an Extism manifest (told apart by content); the
                           module may then be left out when the manifest names it
  --config KEY=VALUE       a config value the capsule reads; repeatable; wins over the manifest's
  --mock mocks.json        start the mock upstreams the file describes (capsule-host/testing's
                           format) on loopback, allow exactly their names and resolve them to
                           their servers: no --allow, --resolve or --allow-address needed
  --allow HOST|URL         allow https://HOST, or a URL such as http://HOST:8080; a path in the
                           URL (https://HOST/v1/**) allows only that route; repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --isolation MODE         worker (default), inline or pool (inline and pool need Node 25+)
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist (for local servers); repeatable
  --ca file.pem            trust an extra CA certificate
  --timeout MS             the call's time limit (default 30000)
  --memory-max PAGES       the capsule's memory limit in 64 KiB pages (default 4096: 256 MiB)
  --http-response-max BYTES  the largest buffered response body (default 10485760)
  --log-level LEVEL        print the capsule's log lines at LEVEL and above (trace, debug, info,
                           warn, error) and its WASI stdout and stderr, on stderr
  --wasi-arg ARG           grant the WASI module an argument (the first is its argv[0]); repeatable
  --wasi-env NAME=VALUE    grant the WASI module an environment variable; repeatable
  --verbose                print every audit event as a JSON line on stderr instead of decision lines
  --summary                after the call, print a table of its requests on stderr (decision,
                           status or error code, bytes in, time, URL), cut to the terminal's
                           width (COLUMNS, or 100 in a pipe); works with or without --verbose
  -h, --help               this help`

const EXPLAIN = `Usage: capsule-host explain <url> [options]

Prints the decision, the rule or check that decided, the reason and the addresses.
Exits 0 when the request would be allowed, 1 when it would be refused.

Options:
  --method M               the request method (default GET)
  --allow HOST|URL         allow https://HOST, or a URL such as http://HOST:8080; a path in the
                           URL (https://HOST/v1/**) allows only that route; repeatable
  --rules rules.json       rules from a file: an array of rules, or { "rules": [...] }
  --resolve NAME=IP        answer NAME with IP instead of DNS; repeatable
  --allow-address CIDR     exempt a CIDR from the address blocklist; repeatable
  --json                   print the decision as one JSON object
  -h, --help               this help`

/** `new`'s help names the templates that exist, so it is made when asked for. */
const newUsage = (templates: readonly string[]) => `Usage: capsule-host new <name> [options]

Creates a capsule project: its source (using the SDK), package.json with the pinned compiler
and PDK, an asconfig that extends capsule-host's preset, a test with capsule-host/testing and
the mock upstreams it runs against, a README and a .gitignore. Then:
  cd <dir> && npm install && npm run build && npm test

<name> is the npm package name (lower case, URL-safe, may be @scope/name); the capsule is built
to build/<name without scope>.wasm. The folder must not exist or be empty.

Options:
  --lang LANG              the capsule's language; templates: ${templates.join(', ')}
                           (default assemblyscript)
  --dir PATH               the project folder (default ./<name without scope>)
  --install                then run npm install and npm run build in it (their output is
                           shown only when one fails; exit 1 then)
  -h, --help               this help

Progress lines (each file, each npm step with its seconds) are printed on stderr when it is a
terminal, never in a pipe.`

export function usage(command: string | undefined): string {
  if (command === 'run') return RUN
  if (command === 'explain') return EXPLAIN
  if (command === 'new') return newUsage(templateNames())
  return MAIN
}

type Options = NonNullable<ParseArgsConfig['options']>
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>

export function parse<T extends Options>(options: T, args: string[]): Parsed<T> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${path}: ${(error as Error).message}`)
  }
}

/** A whole number from 1 to `max` given to `--name`, or undefined when the flag is absent. */
export function wholeNumber(value: string | undefined, name: string, unit: string, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0 || n > max) {
    throw new UsageError(`--${name} ${value}: expected a whole number of ${unit} from 1 to ${max}`)
  }
  return n
}

export function print(text: string): number {
  process.stdout.write(`${text}\n`)
  return 0
}

