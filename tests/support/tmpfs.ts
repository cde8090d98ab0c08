import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A real small file system (tmpfs) for the tests of a full or read-only state directory: writes
 * fail with the kernel's own ENOSPC and EROFS. Needs root (mount) on Linux.
 */
export interface SmallDisk {
  readonly dir: string
  /** Fills every free byte (a file written until ENOSPC). */
  fill(): Promise<void>
  /** Gives the space back. */
  unfill(): Promise<void>
  readOnly(on: boolean): void
  unmount(): void
}

/** Why a tmpfs cannot be mounted here (the tests that need one are skipped, saying so), or undefined. */
export const smallDiskUnavailable: string | undefined = (() => {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`
  const probe = mkdtempSync(join(tmpdir(), 'modelgate-mount-probe-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', probe], { stdio: 'pipe' })
    execFileSync('umount', [probe], { stdio: 'pipe' })
    return undefined
  } catch (e) {
    return `cannot mount a tmpfs (needs root): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`
  } finally {
    rmSync(probe, { recursive: true, force: true })
  }
})()

export function mountSmallDisk(sizeBytes = 64 * 1024): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-small-disk-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' })
  const filler = join(dir, 'filler')
  return {
    dir,
    async fill() {
      const file = await open(filler, 'a')
      const chunk = Buffer.alloc(512, 0x2e)
      try {
        for (;;) await file.write(chunk)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
      } finally {
        await file.close()
      }
    },
    async unfill() {
      await rm(filler, { force: true })
    },
    readOnly(on: boolean) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir], { stdio: 'pipe' })
    },
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
