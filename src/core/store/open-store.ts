import { mkdirSync, accessSync, constants, existsSync, statSync } from 'node:fs'
import { resolve, join, dirname } from 'node:path'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import type { AbstractLevel } from 'abstract-level'
import { FusionError } from '../errors.js'

/** The embedded store: one LevelDB under --data-dir, or memory with --memory. */
export interface Store {
  readonly db: AbstractLevel<any, any, any>
  readonly onDisk: boolean
  readonly location: string
  close (): Promise<void>
}

/**
 * Opens the store. Every way this can fail names the directory in one sentence:
 * the process cannot run without its store, and the user has to fix the directory.
 */
export async function openStore (opts: { dataDir: string, memory: boolean }): Promise<Store> {
  if (opts.memory) {
    const db = new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    return wrap(db, false, 'memory')
  }
  const dir = resolve(opts.dataDir)
  try {
    makeDir(dir)
    accessSync(dir, constants.W_OK | constants.R_OK)
  } catch (cause) {
    throw new FusionError('STORE_UNUSABLE', `--data-dir ${dir} cannot be used: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause })
  }
  const location = join(dir, 'store')
  const db = new Level<string, Buffer>(location, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  try {
    await db.open()
  } catch (cause) {
    const inner = (cause as { cause?: { code?: string } }).cause
    if (inner?.code === 'LEVEL_LOCKED') {
      throw new FusionError('STORE_LOCKED', `--data-dir ${dir} is in use by another mqtt-fusion (its store is locked)`, { cause })
    }
    const detail = (inner as Error | undefined)?.message ?? (cause as Error).message
    throw new FusionError('STORE_UNUSABLE', `--data-dir ${dir}: the store cannot be opened (${detail})`, { cause })
  }
  return wrap(db as unknown as AbstractLevel<any, any, any>, true, location)
}

/**
 * mkdir -p without Node 20's `{ recursive: true }`, which retries for ever at full CPU
 * when mkdir answers ENOENT under a parent that exists (as /proc and other pseudo
 * filesystems do).
 */
function makeDir (dir: string): void {
  try {
    mkdirSync(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' })
      return
    }
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir || existsSync(parent)) throw err
    makeDir(parent)
    mkdirSync(dir)
  }
}

function wrap (db: AbstractLevel<any, any, any>, onDisk: boolean, location: string): Store {
  let closing: Promise<void> | undefined
  return {
    db,
    onDisk,
    location,
    close () {
      closing ??= db.close().catch(() => {})
      return closing
    }
  }
}
