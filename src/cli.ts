#!/usr/bin/env node
// The capsule-host command line: create a capsule project, run a capsule's export, or explain what the rules decide for a URL.
import { explain } from './cli/explain.js'
import { newProject } from './cli/new.js'
import { run } from './cli/run.js'
import { print, usage, UsageError } from './cli/usage.js'
import { ownPackage } from './own-package.js'

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    if (command === 'run') return await run(rest)
    if (command === 'explain') return await explain(rest)
    if (command === 'new') return await newProject(rest)
    if (command === '--version') return print(`capsule-host ${ownPackage().version}`)
    if (command === '--help' || command === '-h') return print(usage(undefined))
    if (command === 'help') return print(usage(rest[0]))
    throw new UsageError(command ? `unknown command "${command}"` : 'no command given')
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`capsule-host: ${error.message}\n\n${usage(command)}\n`)
    return 2
  }
}

process.exitCode = await main(process.argv.slice(2))
