import { FusionError } from '../errors.js'
import { checkTopicFilter, type TopicLimits } from '../topics/topic-rules.js'

/** The filters of `--history-topics` (comma-separated), each checked as a topic filter. */
export function loggedTopics (list: string, limits: TopicLimits): string[] {
  const filters = list.split(',').map((f) => f.trim()).filter(Boolean)
  for (const f of filters) {
    try { checkTopicFilter(f, limits) } catch (err) { throw new FusionError('BAD_OPTION', `--history-topics: ${(err as Error).message}`) }
  }
  return filters
}
