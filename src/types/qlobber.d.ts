// qlobber ships no types; we use only QlobberTrue (add/remove/test).
declare module 'qlobber' {
  export interface QlobberOptions {
    separator?: string
    wildcard_one?: string
    wildcard_some?: string
    match_empty_levels?: boolean
  }
  export class QlobberTrue {
    constructor (options?: QlobberOptions)
    add (topic: string): this
    remove (topic: string): this
    test (topic: string): boolean
    clear (): this
  }
}
