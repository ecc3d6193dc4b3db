import { readFileSync } from 'node:fs'

/**
 * The package's name and version, read from package.json: the one place the version is
 * written. `../../package.json` is the project root from src/core/ (tests) and from
 * dist/core/ (the built command) alike, and npm always ships package.json.
 */
function readPackage (): { name: string, version: string } {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
  const { name, version } = (pkg ?? {}) as { name?: unknown, version?: unknown }
  if (typeof name !== 'string' || typeof version !== 'string') throw new Error('package.json has no name or version')
  return { name, version }
}

const pkg = readPackage()

/** The package name, `mqtt-fusion`. */
export const NAME: string = pkg.name

/** The package version (semver), as package.json says. */
export const VERSION: string = pkg.version
