/** mqtt-fusion: one topic space for MQTT and plain WebSocket clients. */
export { createGateway, type Gateway, type GatewayUrls, type CreateGatewayExtras, type LogFn } from './gateway.js'
export { resolveOptions, DEFAULTS, type GatewayOptions } from './core/options.js'
export { ERROR_CODES, FusionError, WS_CLOSE, type ErrorCode } from './core/errors.js'
export { createDefaultAcl, type Acl, type Identity, type Door } from './core/policy/acl.js'
export { checkTopicName, checkTopicFilter } from './core/topics/topic-rules.js'
export { encodeEnvelope, decodeChatPayload, type ChatEnvelope } from './core/topics/envelope.js'
