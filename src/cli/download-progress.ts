// The progress of the module downloads the CLI's runtime makes (a capsule or manifest given by URL), drawn from their diagnostics channel.
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { DownloadProgress } from '../runtime/modules.js'
import type { Progress } from './progress.js'

/** The channel src/runtime/modules.ts publishes on (by name: the CLI loads the library lazily). */
const DOWNLOAD_CHANNEL = 'capsule-host:module-download'

const MiB = 1024 * 1024

/** `1.5 MiB`, or `1.5 of 12.0 MiB` when the length is known. */
export function downloadedText({ url, received, total }: DownloadProgress): string {
  const got = (received / MiB).toFixed(1)
  return `download ${url} (${total === undefined ? `${got} MiB` : `${got} of ${(total / MiB).toFixed(1)} MiB`})`
}

/** Runs `work`, showing each module download it makes as a timed step of `progress`. */
export async function withDownloadProgress<T>(progress: Progress, work: () => Promise<T>): Promise<T> {
  const onMessage = (message: unknown) => {
    const download = message as DownloadProgress
    if (download.received === 0 && !download.done) progress.step(downloadedText(download), { timed: true })
    else progress.update(downloadedText(download))
    if (download.done) progress.done()
  }
  subscribe(DOWNLOAD_CHANNEL, onMessage)
  try {
    return await work()
  } catch (error) {
    progress.fail()
    throw error
  } finally {
    unsubscribe(DOWNLOAD_CHANNEL, onMessage)
  }
}
