import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'

const here = dirname(fileURLToPath(import.meta.url))
/** examples/p5 of a source checkout: ../../../examples/p5 from src/doors/http and dist/doors/http. */
export const P5_EXAMPLE_DIR = join(here, '..', '..', '..', 'examples', 'p5')

/** p5's browser builds (lib/p5.min.js...), or undefined when p5 is not installed. */
function p5LibDir (): string | undefined {
  try {
    // p5 exports no package.json; its main entry is dist/app.js, beside lib/.
    const lib = join(dirname(createRequire(import.meta.url).resolve('p5')), '..', 'lib')
    return existsSync(join(lib, 'p5.min.js')) ? lib : undefined
  } catch {
    return undefined
  }
}

/**
 * The p5.js sketch at /examples/p5/ with p5 itself at /vendor/p5/ (from its npm package,
 * as MQTT.js is served: the page works with no internet and under the same CSP). Both
 * are there in a source checkout with its dev dependencies (`npm install`); an installed
 * package has neither, and then nothing is registered. Returns whether it was.
 */
export async function registerExamplePages (app: FastifyInstance): Promise<boolean> {
  const lib = p5LibDir()
  if (lib === undefined || !existsSync(join(P5_EXAMPLE_DIR, 'index.html'))) return false
  await app.register(fastifyStatic, { root: P5_EXAMPLE_DIR, prefix: '/examples/p5/', decorateReply: false, index: ['index.html'] })
  // The page's relative links need the trailing slash.
  app.get('/examples/p5', async (_req, reply) => reply.redirect('/examples/p5/', 301))
  // Only the built files, not p5's sources and types.
  await app.register(fastifyStatic, { root: lib, prefix: '/vendor/p5/', decorateReply: false, allowedPath: (path) => /^\/p5(\.min)?\.js$/.test(path) })
  return true
}
