// Tiny DOM helpers. Data only ever reaches the page through textContent and
// attributes, never through innerHTML, so a message cannot become markup.

/**
 * Creates an element. `props`: className, text (textContent), testid, and any
 * other key set as an attribute (false/undefined skip it).
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node|string|null|undefined)} children
 * @returns {HTMLElement}
 */
export function el (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false || value === null) continue
    if (key === 'className') node.className = String(value)
    else if (key === 'text') node.textContent = String(value)
    else if (key === 'testid') node.setAttribute('data-testid', String(value))
    else node.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children) {
    if (child === null || child === undefined) continue
    node.append(typeof child === 'string' ? document.createTextNode(child) : child)
  }
  return node
}

/**
 * The element with this id; throws when the page lacks it, so a renamed id fails
 * loudly at start rather than silently later.
 * @param {string} id
 * @returns {any}
 */
export function byId (id) {
  const node = document.getElementById(id)
  if (!node) throw new Error(`page element #${id} is missing`)
  return node
}

/** Who a `via` value means to a reader. */
export const VIA_LABEL = Object.freeze({ ws: 'browser', mqtt: 'MQTT device', http: 'HTTP' })

/** @param {string} via */
export function viaLabel (via) {
  return Object.hasOwn(VIA_LABEL, via) ? VIA_LABEL[/** @type {keyof typeof VIA_LABEL} */ (via)] : via
}

/**
 * A frame's `ts` as a Date, or undefined when it is not a time a Date can hold: a frame
 * may carry anything (1e20 made `toISOString()` throw and stopped the history).
 * @param {unknown} ts
 */
export function safeDate (ts) {
  const d = typeof ts === 'number' ? new Date(ts) : undefined
  return d && Number.isFinite(d.getTime()) ? d : undefined
}

/** @param {unknown} ts */
export function clockTime (ts) {
  const d = safeDate(ts)
  return d ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '--:--:--'
}

/** Whether a scroll box sits at (or within a few pixels of) its bottom. */
export function nearBottom (box, slack = 48) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < slack
}
