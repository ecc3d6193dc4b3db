import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { FusionError } from '../../core/errors.js'
import type { LogFn } from '../../core/types.js'

/** The libraries whose private parts the engine touches (see the table in index.ts). */
export type LibraryName = 'aedes' | 'mqtt-packet' | 'ws' | 'aedes-persistence' | 'aedes-persistence-level' | 'aedes-persistence-redis' | 'mqemitter-redis' | 'mqtt'

/**
 * The exact version each patch of index.ts was written against and tested with. An
 * upgrade of one of these is a review of every patch that names it, then a change here.
 */
export const WRITTEN_FOR: Readonly<Record<LibraryName, string>> = Object.freeze({
  aedes: '1.2.0',
  'mqtt-packet': '9.0.2',
  ws: '8.23.0',
  'aedes-persistence': '11.0.0',
  'aedes-persistence-level': '9.2.0',
  'aedes-persistence-redis': '12.0.0',
  'mqemitter-redis': '7.2.1',
  mqtt: '5.16.0'
})

/** What is installed: each library's version (undefined when it cannot be found). */
export interface Installed {
  readonly versions: Readonly<Record<LibraryName, string | undefined>>
  /**
   * The mqtt-packet Aedes loads is the one the PUBACK gate patches. With two copies in
   * node_modules the patch would never see a packet.
   */
  readonly sameMqttPacket: boolean
}

const requireHere = createRequire(import.meta.url)

/** The package.json of the package `file` belongs to (the nearest one up with that name). */
function packageVersion (file: string, name: string): string | undefined {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === name) return pkg.version
    } catch {}
    if (dirname(dir) === dir) return undefined
  }
}

function resolveFrom (req: NodeJS.Require, name: string): string | undefined {
  try { return req.resolve(name) } catch { return undefined }
}

let cached: Installed | undefined

/**
 * Reads the installed versions from the packages' own package.json, resolved as this
 * module and Aedes resolve them (mqtt-packet: the copy Aedes loads).
 */
export function installedLibraries (): Installed {
  if (cached) return cached
  const versions = {} as Record<LibraryName, string | undefined>
  const aedesEntry = resolveFrom(requireHere, 'aedes')
  const packetForAedes = aedesEntry ? resolveFrom(createRequire(aedesEntry), 'mqtt-packet') : undefined
  const packetHere = resolveFrom(requireHere, 'mqtt-packet')
  for (const name of Object.keys(WRITTEN_FOR) as LibraryName[]) {
    const entry = name === 'mqtt-packet' ? packetForAedes : resolveFrom(requireHere, name)
    versions[name] = entry ? packageVersion(entry, name) : undefined
  }
  cached = { versions, sameMqttPacket: packetForAedes !== undefined && packetForAedes === packetHere }
  return cached
}

/** Each way `installed` differs from WRITTEN_FOR, in words; empty when it does not. */
export function libraryMismatches (installed: Installed): string[] {
  const out: string[] = []
  for (const [name, want] of Object.entries(WRITTEN_FOR) as Array<[LibraryName, string]>) {
    const have = installed.versions[name]
    if (have !== want) out.push(`${name} ${have ?? 'not found'} (written for ${want})`)
  }
  if (!installed.sameMqttPacket) out.push('Aedes loads another copy of mqtt-packet than the engine patches')
  return out
}

/**
 * Refuses to start, with one line, when an installed library is not the version the
 * engine's patches were written for: a patch on private parts can break silently
 * (a renamed field reads as undefined). `allowUntested` starts anyway, with a warning.
 * @throws FusionError UNTESTED_LIBRARY
 */
export function checkLibraryVersions (opts: { readonly allowUntested: boolean, readonly log: LogFn, readonly installed?: Installed }): void {
  const problems = libraryMismatches(opts.installed ?? installedLibraries())
  if (problems.length === 0) return
  const line = `untested library versions: ${problems.join('; ')}`
  if (opts.allowUntested) {
    opts.log('warn', `${line}; starting anyway (--allow-untested-libs): the patches in src/engine/internals/ may misbehave`)
    return
  }
  throw new FusionError('UNTESTED_LIBRARY', `${line}; install the pinned versions, or start with --allow-untested-libs`)
}
