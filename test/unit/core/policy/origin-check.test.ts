// Issue 13 item 10: the Origin check compares scheme, host and port; bound to loopback,
// only loopback Host names (and the hosts of allowed origins) are answered.
import t from 'tap'
import { OriginCheck, isLoopbackHost } from '../../../../src/core/policy/origin-check.js'

const req = (host: string | undefined, origin?: string): { headers: { host?: string, origin?: string } } =>
  ({ headers: { ...(host !== undefined ? { host } : {}), ...(origin !== undefined ? { origin } : {}) } })

t.test('the page\'s own origin is scheme, host and port', async (t) => {
  const plain = new OriginCheck({ allowed: [], secure: false, loopbackOnly: true })
  t.ok(plain.originAllowed(req('127.0.0.1:3000', 'http://127.0.0.1:3000')), 'same scheme, host, port')
  t.ok(plain.originAllowed(req('127.0.0.1:3000')), 'no Origin: not a browser')
  t.notOk(plain.originAllowed(req('127.0.0.1:3000', 'https://127.0.0.1:3000')), 'an https:// page is not the plain-http gateway')
  t.notOk(plain.originAllowed(req('127.0.0.1:3000', 'http://127.0.0.1:3001')), 'another port is another origin')
  t.notOk(plain.originAllowed(req('127.0.0.1:3000', 'http://localhost:3000')), 'another name is another origin')
  t.notOk(plain.originAllowed(req('127.0.0.1:3000', 'null')), 'an opaque origin')
  t.notOk(plain.originAllowed(req(undefined, 'http://127.0.0.1:3000')), 'no Host to compare with')
  t.ok(plain.originAllowed(req('LOCALHOST:3000', 'http://localhost:3000')), 'host names compare without case')
  t.ok(plain.originAllowed(req('127.0.0.1:80', 'http://127.0.0.1')), 'the default port may be left out')
  const tls = new OriginCheck({ allowed: [], secure: true, loopbackOnly: true })
  t.ok(tls.originAllowed(req('127.0.0.1:3000', 'https://127.0.0.1:3000')), 'with TLS the page is https://')
  t.notOk(tls.originAllowed(req('127.0.0.1:3000', 'http://127.0.0.1:3000')), 'and an http:// page is foreign')
})

t.test('DNS rebinding: bound to loopback, only loopback Host names answer', async (t) => {
  const loop = new OriginCheck({ allowed: [], secure: false, loopbackOnly: true })
  const rebound = req('evil.example:3000', 'http://evil.example:3000')
  t.ok(loop.originAllowed(rebound), 'the rebound page looks same-origin to an Origin check alone')
  t.notOk(loop.hostAllowed(rebound), 'but its Host is not a loopback name')
  t.match(loop.refusal(rebound), /Host not allowed/)
  for (const host of ['127.0.0.1:3000', 'localhost:3000', 'app.localhost:3000', '[::1]:3000', '127.1.2.3', 'localhost']) {
    t.ok(loop.hostAllowed(req(host)), `${host} is loopback`)
  }
  for (const host of ['evil.example', '10.0.0.1:3000', 'localhost.evil.example', '127.0.0.1.evil.example', '', '[::2]:3000']) {
    t.notOk(loop.hostAllowed(req(host)), `${host || '(empty)'} is not`)
  }
  t.notOk(loop.hostAllowed(req(undefined)), 'no Host at all is not')
  const open = new OriginCheck({ allowed: [], secure: false, loopbackOnly: false })
  t.ok(open.hostAllowed(rebound), 'bound beyond loopback, any name may reach the gateway (auth protects it)')
})

t.test('--allow-origin keeps working', async (t) => {
  const c = new OriginCheck({ allowed: ['http://good.example', 'https://proxy.example/', 'HTTP://Mixed.Example:8080'], secure: false, loopbackOnly: true })
  t.ok(c.originAllowed(req('127.0.0.1:3000', 'http://good.example')), 'an allowed origin')
  t.ok(c.originAllowed(req('127.0.0.1:3000', 'https://proxy.example')), 'written with a trailing slash')
  t.ok(c.originAllowed(req('127.0.0.1:3000', 'http://mixed.example:8080')), 'written in capitals')
  t.notOk(c.originAllowed(req('127.0.0.1:3000', 'https://good.example')), 'the scheme counts')
  t.ok(c.hostAllowed(req('proxy.example')), 'a reverse proxy keeping the public name: the allowed origin\'s host answers')
  t.ok(c.hostAllowed(req('mixed.example:8080')), 'with its port')
  t.notOk(c.hostAllowed(req('mixed.example')), 'not on another port')
  t.notOk(c.hostAllowed(req('evil.example')), 'any other name does not')
  const any = new OriginCheck({ allowed: ['*'], secure: false, loopbackOnly: true })
  t.ok(any.originAllowed(req('127.0.0.1:3000', 'http://evil.example')) && any.hostAllowed(req('evil.example')), '* lets every page in')
})

t.test('isLoopbackHost', async (t) => {
  t.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && isLoopbackHost('localhost'))
  t.notOk(isLoopbackHost('0.0.0.0') || isLoopbackHost('::') || isLoopbackHost('example.com'))
})
