// Round trip against time for the last run: one dot per message at its send time, and
// each door's median per slice of the run as a line, both doors on one time axis
// (each measured from its own start), so a steady load and its stalls can be compared.

import { percentile } from './figures.js'

const PAD = { left: 46, right: 14, top: 14, bottom: 36 }
/** Time slices for the median line. */
const SLICES = 40

function cssVar (node, name, fallback) {
  const v = getComputedStyle(node).getPropertyValue(name).trim()
  return v || fallback
}

function niceStep (raw) {
  const exp = 10 ** Math.floor(Math.log10(raw))
  const f = raw / exp
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp
}

/**
 * Draws the series; returns the number of messages drawn.
 * @param {HTMLCanvasElement} canvas
 * @param {Array<{ label: string, color: string, at: number[], rtt: number[] }>} series
 *   `at`: send time in ms from that door's start; `rtt`: round trip in ms
 */
export function drawTimeline (canvas, series) {
  const ratio = window.devicePixelRatio || 1
  const width = Math.max(280, canvas.clientWidth)
  const height = Math.max(160, canvas.clientHeight)
  canvas.width = Math.round(width * ratio)
  canvas.height = Math.round(height * ratio)
  const g = canvas.getContext('2d')
  if (!g) return 0
  g.setTransform(ratio, 0, 0, ratio, 0, 0)
  g.clearRect(0, 0, width, height)
  const fg = cssVar(canvas, '--fg', '#222')
  const muted = cssVar(canvas, '--muted', '#777')
  const grid = cssVar(canvas, '--grid', '#ddd')
  g.font = '12px system-ui, sans-serif'

  const total = series.reduce((n, s) => n + s.rtt.length, 0)
  canvas.dataset.samples = String(total)
  if (total === 0) {
    g.fillStyle = muted
    g.textAlign = 'center'
    g.fillText('Run a burst or a fixed rate to see latency over time here.', width / 2, height / 2)
    return 0
  }
  let tMax = 1
  for (const s of series) for (const a of s.at) if (a > tMax) tMax = a
  // Past the 99th percentile the dots sit on the top edge, so one stall does not flatten the rest.
  const top = Math.max(0.5, percentile(series.flatMap((s) => s.rtt), 99) * 1.15)
  const plotW = width - PAD.left - PAD.right
  const plotH = height - PAD.top - PAD.bottom
  const x = (ms) => PAD.left + (ms / tMax) * plotW
  const y = (ms) => PAD.top + plotH - (Math.min(ms, top) / top) * plotH

  g.strokeStyle = grid
  g.fillStyle = muted
  g.lineWidth = 1
  g.textAlign = 'right'
  g.textBaseline = 'middle'
  const yStep = niceStep(top / 4)
  for (let v = 0; v <= top + 1e-9; v += yStep) {
    g.beginPath(); g.moveTo(PAD.left, y(v) + 0.5); g.lineTo(width - PAD.right, y(v) + 0.5); g.stroke()
    g.fillText(v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(v < 1 ? 2 : 1), PAD.left - 6, y(v))
  }
  g.textAlign = 'center'
  g.textBaseline = 'top'
  const seconds = tMax / 1000
  const xStep = niceStep(seconds / 6)
  for (let s = 0; s <= seconds + 1e-9; s += xStep) {
    g.beginPath(); g.moveTo(x(s * 1000) + 0.5, PAD.top); g.lineTo(x(s * 1000) + 0.5, PAD.top + plotH); g.stroke()
    g.fillText(s >= 10 || s === 0 ? String(Math.round(s)) : s.toFixed(s < 1 ? 2 : 1), x(s * 1000), PAD.top + plotH + 6)
  }
  g.fillText('seconds since each door\'s run started', PAD.left + plotW / 2, PAD.top + plotH + 21)

  for (const s of series) {
    g.fillStyle = s.color
    g.globalAlpha = s.rtt.length > 2000 ? 0.25 : 0.45
    for (let i = 0; i < s.rtt.length; i++) g.fillRect(x(s.at[i]) - 1, y(s.rtt[i]) - 1, 2.5, 2.5)
    g.globalAlpha = 1
    // The median per slice of time.
    const slices = Array.from({ length: SLICES }, () => [])
    for (let i = 0; i < s.rtt.length; i++) slices[Math.min(SLICES - 1, Math.floor((s.at[i] / tMax) * SLICES))].push(s.rtt[i])
    g.strokeStyle = s.color
    g.lineWidth = 2
    g.beginPath()
    let started = false
    slices.forEach((values, i) => {
      if (values.length === 0) return
      const px = x(((i + 0.5) / SLICES) * tMax)
      const py = y(percentile(values, 50))
      if (started) g.lineTo(px, py)
      else { g.moveTo(px, py); started = true }
    })
    g.stroke()
  }
  g.strokeStyle = fg
  g.lineWidth = 1
  g.beginPath(); g.moveTo(PAD.left + 0.5, PAD.top); g.lineTo(PAD.left + 0.5, PAD.top + plotH + 0.5); g.lineTo(width - PAD.right, PAD.top + plotH + 0.5); g.stroke()
  return total
}
