// Whether script(1) is here to give a command a terminal (a pty), for the tests of what the CLI draws on one.
import { execFileSync } from 'node:child_process'

export function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
