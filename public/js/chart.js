// A latency histogram drawn on a canvas: both doors on one axis, so the shapes
// compare at a glance. No charting library: the page must work offline.

import { percentile } from './figures.js'

const BINS = 36
const PAD = { left: 46, right: 14, top: 14, bottom: 36 }

function cssVar (node, name, fallback) {
  const v = getComputedStyle(node).getPropertyValue(name).trim()
  return v || fallback
}

/** 1, 2, 5 x 10^k: a tick step near `raw`. */
function niceStep (raw) {
  const exp = 10 ** Math.floor(Math.log10(raw))
  const f = raw / exp
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp
}

/**
 * Draws the histograms. Returns the number of samples drawn.
 * @param {HTMLCanvasElement} canvas
 * @param {Array<{ label: string, color: string, samples: number[] }>} series
 */
export function drawLatencyChart (canvas, series) {
  const ratio = window.devicePixelRatio || 1
  const width = Math.max(280, canvas.clientWidth)
  const height = Math.max(180, canvas.clientHeight)
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

  const all = series.flatMap((s) => s.samples)
  if (all.length === 0) {
    g.fillStyle = muted
    g.textAlign = 'center'
    g.fillText('Run a burst to see both distributions here.', width / 2, height / 2)
    canvas.dataset.samples = '0'
    return 0
  }

  // Past the 99th percentile everything lands in the last bin, so one stall does not squash the rest.
  const top = Math.max(1, percentile(all, 99) * 1.1)
  const binWidth = top / BINS
  const plotW = width - PAD.left - PAD.right
  const plotH = height - PAD.top - PAD.bottom
  const histograms = series.map((s) => {
    const counts = new Array(BINS).fill(0)
    for (const v of s.samples) counts[Math.min(BINS - 1, Math.floor(v / binWidth))]++
    return counts.map((c) => (s.samples.length ? c / s.samples.length : 0))
  })
  const maxShare = Math.max(0.01, ...histograms.flat())
  const x = (ms) => PAD.left + (ms / top) * plotW
  const y = (share) => PAD.top + plotH - (share / maxShare) * plotH

  // Grid and axes.
  g.strokeStyle = grid
  g.fillStyle = muted
  g.lineWidth = 1
  g.textAlign = 'right'
  g.textBaseline = 'middle'
  const yStep = niceStep(maxShare / 4)
  for (let s = 0; s <= maxShare + 1e-9; s += yStep) {
    g.beginPath(); g.moveTo(PAD.left, y(s) + 0.5); g.lineTo(width - PAD.right, y(s) + 0.5); g.stroke()
    g.fillText(`${Math.round(s * 100)}%`, PAD.left - 6, y(s))
  }
  g.textAlign = 'center'
  g.textBaseline = 'top'
  const xStep = niceStep(top / 6)
  for (let ms = 0; ms <= top; ms += xStep) {
    g.beginPath(); g.moveTo(x(ms) + 0.5, PAD.top); g.lineTo(x(ms) + 0.5, PAD.top + plotH); g.stroke()
    g.fillText(ms === 0 || ms >= 10 ? String(Math.round(ms)) : ms.toFixed(ms < 1 ? 2 : 1), x(ms), PAD.top + plotH + 6)
  }
  g.fillText('round trip, ms', PAD.left + plotW / 2, PAD.top + plotH + 21)

  // Bars, translucent so overlaps stay readable, with a step outline on top.
  series.forEach((s, i) => {
    const shares = histograms[i]
    g.fillStyle = s.color
    g.globalAlpha = 0.35
    shares.forEach((share, b) => {
      if (share > 0) g.fillRect(x(b * binWidth) + 1, y(share), Math.max(1, plotW / BINS - 2), PAD.top + plotH - y(share))
    })
    g.globalAlpha = 1
    g.strokeStyle = s.color
    g.lineWidth = 2
    g.beginPath()
    g.moveTo(x(0), y(0))
    shares.forEach((share, b) => { g.lineTo(x(b * binWidth), y(share)); g.lineTo(x((b + 1) * binWidth), y(share)) })
    g.lineTo(x(top), y(0))
    g.stroke()
    // Percentile markers.
    for (const [p, dash] of [[50, []], [95, [5, 4]]]) {
      const v = percentile(s.samples, p)
      if (!Number.isFinite(v)) continue
      g.setLineDash(dash)
      g.beginPath(); g.moveTo(x(Math.min(v, top)), PAD.top); g.lineTo(x(Math.min(v, top)), PAD.top + plotH); g.stroke()
    }
    g.setLineDash([])
  })
  g.strokeStyle = fg
  g.lineWidth = 1
  g.beginPath(); g.moveTo(PAD.left + 0.5, PAD.top); g.lineTo(PAD.left + 0.5, PAD.top + plotH + 0.5); g.lineTo(width - PAD.right, PAD.top + plotH + 0.5); g.stroke()
  canvas.dataset.samples = String(all.length)
  return all.length
}
