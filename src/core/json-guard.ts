/**
 * Bounds on JSON from clients, checked before `JSON.parse` sees it. V8 parses flat JSON
 * at about a gigabyte a second, but deep nesting is slow: a 516 KiB /ws frame of `[`
 * took 60-250 ms to parse (measured on the 2-core CI machine), blocking every
 * connection meanwhile. No frame, envelope or API body of ours nests more than three
 * levels, so anything deeper is refused before it is parsed.
 */

/** Deepest nesting of objects and arrays accepted in client JSON. */
export const MAX_JSON_DEPTH = 32

/**
 * True when `text`, read as JSON, opens more than `maxDepth` objects or arrays at once.
 * One pass over the characters, skipping strings (with their escapes); it does not
 * check the syntax, which JSON.parse does next. Linear, never throws.
 */
export function jsonTooDeep (text: string, maxDepth = MAX_JSON_DEPTH): boolean {
  let depth = 0
  let inString = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) {
      inString = true
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > maxDepth) return true
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--
    }
  }
  return false
}
